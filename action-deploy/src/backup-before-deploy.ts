import * as core from '@actions/core';
import { backupSource, HostStore, type Manifest, type Source } from '@skiff/backup';
import type { TakenBackup } from './backup-before-deploy-inputs';
import type { Deployer, Release } from './deploy';

/**
 * A Compose service without its own project settings is this project's running service: the
 * container is found by project and service label, so the new release's files serve to address it.
 */
function inThisProject(source: Source, release: Release): Source {
  if (source.place.kind !== 'compose' || source.place.project !== undefined) return source;
  return {
    ...source,
    place: { ...source.place, project: release.project.name, projectDirectory: release.project.directory, composeFiles: [...release.project.files] },
  };
}

/**
 * Dumps each source into a directory on the server (the data never leaves it), verified as
 * action-backup verifies it; a failed backup throws, so the deploy stops before pre-deploy.
 */
export async function backupBeforeDeploy(d: Deployer, release: Release, previous: string | undefined): Promise<TakenBackup[]> {
  const settings = d.inputs.backupBeforeDeploy;
  if (!settings) return [];
  if (previous === undefined) {
    core.info('backup-before-deploy: this is the first release, so there is nothing running to back up yet');
    return [];
  }
  const store = new HostStore(d.server, settings.path);
  const taken: TakenBackup[] = [];
  for (const source of settings.sources) {
    const result = await backupSource(d.server, store, inThisProject(source, release), {
      minSize: 1024,
      maxShrinkPercent: 50,
      encryptRecipients: [],
      retention: { minKeep: settings.keep },
      log: (message) => core.info(`backup-before-deploy: ${message}`),
    });
    taken.push(describe(result.manifest));
  }
  return taken;
}

function describe(manifest: Manifest): TakenBackup {
  return { source: manifest.source, id: manifest.id, location: manifest.location, size: manifest.size, sha256: manifest.sha256 };
}
