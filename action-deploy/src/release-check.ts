import * as core from '@actions/core';
import { listContainers, parseContainerRows, type ContainerRow } from './compose-commands';
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

async function containerRows(d: Deployer, description: string): Promise<ContainerRow[]> {
  return parseContainerRows((await d.server.run(listContainers(d.cli, d.inputs.projectName), { description, timeoutSeconds: 60 })).stdout);
}

/** `compose up` of the release (`start`), then the health gate with as many rounds as what `up` changed needs. */
export async function upAndCheck(d: Deployer, release: Release, start: () => Promise<void>): Promise<GateReport> {
  const before = await containerRows(d, 'list the containers before compose up');
  await start();
  const check = releaseCheckSuccesses(before, await containerRows(d, 'list the containers after compose up'), d.inputs.health.successes);
  core.info(`Release check: ${check.successes} consecutive successful round(s) (${check.why})`);
  return healthGate(d, Object.keys(release.images), check.successes);
}
