import { runAction } from '@skiff/action-kit';
import { run } from './main';

await runAction({ main: run });
