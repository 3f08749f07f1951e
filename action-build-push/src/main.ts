import { relative } from 'node:path';
import * as core from '@actions/core';
import { notImplemented, outputs, table, writeSummary } from '@skiff/action-kit';
import { version } from '../package.json';
import { ACTION_OUTPUTS, readBuildPushInputs } from './inputs';

export async function run(): Promise<void> {
  const inputs = readBuildPushInputs();
  const shown = (path: string) => relative(process.cwd(), path) || '.';

  core.info(`Image ${inputs.image} from ${shown(inputs.file)} in context ${shown(inputs.context)}${inputs.push ? ', to be pushed' : ''}`);
  outputs<Record<keyof typeof ACTION_OUTPUTS, string>>().set('image', inputs.image);
  await writeSummary(
    [
      '### Build and push',
      '',
      table(['Image', 'Dockerfile', 'Context', 'Push'], [[inputs.image, shown(inputs.file), shown(inputs.context), String(inputs.push)]]),
    ].join('\n'),
  );

  throw notImplemented('action-build-push', version, 'building and pushing images');
}

/** Will log out of the registry main logged in to; the skeleton never logs in. */
export async function post(): Promise<void> {
  core.info(`action-build-push ${version} does not log in to a registry yet, so there is nothing to log out of`);
}
