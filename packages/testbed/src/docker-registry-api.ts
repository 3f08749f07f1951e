import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Registry } from './registry';

/** Every manifest kind a registry may hold for a tag: OCI index, Docker manifest list, Docker v2 and OCI manifests. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

/**
 * Asks the registry's HTTP API which manifest digest it serves for `name:tag` (the
 * Docker-Content-Digest header), or undefined when the tag does not exist (404).
 */
export async function registryManifestDigest(registry: Registry, name: string, tag: string): Promise<string | undefined> {
  const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
  const response = await fetch(`http://${registry.address}/v2/${name}/manifests/${tag}`, {
    headers: { Accept: MANIFEST_ACCEPT, Authorization: `Basic ${auth}` },
  });
  await response.arrayBuffer();
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`registry: GET /v2/${name}/manifests/${tag} answered ${response.status}`);
  const digest = response.headers.get('docker-content-digest');
  if (!digest) throw new Error(`registry: no Docker-Content-Digest for ${name}:${tag}`);
  return digest;
}

/** The system-wide directory the docker CLI always searches for plugins (buildx, compose), on top of $DOCKER_CONFIG/cli-plugins. */
export const SYSTEM_CLI_PLUGIN_DIR = '/usr/local/lib/docker/cli-plugins';

/**
 * An argv that runs `argv` with no docker CLI plugins visible: the docker CLI has no setting that
 * removes its built-in system plugin directories, so the command runs in a private mount
 * namespace (unshare, root only) where an empty directory is bind-mounted over
 * SYSTEM_CLI_PLUGIN_DIR. Nothing outside that process tree sees the change. Pair it with a
 * DOCKER_CONFIG without cli-plugins. `cleanup` removes the empty directory.
 */
export async function withoutCliPlugins(argv: readonly string[]): Promise<{ argv: string[]; cleanup: () => Promise<void> }> {
  const empty = await mkdtemp(join(tmpdir(), 'skiff-no-plugins-'));
  // The script is fixed text; the directories and the command arrive as positional parameters.
  // bash, not sh: dash drops environment variables whose names are not shell identifiers, such as
  // the runner's INPUT_SMOKE-TEST, while bash passes them on to the program it execs.
  const script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"';
  return {
    argv: ['unshare', '--mount', '--propagation', 'private', '--', 'bash', '-c', script, 'bash', empty, SYSTEM_CLI_PLUGIN_DIR, ...argv],
    cleanup: () => rm(empty, { recursive: true, force: true }),
  };
}
