import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNetnsHost,
  sh,
  tempDir,
  sshdConnectOptions,
  startNetnsWebServer,
  startSshd,
  type NetnsHost,
  type NetnsWebServer,
  type SshdServer,
} from '@skiff/testbed';
import { parseCidr, type Cidr } from '../src/cidr';
import type { AllowlistInputs } from '../src/inputs';
import { allowlist } from '../src/main';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare, allowlistInputs, answerFrom, sshWorks as loginWorks } from './fixtures';

const NS = 'skiffcf1';
const TABLE = 'skiff_cf';
const cidr = (text: string) => parseCidr(text) as Cidr;

let host: NetnsHost;
let sshd: SshdServer;
let web: NetnsWebServer;
let api: FakeCloudflare;
let prefix: string; // e.g. 10.213.77
let state: { path: string; remove: () => Promise<void> };
let testRange: string; // "Cloudflare" range covering the allowed source
let allowed: string;
let refused: string;

const logs: string[] = [];
function inputs(overrides: Partial<AllowlistInputs> = {}): AllowlistInputs {
  return allowlistInputs(
    { targets: [sshdConnectOptions(sshd)], sourceUrl: api.url, table: TABLE },
    { ports: [80, 8080], stateDirFor: () => state.path, ...overrides },
  );
}

const run = (overrides: Partial<AllowlistInputs> = {}) => allowlist(inputs(overrides), (m) => logs.push(m));

/** Exact live JSON (handles included): equal before and after means nothing was touched. */
const liveJson = () =>
  host.exec(['nft', '-j', 'list', 'table', 'inet', TABLE]).catch((e: Error) => `absent: ${e.message.includes('No such file') ? 'yes' : e.message}`);
const normalised = (json: string) => json.replace(/, "handle": \d+/g, '');

const reaches = async (source: string, url: string) => (await answerFrom(source, url)).includes('skiff-web-ok');

const sshWorks = () => loginWorks({ ...sshdConnectOptions(sshd), connectTimeoutSeconds: 4 });

/** Someone else's table (Docker's, fail2ban's, ...): the action must leave it exactly as it is. */
const NEIGHBOUR = 'table inet skiffcf_neighbour {\n  set keep { type ipv4_addr; elements = { 192.0.2.1 } }\n}\n';

beforeAll(async () => {
  // The namespace shares this machine's filesystem: keep the guard's files out of /var/lib.
  state = await tempDir('cf-state');
  host = await createNetnsHost(NS);
  prefix = host.nsAddress.split('.').slice(0, 3).join('.');
  testRange = `${prefix}.64/27`;
  allowed = `${prefix}.70`;
  refused = `${prefix}.150`;
  await host.addHostAddress(allowed);
  await host.addHostAddress(refused);
  sshd = await startSshd({ netns: NS, listenAddress: host.nsAddress, port: 22 });
  web = await startNetnsWebServer(NS, host.nsAddress, 80);
  await sh('ip', ['netns', 'exec', NS, 'nft', '-f', '-'], { input: NEIGHBOUR });
  api = await startFakeCloudflare(cfBody({ ipv4: [...CF_IPV4, testRange], ipv6: CF_IPV6, etag: 'etag-A' }));
});

afterAll(async () => {
  await web?.stop();
  await sshd?.stop();
  await api?.close();
  await host?.remove();
  await state?.remove();
});

describe('nftables backend on a real host', () => {
  it('before any run, both sources reach the web server', async () => {
    expect(await reaches(allowed, web.url)).toBe(true);
    expect(await reaches(refused, web.url)).toBe(true);
  });

  it('applies: a Cloudflare source reaches port 80, another is refused, SSH keeps working', async () => {
    const result = await run();
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(result.etag).toBe('etag-A');
    expect(result.added).toEqual(expect.arrayContaining(['173.245.48.0/20', '2400:cb00::/32', testRange]));
    expect(result.added).toHaveLength(CF_IPV4.length + 1 + CF_IPV6.length);
    expect(result.hosts[0]).toMatchObject({ status: 'changed', changed: true, ipv4: 16, ipv6: 7 });
    expect(await reaches(allowed, web.url)).toBe(true);
    expect(await reaches(refused, web.url)).toBe(false);
    expect(await sshWorks()).toBe(true);
    // The guard was confirmed, not left to fire.
    expect((await host.exec(['ls', `${state.path}/${TABLE}`])).split('\n')).toEqual(expect.arrayContaining(['confirmed']));
  });

  it('a second run changes nothing', async () => {
    const before = await liveJson();
    const result = await run();
    expect(result).toMatchObject({ changed: false, added: [], removed: [] });
    expect(result.hosts[0]!.status).toBe('unchanged');
    expect(await liveJson()).toBe(before);
  });

  it('never touches other tables', async () => {
    // Docker's own tables are checked against a real engine in docker-published.int.test.ts.
    expect(await host.exec(['nft', 'list', 'table', 'inet', 'skiffcf_neighbour'])).toContain('192.0.2.1');
  });

  it.each([
    [
      'success: false',
      () => cfBody({ ipv4: [...CF_IPV4, `${prefix}.64/27`], ipv6: CF_IPV6, success: false, errors: [{ code: 10000, message: 'Authentication error' }] }),
      /success: false/,
    ],
    ['an empty list', () => cfBody({ ipv4: [], ipv6: [] }), /0 IPv4 ranges, fewer than min-ipv4/],
    ['a garbage CIDR', () => cfBody({ ipv4: [...CF_IPV4.slice(1), '173.245.48.0/33'], ipv6: CF_IPV6 }), /"173\.245\.48\.0\/33": not a valid/],
    ['not JSON', () => '<html>502 Bad Gateway</html>', /did not answer JSON/],
  ])('%s fails with the live rules untouched', async (_name, body, message) => {
    api.serve(body());
    const before = await liveJson();
    await expect(run()).rejects.toThrow(message);
    expect(await liveJson()).toBe(before);
  });

  it('a 50% shrink fails with the live rules untouched', async () => {
    api.serve(cfBody({ ipv4: [...CF_IPV4.slice(0, 8), testRange], ipv6: CF_IPV6 }));
    const before = await liveJson();
    const result = await run({ minIpv4: 1 });
    expect(result.failure).toMatch(/remove 7 of the 16 IPv4 Cloudflare ranges .*max-shrink-percent 25/);
    expect(result.changed).toBe(false);
    expect(await liveJson()).toBe(before);
  });

  it('a range removed upstream is removed on the host', async () => {
    const gone = CF_IPV4[14]!;
    api.serve(cfBody({ ipv4: [...CF_IPV4.slice(0, 14), testRange], ipv6: CF_IPV6, etag: 'etag-B' }));
    const result = await run();
    expect(result).toMatchObject({ changed: true, added: [], removed: [gone], etag: 'etag-B' });
    const live = await liveJson();
    expect(live).not.toContain('"131.0.72.0"');
    expect(live).toContain('"173.245.48.0"');
    expect(await reaches(allowed, web.url)).toBe(true);
  });

  it('an ssh-allow that excludes the runner is reverted by the guard within confirm-timeout, and the job fails', async () => {
    const before = normalised(await liveJson());
    const started = Date.now();
    const result = await run({ sshAllow: [cidr(testRange)], confirmTimeoutSeconds: 6 });
    const elapsed = (Date.now() - started) / 1000;
    expect(result.failure).toMatch(/new SSH connection failed .*lockout guard restored the previous rules/);
    expect(result.hosts[0]).toMatchObject({ status: 'failed', reverted: true });
    expect(elapsed).toBeLessThan(6 + 10);
    expect(normalised(await liveJson())).toBe(before);
    expect(await sshWorks()).toBe(true);
    expect((await host.exec(['ls', `${state.path}/${TABLE}`])).split('\n')).toEqual(expect.arrayContaining(['fired']));
  });

  it('an ssh-allow that includes the runner is applied and confirmed', async () => {
    const result = await run({ sshAllow: [cidr(`${prefix}.0/30`)] });
    expect(result.failure).toBeUndefined();
    expect(result.added).toEqual([`${prefix}.0/30`]);
    expect(await sshWorks()).toBe(true);
    expect(await host.exec(['nft', 'list', 'set', 'inet', TABLE, 'ssh4'])).toContain(`${prefix}.0/30`);
  });

  it('without docker-published, the table has no prerouting chain and the input hook still filters', async () => {
    const result = await run({ dockerPublished: false });
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(await host.exec(['nft', 'list', 'table', 'inet', TABLE])).not.toContain('prerouting');
    expect(await reaches(refused, web.url)).toBe(false);
    expect(await reaches(allowed, web.url)).toBe(true);
  });
});
