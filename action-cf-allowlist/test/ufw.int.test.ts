import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNetnsHost,
  tempDir,
  sshdConnectOptions,
  startNetnsWebServer,
  startSshd,
  type NetnsHost,
  type NetnsWebServer,
  type SshdServer,
} from '@skiff/testbed';
import { SshConnection } from '@skiff/ssh';
import { parseCidr, type Cidr } from '../src/cidr';
import type { AllowlistInputs } from '../src/inputs';
import { allowlist } from '../src/main';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare, allowlistInputs, answerFrom } from './fixtures';

/**
 * ufw keeps its rules in /etc/ufw, which every network namespace shares. `ip netns exec NS`
 * bind-mounts each entry of /etc/netns/NS/ over /etc in a private mount namespace, so the
 * namespace's sshd — and every ufw command the action runs through it — sees its own copy of
 * /etc/ufw. The machine's /etc/ufw is hashed before and after to prove it was never touched.
 */
const NS = 'skiffcfu';
const ETC = `/etc/netns/${NS}`;
const TAG = 'skiff_cf';

let host: NetnsHost;
let sshd: SshdServer;
let web: NetnsWebServer;
let api: FakeCloudflare;
let allowed: string;
let refused: string;
let testRange: string;
let machineUfw: string;
let state: { path: string; remove: () => Promise<void> };

const ufwHash = async () => {
  const files = ['user.rules', 'user6.rules', 'ufw.conf'];
  const hash = createHash('sha256');
  for (const file of files) hash.update(await readFile(`/etc/ufw/${file}`));
  return hash.digest('hex');
};
const ufw = (args: string[]) => host.exec(['ufw', ...args]);

function inputs(overrides: Partial<AllowlistInputs> = {}): AllowlistInputs {
  return allowlistInputs(
    { targets: [sshdConnectOptions(sshd)], sourceUrl: api.url, table: TAG },
    { backend: 'ufw', confirmTimeoutSeconds: 30, stateDirFor: () => state.path, ...overrides },
  );
}
const run = (overrides: Partial<AllowlistInputs> = {}) => allowlist(inputs(overrides), () => undefined);

const reaches = async (source: string) => (await answerFrom(source, web.url)).includes('skiff-web-ok');

beforeAll(async () => {
  machineUfw = await ufwHash();
  state = await tempDir('cf-state');
  await rm(ETC, { recursive: true, force: true });
  await mkdir(ETC, { recursive: true });
  await cp('/etc/ufw', `${ETC}/ufw`, { recursive: true });
  host = await createNetnsHost(NS);
  const prefix = host.nsAddress.split('.').slice(0, 3).join('.');
  testRange = `${prefix}.64/27`;
  allowed = `${prefix}.70`;
  refused = `${prefix}.150`;
  await host.addHostAddress(allowed);
  await host.addHostAddress(refused);
  sshd = await startSshd({ netns: NS, listenAddress: host.nsAddress, port: 22 });
  web = await startNetnsWebServer(NS, host.nsAddress, 80);
  // The admin's own set-up, before the action ever runs: ufw active (default deny incoming), SSH
  // allowed from the admin's network, the web allowed to everyone. A refusal then proves the
  // action's deny sits above that allow.
  await ufw(['allow', 'proto', 'tcp', 'from', host.subnet, 'to', 'any', 'port', '22']);
  await ufw(['allow', '80/tcp']);
  await ufw(['--force', 'enable']);
  api = await startFakeCloudflare(cfBody({ ipv4: [...CF_IPV4, testRange], ipv6: CF_IPV6, etag: 'etag-U' }));
});

afterAll(async () => {
  await web?.stop();
  await sshd?.stop();
  await api?.close();
  await host?.remove();
  await rm(ETC, { recursive: true, force: true });
  await rmdir('/etc/netns').catch(() => undefined); // only when no one else's namespace config is there
  await state?.remove();
});

describe('ufw backend on a real host', () => {
  it('runs against the namespace’s own /etc/ufw copy', async () => {
    expect(await ufw(['status'])).toMatch(/^Status: active/m);
    expect(await readFile('/etc/ufw/ufw.conf', 'utf8')).not.toBe(await readFile(`${ETC}/ufw/ufw.conf`, 'utf8'));
  });

  it('adds tagged rules: a Cloudflare source reaches port 80, another is refused, SSH keeps working', async () => {
    expect(await reaches(refused)).toBe(true);
    const result = await run();
    expect(result.failure).toBeUndefined();
    expect(result.changed).toBe(true);
    expect(result.added).toHaveLength(CF_IPV4.length + 1 + CF_IPV6.length);
    expect(await reaches(allowed)).toBe(true);
    expect(await reaches(refused)).toBe(false);
    const c = await SshConnection.connect({ ...sshdConnectOptions(sshd), attempts: 1 });
    expect((await c.run([['echo', 'ok']])).stdout.trim()).toBe('ok');
    await c.close();
    // The admin's own rules are still there: never a purge.
    expect(await ufw(['show', 'added'])).toContain(`ufw allow from ${host.subnet} to any port 22 proto tcp`);
    expect(await ufw(['show', 'added'])).toContain('ufw allow 80/tcp');
  });

  it('a second run changes nothing', async () => {
    const before = await ufw(['show', 'added']);
    const result = await run();
    expect(result).toMatchObject({ changed: false, added: [], removed: [] });
    expect(await ufw(['show', 'added'])).toBe(before);
  });

  it('a range removed upstream is deleted, and only that rule', async () => {
    api.serve(cfBody({ ipv4: [...CF_IPV4.slice(0, 14), testRange], ipv6: CF_IPV6 }));
    const result = await run();
    expect(result).toMatchObject({ changed: true, added: [], removed: ['131.0.72.0/22'] });
    const added = await ufw(['show', 'added']);
    expect(added).not.toContain('131.0.72.0/22');
    expect(added).toContain('173.245.48.0/20');
    expect(await reaches(allowed)).toBe(true);
    expect(await reaches(refused)).toBe(false);
  });

  it('a bad answer fails before any rule changes', async () => {
    api.serve(cfBody({ ipv4: [...CF_IPV4, 'not-a-cidr'], ipv6: CF_IPV6 }));
    const before = await ufw(['show', 'added']);
    await expect(run()).rejects.toThrow(/not-a-cidr/);
    expect(await ufw(['show', 'added'])).toBe(before);
  });

  it('refuses ssh-allow next to an admin rule that ufw would treat as the same match, before changing anything', async () => {
    api.serve(cfBody({ ipv4: [...CF_IPV4.slice(0, 14), testRange], ipv6: CF_IPV6 }));
    await ufw(['allow', '22/tcp']);
    try {
      const before = await ufw(['status', 'numbered']);
      const result = await run({ sshAllow: [parseCidr(testRange) as Cidr] });
      expect(result.failure).toMatch(/ufw already has rule \d+ \(allow 22\/tcp from anywhere\).*nothing was changed/);
      expect(await ufw(['status', 'numbered'])).toBe(before);
    } finally {
      await ufw(['delete', 'allow', '22/tcp']);
    }
  });

  it('an ssh-allow that excludes the runner is reverted by the guard (rule files restored, ufw reloaded), and the job fails', async () => {
    api.serve(cfBody({ ipv4: [...CF_IPV4.slice(0, 14), testRange], ipv6: CF_IPV6 }));
    const before = await ufw(['status', 'numbered']);
    const started = Date.now();
    const result = await run({ sshAllow: [parseCidr(testRange) as Cidr], confirmTimeoutSeconds: 10 });
    expect(result.failure).toMatch(/new SSH connection failed .*lockout guard restored the previous rules/);
    expect(result.hosts[0]).toMatchObject({ status: 'failed', reverted: true });
    expect((Date.now() - started) / 1000).toBeLessThan(10 + 12);
    expect(await ufw(['status', 'numbered'])).toBe(before);
    const c = await SshConnection.connect({ ...sshdConnectOptions(sshd), attempts: 1 });
    await c.close();
  });

  it("never touched the machine's own /etc/ufw", async () => {
    expect(await ufwHash()).toBe(machineUfw);
  });
});
