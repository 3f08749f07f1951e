import { chmod, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './proc';
import { requirePart } from './parts';

// Debian bookworm's docker-compose 1.29 and the Python libraries it needs that the machine lacks.
const PACKAGES = [
  'docker-compose',
  'python3-cached-property',
  'python3-docker',
  'python3-dockerpty',
  'python3-docopt',
  'python3-dotenv',
  'python3-jsonschema',
  'python3-requests',
  'python3-texttable',
  'python3-websocket',
  'python3-attr',
  'python3-pyrsistent',
  'python3-urllib3',
  'python3-idna',
  'python3-certifi',
  'python3-chardet',
  'python3-charset-normalizer',
  'python3-six',
  'python3-packaging',
  'python3-distutils',
];
const CACHE = '/var/cache/skiff-testbed/compose-v1';

export interface ComposeV1 {
  /** Put first on a server's PATH: `docker-compose` is v1 and `docker compose` (the v2 plugin) is refused. */
  v1BinDir: string;
  /** Put first on a server's PATH for a server with no Compose at all. */
  noComposeBinDir: string;
  /** The machine's folders holding the Compose v2 plugin: hide them (startSshd's `hide`) for a server without it. */
  pluginDirs: string[];
}

/** Where the docker CLI finds plugins on Linux, besides the user's own ~/.docker/cli-plugins. */
const SYSTEM_PLUGIN_DIRS = [
  '/usr/local/lib/docker/cli-plugins',
  '/usr/local/libexec/docker/cli-plugins',
  '/usr/lib/docker/cli-plugins',
  '/usr/libexec/docker/cli-plugins',
];

/**
 * Docker Compose v1 without installing it system-wide: Debian's packages unpacked (dpkg -x) into
 * a cache directory, run with the system python3. Also a `docker` wrapper that refuses the
 * `compose` subcommand and the machine's plugin folders to hide, standing in together for an engine
 * installed without the v2 plugin (Skiff looks for the plugin's file before it asks docker).
 */
export async function ensureComposeV1(): Promise<ComposeV1> {
  await requirePart('system python3', ['/usr/bin/python3', '--version']);
  const root = join(CACHE, 'root');
  const ready = await stat(join(root, 'usr/bin/docker-compose')).then(
    () => true,
    () => false,
  );
  if (!ready) {
    const work = `${CACHE}.${process.pid}.tmp`;
    await rm(work, { recursive: true, force: true });
    await mkdir(join(work, 'debs'), { recursive: true });
    await sh('sh', ['-c', `cd "$1" && shift && apt-get download "$@"`, 'sh', join(work, 'debs'), ...PACKAGES], { timeoutMs: 300_000 });
    for (const deb of await readdir(join(work, 'debs'))) await sh('dpkg', ['-x', join(work, 'debs', deb), join(work, 'root')]);
    await rm(join(work, 'debs'), { recursive: true, force: true });
    await mkdir(CACHE, { recursive: true });
    // Renamed into place in one step, so a concurrent or interrupted run never sees half of it.
    await rename(join(work, 'root'), root).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    });
    await rm(work, { recursive: true, force: true });
  }
  const v1BinDir = join(CACHE, 'bin-v1');
  const noComposeBinDir = join(CACHE, 'bin-none');
  const docker = '#!/bin/sh\nif [ "$1" = compose ]; then echo "docker: \'compose\' is not a docker command." >&2; exit 1; fi\nexec /usr/bin/docker "$@"\n';
  const compose = `#!/bin/sh\nPYTHONPATH=${root}/usr/lib/python3/dist-packages exec /usr/bin/python3 ${root}/usr/bin/docker-compose "$@"\n`;
  for (const [dir, files] of [
    [v1BinDir, { docker, 'docker-compose': compose }],
    [noComposeBinDir, { docker }],
  ] as const) {
    await mkdir(dir, { recursive: true });
    for (const [name, text] of Object.entries(files)) {
      await writeFile(join(dir, name), text);
      await chmod(join(dir, name), 0o755);
    }
  }
  await sh(join(v1BinDir, 'docker-compose'), ['version', '--short']);
  const pluginDirs: string[] = [];
  for (const dir of [join(process.env.HOME ?? '/root', '.docker', 'cli-plugins'), ...SYSTEM_PLUGIN_DIRS])
    if (
      await stat(join(dir, 'docker-compose')).then(
        () => true,
        () => false,
      )
    )
      pluginDirs.push(dir);
  return { v1BinDir, noComposeBinDir, pluginDirs };
}
