import { randomBytes } from 'node:crypto';
import { newReleaseId } from './release-history';

/** Who runs this deploy and from where, for the lock owner, meta.json and the audit log. */
export interface RunContext {
  actor: string;
  sha: string;
  ref: string;
  runUrl: string;
  token: string;
  /** One release id for every host of the run, so `release-id` names the same release everywhere. */
  releaseId?: string;
}

export function runContext(env: NodeJS.ProcessEnv = process.env): RunContext {
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  const runUrl = env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID ? `${server}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}` : '';
  return {
    actor: env.GITHUB_ACTOR ?? 'unknown',
    sha: env.GITHUB_SHA ?? '',
    ref: env.GITHUB_REF ?? '',
    runUrl,
    token: randomBytes(12).toString('hex'),
    releaseId: newReleaseId(new Date(), env.GITHUB_SHA ?? '', randomBytes(2).toString('hex')),
  };
}
