import { createServer, type Server } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBundle, startArtifactService, startPostgres, startSshd, tempDir, sh, type Postgres, type SshdServer } from '@skiff/testbed';

let sshd: SshdServer;
let pg: Postgres;
let dest: { path: string; remove: () => Promise<void> };
let hc: Server;
let hcPort = 0;
const pings: string[] = [];

/** The committed bundle, run the runner's way (Node 24, INPUT_* variables, file commands). */
const backup = (inputs: Record<string, string>, env: Record<string, string> = {}) => runBundle('action-backup', { inputs, env, timeoutMs: 120_000 });

beforeAll(async () => {
  [sshd, pg, dest] = await Promise.all([startSshd(), startPostgres(), tempDir('skiffbk-action')]);
  await sh('psql', [
    '-h',
    pg.dir,
    '-p',
    String(pg.port),
    '-U',
    'postgres',
    '-d',
    pg.database,
    '-c',
    `create table t (id int); insert into t select generate_series(1, 3000); alter table t owner to ${pg.user}`,
  ]);
  hc = createServer((req, res) => {
    pings.push(`${req.method} ${req.url}`);
    res.end('OK');
  });
  await new Promise<void>((r) => hc.listen(0, '127.0.0.1', () => r()));
  hcPort = (hc.address() as { port: number }).port;
});

afterAll(async () => {
  hc?.close();
  await Promise.all([sshd?.stop(), pg?.stop(), dest?.remove(), sh('rm', ['-rf', `${dest?.path}-site`]).catch(() => '')]);
});

const base = () => ({
  host: '127.0.0.1',
  port: String(sshd.port),
  username: sshd.username,
  key: sshd.privateKey,
  fingerprint: sshd.hostFingerprint,
  destination: 'host',
  'destination-path': dest.path,
  'healthcheck-url': `http://127.0.0.1:${hcPort}/ping/abc`,
});

describe('action-backup bundle on Node 24', () => {
  it('backs up, sets outputs, writes the summary table, pings start then success, never prints the password', async () => {
    const sources = `- type: postgres\n  name: app\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: ${pg.user}\n  database: ${pg.database}\n  password: "${pg.password}"\n`;
    const run = await backup({ ...base(), sources, 'keep-daily': '7' });
    expect(run.code, run.stdout).toBe(0);
    expect(run.outputs['backup-id']).toMatch(/^app-\d{8}T\d{6}Z$/);
    expect(run.outputs.verified).toBe('true');
    expect(run.summary).toContain('| Source | Backup | Size | Duration | Verified | Kept | Pruned |');
    expect(pings).toEqual(['POST /ping/abc/start', 'POST /ping/abc']);
    // The runner masks what ::add-mask:: registers; the password may appear nowhere else.
    const unmasked = run.stdout.split('\n').filter((line) => line.includes(pg.password) && !line.startsWith('::add-mask::'));
    expect(unmasked).toEqual([]);
    expect((await readdir(join(dest.path, 'app'))).filter((n) => n.endsWith('.manifest.json')).length).toBe(1);
  });

  it('a failing backup fails the job, pings /fail and leaves no manifest', async () => {
    pings.length = 0;
    const sources = `- type: postgres\n  name: broken\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: ${pg.user}\n  database: nope\n  password: "${pg.password}"\n`;
    const run = await backup({ ...base(), sources });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/1 of 1 backups failed: broken/);
    expect(pings).toEqual(['POST /ping/abc/start', 'POST /ping/abc/fail']);
    expect(await readdir(join(dest.path, 'broken')).catch(() => [])).toEqual([]);
  });

  it('mode drill restores every source of the list in one run, one summary row each; one failing fails the job, the others still drilled', async () => {
    // Outside destination-path, whose <source name>/ folders hold the backups themselves.
    const files = `${dest.path}-site`;
    await sh('sh', ['-c', `mkdir -p ${files}/img && head -c 300000 /dev/urandom > ${files}/img/logo.bin && echo hi > ${files}/index.html`]);
    const sources = `- type: postgres\n  name: drilled\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: ${pg.user}\n  database: ${pg.database}\n  password: "${pg.password}"\n- type: files\n  name: site\n  paths: [${files}]\n`;
    expect((await backup({ ...base(), sources })).code).toBe(0);

    const drill = await backup({ ...base(), sources, mode: 'drill' });
    expect(drill.code, drill.stdout).toBe(0);
    expect(drill.outputs.verified).toBe('true');
    expect(drill.outputs['backup-id']).toMatch(/^drilled-\d{8}T\d{6}Z,site-\d{8}T\d{6}Z$/);
    expect(drill.summary).toContain('| Source | Backup | Result | Duration | Restored copy held |');
    expect(drill.summary).toMatch(/\| drilled \| drilled-\d{8}T\d{6}Z \| passed \| [\d.]+s \| public\.t\\\|3000 \|/);
    expect(drill.summary).toMatch(/\| site \| site-\d{8}T\d{6}Z \| passed \| [\d.]+s \| files\\\|2<br>bytes\\\|\d+ \|/);

    const withMissing = `${sources}- type: files\n  name: never-backed-up\n  paths: [${files}]\n`;
    const partly = await backup({ ...base(), sources: withMissing, mode: 'drill' });
    expect(partly.code).toBe(1);
    expect(partly.outputs.verified).toBe('false');
    expect(partly.stdout).toMatch(/1 of 3 drills failed: never-backed-up/);
    expect(partly.summary).toMatch(/\| drilled \| drilled-\d{8}T\d{6}Z \| passed/);
    expect(partly.summary).toMatch(/\| never-backed-up \| — \| FAILED \| [\d.]+s \| no verified backup latest of never-backed-up/);
  });

  it('bad inputs are all reported before connecting', async () => {
    const run = await backup({ ...base(), sources: '- type: nosql', destination: 's3', 'min-size': 'big' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/"type" must be one of/);
    expect(run.stdout).toMatch(/s3-bucket/);
    expect(run.stdout).toMatch(/min-size/);
    const sources = `- type: postgres\n  name: app\n  host: 127.0.0.1\n  database: app\n`;
    const injected = await backup({
      ...base(),
      sources,
      mode: 'restore',
      'restore-target': "x'; drop database app; --",
      destination: 'artifact',
      'artifact-name': 'a/b',
    });
    expect(injected.code).toBe(1);
    expect(injected.stdout).toMatch(/restore-target.*a database name/);
    expect(injected.stdout).toMatch(/artifact-name/);
  });

  it('dry-run with globals: the plan shows pg_dumpall --globals-only before the dump, without connecting', async () => {
    const sources = `- type: postgres\n  name: app\n  service: db\n  database: app\n  user: postgres\n  globals: true\n`;
    const run = await backup({ ...base(), port: '1', sources, 'dry-run': 'true' });
    expect(run.code, run.stdout).toBe(0);
    const plan = run.outputs.plan!;
    expect(plan).toContain('docker compose exec -T db pg_dumpall -U postgres --no-password --globals-only');
    expect(plan.indexOf('pg_dumpall')).toBeLessThan(plan.indexOf('pg_dump -U'));
  });

  it('destination artifact: warns (log and summary) that an unencrypted artifact is readable by repo readers; list and restore in the same run', async () => {
    const service = await startArtifactService();
    try {
      const sources = `- type: postgres\n  name: app\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: ${pg.user}\n  database: ${pg.database}\n  password: "${pg.password}"\n`;
      const inputs = { ...base(), sources, destination: 'artifact', 'artifact-name': 'db' };
      const run = await backup(inputs, service.env);
      expect(run.code, run.stdout).toBe(0);
      expect(run.stdout).toMatch(/::warning::destination artifact without encrypt-recipients: anyone with read access to this repository can download/);
      expect(run.summary).toMatch(/> \[!WARNING\]\n> destination artifact without encrypt-recipients/);
      expect(run.outputs.location).toMatch(/^artifact:db\.app-\d{8}T\d{6}Z\.dump#\d+$/);
      expect(
        service.artifacts
          .filter((a) => a.finalized)
          .map((a) => a.name)
          .sort(),
      ).toEqual([`db.${run.outputs['backup-id']}.dump`, `db.${run.outputs['backup-id']}.manifest.json`]);

      const listed = await backup({ ...inputs, mode: 'list' }, service.env);
      expect(listed.code, listed.stdout).toBe(0);
      expect(listed.summary).toContain(run.outputs['backup-id']);
      const restored = await backup({ ...inputs, mode: 'restore', 'restore-target': 'app_from_artifact' }, service.env);
      expect(restored.code, restored.stdout).toBe(0);
      const count = await sh('psql', ['-h', pg.dir, '-p', String(pg.port), '-U', 'postgres', '-d', 'app_from_artifact', '-tAc', 'select count(*) from t']);
      expect(count.trim()).toBe('3000');
    } finally {
      await service.stop();
    }
  });

  it('destination artifact across runs: run 1 backs up, run 2 (another run id) lists and restores it through the REST API; the github-token is masked and only sent to the API', async () => {
    const service = await startArtifactService();
    try {
      const sources = `- type: postgres\n  name: app\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: ${pg.user}\n  database: ${pg.database}\n  password: "${pg.password}"\n`;
      const inputs = { ...base(), sources, destination: 'artifact', 'artifact-name': 'nightly', 'github-token': service.githubToken };
      const made = await backup(inputs, service.env);
      expect(made.code, made.stdout).toBe(0);
      const dataArtifact = service.artifacts.find((a) => a.name === `nightly.${made.outputs['backup-id']}.dump`)!;
      expect(dataArtifact.workflowRunId).toBe(service.workflowRunId);

      const run2 = service.newRun();
      const listed = await backup({ ...inputs, mode: 'list' }, run2.env);
      expect(listed.code, listed.stdout).toBe(0);
      expect(listed.summary).toContain(made.outputs['backup-id']);
      const restored = await backup({ ...inputs, mode: 'restore', 'restore-target': 'app_from_run1' }, run2.env);
      expect(restored.code, restored.stdout).toBe(0);
      expect(restored.outputs['backup-id']).toBe(made.outputs['backup-id']);
      expect(restored.outputs.sha256).toBe(made.outputs.sha256);
      expect(service.requests).toContain(`REST GET /repos/Acme-Corp/Shop-App/actions/artifacts/${dataArtifact.id}/zip`);
      const count = await sh('psql', ['-h', pg.dir, '-p', String(pg.port), '-U', 'postgres', '-d', 'app_from_run1', '-tAc', 'select count(*) from t']);
      expect(count.trim()).toBe('3000');

      // Masked for the runner in every run, and nowhere in the log unmasked; sent only as the API's bearer.
      for (const run of [made, listed, restored]) {
        expect(run.stdout).toContain(`::add-mask::${service.githubToken}`);
        expect(run.stdout.split('\n').filter((line) => line.includes(service.githubToken) && !line.startsWith('::add-mask::'))).toEqual([]);
        expect(run.summary).not.toContain(service.githubToken);
      }
      expect(new Set(service.restAuthorizations)).toEqual(new Set([`Bearer ${service.githubToken}`]));
    } finally {
      await service.stop();
    }
  });
});
