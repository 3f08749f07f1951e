import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  enableAarch64,
  MANIFEST_ACCEPT,
  startHubMirror,
  startModernHost,
  startRegistry,
  startSystemdHost,
  type ModernHost,
  type Registry,
  type SystemdHost,
} from '@skiff/testbed';
import { type WorkflowRun } from '../workflow-runner';
import { readmeShellBlocks, runExampleWorkflow, runReadmeSetup, userRepository } from './harness';

/**
 * examples/python-systemd-sqlite, end to end, as its README tells a user to run it: a server with
 * real systemd and sshd (Debian 12) set up by the README's own block (its `apt-get install` from
 * the test bed's local copy of Debian's packages), the service shipped from an artifact by
 * strategy systemd with a venv built per release, ~60 MB of notes in SQLite, and the nightly
 * backup taken while the service writes.
 */

const DB = '/var/lib/notes/notes.db';
let host: SystemdHost;
let repo: Awaited<ReturnType<typeof userRepository>>;
const runs: WorkflowRun[] = [];
const readme = { fingerprint: '' };
const expected = { notes: 0 };
const releases: string[] = [];

async function run(workflow: string, event: { name: string; inputs?: Record<string, string> }) {
  const result = await runExampleWorkflow(
    {
      repository: repo.path,
      vars: { DEPLOY_HOST: host.host, DEPLOY_PORT: String(host.port), DEPLOY_FINGERPRINT: readme.fingerprint },
      secrets: { DEPLOY_SSH_KEY: host.privateKey },
    },
    workflow,
    event,
  );
  runs.push(result);
  return result;
}

/** The service as the VM itself sees it (it listens on 127.0.0.1:8000 only). */
async function api(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await host.exec(['curl', '-sS', '--max-time', '5', `http://127.0.0.1:8000${path}`])) as Record<string, unknown>;
}
const sqlite = (sql: string) => host.exec(['sudo', '-u', 'notes', 'sqlite3', DB, sql]);
const noteCount = async () => Number((await sqlite('select count(*) from notes')).trim());

beforeAll(async () => {
  [host, repo] = await Promise.all([startSystemdHost({ name: 'ex-notes', localApt: true }), userRepository('python-systemd-sqlite')]);
  const [setup, fingerprint] = await readmeShellBlocks('python-systemd-sqlite');
  await runReadmeSetup(host, setup!, "'ssh-ed25519 AAAA… deploy@github'");
  readme.fingerprint = (await host.exec(['bash', '-ec', fingerprint!])).trim();
}, 300_000);

afterAll(async () => {
  for (const result of runs) await result.remove();
  await host?.stop();
  await repo?.remove();
});

describe('example python-systemd-sqlite: a Python service under systemd with SQLite, shipped from an artifact', () => {
  it("the README's set-up installs venv and sqlite3 from apt, the users, the unit and the deploy user's sudo rule", async () => {
    expect(readme.fingerprint).toBe(host.hostFingerprint);
    expect(await host.exec(['python3', '-c', 'import ensurepip, sqlite3; print("ok")'])).toBe('ok\n');
    expect(await host.exec(['sqlite3', '--version'])).toMatch(/^3\.\d+/);
    expect(await host.exec(['id', '-nG', 'deploy'])).toMatch(/\bnotes\b/);
    expect((await host.exec(['systemctl', 'is-enabled', 'notes.service'])).trim()).toBe('enabled');
    expect(await host.exec(['visudo', '-c'])).toMatch(/notes-deploy: parsed OK/);
  });

  it('the first push tests and packages the app, and ships it: the release runs from its own venv under systemd', async () => {
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.result, ship.log).toBe('success');
    expect(deploy.outputs.status).toBe('deployed');
    // The package job ran the app's test before anything was uploaded.
    const tested = ship.jobs.find((job) => job.id === 'package')!.steps.find((step) => step.name === 'Test')!;
    expect(tested.log).toMatch(/Ran 1 test[\s\S]*OK/);
    const release = deploy.outputs['release-id']!;
    releases.push(release);
    expect(await api('/health')).toEqual({ status: 'ok' });
    expect(await api('/version')).toEqual({ version: '1', venv: `/srv/notes/releases/${release}/.venv` });
    expect((await host.exec(['systemctl', 'show', 'notes.service', '--property=User,ActiveState'])).trim().split('\n').sort()).toEqual([
      'ActiveState=active',
      'User=notes',
    ]);

    // ~60 MB of notes of mixed types, written as the service's own user.
    await sqlite(
      "with recursive n(i) as (select 1 union all select i + 1 from n where i < 300000) insert into notes (body, author, score, attachment) select hex(randomblob(60)), 'user' || (i % 977), i * 0.37, randomblob(64) from n",
    );
    expected.notes = await noteCount();
    expect(expected.notes).toBeGreaterThanOrEqual(300_000);
    expect(Number((await host.exec(['stat', '-c', '%s', DB])).trim())).toBeGreaterThan(50_000_000);
  });

  it('the next commit ships as a new release with a venv of its own; the data stays', async () => {
    await repo.edit('app/notes/__init__.py', (text) => text.replace('VERSION = "1"', 'VERSION = "2"'));
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.result, ship.log).toBe('success');
    expect(deploy.outputs.status).toBe('deployed');
    expect(await api('/version')).toEqual({ version: '2', venv: `/srv/notes/releases/${deploy.outputs['release-id']!}/.venv` });
    expect(await noteCount()).toBe(expected.notes);
  });

  it('a migration that passes the tests but fails on the real data crashes the release, which is switched back by itself; the data stays', async () => {
    // A unique index on the author: fine on the test's empty database, impossible on 300,000 notes
    // by 977 authors. The service exits at start; systemd restarts it; the gate sees the restarts.
    await repo.edit('app/notes/__init__.py', (text) => text.replace('VERSION = "2"', 'VERSION = "3"'));
    await repo.edit('app/notes/store.py', (text) =>
      text.replace(
        '        db.execute(SCHEMA)\n',
        '        db.execute(SCHEMA)\n        db.execute("create unique index if not exists notes_author on notes (author)")\n',
      ),
    );
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.jobs.find((job) => job.id === 'package')!.result).toBe('success');
    expect(ship.result).toBe('failure');
    expect(deploy.outputs.status, deploy.log).toBe('rolled-back');
    expect(deploy.summary).toMatch(/rolled back/i);
    // The unit's journal, in the log, says why.
    expect(deploy.log).toMatch(/UNIQUE constraint failed|IntegrityError/);
    expect((await api('/version')).version).toBe('2');
    expect(await api('/health')).toEqual({ status: 'ok' });
    expect(await noteCount()).toBe(expected.notes);
    expect(await sqlite("select count(*) from sqlite_master where name = 'notes_author'")).toBe('0\n');
  });

  it('rollback.yml switches back to the release before, by hand, through the health gate', async () => {
    const rollback = await run('rollback.yml', { name: 'workflow_dispatch', inputs: { release: 'previous' } });
    const deploy = rollback.action('action-deploy');
    expect(rollback.result, rollback.log).toBe('success');
    // A rollback asked for is a deploy of the kept release: status deployed, that release's id.
    expect(deploy.outputs.status).toBe('deployed');
    expect(deploy.outputs['release-id']).toBe(releases[0]);
    expect((await api('/version')).version).toBe('1');
    expect(await api('/health')).toEqual({ status: 'ok' });
    expect(await noteCount()).toBe(expected.notes);
  });

  it('the nightly backup copies the live database while the service writes to it; the copy is whole', async () => {
    // A bounded writer on the VM: one note per request through the service, until told to stop.
    const writer = host.exec([
      'sh',
      '-c',
      'i=0; while [ $i -lt 3000 ] && [ ! -e /tmp/stop-writing ]; do curl -sf -o /dev/null --data "note $i" http://127.0.0.1:8000/notes || exit 1; i=$((i+1)); done; echo $i',
    ]);
    // Marked handled here; awaited (and thrown) in finally.
    writer.catch(() => undefined);
    try {
      const deadline = Date.now() + 30_000;
      while ((await noteCount()) < expected.notes + 50) {
        if (Date.now() > deadline) throw new Error('the writer stored fewer than 50 notes in 30 s');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const before = await noteCount();
      const backup = await run('backup.yml', { name: 'schedule' });
      const after = await noteCount();
      const step = backup.action('action-backup');
      expect(backup.result, backup.log).toBe('success');
      expect(step.outputs.verified).toBe('true');
      // The service wrote all along the backup.
      expect(after).toBeGreaterThan(before);

      const id = step.outputs['backup-id']!;
      const file = (await host.exec(['sh', '-c', `ls /srv/notes/backups/notes-db/${id}.*.gz`])).trim();
      const copy = await host.exec([
        'sh',
        '-c',
        `gzip -dc ${file} > /tmp/notes-copy.db && sqlite3 /tmp/notes-copy.db 'pragma integrity_check' 'select count(*) from notes'; rm -f /tmp/notes-copy.db`,
      ]);
      const [integrity, rows] = copy.trim().split('\n');
      expect(integrity).toBe('ok');
      // One consistent moment between the first and the last write the backup could have seen.
      expect(Number(rows)).toBeGreaterThanOrEqual(before);
      expect(Number(rows)).toBeLessThanOrEqual(after);
    } finally {
      await host.exec(['touch', '/tmp/stop-writing']);
      const written = Number((await writer).trim());
      expect(written).toBeGreaterThan(50);
    }
  });
});

describe('example python-systemd-sqlite: the image variant for linux/arm64', () => {
  // The runner's engine here: Docker 28.5 with the containerd image store (what a GitHub runner's
  // buildx needs for two platforms), python:3.11-slim for both platforms from a Docker Hub mirror.
  let builder: ModernHost;
  let registry: Registry;
  let mirror: Registry;
  let qemu: { stop(): Promise<void> } | undefined;

  beforeAll(async () => {
    [registry, mirror] = await Promise.all([startRegistry(), startHubMirror({ python: true })]);
    builder = await startModernHost('skiff-ex-notes-builder', { imageStore: 'containerd', registries: [registry.address], hubMirror: mirror.address });
  }, 600_000);

  afterAll(async () => {
    await builder?.stop();
    await qemu?.stop();
    await Promise.all([registry?.stop(), mirror?.stop()]);
  });

  it('image.yml builds amd64 and arm64 (its RUN under QEMU) into one index; the arm64 image runs the service', async () => {
    const image = await runExampleWorkflow(
      {
        repository: repo.path,
        vars: {},
        secrets: {},
        registry,
        env: { DOCKER_HOST: `unix://${builder.socket}` },
        actions: {
          // What docker/setup-qemu-action does on a runner: QEMU registered in binfmt_misc.
          'docker/setup-qemu-action': async () => {
            qemu = await enableAarch64();
            return { outcome: 'success', outputs: { platforms: 'linux/amd64,linux/arm64' } };
          },
        },
      },
      'image.yml',
      { name: 'workflow_dispatch' },
    );
    runs.push(image);
    const build = image.action('action-build-push');
    expect(image.result, image.log).toBe('success');
    expect(build.outputs.digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const index = await fetch(`http://${registry.address}/v2/acme/notes/manifests/${build.outputs.digest!}`, {
      headers: { accept: MANIFEST_ACCEPT, authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}` },
    });
    const platforms = ((await index.json()) as { manifests: { platform: { os: string; architecture: string } }[] }).manifests
      .map((entry) => `${entry.platform.os}/${entry.platform.architecture}`)
      .filter((platform) => platform !== 'unknown/unknown');
    expect(platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);

    const ref = build.outputs['image-ref']!;
    expect(
      (
        await builder.docker(['run', '--rm', '--platform', 'linux/arm64', ref, 'python', '-c', "print(open('/app/built-on').read())"], { timeoutMs: 120_000 })
      ).trim(),
    ).toBe('aarch64');
    await builder.docker(['run', '-d', '--name', 'notes-arm64', '--platform', 'linux/arm64', ref]);
    const health = [
      'exec',
      'notes-arm64',
      'python',
      '-c',
      "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/health').read().decode())",
    ];
    let answer = '';
    for (let tries = 0; tries < 60 && !answer.includes('ok'); tries++) {
      answer = await builder.docker(health, { timeoutMs: 30_000 }).catch(() => '');
      if (!answer.includes('ok')) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(JSON.parse(answer)).toEqual({ status: 'ok' });
    expect((await builder.docker(['exec', 'notes-arm64', 'python', '-c', 'import platform; print(platform.machine())'])).trim()).toBe('aarch64');
  });
});
