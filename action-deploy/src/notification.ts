import { hostLabel, type Notification } from '@skiff/action-kit';
import type { RunContext } from './run-context';
import { envValues, type DeployInputs } from './inputs';
import { redact } from './host-outcome';
import type { RunResult } from './run-report';

type Ended = { result: RunResult } | { error: string; durationSeconds: number; mode: RunResult['mode'] };

const TITLE = { deployed: '✅ Deployed', 'rolled-back': '↩️ Rolled back', failed: '❌ Deploy failed' } as const;

/**
 * The one chat message per run: result, version (commit and release), host(s), duration,
 * rollback, and the run link. Built from what the outputs say; no env value and no URL input
 * (the webhook itself, the GitHub token) goes into it.
 */
export function deployNotification(inputs: DeployInputs, ctx: RunContext, ended: Ended): Notification {
  const message = notification(inputs, ctx, ended);
  // Error texts can quote a server's output; env values are blanked as in the job summary.
  const secrets = inputs.envFile === undefined ? [] : envValues(inputs.envFile);
  return { ...message, title: redact(message.title, secrets), fields: message.fields.map(([name, value]) => [name, redact(value, secrets)] as const) };
}

function notification(inputs: DeployInputs, ctx: RunContext, ended: Ended): Notification {
  const repository = process.env.GITHUB_REPOSITORY ?? 'app';
  const sha = ctx.sha.slice(0, 7) || 'manual';
  // strategy: coolify has no SSH hosts: its Coolify resources (or tags) stand in their place.
  const coolify = inputs.strategy.name === 'coolify' ? inputs.strategy.settings : undefined;
  const hosts = coolify
    ? (coolify.uuids.length > 0 ? coolify.uuids : coolify.tags.map((tag) => `tag:${tag}`)).map((id) => `coolify:${id}`)
    : inputs.targets.map(hostLabel);
  if ('error' in ended) {
    return {
      title: `${TITLE.failed}: ${repository} ${sha}`,
      outcome: 'failure',
      fields: [
        ['Result', 'failed before any host was deployed'],
        ['Version', `${sha}${inputs.rollback ? ` (rollback to ${inputs.rollback})` : ''}`],
        ['Hosts', hosts.join(', ')],
        ['Duration', `${ended.durationSeconds.toFixed(1)} s`],
        ['Error', ended.error.split('\n')[0]!.slice(0, 300)],
      ],
      ...(ctx.runUrl ? { link: ctx.runUrl } : {}),
    };
  }
  const { result } = ended;
  const verb = result.mode === 'rollback' && result.status === 'deployed' ? '↩️ Rolled back (manual)' : TITLE[result.status];
  const perHost = result.reports.map((report) => `${report.label}: ${report.status}`);
  const rollback = result.reports
    .filter((report) => report.status === 'rolled-back')
    .map((report) => `${report.label} → ${report.undo?.to ?? report.outcome?.previousReleaseId ?? '?'}`);
  return {
    title: `${verb}: ${repository} ${sha} to ${hosts.length === 1 ? hosts[0] : `${hosts.length} hosts`}`,
    outcome: result.status === 'deployed' ? 'success' : result.status === 'rolled-back' ? 'warning' : 'failure',
    fields: [
      ['Result', result.status],
      ['Version', `${sha} (release ${result.releaseId})`],
      ['Hosts', hosts.length === 1 ? hosts[0]! : perHost.join('\n')],
      ['Duration', `${result.durationSeconds.toFixed(1)} s`],
      ['Rollback', rollback.length > 0 ? rollback.join('\n') : 'none'],
    ],
    ...(ctx.runUrl ? { link: ctx.runUrl } : {}),
  };
}
