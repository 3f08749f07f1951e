import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNetnsHost,
  enableNetnsIpv6,
  sshdConnectOptions,
  startNetnsWebServer,
  startSshd,
  tempDir,
  type NetnsHost,
  type NetnsIpv6,
  type NetnsWebServer,
  type SshdServer,
} from '@skiff/testbed';
import { parseCidr, type Cidr } from '../src/cidr';
import type { AllowlistInputs } from '../src/inputs';
import { allowlist } from '../src/main';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare, allowlistInputs, answerFrom, sshWorks as loginWorks } from './fixtures';

// IPv6 traffic for real: the namespace pair gets a unique local /64 (fd00::/8, on this veth pair
// only), the web server listens on [::]:80, and one "Cloudflare" v6 range covers one source only.
// SSH runs over IPv6 too, so the ssh6 set decides whether the runner gets back in.
const NS = 'skiffcf6';
const TABLE = 'skiff_cf';
const cidr = (text: string) => parseCidr(text) as Cidr;

let host: NetnsHost;
let v6: NetnsIpv6;
let sshd: SshdServer;
let web: NetnsWebServer;
let api: FakeCloudflare;
let state: { path: string; remove: () => Promise<void> };
let testRange6: string;
let allowed6: string;
let refused6: string;
let url6: string;
let url4: string;

function inputs(overrides: Partial<AllowlistInputs> = {}): AllowlistInputs {
  return allowlistInputs({ targets: [sshdConnectOptions(sshd)], sourceUrl: api.url, table: TABLE }, { stateDirFor: () => state.path, ...overrides });
}
const run = (overrides: Partial<AllowlistInputs> = {}) => allowlist(inputs(overrides), () => undefined);

const reaches = async (source: string, url: string, family: '-4' | '-6') => (await answerFrom(source, url, family)).includes('skiff-web-ok');

const sshWorks = () => loginWorks({ ...sshdConnectOptions(sshd), connectTimeoutSeconds: 4 });

beforeAll(async () => {
  state = await tempDir('cf6-state');
  host = await createNetnsHost(NS);
  v6 = await enableNetnsIpv6(host);
  testRange6 = `${v6.prefix}::a00:0/104`; // PREFIX::a00:0 – PREFIX::aff:ffff
  allowed6 = `${v6.prefix}::a00:10`;
  refused6 = `${v6.prefix}::b00:10`;
  await v6.addHostAddress(allowed6);
  await v6.addHostAddress(refused6);
  sshd = await startSshd({ netns: NS, listenAddress: v6.nsAddress, port: 22 });
  web = await startNetnsWebServer(NS, '[::]', 80);
  url6 = `http://[${v6.nsAddress}]/`;
  url4 = `http://${host.nsAddress}/`;
  api = await startFakeCloudflare(cfBody({ ipv4: CF_IPV4, ipv6: [...CF_IPV6, testRange6], etag: 'etag-v6' }));
});

afterAll(async () => {
  await web?.stop();
  await sshd?.stop();
  await api?.close();
  await host?.remove();
  await state?.remove();
});

describe('IPv6 on a real host', () => {
  it('before any run, every source reaches [::]:80 over IPv6 and IPv4, and SSH runs over IPv6', async () => {
    expect(sshd.host).toBe(v6.nsAddress);
    expect(await reaches(allowed6, url6, '-6')).toBe(true);
    expect(await reaches(refused6, url6, '-6')).toBe(true);
    expect(await reaches(host.hostAddress, url4, '-4')).toBe(true);
    expect(await sshWorks()).toBe(true);
  });

  it('an allowed IPv6 source reaches port 80, another IPv6 source (and IPv4) is refused', async () => {
    const result = await run();
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(result.added).toContain(testRange6);
    expect(result.hosts[0]).toMatchObject({ status: 'changed', ipv4: 15, ipv6: 8 });
    expect(await host.exec(['nft', 'list', 'set', 'inet', TABLE, 'cf6'])).toContain(testRange6);
    expect(await reaches(allowed6, url6, '-6')).toBe(true);
    expect(await reaches(refused6, url6, '-6')).toBe(false);
    expect(await reaches(host.hostAddress, url4, '-4')).toBe(false);
    expect(await sshWorks()).toBe(true);
  });

  it('an IPv6 extra-cidr lets that source in too', async () => {
    const result = await run({ extra: [cidr(`${refused6}/128`)] });
    expect(result.failure).toBeUndefined();
    expect(result.added).toEqual([`${refused6}/128`]);
    expect(await reaches(refused6, url6, '-6')).toBe(true);
    expect(await reaches(allowed6, url6, '-6')).toBe(true);
  });

  it('an IPv6 ssh-allow covering the runner is applied and confirmed over a new IPv6 login', async () => {
    const result = await run({ sshAllow: [cidr(`${v6.hostAddress}/128`)] });
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(await host.exec(['nft', 'list', 'set', 'inet', TABLE, 'ssh6'])).toContain(v6.hostAddress);
    expect(await sshWorks()).toBe(true);
    expect(await reaches(refused6, url6, '-6')).toBe(false);
  });

  it('an IPv6 ssh-allow excluding the runner is reverted by the guard and the job fails', async () => {
    const before = await host.exec(['nft', 'list', 'table', 'inet', TABLE]);
    const result = await run({ sshAllow: [cidr(`${refused6}/128`)], confirmTimeoutSeconds: 6 });
    expect(result.failure).toMatch(/new SSH connection failed .*lockout guard restored the previous rules/);
    expect(result.hosts[0]).toMatchObject({ status: 'failed', reverted: true });
    expect(await host.exec(['nft', 'list', 'table', 'inet', TABLE])).toBe(before);
    expect(await sshWorks()).toBe(true);
  });
});
