import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import { ensureBaseImages, ensureDocker, sh, sshdConnectOptions, startSshd, tempDir, waitFor, type SshdServer } from '@skiff/testbed';
import { HostStore, backupSource, drillSource, restoreBackup } from '../src';
import { backupOptions, oneSource } from './fixtures';

let sshd: SshdServer;
let ssh: SshConnection;
let work: { path: string; remove: () => Promise<void> };
const container = `skiffbk-redis-${randomBytes(4).toString('hex')}`;
const password = `pw-${randomBytes(12).toString('hex')}`;

let clock = Date.parse('2026-06-01T03:00:00Z');
const tick = () => new Date((clock += 3_600_000));
const options = backupOptions(tick);

const source = oneSource;

// The password reaches redis through its environment, never an argv (`ps` is sampled below).
const cli = (...args: string[]) =>
  sh('docker', ['exec', container, 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --no-auth-warning "$@"', 'sh', ...args]);

beforeAll(async () => {
  await ensureDocker();
  const { debian } = await ensureBaseImages();
  [sshd, work] = await Promise.all([startSshd(), tempDir('skiffbk-place')]);
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  await sh('docker', [
    'run',
    '-d',
    '--name',
    container,
    '--network=none',
    '-e',
    `REDIS_PASSWORD=${password}`,
    '--entrypoint',
    'sh',
    debian,
    '-c',
    'exec redis-server --requirepass "$REDIS_PASSWORD" --save ""',
  ]);
  await waitFor('redis in its container', async () => (await cli('ping')).trim() === 'PONG', 30_000, 200);
  for (let batch = 0; batch < 5; batch++) {
    const args = Array.from({ length: 200 }, (_, i) => [`key:${batch}:${i}`, `value-${batch}-${i}-${'x'.repeat(40)}`]).flat();
    await cli('mset', ...args);
  }
}, 180_000);

afterAll(async () => {
  await ssh?.close();
  await sh('docker', ['rm', '-f', container]).catch(() => undefined);
  await Promise.all([sshd?.stop(), work?.remove()]);
});

describe('a source in a container by name (docker exec)', () => {
  it("redis: RDB streamed out with docker exec, the password from the container's own variable (never in ps), restored and drilled", async () => {
    const store = new HostStore(ssh, join(work.path, 'backups'));
    const redis = source(`- type: redis\n  name: cache\n  container: ${container}\n  password-env: REDIS_PASSWORD\n`);
    const running = backupSource(ssh, store, redis, options());
    const samples: string[] = [];
    let sawExec = false;
    for (let i = 0; i < 60; i++) {
      const ps = await sh('ps', ['-eo', 'args']);
      samples.push(ps);
      if (ps.includes(`docker exec ${container}`)) sawExec = true;
      if (sawExec && i > 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const { manifest } = await running;
    expect(manifest.verification).toEqual(expect.arrayContaining(['RDB header REDIS', 'gzip -t']));
    expect(manifest.tools['redis-cli']).toMatch(/redis-cli \d/);
    expect(samples.join('\n')).not.toContain(password);
    expect(sawExec).toBe(true);

    const target = join(work.path, 'restored/dump.rdb');
    await restoreBackup(ssh, store, redis, manifest, { path: target, force: false });
    const check = await sh('redis-check-rdb', [target]);
    expect(check).toMatch(/1000 keys read/);
    await expect(restoreBackup(ssh, store, redis, manifest, { path: target, force: false })).rejects.toThrow(/not empty; set force: true/);
    const drill = await drillSource(ssh, store, redis, {});
    expect(drill.report).toEqual(['keys|1000']);
  });
});

describe('the shrink guard', () => {
  it('a backup much smaller than the previous one fails: no manifest, the earlier backup kept, nothing pruned', async () => {
    const dir = join(work.path, 'site');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'big.bin'), randomBytes(200 * 1024));
    await writeFile(join(dir, 'small.txt'), 'still here\n');
    const files = source(`- type: files\n  name: site\n  paths: [${dir}]\n`);
    const dest = join(work.path, 'guarded');
    const store = new HostStore(ssh, dest);
    const first = await backupSource(ssh, store, files, options({ minSize: 0 }));
    await rm(join(dir, 'big.bin'));
    const strict = options({ minSize: 0, retention: { keepDaily: 1, minKeep: 1 } });
    await expect(backupSource(ssh, store, files, strict)).rejects.toThrow(/shrank more than max-shrink-percent \(50%\) against the previous one \(\d+ bytes\)/);
    expect((await store.list('site')).map((m) => m.id)).toEqual([first.manifest.id]);
    expect((await readdir(join(dest, 'site'))).sort()).toEqual([first.manifest.file, `${first.manifest.id}.manifest.json`].sort());
    // Turned off (100), the same small backup is kept.
    const relaxed = await backupSource(ssh, store, files, options({ minSize: 0, maxShrinkPercent: 100 }));
    expect(relaxed.manifest.size).toBeLessThan(first.manifest.size / 2);
  });
});
