import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetnsHost, startSshd, type NetnsHost, type SshdServer } from '@skiff/testbed';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare } from './fixtures';

/** The committed bundle, run the runner's way (Node 24, INPUT_* variables, file commands), against a namespace host. */
const root = resolve(import.meta.dirname, '../..');
const NODE24 = join(root, 'node_modules/.bin/node');
const NS = 'skiffcf2';
// Its own table (and so its own guard directory under /var/lib/skiff-cf on this shared filesystem).
const TABLE = 'skiffcf_bundle';

let host: NetnsHost;
let sshd: SshdServer;
let api: FakeCloudflare;

function parseFileCommands(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const end = lines.indexOf(match[2]!, i + 1);
    result[match[1]!] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return result;
}

async function runBundle(inputs: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-cf-bundle-'));
  try {
    const files = { GITHUB_OUTPUT: join(dir, 'output'), GITHUB_STEP_SUMMARY: join(dir, 'summary'), GITHUB_STATE: join(dir, 'state') };
    await Promise.all(Object.values(files).map((path) => writeFile(path, '')));
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...files };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
    const child = spawn(NODE24, [join(root, 'action-cf-allowlist/dist/index.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    return {
      code,
      stdout,
      outputs: parseFileCommands(await readFile(files.GITHUB_OUTPUT, 'utf8')),
      summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
      errors: stdout.split('\n').filter((line) => line.startsWith('::error::')),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const inputs = () => ({
  host: `${sshd.host}`,
  username: 'root',
  key: sshd.privateKey,
  fingerprint: sshd.hostFingerprint,
  'source-url': api.url,
  table: TABLE,
  'confirm-timeout': '20s',
});

beforeAll(async () => {
  host = await createNetnsHost(NS);
  sshd = await startSshd({ netns: NS, listenAddress: host.nsAddress, port: 22 });
  api = await startFakeCloudflare(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6, etag: 'etag-bundle' }));
});

afterAll(async () => {
  await sshd?.stop();
  await api?.close();
  await host?.remove();
  await rm(`/var/lib/skiff-cf/${TABLE}`, { recursive: true, force: true });
  // Only if nothing else lives there (a real guard directory of this machine would stay).
  await rmdir('/var/lib/skiff-cf').catch(() => undefined);
});

describe('action-cf-allowlist bundle on Node 24', () => {
  it('with dry-run, fetches and checks the list and shows the plan without connecting', async () => {
    const logBefore = (await readFile(sshd.logPath, 'utf8')).length;
    const run = await runBundle({ ...inputs(), 'dry-run': 'true' });
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.etag).toBe('etag-bundle');
    expect(run.outputs.plan).toContain('### Plan (dry run: nothing was run)');
    expect(run.outputs.plan).toContain(`nft -c -f /var/lib/skiff-cf/${TABLE}/next.nft`);
    expect(run.outputs.plan).toContain('173.245.48.0/20');
    expect((await readFile(sshd.logPath, 'utf8')).slice(logBefore)).not.toMatch(/Accepted/);
    await expect(host.exec(['nft', 'list', 'table', 'inet', TABLE])).rejects.toThrow(/No such file/);
  });

  it('applies, sets every output and writes the summary; a second run changes nothing', async () => {
    const run = await runBundle(inputs());
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.changed).toBe('true');
    expect(JSON.parse(run.outputs.added!)).toHaveLength(22);
    expect(JSON.parse(run.outputs.removed!)).toEqual([]);
    expect(run.outputs.etag).toBe('etag-bundle');
    const hosts = JSON.parse(run.outputs.hosts!) as Array<Record<string, unknown>>;
    expect(hosts).toEqual([expect.objectContaining({ host: `root@${sshd.host}:22`, status: 'changed', changed: true, ipv4: 15, ipv6: 7 })]);
    expect(run.summary).toContain('### Cloudflare allowlist');
    expect(run.summary).toMatch(new RegExp(`\\| root@${sshd.host.replaceAll('.', '\\.')}:22 \\| changed \\| 15 \\| 7 \\| .*173\\.245\\.48\\.0/20`));
    expect(await host.exec(['nft', 'list', 'set', 'inet', TABLE, 'cf6'])).toContain('2400:cb00::/32');

    const again = await runBundle(inputs());
    expect(again.code).toBe(0);
    expect(again.outputs.changed).toBe('false');
    expect(JSON.parse(again.outputs.hosts!)[0].status).toBe('unchanged');
  });

  it('a bad answer fails the step with the reason and sets no outputs', async () => {
    api.serve(cfBody({ ipv4: CF_IPV4, ipv6: [], etag: 'x' }));
    const run = await runBundle(inputs());
    expect(run.code).toBe(1);
    expect(run.errors).toEqual(["::error::Cloudflare's IP list was refused, so no host was touched: the answer lists 0 IPv6 ranges, fewer than min-ipv6 (4)"]);
    expect(run.outputs).toEqual({});
  });
});
