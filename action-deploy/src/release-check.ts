import * as core from '@actions/core';
import { raw, type Command } from '@skiff/shell';
import { listContainers, parseContainerRows, up, type ContainerRow } from './compose-commands';
import type { Deployer, Release } from './deploy';
import { healthGate, type GateReport } from './health-gate';

/**
 * Consecutive successes the release check after `compose up` needs. `health-successes` exists to
 * see containers that were just started stay well; when `up` created or replaced no container,
 * every container ran before this check (the running release's, or new ones a roll already put
 * through the full gate), so one round checks what did change — which containers serve, the
 * proxy, health-url — while anything `up` created gets the full count.
 */
export function releaseCheckSuccesses(before: readonly ContainerRow[], after: readonly ContainerRow[], successes: number): { successes: number; why: string } {
  const existed = new Set(before.map((row) => row.id));
  const created = after.filter((row) => !row.oneOff && !existed.has(row.id));
  if (created.length > 0) return { successes, why: `compose up created ${created.map((row) => row.name || row.id.slice(0, 12)).join(', ')}` };
  if (successes <= 1) return { successes, why: 'health-successes' };
  return { successes: 1, why: 'compose up created or replaced no container: each ran before this check' };
}

export const AFTER_UP_MARK = '--- skiff: the containers after compose up ---';

/**
 * `prefix` (e.g. the env link), the project's containers, `compose up -d`, the containers
 * again — one round trip. Compose's own output goes to stderr (where its progress already goes),
 * so stdout holds only the two lists, split by AFTER_UP_MARK.
 */
export function upBetweenLists(d: Pick<Deployer, 'cli' | 'inputs'>, release: Pick<Release, 'project'>, prefix: readonly Command[]): Command[] {
  const [list] = listContainers(d.cli, d.inputs.projectName);
  const start = up(d.cli, release.project).map((command, index, all) => (index === all.length - 1 ? [...command, raw('>&2')] : command));
  return [...prefix, list!, ...start, ['echo', AFTER_UP_MARK], list!];
}

/** `compose up` of the release (after `prefix`), then the health gate with as many rounds as what `up` changed needs. */
export async function upAndCheck(d: Deployer, release: Release, prefix: readonly Command[] = []): Promise<GateReport> {
  const { stdout } = await d.server.run(upBetweenLists(d, release, prefix), {
    description: `start release ${release.id}`,
    timeoutSeconds: 900,
    live: 'stderr',
  });
  const [before = '', after = ''] = stdout.split(new RegExp(`^${AFTER_UP_MARK}$`, 'm'));
  const check = releaseCheckSuccesses(parseContainerRows(before), parseContainerRows(after), d.inputs.health.successes);
  core.info(`Release check: ${check.successes} consecutive successful round(s) (${check.why})`);
  return healthGate(d, Object.keys(release.images), check.successes);
}
