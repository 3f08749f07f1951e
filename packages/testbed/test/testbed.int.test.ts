import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { writeFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  sh,
  tempDir,
  ensureDocker,
  ensureBaseImages,
  startRegistry,
  startPostgres,
  startRedis,
  createNetnsHost,
  startSshd,
  ensureLoginUser,
  type BaseImages,
  type Registry,
  type Postgres,
  type Redis,
  type NetnsHost,
  type SshdServer,
} from '../src';

/** stdout on success, or the error text: for commands whose refusal is the expected outcome. */
async function outcome(file: string, args: string[], input?: string): Promise<{ ok: boolean; text: string }> {
  try {
    return { ok: true, text: await sh(file, args, input === undefined ? {} : { input }) };
  } catch (error) {
    return { ok: false, text: (error as Error).message };
  }
}

function sshArgs(server: SshdServer, knownHostsFile: string, host: string, extra: string[] = []): string[] {
  return [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHostsFile}`,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'ConnectTimeout=5',
    '-i',
    server.privateKeyPath,
    '-p',
    String(server.port),
    ...extra,
    `root@${host}`,
  ];
}

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => console.error('cleanup failed:', e));
});

describe('docker engine', () => {
  it('answers, with compose v2 and buildx', async () => {
    const info = await ensureDocker();
    expect(info.serverVersion).toMatch(/^\d+\.\d+/);
    expect(info.composeVersion).toMatch(/^v?2\.\d+/);
    expect(info.buildxVersion).toMatch(/\d+\.\d+/);
    // A second call must find the running engine instead of starting another.
    expect((await ensureDocker()).serverVersion).toBe(info.serverVersion);
  });
});

describe('base images and registry', () => {
  let images: BaseImages;
  let registry: Registry;
  const tag = `skiff/testbed-probe:${randomBytes(4).toString('hex')}`;
  let ref: string;
  let configDir: string;
  let anonDir: string;

  beforeAll(async () => {
    images = await ensureBaseImages();
    registry = await startRegistry();
    cleanups.push(() => registry.stop());
    ref = `${registry.address}/${tag}`;
    const tmp = await tempDir('docker-cfg');
    cleanups.push(() => tmp.remove());
    configDir = join(tmp.path, 'auth');
    anonDir = join(tmp.path, 'anon');
    await mkdir(configDir);
    await mkdir(anonDir);
    cleanups.push(() => sh('docker', ['image', 'rm', '-f', ref]).catch(() => ''));
    const ctx = await tempDir('build-ctx');
    await writeFile(join(ctx.path, 'Dockerfile'), `FROM ${images.busybox}\nRUN echo built-by-skiff > /marker\nCMD ["cat", "/marker"]\n`);
    await sh('docker', ['--config', configDir, 'build', '-q', '-t', ref, ctx.path]);
    await ctx.remove();
  });

  it('busybox base image runs busybox applets', async () => {
    const out = await sh('docker', ['run', '--rm', images.busybox, 'busybox', 'echo', 'hello from skiff']);
    expect(out.trim()).toBe('hello from skiff');
    const links = await sh('docker', ['run', '--rm', images.busybox, 'sh', '-c', 'for a in sh httpd wget nc sleep cat; do readlink /bin/$a; done']);
    expect(links.trim().split('\n')).toEqual(Array(6).fill('busybox'));
    // httpd + wget over the container's own loopback: the applets compose files rely on really work.
    const served = await sh('docker', [
      'run',
      '--rm',
      images.busybox,
      'sh',
      '-c',
      'echo served-by-httpd > /var/www/index.html && httpd -p 127.0.0.1:8080 -h /var/www && wget -qO- http://127.0.0.1:8080/',
    ]);
    expect(served.trim()).toBe('served-by-httpd');
  });

  it('debian base image carries postgres, redis, nginx and curl', async () => {
    const out = await sh('docker', [
      'run',
      '--rm',
      images.debian,
      'sh',
      '-c',
      '/usr/lib/postgresql/15/bin/postgres --version && redis-server --version && nginx -v 2>&1 && curl --version | head -n1',
    ]);
    expect(out).toMatch(/postgres \(PostgreSQL\) 15\./);
    expect(out).toMatch(/Redis server v=7\./);
    expect(out).toMatch(/nginx version/);
    expect(out).toMatch(/^curl \d/m);
  });

  it('registry requires auth: anonymous push and wrong password are refused', async () => {
    const anonymous = await outcome('docker', ['--config', anonDir, 'push', ref]);
    expect(anonymous.ok).toBe(false);
    expect(anonymous.text).toMatch(/no basic auth credentials|unauthorized|authentication required/i);

    const wrong = await outcome('docker', ['--config', anonDir, 'login', '-u', registry.username, '--password-stdin', registry.address], 'not-the-password\n');
    expect(wrong.ok).toBe(false);
    expect(wrong.text).toMatch(/unauthorized|401/i);
  });

  it('an image built FROM the base is pushed with auth and pulled back', async () => {
    const login = await sh('docker', ['--config', configDir, 'login', '-u', registry.username, '--password-stdin', registry.address], {
      input: `${registry.password}\n`,
    });
    expect(login).toMatch(/Login Succeeded/);
    await sh('docker', ['--config', configDir, 'push', ref]);

    const tags = (await (
      await fetch(`http://${registry.address}/v2/skiff/testbed-probe/tags/list`, {
        headers: { authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}` },
      })
    ).json()) as { tags?: string[] };
    expect(tags.tags).toContain(tag.split(':')[1]);

    await sh('docker', ['image', 'rm', ref]);
    expect((await outcome('docker', ['image', 'inspect', ref])).ok).toBe(false);
    await sh('docker', ['--config', configDir, 'pull', '-q', ref]);
    expect((await sh('docker', ['run', '--rm', ref])).trim()).toBe('built-by-skiff');
  });
});

describe('postgres', () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
    cleanups.push(() => pg.stop());
  });

  it('answers a query over TCP with the password', async () => {
    const out = await sh('env', [
      `PGPASSWORD=${pg.password}`,
      'psql',
      '-h',
      pg.host,
      '-p',
      String(pg.port),
      '-U',
      pg.user,
      '-d',
      pg.database,
      '-tAc',
      'select 40 + 2, current_database(), current_user',
    ]);
    expect(out.trim()).toBe(`42|${pg.database}|${pg.user}`);
    const viaUrl = await sh('psql', [pg.url, '-qtAc', 'create table t (x int); insert into t values (7); select sum(x) from t']);
    expect(viaUrl.trim()).toBe('7');
  });

  it('refuses a wrong password', async () => {
    const wrong = await outcome('env', [
      'PGPASSWORD=wrong',
      'psql',
      '-h',
      pg.host,
      '-p',
      String(pg.port),
      '-U',
      pg.user,
      '-d',
      pg.database,
      '-w',
      '-tAc',
      'select 1',
    ]);
    expect(wrong.ok).toBe(false);
    expect(wrong.text).toMatch(/password authentication failed/);
  });

  it('stop() shuts it down and removes its files', async () => {
    const other = await startPostgres();
    await other.stop();
    const after = await outcome('pg_isready', ['-h', '127.0.0.1', '-p', String(other.port)]);
    expect(after.ok).toBe(false);
    expect((await outcome('test', ['-e', other.dir])).ok).toBe(false);
  });
});

describe('redis', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    cleanups.push(() => redis.stop());
  });

  it('answers PING with the password, NOAUTH without, WRONGPASS with a wrong one', async () => {
    const base = ['-h', '127.0.0.1', '-p', String(redis.port), '--no-auth-warning'];
    expect((await sh('redis-cli', [...base, '-a', redis.password, 'PING'])).trim()).toBe('PONG');
    const noAuth = await outcome('redis-cli', [...base, 'PING']);
    expect(noAuth.text).toMatch(/NOAUTH/);
    // redis-cli -a only warns on stderr when AUTH fails, so send AUTH as the command itself.
    expect(await sh('redis-cli', [...base, 'AUTH', 'wrong'])).toMatch(/WRONGPASS/);
    expect((await sh('redis-cli', [...base, 'AUTH', redis.password])).trim()).toBe('OK');
  });
});

describe('ssh hosts', () => {
  let host: NetnsHost;
  let nsSshd: SshdServer;
  let loopSshd: SshdServer;
  let knownHosts: string;

  beforeAll(async () => {
    host = await createNetnsHost('skiff-tb-int');
    cleanups.push(() => host.remove());
    nsSshd = await startSshd({ netns: host.name, listenAddress: host.nsAddress, port: 22 });
    cleanups.push(() => nsSshd.stop());
    loopSshd = await startSshd();
    cleanups.push(() => loopSshd.stop());
    const tmp = await tempDir('known-hosts');
    cleanups.push(() => tmp.remove());
    knownHosts = join(tmp.path, 'known_hosts');
    await writeFile(knownHosts, `${nsSshd.knownHostsLine}\n${loopSshd.knownHostsLine}\n`);
  });

  it('namespace host has the chosen addresses and short interface names', async () => {
    expect(host.nsAddress).toMatch(/^10\.213\.\d{1,3}\.2$/);
    expect(host.hostAddress).toBe(host.nsAddress.replace(/\.2$/, '.1'));
    expect(host.hostIf.length).toBeLessThanOrEqual(15);
    expect(await host.exec(['ip', '-4', '-o', 'addr', 'show'])).toContain(`inet ${host.nsAddress}/24`);
    expect(await sh('ip', ['-4', '-o', 'addr', 'show', 'dev', host.hostIf])).toContain(`inet ${host.hostAddress}/24`);
  });

  it('sshd inside the namespace is reached from the host with key and pinned host key', async () => {
    const out = await sh('ssh', [...sshArgs(nsSshd, knownHosts, host.nsAddress), 'echo ok; echo "$SSH_CLIENT"']);
    const [ok, client] = out.trim().split('\n');
    expect(ok).toBe('ok');
    expect(client?.split(' ')[0]).toBe(host.hostAddress);
  });

  it('a wrong pinned host key is refused', async () => {
    const wrongFile = `${knownHosts}.wrong`;
    await writeFile(wrongFile, `${host.nsAddress} ${loopSshd.hostPublicKey}\n`);
    const res = await outcome('ssh', [...sshArgs(nsSshd, wrongFile, host.nsAddress), 'echo ok']);
    expect(res.ok).toBe(false);
    expect(res.text).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('an extra host address is a usable source address', async () => {
    const extra = host.nsAddress.replace(/\.2$/, '.77');
    await host.addHostAddress(extra);
    const out = await sh('ssh', [...sshArgs(nsSshd, knownHosts, host.nsAddress, ['-o', `BindAddress=${extra}`]), 'echo "$SSH_CLIENT"']);
    expect(out.trim().split(' ')[0]).toBe(extra);
  });

  it('loopback sshd answers', async () => {
    const out = await sh('ssh', [...sshArgs(loopSshd, knownHosts, '127.0.0.1'), 'echo ok']);
    expect(out.trim()).toBe('ok');
  });

  it("a session runs no dotfile of the login user's home: ~/.bashrc stays unread", async () => {
    // Debian's bash sources ~/.bashrc for commands started by sshd; a slow one (pyenv waiting on a
    // stale lock) once made every test command take 60 s. A marker file shows whether it ran.
    const username = 'skiffdotfiles';
    const server = await startSshd({ extraConfig: [`Match User ${username}`, '  AuthorizedKeysFile .ssh/authorized_keys'] });
    cleanups.push(() => server.stop());
    const user = await ensureLoginUser(username, { authorizedKeys: await readFile(`${server.privateKeyPath}.pub`, 'utf8') });
    cleanups.push(() => user.remove());
    const marker = join(user.home, 'bashrc-ran');
    await writeFile(join(user.home, '.bashrc'), `touch ${marker}\n`);
    const ownKnownHosts = `${knownHosts}.dotfiles`;
    await writeFile(ownKnownHosts, `${server.knownHostsLine}\n`);
    const out = await sh('ssh', [
      ...sshArgs(server, ownKnownHosts, '127.0.0.1').slice(0, -1),
      `${username}@127.0.0.1`,
      'test -e ~/bashrc-ran && echo ran || echo unread',
    ]);
    expect(out.trim()).toBe('unread');
  });

  it('refuses a SetEnv line in extraConfig, which sshd would silently drop behind its own', async () => {
    await expect(startSshd({ extraConfig: ['SetEnv FOO=bar'] })).rejects.toThrow(/pass it as env/);
  });

  it('a leftover namespace with the same name is replaced, and remove() cleans up', async () => {
    const first = await createNetnsHost('skiff-tb-leftover');
    cleanups.push(() => first.remove());
    // No remove(): simulates a crashed run.
    const second = await createNetnsHost('skiff-tb-leftover');
    expect(second.nsAddress).toBe(first.nsAddress);
    expect(second.hostIf).toBe(first.hostIf);
    expect(await second.exec(['ip', '-4', '-o', 'addr', 'show'])).toContain(second.nsAddress);
    await second.remove();
    expect(await sh('ip', ['netns', 'list'])).not.toMatch(/^skiff-tb-leftover\b/m);
    expect((await outcome('ip', ['link', 'show', 'dev', second.hostIf])).ok).toBe(false);
  });
});

describe('registry lifecycle', () => {
  it('stop() frees its port', async () => {
    const registry = await startRegistry();
    const log = await readFile(registry.logPath, 'utf8');
    await registry.stop();
    expect(log).toMatch(/listening on 127\.0\.0\.1:\d+/);
    const res = await outcome('curl', ['-sS', '-o', '/dev/null', `http://${registry.address}/v2/`]);
    expect(res.ok).toBe(false);
  });
});
