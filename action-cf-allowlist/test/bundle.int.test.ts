import { readFile, rm, rmdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetnsHost, runBundle, startSshd, type NetnsHost, type SshdServer } from '@skiff/testbed';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare } from './fixtures';

const NS = 'skiffcf2';
// Its own table (and so its own guard directory under /var/lib/skiff-cf on this shared filesystem).
const TABLE = 'skiffcf_bundle';

let host: NetnsHost;
let sshd: SshdServer;
let api: FakeCloudflare;

/** The committed bundle, run the runner's way (Node 24, INPUT_* variables, file commands), against a namespace host. */
const allowlist = (inputs: Record<string, string>) => runBundle('action-cf-allowlist', { inputs });

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
    const run = await allowlist({ ...inputs(), 'dry-run': 'true' });
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
    const run = await allowlist(inputs());
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

    const again = await allowlist(inputs());
    expect(again.code).toBe(0);
    expect(again.outputs.changed).toBe('false');
    expect(JSON.parse(again.outputs.hosts!)[0].status).toBe('unchanged');
  });

  it('a bad answer fails the step with the reason and sets no outputs', async () => {
    api.serve(cfBody({ ipv4: CF_IPV4, ipv6: [], etag: 'x' }));
    const run = await allowlist(inputs());
    expect(run.code).toBe(1);
    expect(run.errors).toEqual(["Cloudflare's IP list was refused, so no host was touched: the answer lists 0 IPv6 ranges, fewer than min-ipv6 (4)"]);
    expect(run.outputs).toEqual({});
  });
});
