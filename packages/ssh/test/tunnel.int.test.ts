import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetnsHost, startSshd, waitFor, type NetnsHost, type SshdServer } from '@skiff/testbed';
import { HostKeyError, SshConnection, SshConnectionError } from '../src';
import { connectOptions } from './helpers';

// A "private network": the target sshd and a web server listen on the namespace's own
// loopback, which the runner cannot reach; only the bastion on the namespace's veth address can.
let ns: NetnsHost;
let bastion: SshdServer;
let target: SshdServer;
let web: ChildProcess;
let webRoot: string;
const WEB_PORT = 8080;

beforeAll(async () => {
  ns = await createNetnsHost('skiff-ssh-tunnel');
  [bastion, target] = await Promise.all([
    startSshd({ netns: ns.name, listenAddress: ns.nsAddress, port: 22 }),
    startSshd({ netns: ns.name, listenAddress: '127.0.0.1', port: 2222 }),
  ]);
  webRoot = mkdtempSync(join(tmpdir(), 'skiff-web-'));
  writeFileSync(join(webRoot, 'health'), 'ok from the private loopback\n');
  web = spawn('ip', ['netns', 'exec', ns.name, 'python3', '-m', 'http.server', String(WEB_PORT), '--bind', '127.0.0.1', '--directory', webRoot], {
    stdio: 'ignore',
  });
  await waitFor('web server in the namespace', async () =>
    (await ns.exec(['python3', '-c', `import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:${WEB_PORT}/health').read().decode())`])).includes(
      'ok',
    ),
  );
});
afterAll(async () => {
  web?.kill();
  await Promise.all([bastion?.stop(), target?.stop()]);
  await ns?.remove();
  rmSync(webRoot, { recursive: true, force: true });
});

const bothKnown = () => ({ kind: 'known-hosts' as const, knownHosts: `${bastion.knownHostsLine}\n${target.knownHostsLine}\n` });
const viaBastion = (jumpKey: string | undefined) => ({
  ...connectOptions(target),
  hostKey: bothKnown(),
  jump: { host: ns.nsAddress, port: 22, username: 'root', ...(jumpKey !== undefined ? { privateKey: jumpKey } : {}) },
});

describe('jump host', () => {
  it('the target cannot be reached directly from the runner', async () => {
    const error = await SshConnection.connect({ ...connectOptions(target), hostKey: bothKnown() }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SshConnectionError);
  });

  it('reaches the target through the bastion with the bastion’s own key, verifying both host keys', async () => {
    const ssh = await SshConnection.connect(viaBastion(bastion.privateKey));
    const result = await ssh.run([['sh', '-c', 'echo "$SSH_CONNECTION"']]);
    // The target sees the connection arrive on its own loopback port 2222.
    expect(result.stdout.trim()).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 2222$/);
    expect(ssh.hostKeyFingerprint).toContain(target.hostFingerprint);
    await ssh.close();
  });

  it('uses the target’s credentials for the bastion when no jump key is given', async () => {
    appendFileSync(join(bastion.dir, 'authorized_keys'), readFileSync(`${target.privateKeyPath}.pub`));
    const ssh = await SshConnection.connect(viaBastion(undefined));
    expect((await ssh.run([['echo', 'via shared key']])).stdout).toBe('via shared key\n');
    await ssh.close();
  });

  it('refuses a bastion whose host key is not pinned', async () => {
    const options = { ...viaBastion(bastion.privateKey), hostKey: { kind: 'known-hosts' as const, knownHosts: `${target.knownHostsLine}\n` } };
    const error = await SshConnection.connect(options).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HostKeyError);
    expect((error as Error).message).toContain(bastion.hostFingerprint);
    expect((error as Error).message).toContain(ns.nsAddress);
  });
});

describe('local port forwarding', () => {
  it('reaches a service that only listens on the server’s loopback', async () => {
    const direct = await fetch(`http://${ns.nsAddress}:${WEB_PORT}/health`).then(
      () => 'reached',
      () => 'refused',
    );
    expect(direct).toBe('refused');
    const ssh = await SshConnection.connect({ ...connectOptions(bastion) });
    const forward = await ssh.forwardLocalPort('127.0.0.1', WEB_PORT);
    try {
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`http://127.0.0.1:${forward.port}/health`);
        expect(response.status).toBe(200);
        expect(await response.text()).toBe('ok from the private loopback\n');
      }
      const missing = await fetch(`http://127.0.0.1:${forward.port}/nope`);
      expect(missing.status).toBe(404);
    } finally {
      await forward.close();
      await ssh.close();
    }
  });
});
