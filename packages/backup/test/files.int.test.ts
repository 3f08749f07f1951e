import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import { ensureBaseImages, ensureDocker, sh, sshdConnectOptions, startSshd, tempDir, type SshdServer } from '@skiff/testbed';
import { BackupFailed, HostStore, backupSource, drillSource, restoreBackup } from '../src';
import { backupOptions, oneSource } from './fixtures';

let sshd: SshdServer;
let ssh: SshConnection;
let work: { path: string; remove: () => Promise<void> };
let helper: string;
const volume = `skiffbk-vol-${randomBytes(4).toString('hex')}`;

let clock = Date.parse('2026-04-01T03:00:00Z');
const tick = () => new Date((clock += 3_600_000));
const options = backupOptions(tick);

const source = oneSource;

/** `relative path  sha256` of every regular file under `dir` (and symlinks as `-> target`), sorted. */
async function tree(dir: string): Promise<string[]> {
  const out = await sh('sh', [
    '-c',
    'cd "$1" && find . -type f -exec sha256sum {} + | awk \'{print $2 "  " $1}\'; find . -type l -printf "%p -> %l\\n"',
    'sh',
    dir,
  ]);
  return out.split('\n').filter(Boolean).sort();
}

beforeAll(async () => {
  await ensureDocker();
  const images = await ensureBaseImages();
  helper = images.debian;
  [sshd, work] = await Promise.all([startSshd(), tempDir('skiffbk-files')]);
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  const app = join(work.path, 'srv/app');
  await mkdir(join(app, 'uploads/2026'), { recursive: true });
  await writeFile(join(app, 'config.yml'), 'name: shop\nreplicas: 2\n');
  await writeFile(join(app, 'uploads/2026/photo.bin'), randomBytes(64 * 1024));
  await writeFile(join(app, 'uploads/name with spaces.txt'), 'spaces survive\n');
  await symlink('config.yml', join(app, 'current.yml'));
  await sh('docker', ['volume', 'create', '--label', 'skiffbk=test', volume]);
  await sh('docker', [
    'run',
    '--rm',
    '--name',
    `${volume}-seed`,
    '--network=none',
    '-v',
    `${volume}:/v`,
    helper,
    'sh',
    '-c',
    'mkdir -p /v/db && head -c 32768 /dev/urandom > /v/db/data.bin && echo hello > /v/readme && chown -R 999:999 /v/db',
  ]);
}, 300_000);

afterAll(async () => {
  await ssh?.close();
  await sh('docker', ['volume', 'rm', '-f', volume]).catch(() => undefined);
  await Promise.all([sshd?.stop(), work?.remove()]);
});

describe('files: host paths and a named Docker volume → host destination', () => {
  it('tars host paths, checks the archive (tar --list), and restores an identical tree; a non-empty target is refused unless forced', async () => {
    const dest = join(work.path, 'backups');
    const store = new HostStore(ssh, dest);
    const app = join(work.path, 'srv/app');
    const files = source(`- type: files\n  name: app-files\n  paths: [${app}]\n`);
    const { manifest } = await backupSource(ssh, store, files, options());
    expect(manifest.file).toMatch(/^app-files-\d{8}T\d{6}Z\.tar\.gz$/);
    expect(manifest.verification).toEqual(expect.arrayContaining(['gzip -t', 'tar header', 'tar --list', 'sha256']));
    expect(manifest.tools.tar).toMatch(/GNU tar/);

    const target = join(work.path, 'restored');
    await restoreBackup(ssh, store, files, manifest, { path: target, force: false });
    const original = await tree(app);
    expect(original.length).toBe(4);
    expect(await tree(join(target, app))).toEqual(original);

    // Not empty now: refused, and nothing in it changes.
    await writeFile(join(target, app, 'config.yml'), 'changed\n');
    await expect(restoreBackup(ssh, store, files, manifest, { path: target, force: false })).rejects.toThrow(/directory .* is not empty; set force: true/);
    expect(await readFile(join(target, app, 'config.yml'), 'utf8')).toBe('changed\n');
    await restoreBackup(ssh, store, files, manifest, { path: target, force: true });
    expect(await tree(join(target, app))).toEqual(original);
  });

  it('reads a named volume (and host paths) through a helper container and restores them identically, owners kept', async () => {
    const dest = join(work.path, 'backups');
    const store = new HostStore(ssh, dest);
    const app = join(work.path, 'srv/app');
    const both = source(`- type: files\n  name: app-volume\n  paths: [${app}]\n  volumes: [${volume}]\n  helper-image: ${helper}\n`);
    const { manifest } = await backupSource(ssh, store, both, options());
    expect(manifest.verification).toEqual(expect.arrayContaining(['tar --list']));

    const target = join(work.path, 'restored-volume');
    await restoreBackup(ssh, store, both, manifest, { path: target, force: false });
    const inVolume = await sh('docker', [
      'run',
      '--rm',
      '--network=none',
      '-v',
      `${volume}:/v:ro`,
      helper,
      'sh',
      '-c',
      'cd /v && find . -type f -exec sha256sum {} + | awk \'{print $2 "  " $1}\' | sort',
    ]);
    expect(await tree(join(target, 'volumes', volume))).toEqual(inVolume.split('\n').filter(Boolean));
    expect(await tree(join(target, 'host', app))).toEqual(await tree(app));
    expect((await sh('stat', ['-c', '%u:%g', join(target, 'volumes', volume, 'db/data.bin')])).trim()).toBe('999:999');
    // The helper container is gone (--rm), none left behind.
    expect((await sh('docker', ['ps', '-aq', '--filter', `volume=${volume}`])).trim()).toBe('');

    // Compared with before: a run killed earlier may have left scratch copies of its own.
    const scratch = async () => (await readdir('/tmp')).filter((name) => name.startsWith('skiff_drill_'));
    const before = await scratch();
    const drill = await drillSource(ssh, store, both, {});
    expect(drill.report).toEqual(['files|5', expect.stringMatching(/^bytes\|\d+$/)]);
    expect(await scratch()).toEqual(before);
  });

  it('a missing path or volume fails the backup: no manifest, no partial', async () => {
    const dest = join(work.path, 'backups');
    const store = new HostStore(ssh, dest);
    const missing = source(`- type: files\n  name: app-files\n  paths: [${join(work.path, 'no/such/dir')}]\n`);
    const before = await sh('ls', [join(dest, 'app-files')]);
    await expect(backupSource(ssh, store, missing, options())).rejects.toThrow(BackupFailed);
    expect(await sh('ls', [join(dest, 'app-files')])).toBe(before);
  });
});
