import { createNetnsHost, sshdConnectOptions, startSshd, tempDir, type NetnsHost, type SshdServer } from '@skiff/testbed';
import type { SshConnectOptions } from '@skiff/ssh';
import { allowlist } from '../action-cf-allowlist/src/main';
import type { AllowlistInputs } from '../action-cf-allowlist/src/inputs';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare } from '../action-cf-allowlist/test/fixtures';
import type { Benchmark } from './harness';
import { sshArgs, timedOk } from './lib';

// Ten namespaces, one sshd each on its namespace address, port 22: ten separate "servers" with their own nftables.
const HOSTS = 10;

function inputs(targets: SshConnectOptions[], sourceUrl: string, parallel: boolean, stateDir: string): AllowlistInputs {
  return {
    targets,
    mode: { parallel, maxParallel: HOSTS },
    ports: [80, 443],
    extra: [],
    includeJdcloud: false,
    sourceUrl,
    table: 'skiff_cf',
    dockerPublished: true,
    backend: 'nftables',
    confirmTimeoutSeconds: 30,
    minIpv4: 10,
    minIpv6: 4,
    maxShrinkPercent: 25,
    allowShrink: false,
    dryRun: false,
    // Ten namespaces share this machine's filesystem; on real servers each has its own /var/lib/skiff-cf.
    stateDirFor: (target) => `${stateDir}/${target.host}`,
  };
}

/** A run that must change nothing: the whole ruleset of every host is compared before and after. */
async function unchangedRun(hosts: readonly NetnsHost[], run: () => ReturnType<typeof allowlist>): Promise<number> {
  const before = await Promise.all(hosts.map((h) => h.exec(['nft', '-j', 'list', 'ruleset'])));
  const start = performance.now();
  const result = await run();
  const ms = performance.now() - start;
  if (result.failure || result.changed || result.hosts.some((h) => h.status !== 'unchanged'))
    throw new Error(`expected an unchanged run, got ${JSON.stringify(result)}`);
  const after = await Promise.all(hosts.map((h) => h.exec(['nft', '-j', 'list', 'ruleset'])));
  if (after.some((text, i) => text !== before[i])) throw new Error('an unchanged run modified a ruleset');
  return ms;
}

export const cfAllowlist: Benchmark = {
  name: 'cf-allowlist',
  description: 'an unchanged allowlist run (fetch, validate, connect, read and compare the live table) on one host and on ten in parallel',
  async setup() {
    const hosts: NetnsHost[] = [];
    const servers: SshdServer[] = [];
    let api: FakeCloudflare | undefined;
    const state = await tempDir('cf-bench');
    const teardown = async () => {
      await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
      for (const h of hosts) await h.remove().catch(() => undefined);
      await api?.close();
      await state.remove();
    };
    try {
      for (let i = 0; i < HOSTS; i++) {
        const host = await createNetnsHost(`skiffcfb${i}`);
        hosts.push(host);
        servers.push(await startSshd({ netns: host.name, listenAddress: host.nsAddress, port: 22 }));
      }
      api = await startFakeCloudflare(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6 }));
      const targets = servers.map((s) => sshdConnectOptions(s));
      // The first run applies the table everywhere; the measured runs find it up to date.
      const first = await allowlist(inputs(targets, api.url, true, state.path), () => undefined);
      if (first.failure || !first.changed) throw new Error(`initial apply failed: ${first.failure ?? 'nothing changed'}`);
      const url = api.url;
      const one = () => unchangedRun(hosts.slice(0, 1), () => allowlist(inputs(targets.slice(0, 1), url, false, state.path), () => undefined));
      const floorArgs = await sshArgs(servers[0]!);
      return {
        teardown,
        cases: [
          {
            name: 'cf-allowlist unchanged (1 host)',
            what: 'allowlist(): fetch + validate the list, SSH connect, nft -j list table, compare; ruleset checked identical after',
            ours: one,
            floor: {
              label: 'ssh + nft -j list',
              what: 'OpenSSH: one fresh connection running nft -j list table inet skiff_cf (the least any script must do)',
              measure: () => timedOk('ssh', [...floorArgs, 'nft -j list table inet skiff_cf >/dev/null']),
            },
            target: { maxMs: 2000 },
          },
          {
            name: `cf-allowlist unchanged (${HOSTS} hosts, parallel)`,
            what: `allowlist() over ${HOSTS} namespaces with parallel: true; every ruleset checked identical after`,
            ours: () => unchangedRun(hosts, () => allowlist(inputs(targets, url, true, state.path), () => undefined)),
            floor: { label: 'one host', what: 'the same unchanged run on one host', measure: one },
            target: { maxRatio: 2 },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
