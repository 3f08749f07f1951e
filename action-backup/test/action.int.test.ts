import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, startSshd, tempDir, sh, type Postgres, type SshdServer } from '@skiff/testbed';

const root = resolve(import.meta.dirname, '../..');
const NODE24 = join(root, 'node_modules/.bin/node');

let sshd: SshdServer;
let pg: Postgres;
let dest: { path: string; remove: () => Promise<void> };
let hc: Server;
let hcPort = 0;
const pings: string[] = [];

async function runBundle(inputs: Record<string, string>): Promise<{ code: number | null; stdout: string; outputs: string; summary: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'skiffbk-bundle-'));
  try {
    const files = { GITHUB_OUTPUT: join(dir, 'output'), GITHUB_STEP_SUMMARY: join(dir, 'summary'), GITHUB_STATE: join(dir, 'state') };
    await Promise.all(Object.values(files).map((path) => writeFile(path, '')));
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...files };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    const child = spawn(NODE24, [join(root, 'action-backup/dist/index.js')], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const code = await new Promise<number | null>((done) => child.on('close', done)).finally(() => clearTimeout(timer));
    return { code, stdout, outputs: await readFile(files.GITHUB_OUTPUT, 'utf8'), summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  [sshd, pg, dest] = await Promise.all([startSshd(), startPostgres(), tempDir('skiffbk-action')]);
  await sh('psql', ['-h', pg.dir, '-p', String(pg.port), '-U', 'postgres', '-d', pg.database, '-c', `create table t (id int); insert into t select generate_series(1, 3000); alter table t owner to ${pg.user}`]);
  hc = createServer((req, res) => {
    pings.push(`${req.method} ${req.url}`);
    res.end('OK');
  });
  await new Promise<void>((r) => hc.listen(0, '127.0.0.1', () => r()));
  hcPort = (hc.address() as { port: number }).port;
});

afterAll(async () => {
  hc?.close();
  await Promise.all([sshd?.stop(), pg?.stop(), dest?.remove()]);
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
    const run = await runBundle({ ...base(), sources, 'keep-daily': '7' });
    expect(run.code, run.stdout).toBe(0);
    expect(run.outputs).toMatch(/backup-id<<.*\napp-\d{8}T\d{6}Z\n/);
    expect(run.outputs).toMatch(/verified<<.*\ntrue\n/);
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
    const run = await runBundle({ ...base(), sources });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/1 of 1 backups failed: broken/);
    expect(pings).toEqual(['POST /ping/abc/start', 'POST /ping/abc/fail']);
    expect(await readdir(join(dest.path, 'broken')).catch(() => [])).toEqual([]);
  });

  it('bad inputs are all reported before connecting', async () => {
    const run = await runBundle({ ...base(), sources: '- type: nosql', destination: 's3', 'min-size': 'big' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/"type" must be one of/);
    expect(run.stdout).toMatch(/s3-bucket/);
    expect(run.stdout).toMatch(/min-size/);
  });
});
