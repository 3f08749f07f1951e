import { RefusedBeforeChange } from './refusal';
import { logs, ps } from './compose-commands';
import { Diagnostics } from './diagnostics';
import type { Deployer, Release } from './deploy';
import type { GateReport } from './health-gate';
import { GIT_SHA, isReleaseId, previousRelease, type ServerState } from './release-history';

/**
 * What a person needs to see why a release failed, gathered before anything is rolled back
 * (afterwards the failing containers are gone): compose ps, the last 100 log lines of each
 * failing service, and its HEALTHCHECK log.
 */
export async function collectDiagnostics(d: Deployer, release: Release, gate: GateReport): Promise<string> {
  const found = new Diagnostics(d);
  await found.run('docker compose ps -a', ps(d.cli, release.project));
  const services = gate.failingServices.length > 0 ? gate.failingServices : Object.keys(release.images);
  if (services.length > 0) await found.run(`docker compose logs --tail 100 ${services.join(' ')}`, logs(d.cli, release.project, services));
  for (const container of gate.containers) {
    if (container.healthLog.length > 0 && services.includes(container.service)) {
      found.add(`health log of ${container.name} (${container.health ?? 'no health'})`, container.healthLog.join('\n'));
    }
  }
  return found.report(release.id);
}

/** The SHA a release was deployed from: meta.json's, else the 7 digits in its id (`<time>-<sha7>-<random>`). */
function releaseSha(state: ServerState, id: string): { sha: string; full: boolean } {
  const full = state.shas?.get(id);
  return full ? { sha: full, full: true } : { sha: id.split('-')[1] ?? '', full: false };
}

/** The release a manual `rollback:` input names (`previous`, a release id, or a git SHA or its prefix), checked against what the server keeps. */
export function rollbackTarget(state: ServerState, wanted: string): string {
  const kept = [...state.deployed].filter((id) => state.releases.includes(id)).sort();
  const list = () =>
    kept.length === 0
      ? 'none'
      : kept
          .slice()
          .reverse()
          .map(
            (id) =>
              `\n  ${id} (commit ${releaseSha(state, id).sha.slice(0, 12)}, ${id.slice(0, 4)}-${id.slice(4, 6)}-${id.slice(6, 8)} ${id.slice(9, 11)}:${id.slice(11, 13)} UTC${id === state.current ? ', current' : ''})`,
          )
          .join('');
  if (wanted === 'previous') {
    const id = previousRelease(state);
    if (!id)
      throw new RefusedBeforeChange(
        `rollback: previous — there is no deployed release older than the current one (${state.current ?? 'none'}). Kept releases: ${list()}`,
      );
    return id;
  }
  if (GIT_SHA.test(wanted) && !isReleaseId(wanted)) {
    const sha = wanted.toLowerCase();
    const matching = kept.filter((id) => {
      const known = releaseSha(state, id);
      return known.full ? known.sha.startsWith(sha) : sha.length >= known.sha.length ? sha.startsWith(known.sha) : known.sha.startsWith(sha);
    });
    // The newest release of that commit: a redeploy of the same SHA made a newer one.
    const id = matching.at(-1);
    if (!id)
      throw new RefusedBeforeChange(`rollback: no kept, successfully deployed release was made from commit ${wanted}. Kept releases (newest first): ${list()}`);
    return id;
  }
  if (!kept.includes(wanted))
    throw new RefusedBeforeChange(
      `rollback: release ${wanted} is not a kept, successfully deployed release on the server. Kept releases (newest first): ${list()}`,
    );
  return wanted;
}
