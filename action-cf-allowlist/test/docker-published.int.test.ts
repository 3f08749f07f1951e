import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNetnsHost,
  ensureBaseImages,
  sh,
  sshdConnectOptions,
  startNetnsDocker,
  startNetnsWebServer,
  startSshd,
  tempDir,
  type NetnsDocker,
  type NetnsHost,
  type NetnsWebServer,
  type SshdServer,
} from '@skiff/testbed';
import type { AllowlistInputs } from '../src/inputs';
import { allowlist } from '../src/main';
import { PREROUTING_PRIORITY } from '../src/render';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare, allowlistInputs, answerFrom } from './fixtures';

// A real Docker engine (Debian's docker.io 20.10, iptables-nft) runs INSIDE the test host's network
// namespace and publishes 8080 → a busybox httpd container. The DNAT that bypasses input-hook
// filters is Docker's own rule in the namespace's `table ip nat`, not an imitation; the machine's
// root namespace and its own engine are never touched.
const NS = 'skiffcfd1';
const TABLE = 'skiff_cf';
const CONTAINER_BODY = 'skiff-container-ok';

let host: NetnsHost;
let engine: NetnsDocker;
let sshd: SshdServer;
let web: NetnsWebServer;
let api: FakeCloudflare;
let state: { path: string; remove: () => Promise<void> };
let allowed: string;
let refused: string;
let published: string; // http://NS_ADDRESS:8080/ — Docker's DNAT to the container
let dockerTablesBefore: string;

function inputs(overrides: Partial<AllowlistInputs> = {}): AllowlistInputs {
  return allowlistInputs(
    { targets: [sshdConnectOptions(sshd)], sourceUrl: api.url, table: TABLE },
    { ports: [80, 8080], stateDirFor: () => state.path, ...overrides },
  );
}
const run = (overrides: Partial<AllowlistInputs> = {}) => allowlist(inputs(overrides), () => undefined);

const reachesContainer = async (source: string) => (await answerFrom(source, published)).includes(CONTAINER_BODY);
const reachesHostWeb = async (source: string) => (await answerFrom(source, web.url)).includes('skiff-web-ok');

/** Docker's own tables in the namespace, counters removed (traffic changes them, rules must not). */
async function dockerTables(): Promise<string> {
  const tables = await Promise.all(['nat', 'filter'].map((t) => host.exec(['nft', 'list', 'table', 'ip', t])));
  return tables.join('\n').replace(/counter packets \d+ bytes \d+/g, 'counter');
}

interface NftChain {
  family: string;
  table: string;
  name: string;
  type?: string;
  hook?: string;
  prio?: number;
}
async function preroutingChains(): Promise<NftChain[]> {
  const json = JSON.parse(await host.exec(['nft', '-j', 'list', 'chains'])) as { nftables: Array<{ chain?: NftChain }> };
  return json.nftables.flatMap((e) => (e.chain && e.chain.hook === 'prerouting' ? [e.chain] : []));
}

beforeAll(async () => {
  const images = await ensureBaseImages();
  state = await tempDir('cfd-state');
  host = await createNetnsHost(NS);
  const prefix = host.nsAddress.split('.').slice(0, 3).join('.');
  allowed = `${prefix}.70`;
  refused = `${prefix}.150`;
  await host.addHostAddress(allowed);
  await host.addHostAddress(refused);
  sshd = await startSshd({ netns: NS, listenAddress: host.nsAddress, port: 22 });
  web = await startNetnsWebServer(NS, host.nsAddress, 80);
  engine = await startNetnsDocker(host);
  await engine.loadImage(images.busybox);
  await engine.docker([
    'run',
    '-d',
    '--name',
    'skiffcfd-web',
    '-p',
    '8080:80',
    images.busybox,
    'sh',
    '-c',
    `mkdir -p /www && echo ${CONTAINER_BODY} > /www/index.html && exec httpd -f -p 80 -h /www`,
  ]);
  published = `http://${host.nsAddress}:8080/`;
  // Bounded: the container's httpd needs a moment after `docker run` returns.
  for (let i = 0; i < 40 && !(await reachesContainer(allowed)); i++) await new Promise((r) => setTimeout(r, 250));
  dockerTablesBefore = await dockerTables();
  api = await startFakeCloudflare(cfBody({ ipv4: [...CF_IPV4, `${prefix}.64/27`], ipv6: CF_IPV6, etag: 'etag-D' }));
}, 180_000);

afterAll(async () => {
  await engine?.stop();
  await web?.stop();
  await sshd?.stop();
  await api?.close();
  await host?.remove();
  await state?.remove();
}, 60_000);

describe('a port published by a real Docker engine', () => {
  it("is reached through Docker's own DNAT in the namespace, from any source before the action runs", async () => {
    const nat = await host.exec(['nft', 'list', 'table', 'ip', 'nat']);
    expect(nat).toMatch(new RegExp(`tcp dport 8080 .*dnat to ${engine.subnet.replace(/0\/24$/, '')}\\d+:80`));
    // With the userland proxy off, dockerd only holds the port open to reserve it; it serves nothing.
    // The answer below carries the container's page, so it came through the DNAT.
    const listeners = (await host.exec(['ss', '-Hltnp', 'sport', '= :8080'])).split('\n').filter(Boolean);
    for (const line of listeners) expect(line).toContain('"dockerd"');
    expect(await reachesContainer(allowed)).toBe(true);
    expect(await reachesContainer(refused)).toBe(true);
    // Docker's rules live in the namespace only: the machine's root namespace has no trace of them.
    const rootRuleset = await sh('nft', ['list', 'ruleset']);
    expect(rootRuleset).not.toContain(engine.bridge);
    expect(rootRuleset).not.toContain(engine.subnet.replace(/\.0\/24$/, '.'));
  });

  it('docker-published: true drops a non-Cloudflare source before the DNAT; a Cloudflare source gets through', async () => {
    const result = await run();
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(await reachesContainer(allowed)).toBe(true);
    expect(await reachesContainer(refused)).toBe(false);
    expect(await reachesHostWeb(refused)).toBe(false);
    // Ours runs first: a lower priority number than Docker's nat prerouting chain (dstnat, -100).
    const chains = await preroutingChains();
    const ours = chains.find((c) => c.family === 'inet' && c.table === TABLE);
    const dockers = chains.find((c) => c.family === 'ip' && c.table === 'nat' && c.type === 'nat');
    expect(ours).toMatchObject({ type: 'filter', prio: PREROUTING_PRIORITY });
    expect(dockers).toMatchObject({ name: 'PREROUTING', prio: -100 });
    expect(ours!.prio!).toBeLessThan(dockers!.prio!);
  });

  it("leaves Docker's own tables exactly as Docker wrote them", async () => {
    expect(await dockerTables()).toBe(dockerTablesBefore);
    expect(await engine.docker(['inspect', '-f', '{{.State.Running}}', 'skiffcfd-web'])).toBe('true\n');
  });

  it("docker-published: false filters the host's own port 80 but Docker's DNAT still lets the refused source in", async () => {
    const result = await run({ dockerPublished: false });
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(await host.exec(['nft', 'list', 'table', 'inet', TABLE])).not.toContain('prerouting');
    expect(await reachesHostWeb(refused)).toBe(false);
    expect(await reachesHostWeb(allowed)).toBe(true);
    expect(await reachesContainer(refused)).toBe(true);
  });

  it('turning docker-published back on closes the published port again', async () => {
    const result = await run();
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(await reachesContainer(refused)).toBe(false);
    expect(await reachesContainer(allowed)).toBe(true);
    expect(await dockerTables()).toBe(dockerTablesBefore);
  });
});
