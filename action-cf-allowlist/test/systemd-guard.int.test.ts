import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshdConnectOptions, startSystemdHost, type SystemdHost } from '@skiff/testbed';
import { parseCidr, type Cidr } from '../src/cidr';
import { STATE_DIR, unitName } from '../src/guard';
import type { AllowlistInputs } from '../src/inputs';
import { allowlist } from '../src/main';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare, allowlistInputs, sshWorks as loginWorks } from './fixtures';

// The guard's systemd path (`systemd-run --on-active` timer) on a host where systemd is PID 1:
// a container of skiff-testbed/systemd:bookworm, reached like a VPS over a published 127.0.0.1 port.
const TABLE = 'skiff_cf';
const UNIT = unitName(TABLE);
const GUARD_DIR = `${STATE_DIR}/${TABLE}`; // the default: this host has its own filesystem
const cidr = (text: string) => parseCidr(text) as Cidr;

let host: SystemdHost;
let api: FakeCloudflare;
const logs: string[] = [];

function inputs(overrides: Partial<AllowlistInputs> = {}): AllowlistInputs {
  return allowlistInputs({ targets: [sshdConnectOptions(host)], sourceUrl: api.url, table: TABLE }, overrides);
}

const liveTable = () => host.exec(['nft', 'list', 'table', 'inet', TABLE]).catch((e: Error) => `absent: ${e.message}`);
const guardFiles = async () => (await host.exec(['ls', '-1', GUARD_DIR])).split('\n').filter(Boolean);
/** Every unit systemd still knows under the revert's name (a transient unit is gone once stopped and collected). */
const revertUnits = async () => (await host.exec(['systemctl', 'list-units', '--all', '--plain', '--no-legend', `${UNIT}.*`])).trim();
/**
 * What systemd logged about the revert's units: the transient timer is created ("Started X.timer"),
 * then either stopped by the confirmation ("Stopped X.timer") or fires ("Started X.service").
 */
async function revertJournal(): Promise<{ armed: number; cancelled: number; fired: number }> {
  const lines = (await host.exec(['journalctl', '--no-pager', '-o', 'cat', '-u', `${UNIT}.timer`, '-u', `${UNIT}.service`]).catch(() => '')).split('\n');
  const count = (prefix: string) => lines.filter((l) => l.startsWith(prefix)).length;
  return { armed: count(`Started ${UNIT}.timer`), cancelled: count(`Stopped ${UNIT}.timer`), fired: count(`Started ${UNIT}.service`) };
}

const sshWorks = () => loginWorks({ ...sshdConnectOptions(host), connectTimeoutSeconds: 5 });

const run = (overrides: Partial<AllowlistInputs>) => allowlist(inputs(overrides), (m) => logs.push(m));

beforeAll(async () => {
  host = await startSystemdHost({ name: 'cfguard' });
  api = await startFakeCloudflare(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6, etag: 'etag-sd' }));
});

afterAll(async () => {
  await api?.close();
  await host?.stop();
});

describe('lockout guard on a host running systemd', () => {
  it('the host is a real systemd machine whose nftables the action can drive', async () => {
    expect(['running', 'degraded']).toContain(host.systemState);
    expect((await host.exec(['ps', '-o', 'comm=', '-p', '1'])).trim()).toBe('systemd');
    expect(await host.exec(['sh', '-c', 'test -d /run/systemd/system && command -v systemd-run'])).toContain('systemd-run');
    // NET_ADMIN: the container may change its own ruleset.
    await host.exec(['nft', 'add', 'table', 'inet', 'skiffsys_probe']);
    await host.exec(['nft', 'delete', 'table', 'inet', 'skiffsys_probe']);
    expect(await liveTable()).toMatch(/^absent: .*No such file/s);
    expect(await sshWorks()).toBe(true);
  });

  it('a good apply arms a systemd-run timer and the new login cancels it: no skiff unit is left', async () => {
    const before = await revertJournal();
    // The container sees this machine as the bridge gateway (docker-proxy dials from there), on port 22.
    const result = await run({ sshAllow: [cidr(`${host.runnerAddress}/32`)], confirmTimeoutSeconds: 6 });
    expect(result.failure).toBeUndefined();
    expect(result.hosts[0]).toMatchObject({ status: 'changed', changed: true });
    expect(await revertJournal()).toEqual({ ...before, armed: before.armed + 1, cancelled: before.cancelled + 1 });
    expect(await revertUnits()).toBe('');
    const files = await guardFiles();
    expect(files).toContain('confirmed');
    expect(files).not.toContain('armed');
    expect(files).not.toContain('sleeper.pid'); // the systemd path, not the sleeper
    const applied = await liveTable();
    expect(applied).toContain(host.runnerAddress);
    // Past confirm-timeout: nothing fired and the new table stays.
    await new Promise((r) => setTimeout(r, 7_000));
    expect((await revertJournal()).fired).toBe(before.fired);
    expect(await liveTable()).toBe(applied);
    expect(await guardFiles()).not.toContain('fired');
    expect(await sshWorks()).toBe(true);
  });

  it('an ssh-allow that excludes the runner is reverted by the systemd timer; the job fails and SSH works again', async () => {
    const before = await liveTable();
    const journalBefore = await revertJournal();
    const started = Date.now();
    const result = await run({ sshAllow: [cidr('192.0.2.0/24')], confirmTimeoutSeconds: 8 });
    const elapsed = (Date.now() - started) / 1000;
    expect(result.failure).toMatch(/new SSH connection failed .*lockout guard restored the previous rules after 8s/);
    expect(result.hosts[0]).toMatchObject({ status: 'failed', reverted: true });
    expect(elapsed).toBeLessThan(8 + 12);
    // The timer was armed, never cancelled, and its service ran exactly once, then was collected.
    expect(await revertJournal()).toEqual({ armed: journalBefore.armed + 1, cancelled: journalBefore.cancelled, fired: journalBefore.fired + 1 });
    expect(await revertUnits()).toBe('');
    const files = await guardFiles();
    expect(files).toContain('fired');
    expect(files).not.toContain('armed');
    expect(files).not.toContain('sleeper.pid');
    expect(await liveTable()).toBe(before);
    expect(await sshWorks()).toBe(true);
  });
});
