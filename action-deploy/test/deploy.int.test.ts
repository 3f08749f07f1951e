import { lstat, mkdir, readFile, readlink, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBaseImages, freePort, sh, startRegistry, startSshd, tempDir, type Registry, type SshdServer, sshdActionInputs } from '@skiff/testbed';
import { auditLines, buildApp, expectPlanCoversRun, composeFile, httpGet, removeProject, runAction, startAction, type ActionRun } from './helpers';

/**
 * The deploy story against the real test bed: OpenSSH on loopback (root, so "remote" docker is
 * this machine's engine), a registry with auth standing in for GHCR, and images built FROM the
 * test bed's busybox. Runs the committed bundle on Node 24 the way the runner does.
 */

const PROJECT = `skiffdeploy${process.pid}`;
const SECRET = `tok-${Math.random().toString(36).slice(2)}-s3cr3t`;
// Quotes, a command substitution and a newline-free semicolon: must reach the server byte for byte and run nothing.
const HOSTILE_ENV = `HOSTILE='it"s $(touch pwned-env) ; \`id\`'`;

let server: SshdServer;
let registry: Registry;
let remoteRoot: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
let projectDir: string;
let webPort: number;
let image: (tag: string) => string;

const base = () => ({
  ...sshdActionInputs(server),
  'project-dir': projectDir,
  'project-name': PROJECT,
  'env-file': `WEB_PORT=${webPort}\nSECRET_TOKEN=${SECRET}\n${HOSTILE_ENV}\n`,
  'health-interval': '1s',
  'health-timeout': '30s',
});

const deploy = (inputs: Record<string, string>, env?: Record<string, string>): Promise<ActionRun> =>
  runAction({ ...base(), ...inputs }, { workspace: workspace.path, ...(env ? { env } : {}) });

const serving = async () => (await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim();

beforeAll(async () => {
  await ensureBaseImages();
  [server, registry, remoteRoot, workspace] = await Promise.all([startSshd(), startRegistry(), tempDir('skiffdeploy-remote'), tempDir('skiffdeploy-ws')]);
  projectDir = join(remoteRoot.path, "srv/it's a $(touch pwned) app");
  webPort = await freePort();
  image = (tag: string) => `${registry.address}/skiffdeploy-app:${tag}`;
  await sh('docker', ['login', '-u', registry.username, '--password-stdin', registry.address], { input: registry.password });
  const builds: [string, 'ok' | 'crash' | 'http500'][] = [
    ['v1', 'ok'],
    ['v2', 'crash'],
    ['v3', 'http500'],
    ['v4', 'ok'],
  ];
  for (const [tag, kind] of builds) {
    await buildApp(image(tag), kind, tag);
    await sh('docker', ['push', '-q', image(tag)], { timeoutMs: 120_000 });
  }
  await writeFile(join(workspace.path, 'compose.yaml'), composeFile(registry.address));
}, 600_000);

afterAll(async () => {
  await removeProject(PROJECT).catch(() => undefined);
  await sh('docker', ['logout', registry.address]).catch(() => '');
  for (const tag of ['v1', 'v2', 'v3', 'v4']) await sh('docker', ['image', 'rm', '-f', image(tag)]).catch(() => '');
  const dangling = (await sh('docker', ['images', '-q', '--filter', 'label=skiffdeploy.version']).catch(() => '')).split('\n').filter(Boolean);
  if (dangling.length > 0) await sh('docker', ['image', 'rm', '-f', ...new Set(dangling)]).catch(() => '');
  await Promise.all([server?.stop(), registry?.stop(), remoteRoot?.remove(), workspace?.remove()]);
});

describe('action-deploy against sshd, the engine and a registry', () => {
  let v1Release = '';
  let v1Run: ActionRun | undefined;

  it('deploys v1: healthy, pinned to a digest, env 0600, current link, audit line, no secret in the log', async () => {
    const run = await deploy({ images: `web=${image('v1')}` });
    v1Run = run;
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('deployed');
    expect(run.outputs['rolled-back']).toBe('false');
    v1Release = run.outputs['release-id']!;
    expect(v1Release).toMatch(/^\d{8}T\d{6}Z-1a2b3c4-[0-9a-f]{4}$/);
    expect(await serving()).toBe('version=v1');

    const images = JSON.parse(run.outputs.images!) as Record<string, string>;
    expect(images.web).toMatch(new RegExp(`^${registry.address}/skiffdeploy-app@sha256:[0-9a-f]{64}$`));
    const releaseDir = join(projectDir, 'releases', v1Release);
    expect(JSON.parse(await readFile(join(releaseDir, 'images.lock.json'), 'utf8'))).toEqual({ services: { web: { image: images.web } } });
    expect((await stat(join(releaseDir, '.env'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(releaseDir, '.env'), 'utf8')).toBe(`WEB_PORT=${webPort}\nSECRET_TOKEN=${SECRET}\n${HOSTILE_ENV}\n`);
    expect(await readlink(join(projectDir, 'current'))).toBe(`releases/${v1Release}`);
    const meta = JSON.parse(await readFile(join(releaseDir, 'meta.json'), 'utf8'));
    expect(meta).toMatchObject({
      id: v1Release,
      sha: '1a2b3c4d5e6f',
      actor: 'octo-tester',
      runUrl: 'https://github.example/acme/skiffdeploy-app/actions/runs/42',
    });
    expect((await auditLines(projectDir)).at(-1)).toMatchObject({ event: 'deploy', status: 'deployed', from: null, to: v1Release, actor: 'octo-tester' });
    // The container really got the secret, and the lock is gone.
    const env = await sh('docker', ['exec', `${PROJECT}-web-1`, 'env']);
    expect(env).toContain(`SECRET_TOKEN=${SECRET}`);
    await expect(lstat(join(projectDir, '.skiff-lock'))).rejects.toThrow();
    expect(run.masked).not.toContain(SECRET);
    expect(run.summary).not.toContain(SECRET);
    expect(run.summary).toContain(images.web);
    expect(run.masked).not.toContain('pwned-env');
    // The hostile project dir stayed literal.
    await expect(stat(join(remoteRoot.path, 'srv', 'pwned'))).rejects.toThrow();
    await expect(stat('pwned')).rejects.toThrow();
    for (const dir of [projectDir, remoteRoot.path, workspace.path, '/root']) await expect(stat(join(dir, 'pwned-env'))).rejects.toThrow();
  });

  it("the dry run's plan lists every remote step v1's deploy took, in order (the plan is the same story, recorded)", async () => {
    const plan = await deploy({ images: `web=${image('v1')}`, 'dry-run': 'true' });
    expect(plan.code).toBe(0);
    expectPlanCoversRun(plan.outputs.plan!, v1Run!);
  });

  it('v2 crashes: fails fast, rolls back to v1, which serves again; rolled-back=true and the audit log says so', async () => {
    const started = Date.now();
    // A health-timeout far beyond the run: only failing fast on the exited container can end it in time.
    const run = await deploy({ images: `web=${image('v2')}`, 'health-timeout': '150s' });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['rolled-back']).toBe('true');
    expect(run.outputs['previous-release-id']).toBe(v1Release);
    expect(run.errors.join('\n')).toMatch(/failed the health gate: containers: .*exited with code 1.*Rolled back to/s);
    expect(await serving()).toBe('version=v1');
    expect(Date.now() - started).toBeLessThan(150_000);
    const last = (await auditLines(projectDir)).at(-1)!;
    expect(last).toMatchObject({ event: 'rollback', status: 'rolled-back', from: run.outputs['release-id'], to: v1Release });
    expect(await readlink(join(projectDir, 'current'))).toBe(`releases/${v1Release}`);
    expect(run.summary).toContain('Diagnostics');
    expect(run.summary).toContain('crashing version=v2 token=***');
    expect(run.summary).not.toContain(SECRET);
    expect(run.masked).not.toContain(SECRET);
  });

  it('v3 is healthy by HEALTHCHECK but health-url answers 500: rolled back to v1', async () => {
    const run = await deploy({ images: `web=${image('v3')}`, 'health-url': `http://127.0.0.1:${webPort}/cgi-bin/health`, 'health-timeout': '6s' });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.errors.join('\n')).toContain('HTTP 500, expected 200-399');
    expect(await serving()).toBe('version=v1');
  });

  let v4Release = '';
  it('deploys v4 from a compose file with a hostile name, then rolls back by hand to the named v1 release', async () => {
    const hostileName = "deploy/it's $(touch pwned) compose.yaml";
    await mkdir(join(workspace.path, 'deploy'), { recursive: true });
    await writeFile(join(workspace.path, hostileName), composeFile(registry.address));
    const v4 = await deploy({ images: `web=${image('v4')}`, 'compose-file': hostileName });
    expect(v4.errors).toEqual([]);
    expect(v4.outputs.status).toBe('deployed');
    v4Release = v4.outputs['release-id']!;
    expect(await serving()).toBe('version=v4');
    expect(await readdir(join(projectDir, 'releases', v4Release))).toContain('it_s___touch_pwned__compose.yaml');
    await expect(stat(join(workspace.path, 'pwned'))).rejects.toThrow();

    const back = await deploy({ rollback: v1Release, 'env-file': '' });
    expect(back.errors).toEqual([]);
    expect(back.outputs.status).toBe('deployed');
    expect(back.outputs['release-id']).toBe(v1Release);
    expect(back.outputs['previous-release-id']).toBe(v4Release);
    expect(await serving()).toBe('version=v1');
    expect(await readlink(join(projectDir, 'current'))).toBe(`releases/${v1Release}`);
    expect((await auditLines(projectDir)).at(-1)).toMatchObject({
      event: 'rollback',
      status: 'deployed',
      from: v4Release,
      to: v1Release,
      reason: 'manual rollback',
    });

    // v1 is now the oldest deployed release: there is nothing "previous" to it.
    const none = await deploy({ rollback: 'previous', 'env-file': '' });
    expect(none.code).toBe(1);
    expect(none.errors.join('\n')).toContain('there is no deployed release older than the current one');
    expect(none.errors.join('\n')).toContain(v4Release);
    expect(await serving()).toBe('version=v1');
  });

  it('waits for a held lock and fails clearly after lock-timeout; two concurrent deploys serialise', async () => {
    const lock = join(projectDir, '.skiff-lock');
    await mkdir(lock);
    await writeFile(
      join(lock, 'owner.json'),
      `${JSON.stringify({ token: 'other', actor: 'someone-else', runUrl: 'https://github.example/run/7', release: 'x', startedAt: 'now' })}\n`,
    );
    const blocked = await deploy({ images: `web=${image('v4')}`, 'lock-timeout': '3s' });
    expect(blocked.code).toBe(1);
    expect(blocked.errors.join('\n')).toMatch(/holds the lock: someone-else .*Gave up after lock-timeout \(3s\)/);
    expect(await readFile(join(lock, 'owner.json'), 'utf8')).toContain('someone-else');
    await sh('rm', ['-rf', lock]);

    const [a, b] = await Promise.all([deploy({ images: `web=${image('v4')}` }), deploy({ images: `web=${image('v4')}` })]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect([a.outputs.status, b.outputs.status]).toEqual(['deployed', 'deployed']);
    expect([a.stdout, b.stdout].filter((log) => log.includes('Waiting for the deploy lock'))).toHaveLength(1);
    const audit = (await auditLines(projectDir)).slice(-2);
    // Serialised: the second deploy started from the first one's release.
    expect(audit[1]!.from).toBe(audit[0]!.to);
    expect(await serving()).toBe('version=v4');
  });

  it('a deploy killed mid-way leaves its lock; the post step frees it, and a later deploy takes over a stale one and ends consistent', async () => {
    const lock = join(projectDir, '.skiff-lock');
    let kills = 0;
    const killMidDeploy = async () => {
      const marker = `skiffdeploy-kill-${process.pid}-${++kills}`;
      const started = startAction({ ...base(), images: `web=${image('v1')}`, 'pre-deploy': `sleep 30 # ${marker}` }, { workspace: workspace.path });
      const pids = () =>
        sh('pgrep', ['-f', marker]).then(
          (out) => out.split('\n').filter(Boolean).map(Number),
          () => [] as number[],
        );
      const deadline = Date.now() + 60_000;
      // Killed during pre-deploy: after upload and pull, before the switch.
      while (Date.now() < deadline && (await pids()).length === 0) await new Promise((r) => setTimeout(r, 200));
      started.child.kill('SIGKILL');
      const result = await started.done;
      // The server side of a dropped connection may linger; end it by pid so it cannot hold anything.
      for (const pid of await pids()) process.kill(pid, 'SIGKILL');
      return result;
    };

    const killed = await killMidDeploy();
    expect(killed.code).toBe(null);
    await lstat(lock);
    const post = await runAction(base(), { workspace: workspace.path, phase: 'post', state: { 'deploy-lock': killed.state['deploy-lock']! } });
    expect(post.code).toBe(0);
    expect(post.stdout).toContain('Released the deploy lock');
    await expect(lstat(lock)).rejects.toThrow();

    await killMidDeploy();
    await lstat(lock);
    const next = await deploy({ images: `web=${image('v1')}`, 'lock-ttl': '10s', 'lock-timeout': '60s' });
    expect(next.errors).toEqual([]);
    expect(next.stdout).toContain('Took over a stale deploy lock');
    expect(next.outputs.status).toBe('deployed');
    expect(await serving()).toBe('version=v1');
    expect(await readlink(join(projectDir, 'current'))).toBe(`releases/${next.outputs['release-id']}`);
    await expect(lstat(lock)).rejects.toThrow();
    expect((await readdir(projectDir)).filter((name) => name.startsWith('.skiff-lock'))).toEqual([]);
  });

  it('keeps keep-releases deployed releases and deletes older ones', async () => {
    const run = await deploy({ images: `web=${image('v4')}`, 'keep-releases': '2' });
    expect(run.outputs.status).toBe('deployed');
    const releases = await readdir(join(projectDir, 'releases'));
    const deployed = [];
    for (const id of releases)
      if (
        await stat(join(projectDir, 'releases', id, 'deployed')).then(
          () => true,
          () => false,
        )
      )
        deployed.push(id);
    expect(deployed).toHaveLength(2);
    expect(releases).toContain(run.outputs['release-id']);
    // Failed releases older than current are gone too.
    expect(releases.sort()).toEqual(deployed.sort());
  });

  it('an unchanged release (same image, same configuration) replaces no container, so its check takes one round', async () => {
    const running = async () => (await sh('docker', ['ps', '-q', '--no-trunc', '--filter', `label=com.docker.compose.project=${PROJECT}`])).trim();
    const before = await running();
    const run = await deploy({ images: `web=${image('v4')}`, 'keep-releases': '2' });
    expect(run.outputs.status).toBe('deployed');
    expect(await running()).toBe(before);
    expect(run.stdout).toContain('Release check: 1 consecutive successful round(s) (compose up created or replaced no container: each ran before this check)');
    expect(run.stdout).not.toMatch(/health round 2:/);
  });

  it('a prune that fails (a folder of an old release is a mount point) is a warning: deployed, current and audit line written, the release kept', async () => {
    const releases = async () => (await readdir(join(projectDir, 'releases'))).sort();
    const oldest = (await releases())[0]!;
    const mounted = join(projectDir, 'releases', oldest, 'busy');
    await mkdir(mounted);
    await sh('mount', ['-t', 'tmpfs', 'skiffdeploy-busy', mounted]);
    let run: ActionRun;
    try {
      run = await deploy({ images: `web=${image('v4')}`, 'keep-releases': '1' });
    } finally {
      await sh('umount', [mounted]);
    }
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.status).toBe('deployed');
    expect(run.stdout).toMatch(new RegExp(`::warning::Could not delete every old release \\([^)]*${oldest}[^)]*\\): .*Device or resource busy`));
    expect(await readlink(join(projectDir, 'current'))).toBe(`releases/${run.outputs['release-id']}`);
    expect((await auditLines(projectDir)).at(-1)).toMatchObject({ event: 'deploy', status: 'deployed', to: run.outputs['release-id'] });
    expect(await releases()).toContain(oldest);
    expect(run.summary).not.toContain('Deleted old releases');
    // Once the mount is gone, the next deploy deletes it.
    const next = await deploy({ images: `web=${image('v4')}`, 'keep-releases': '1' });
    expect(next.outputs.status).toBe('deployed');
    expect(next.stdout).not.toContain('Could not delete');
    expect(await releases()).toEqual([next.outputs['release-id']]);
  });

  it('on a full disk, an upload that fails ends like any early failure: .env linked back to the running release, audit line, nothing switched', async () => {
    const full = join(remoteRoot.path, 'full');
    const project = `${PROJECT}full`;
    const bigWorkspace = await tempDir('skiffdeploy-ws-big');
    await mkdir(full, { recursive: true });
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'skiffdeploy-full', full]);
    try {
      const port = await freePort();
      const inputs = {
        ...base(),
        'project-dir': full,
        'project-name': project,
        'env-file': `WEB_PORT=${port}\nSECRET_TOKEN=x\n`,
        images: `web=${image('v1')}`,
      };
      const first = await runAction(inputs, { workspace: workspace.path });
      expect(first.outputs.status).toBe('deployed');
      const running = first.outputs['release-id']!;
      // A compose file bigger than the space left: the upload, not the create, is what fails.
      await writeFile(join(bigWorkspace.path, 'compose.yaml'), `${composeFile(registry.address)}# ${'x'.repeat(2_000_000)}\n`);
      const next = await runAction(inputs, { workspace: bigWorkspace.path });
      expect(next.code).toBe(1);
      expect(next.outputs.status).toBe('failed');
      expect(next.errors.join('\n')).toMatch(
        new RegExp(`Uploading the release failed, so nothing was switched and release ${running} keeps running: Upload to \\S+ failed`),
      );
      expect(await readlink(join(full, '.env'))).toBe(`releases/${running}/.env`);
      expect(await readlink(join(full, 'current'))).toBe(`releases/${running}`);
      expect((await auditLines(full)).at(-1)).toMatchObject({ event: 'failure', status: 'failed', from: running, reason: 'Uploading the release failed' });
      expect((await httpGet(`http://127.0.0.1:${port}/`)).body.trim()).toBe('version=v1');
    } finally {
      await removeProject(project).catch(() => undefined);
      await sh('umount', [full]);
      await bigWorkspace.remove();
    }
  });

  it("keeps the Compose probe's answer for the next deploy; when that deploy's docker reaches no engine, the whole probe's error ends it like any early failure", async () => {
    expect(await readFile(join(projectDir, '.skiff/docker-cli'), 'utf8')).toMatch(/^v2 \/\S+\/cli-plugins\/docker-compose\n$/);
    const again = await deploy({ images: `web=${image('v4')}` });
    expect(again.code, again.masked).toBe(0);
    expect(again.stdout).toContain("still docker's choice, as at the last deploy");
    // The same server, but its docker talks to a socket nobody listens on.
    const noEngine = await startSshd({ env: { DOCKER_HOST: `unix://${join(remoteRoot.path, 'no-engine.sock')}` } });
    try {
      const current = await readlink(join(projectDir, 'current'));
      const run = await deploy({ ...sshdActionInputs(noEngine), images: `web=${image('v1')}` });
      expect(run.code).toBe(1);
      expect(run.outputs.status).toBe('failed');
      expect(run.stdout).toContain("still docker's choice, as at the last deploy");
      expect(run.errors.join('\n')).toMatch(
        /Pulling images failed, so nothing was switched and release \S+ keeps running: docker cannot reach the Docker engine on the server \(docker said: .*no-engine\.sock/,
      );
      expect(await readlink(join(projectDir, 'current'))).toBe(current);
      expect(await readlink(join(projectDir, '.env'))).toBe(`${current}/.env`);
      expect(await serving()).toBe('version=v4');
      expect((await auditLines(projectDir)).at(-1)).toMatchObject({ event: 'failure', status: 'failed', reason: 'Pulling images failed' });
      // A refusal of the inputs stays the answer, however docker is: it names what the user asked for.
      const audited = (await auditLines(projectDir)).length;
      const refused = await deploy({ ...sshdActionInputs(noEngine), rollback: 'abcdef0', 'env-file': '' });
      expect(refused.code).toBe(1);
      expect(refused.errors.join('\n')).toMatch(/no kept, successfully deployed release was made from commit abcdef0/);
      expect(refused.errors.join('\n')).not.toContain('cannot reach the Docker engine');
      expect(await auditLines(projectDir)).toHaveLength(audited);
    } finally {
      await noEngine.stop();
    }
  });

  it('a registry outage during pull leaves the running version untouched', async () => {
    const before = (await sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`])).trim();
    const current = await readlink(join(projectDir, 'current'));
    await registry.stop();
    const run = await deploy({ images: `web=${image('v1')}` });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toMatch(/Pulling images failed, so nothing was switched and release \S+ keeps running/);
    expect((await sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`])).trim()).toBe(before);
    expect(await readlink(join(projectDir, 'current'))).toBe(current);
    expect(await serving()).toBe('version=v4');
    expect((await auditLines(projectDir)).at(-1)).toMatchObject({ event: 'failure', status: 'failed', reason: 'Pulling images failed' });
  });
});

describe('inputs', () => {
  it('reports every bad input together before connecting', async () => {
    const run = await runAction(
      {
        host: '127.0.0.1',
        port: '1',
        username: 'root',
        password: 'x',
        fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        'project-dir': 'relative/dir',
        images: 'web image:1',
        'health-status': 'ok',
        rollback: 'yesterday',
        'keep-releases': '0',
        'health-from': 'moon',
      },
      { workspace: workspace.path },
    );
    expect(run.code).toBe(1);
    const error = run.errors.join('\n');
    for (const name of ['project-dir', 'images', 'health-status', 'rollback', 'keep-releases', 'health-from']) expect(error).toContain(`Input "${name}"`);
    expect(error).not.toContain('connect');
  });
});
