import { backupBeforeDeploy } from '../../backup-before-deploy';
import {
  beforeUp,
  buildOnServer,
  linkReleaseEnv,
  loadRelease,
  markCurrent,
  pullImages,
  removeComposeReleases,
  resolveDigests,
  runPreDeploy,
  uploadRelease,
  type Release,
} from '../../deploy';
import { upAndCheck } from '../../release-check';
import { collectDiagnostics } from '../../rollback';
import type { HostStrategy, PrepareStep, StrategyEntry } from '../strategy';

/**
 * strategy: recreate — `compose up -d` replaces what changed, then the health gate. The other
 * Compose strategy (rolling) shares every step but the switch.
 */
export function recreateStrategy(): HostStrategy<Release> {
  return {
    usesDocker: true,
    async check() {},
    async upload(d, id) {
      // From here on every compose command, Skiff's and pre-deploy's, sees this release's .env
      // (services with `env_file: .env` need it from the first pull); an early failure links it back.
      return uploadRelease(d, id, { linkEnv: true });
    },
    prepare(d, release, previous, backups) {
      const { backupBeforeDeploy: backup, preDeploy } = d.inputs;
      const steps: PrepareStep[] = [
        { what: 'Pulling images', run: () => pullImages(d, release) },
        { what: 'Building images on the server', run: () => buildOnServer(d, release) },
        { what: 'Resolving image digests', run: () => resolveDigests(d, release) },
      ];
      if (backup !== undefined)
        steps.push({ what: 'backup-before-deploy', run: async () => void backups.push(...(await backupBeforeDeploy(d, release, previous))) });
      if (preDeploy !== undefined) steps.push({ what: 'pre-deploy', run: () => runPreDeploy(d, release, preDeploy) });
      return steps;
    },
    async afterEarlyFailure(d, previous) {
      await linkReleaseEnv(d, previous ? await loadRelease(d, previous) : undefined);
    },
    async switchOn(d, release) {
      const gate = await upAndCheck(d, release, beforeUp(d, release));
      return { gates: [{ label: `release ${release.id}`, gate }], gate };
    },
    load: loadRelease,
    markCurrent,
    diagnose: (d, release, switched) => collectDiagnostics(d, release, switched.gate),
    left: {
      noRollback: 'its containers were left running for inspection',
      noPrevious: 'its containers were left for inspection',
    },
    removeCommands: removeComposeReleases,
    plannedRollback: (_d, wanted) => `re-deploy release ${wanted} (its own compose files, env and digests), then the health gate`,
  };
}

/** strategy: recreate has no inputs of its own and uses every shared one. */
export const recreate: StrategyEntry<Record<string, never>> = { inputs: [], ignores: [], ignoresInputs: [], read: () => ({}), host: recreateStrategy };
