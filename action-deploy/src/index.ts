import { runAction } from '@skiff/action-kit';
import { post, run } from './main';

await runAction({ main: run, post });
