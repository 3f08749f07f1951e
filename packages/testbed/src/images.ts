import { mkdtemp, mkdir, rm, copyFile, symlink, writeFile, rename, stat, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { sh } from './proc';
import { requirePart } from './parts';
import { ensureDocker } from './docker';

// Must match scripts/setup-testbed.sh: both sides share the cache and the image names.
export const IMAGE_CACHE_DIR = '/var/cache/skiff-testbed';
export const BUSYBOX_IMAGE = 'skiff-testbed/busybox:1';
export const DEBIAN_IMAGE = 'skiff-testbed/debian:bookworm';
/** Debian bookworm minbase with mariadb-server 10.11, sqlite3 and python3: a database or app service. */
export const MARIADB_IMAGE = 'skiff-testbed/mariadb:bookworm';
/** Debian trixie minbase with postgresql-17 (server and client tools): a PostgreSQL major version other than the machine's 15. */
export const POSTGRES17_BASE_IMAGE = 'skiff-testbed/postgres:17-trixie';
const POSTGRES17_TAR = join(IMAGE_CACHE_DIR, 'postgres17-trixie-rootfs.tar');
/** Debian trixie minbase with mariadb-server and -client 11.8: a MariaDB release other than the machine's 10.11. */
export const MARIADB11_BASE_IMAGE = 'skiff-testbed/mariadb:11-trixie';
const MARIADB11_TAR = join(IMAGE_CACHE_DIR, 'mariadb11-trixie-rootfs.tar');
const BUSYBOX_TAR = join(IMAGE_CACHE_DIR, 'busybox-rootfs.tar');
const DEBIAN_TAR = join(IMAGE_CACHE_DIR, 'debian-bookworm-rootfs.tar');
const MARIADB_TAR = join(IMAGE_CACHE_DIR, 'mariadb-bookworm-rootfs.tar');

export interface BaseImages {
  /** busybox-static with every applet linked into /bin (sh, httpd, wget, nc, ...). */
  busybox: string;
  /** Debian bookworm minbase with postgresql-15, redis-server, nginx-light, curl. */
  debian: string;
}

async function hasImage(name: string): Promise<boolean> {
  return sh('docker', ['image', 'inspect', name], { timeoutMs: 30_000 }).then(
    () => true,
    () => false,
  );
}

async function nonEmptyFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile() && s.size > 0,
    () => false,
  );
}

async function buildBusyboxTar(): Promise<void> {
  await requirePart('busybox-static', ['/bin/busybox', 'true']);
  const root = await mkdtemp(join(tmpdir(), 'skiff-busybox-root-'));
  try {
    for (const d of ['bin', 'tmp', 'etc', 'root', 'var/www']) await mkdir(join(root, d), { recursive: true });
    await chmod(join(root, 'tmp'), 0o1777);
    await copyFile('/bin/busybox', join(root, 'bin/busybox'));
    await chmod(join(root, 'bin/busybox'), 0o755);
    const applets = (await sh('/bin/busybox', ['--list'])).split('\n').filter((a) => a && a !== 'busybox');
    for (const applet of applets) await symlink('busybox', join(root, 'bin', applet));
    await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    await mkdir(IMAGE_CACHE_DIR, { recursive: true });
    // Write then rename, so a concurrent or interrupted run never sees half a tarball.
    const partial = `${BUSYBOX_TAR}.${process.pid}.tmp`;
    await sh('tar', ['-C', root, '-cf', partial, '.']);
    await rename(partial, BUSYBOX_TAR);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * Nothing can be pulled on these machines, so tests build FROM locally made images. Importing a
 * cached rootfs takes seconds; only the Debian one needs debootstrap, which the setup script does.
 */
export async function ensureBaseImages(): Promise<BaseImages> {
  await ensureDocker();
  if (!(await hasImage(BUSYBOX_IMAGE))) {
    if (!(await nonEmptyFile(BUSYBOX_TAR))) await buildBusyboxTar();
    await sh('docker', ['import', '--change', 'CMD ["sh"]', '--change', 'ENV PATH=/bin', BUSYBOX_TAR, BUSYBOX_IMAGE]);
  }
  if (!(await hasImage(DEBIAN_IMAGE))) {
    if (!(await nonEmptyFile(DEBIAN_TAR))) {
      throw new Error(
        `test bed: image ${DEBIAN_IMAGE} and its rootfs cache ${DEBIAN_TAR} are missing. ` +
          'Run `bash scripts/setup-testbed.sh` as root (npm test does this first).',
      );
    }
    await sh(
      'docker',
      ['import', '--change', 'CMD ["bash"]', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_TAR, DEBIAN_IMAGE],
      { timeoutMs: 300_000 },
    );
  }
  return { busybox: BUSYBOX_IMAGE, debian: DEBIAN_IMAGE };
}

/** An image the setup script made by debootstrap, re-imported from its cached rootfs when deleted. */
async function ensureImportedImage(image: string, tarball: string): Promise<string> {
  await ensureDocker();
  if (await hasImage(image)) return image;
  if (!(await nonEmptyFile(tarball))) {
    throw new Error(
      `test bed: image ${image} and its rootfs cache ${tarball} are missing. Run \`bash scripts/setup-testbed.sh\` as root (npm test does this first).`,
    );
  }
  await sh(
    'docker',
    ['import', '--change', 'CMD ["bash"]', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', tarball, image],
    { timeoutMs: 300_000 },
  );
  return image;
}

/** The MariaDB service image. */
export function ensureMariadbImage(): Promise<string> {
  return ensureImportedImage(MARIADB_IMAGE, MARIADB_TAR);
}

/** Debian trixie with MariaDB 11.8. */
export function ensureMariadb11BaseImage(): Promise<string> {
  return ensureImportedImage(MARIADB11_BASE_IMAGE, MARIADB11_TAR);
}

/** Debian trixie with PostgreSQL 17. */
export function ensurePostgres17BaseImage(): Promise<string> {
  return ensureImportedImage(POSTGRES17_BASE_IMAGE, POSTGRES17_TAR);
}
