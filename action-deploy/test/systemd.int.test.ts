import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh, startSshd, startSystemdHost, tempDir, type SystemdHost } from '@skiff/testbed';
import { expectPlanCoversRun, httpGet, runAction, type ActionRun } from './helpers';

/**
 * strategy: systemd against a real "VPS": systemd as PID 1 and sshd in a container, reached
 * over SSH on a 127.0.0.1 port. A tiny Python HTTP app is run by a unit from
 * <project-dir>/current as User=nobody; releases come from a directory, a tarball and a git
 * repository on the host itself (file://). Runs the bundle the runner's way.
 */

const UNIT = 'systemdskiff-app.service';
const PROJECT_DIR = '/srv/systemdskiff/app';
const SOURCE_REPO = '/srv/systemdskiff-src.git';
const SECRET = `sys-${Math.random().toString(36).slice(2)}-s3cr3t`;

// Mode `unhealthy` answers /health with 500 while the unit stays active; `crash` exits at start (Restart=on-failure).
const SERVER_PY = `import os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def read(name, default):
    return open(name).read().strip() if os.path.exists(name) else default

version = read('version.txt', '?')
mode = read('mode.txt', 'ok')
installed = read('installed.txt', 'no')
secret_ok = os.environ.get('APP_SECRET', '') == read('expected-secret.txt', '-')
if mode == 'crash':
    print('crashing version=' + version, flush=True)
    sys.exit(3)

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status = 500 if mode == 'unhealthy' and self.path == '/health' else 200
        body = ('version=%s installed=%s secret-ok=%s\\n' % (version, installed, secret_ok)).encode()
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

print('serving version=' + version + ' mode=' + mode, flush=True)
ThreadingHTTPServer(('0.0.0.0', int(os.environ.get('PORT', '8080'))), Handler).serve_forever()
`;

const UNIT_FILE = `[Unit]
Description=skiff systemd strategy test app

[Service]
WorkingDirectory=${PROJECT_DIR}/current
EnvironmentFile=-${PROJECT_DIR}/current/.env
ExecStart=/usr/bin/python3 server.py
User=nobody
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
`;

// Real work in the release dir, offline: byte-compile the app and record where it ran.
const INSTALL = 'python3 -m compileall -q . && test -f __pycache__/server.cpython-311.pyc && echo "$SKIFF_RELEASE_ID" > installed.txt';

let host: SystemdHost;
let workspace: { path: string; remove: () => Promise<void> };
let appUrl: string;

async function appFiles(dir: string, version: string, mode: 'ok' | 'unhealthy' | 'crash'): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'server.py'), SERVER_PY);
  await writeFile(join(dir, 'version.txt'), `${version}\n`);
  await writeFile(join(dir, 'mode.txt'), `${mode}\n`);
  await writeFile(join(dir, 'expected-secret.txt'), `${SECRET}\n`);
}

const onHost = (script: string) => host.exec(['bash', '-c', script]);
const serving = async () => (await httpGet(`${appUrl}/`)).body.trim();
const currentRelease = async () => (await onHost(`readlink ${PROJECT_DIR}/current`)).trim().replace(/^releases\//, '');
const mainPid = async () => (await host.exec(['systemctl', 'show', UNIT, '--property=MainPID', '--value'])).trim();
const auditEvents = async () =>
  (await onHost(`cat ${PROJECT_DIR}/audit.log 2>/dev/null || true`))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { event: string; status: string; to: string; reason?: string });

const deploy = (inputs: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> =>
  runAction(
    {
      host: host.host,
      port: String(host.port),
      username: host.username,
      key: host.privateKey,
      fingerprint: host.hostFingerprint,
      strategy: 'systemd',
      'systemd-unit': 'systemdskiff-app',
      'project-dir': PROJECT_DIR,
      'health-url': `${appUrl}/health`,
      'health-interval': '1s',
      'health-timeout': '8s',
      ...inputs,
    },
    { workspace: workspace.path, env },
  ).then((run) => {
    if (process.env.SYSTEMDSKIFF_DEBUG) console.log(run.masked);
    return run;
  });

beforeAll(async () => {
  [host, workspace] = await Promise.all([startSystemdHost({ name: `systemdskiff${process.pid}`, publish: [8080], git: true }), tempDir('systemdskiff-ws')]);
  appUrl = `http://127.0.0.1:${host.ports[8080]}`;
  await host.exec(['bash', '-c', `cat > /etc/systemd/system/${UNIT}`], { input: UNIT_FILE });
  await host.exec(['systemctl', 'daemon-reload']);
  await host.exec(['systemctl', 'enable', UNIT]);
}, 180_000);

afterAll(async () => {
  await Promise.all([host?.stop(), workspace?.remove()]);
});

describe('strategy: systemd on a host running systemd', () => {
  let v1Run: ActionRun | undefined;
  const releases: Record<string, string> = {};

  it('refuses a server whose init is not systemd (this machine, over its own sshd), before anything changes', async () => {
    const [plain, remote] = await Promise.all([startSshd(), tempDir('systemdskiff-plain')]);
    try {
      await appFiles(join(workspace.path, 'v1'), 'v1', 'ok');
      const run = await deploy({
        host: plain.host,
        port: String(plain.port),
        username: plain.username,
        key: plain.privateKey,
        fingerprint: plain.hostFingerprint,
        'project-dir': join(remote.path, 'app'),
        'artifact-path': 'v1',
      });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(
        /systemd-unit: cannot ask systemd about systemdskiff-app\.service on the server \(systemctl said: .*\)\. strategy: systemd needs a server whose init is systemd/,
      );
      // Taking the deploy lock made project-dir; it was released, and nothing else is there.
      expect((await sh('ls', ['-A', join(remote.path, 'app')])).trim()).toBe('');
    } finally {
      await Promise.all([plain.stop(), remote.remove()]);
    }
  });

  it('refuses a unit that is not installed, before anything on the server changes', async () => {
    await appFiles(join(workspace.path, 'v1'), 'v1', 'ok');
    const run = await deploy({ 'systemd-unit': 'systemdskiff-missing', 'artifact-path': 'v1' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain('systemd-unit: systemdskiff-missing.service is not installed on the server');
    expect((await onHost(`ls -A ${PROJECT_DIR}`)).trim()).toBe('');
  });

  it('deploys v1 from a directory: install-command ran in the release, unit restarted from current, healthy, env 0600', async () => {
    // Many SSH packets' worth of incompressible bytes, streamed through tar on both ends.
    const blob = randomBytes(12 * 1024 * 1024);
    await writeFile(join(workspace.path, 'v1/blob.bin'), blob);
    // Files packed with a uid the server does not have must end up the SSH user's.
    await sh('chown', ['-R', '4242:4242', join(workspace.path, 'v1')]);
    const run = await deploy({ 'artifact-path': 'v1', 'install-command': INSTALL, 'env-file': `APP_SECRET=${SECRET}\n` });
    v1Run = run;
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('deployed');
    const id = run.outputs['release-id']!;
    releases.v1 = id;
    expect(await serving()).toBe(`version=v1 installed=${id} secret-ok=True`);
    expect(await currentRelease()).toBe(id);
    const dir = `${PROJECT_DIR}/releases/${id}`;
    expect((await onHost(`stat -c '%a %U' ${dir} ${dir}/.env ${dir}/server.py ${dir}/deployed`)).trim().split('\n')).toEqual([
      '755 root',
      '600 root',
      '644 root',
      '644 root',
    ]);
    expect((await onHost(`sha256sum < ${dir}/blob.bin`)).split(' ')[0]).toBe(createHash('sha256').update(blob).digest('hex'));
    const pid = await mainPid();
    // The unit's User= runs it, reading the release the SSH user (root) unpacked.
    expect((await onHost(`stat -c %U /proc/${pid}`)).trim()).toBe('nobody');
    expect(await auditEvents()).toEqual([expect.objectContaining({ event: 'deploy', status: 'deployed', to: id })]);
    expect(run.masked).not.toContain(SECRET);
    expect(run.summary).toContain(`Health gate: release ${id} — passed`);
    expect(run.summary).toContain(`| ${UNIT} | ok |`);
  });

  it("the dry run's plan lists every remote step v1's deploy took, in order (the plan is the same story, recorded)", async () => {
    const plan = await deploy({ 'artifact-path': 'v1', 'install-command': INSTALL, 'env-file': `APP_SECRET=${SECRET}\n`, 'dry-run': 'true' });
    expect(plan.code, plan.masked).toBe(0);
    expectPlanCoversRun(plan.outputs.plan!, v1Run!);
  });

  it('v2 fails health-url: current goes back to v1, which is restarted and serves again; status rolled-back with the journal', async () => {
    await appFiles(join(workspace.path, 'v2'), 'v2', 'unhealthy');
    const run = await deploy({ 'artifact-path': 'v2', 'install-command': INSTALL, 'env-file': `APP_SECRET=${SECRET}\n` });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['rolled-back']).toBe('true');
    expect(run.outputs['previous-release-id']).toBe(releases.v1);
    const v2 = run.outputs['release-id']!;
    expect(await currentRelease()).toBe(releases.v1);
    expect(await serving()).toBe(`version=v1 installed=${releases.v1} secret-ok=True`);
    expect(run.summary).toContain(`Health gate: release ${v2} — failed`);
    expect(run.summary).toContain(`Health gate: rollback to ${releases.v1} — passed`);
    // Diagnostics: systemctl status and the journal, with v2's own start line in it.
    expect(run.summary).toContain(`$ journalctl --unit ${UNIT} --lines=100`);
    expect(run.summary).toContain('serving version=v2 mode=unhealthy');
    expect(run.summary).toContain(`$ systemctl status ${UNIT}`);
    expect((await onHost(`test -e ${PROJECT_DIR}/releases/${v2}/deployed && echo marked || echo unmarked`)).trim()).toBe('unmarked');
    expect((await auditEvents()).at(-1)).toMatchObject({ event: 'rollback', status: 'rolled-back', to: releases.v1 });
  });

  it('install-command failing: nothing switched and the unit is not even restarted', async () => {
    const pid = await mainPid();
    await appFiles(join(workspace.path, 'v3'), 'v3', 'ok');
    const run = await deploy({ 'artifact-path': 'v3', 'install-command': 'echo "no such requirement" >&2; exit 7' });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toContain(`install-command failed, so nothing was switched and release ${releases.v1} keeps running`);
    expect(run.errors.join('\n')).toContain('no such requirement');
    expect(await currentRelease()).toBe(releases.v1);
    expect(await mainPid()).toBe(pid);
    expect(await serving()).toBe(`version=v1 installed=${releases.v1} secret-ok=True`);
    expect((await auditEvents()).at(-1)).toMatchObject({ event: 'failure', status: 'failed', reason: 'install-command failed' });
  });

  it('deploys a tarball (artifact-path naming a .tar.gz built on the runner)', async () => {
    await sh('tar', ['-C', join(workspace.path, 'v3'), '-czf', join(workspace.path, 'app-v3.tar.gz'), '.']);
    const run = await deploy({ 'artifact-path': 'app-v3.tar.gz', 'install-command': INSTALL });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('deployed');
    releases.v3 = run.outputs['release-id']!;
    expect(await serving()).toBe(`version=v3 installed=${releases.v3} secret-ok=False`);
    expect(run.stdout).toContain('upload app-v3.tar.gz (the archive app-v3.tar.gz (gzip))');
  });

  it('git path: fetches GITHUB_SHA into a bare cache on the server and exports it; a crashing commit is rolled back at once', async () => {
    const src = join(workspace.path, 'src');
    await appFiles(src, 'v4', 'ok');
    const git = (...args: string[]) => sh('git', ['-C', src, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]);
    await git('init', '-q', '-b', 'main');
    await git('add', '.');
    await git('commit', '-q', '-m', 'v4');
    const v4sha = (await git('rev-parse', 'HEAD')).trim();
    await writeFile(join(src, 'version.txt'), 'v5\n');
    await writeFile(join(src, 'mode.txt'), 'crash\n');
    await git('commit', '-q', '-am', 'v5 crashes');
    const v5sha = (await git('rev-parse', 'HEAD')).trim();
    await sh('git', ['clone', '-q', '--bare', src, join(workspace.path, 'src.git')]);
    await sh('docker', ['cp', join(workspace.path, 'src.git'), `${host.containerId}:${SOURCE_REPO}`]);

    const v4 = await deploy({ 'git-repository': `file://${SOURCE_REPO}`, 'install-command': INSTALL }, { GITHUB_SHA: v4sha });
    expect(v4.errors).toEqual([]);
    expect(v4.outputs.status).toBe('deployed');
    releases.v4 = v4.outputs['release-id']!;
    expect(await serving()).toBe(`version=v4 installed=${releases.v4} secret-ok=False`);
    const dir = `${PROJECT_DIR}/releases/${releases.v4}`;
    expect((await onHost(`ls -A ${dir} | sort | tr '\\n' ' '; git -C ${PROJECT_DIR}/repo cat-file -t ${v4sha}`)).trim()).toBe(
      '__pycache__ deployed expected-secret.txt installed.txt meta.json mode.txt server.py version.txt commit',
    );
    expect(JSON.parse(await onHost(`cat ${dir}/meta.json`))).toMatchObject({
      strategy: 'systemd',
      unit: UNIT,
      sha: v4sha,
      source: { gitRepository: `file://${SOURCE_REPO}`, sha: v4sha },
    });

    const started = performance.now();
    const v5 = await deploy({ 'git-repository': `file://${SOURCE_REPO}`, 'install-command': INSTALL, 'health-timeout': '150s' }, { GITHUB_SHA: v5sha });
    expect(v5.outputs.status).toBe('rolled-back');
    // A crash is final: the gate fails on the unit's state, not at health-timeout (far beyond the run's own limit).
    expect(performance.now() - started).toBeLessThan(150_000);
    expect(v5.summary).toMatch(new RegExp(`${UNIT.replace('.', '\\.')}: (crashed|failed|activating)`));
    expect(v5.summary).toContain('crashing version=v5');
    expect(await currentRelease()).toBe(releases.v4);
    expect(await serving()).toBe(`version=v4 installed=${releases.v4} secret-ok=False`);
  });

  it('rollback: previous points current at the release before and restarts the unit', async () => {
    const run = await deploy({ rollback: 'previous' });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('deployed');
    expect(run.outputs['release-id']).toBe(releases.v3);
    expect(await currentRelease()).toBe(releases.v3);
    expect(await serving()).toBe(`version=v3 installed=${releases.v3} secret-ok=False`);
    expect((await auditEvents()).at(-1)).toMatchObject({ event: 'rollback', status: 'deployed', to: releases.v3, reason: 'manual rollback' });
  });

  it('as a user other than root: restarts with sudo -n, allowed by a sudoers rule for exactly the commands it runs', async () => {
    const unit = 'systemdskiff-byuser.service';
    const dir = '/srv/systemdskiff/byuser';
    const publicKey = await readFile(`${host.privateKeyPath}.pub`, 'utf8');
    await host.exec(
      [
        'bash',
        '-c',
        `useradd --create-home --shell /bin/bash sysdeploy && install -d -o sysdeploy -m 0700 /home/sysdeploy/.ssh && cat > /home/sysdeploy/.ssh/authorized_keys && chown sysdeploy /home/sysdeploy/.ssh/authorized_keys && install -d -o sysdeploy ${dir}`,
      ],
      { input: publicKey },
    );
    await host.exec(['bash', '-c', `cat > /etc/systemd/system/${unit}`], {
      input: UNIT_FILE.replaceAll(PROJECT_DIR, dir).replace('[Service]', '[Service]\nEnvironment=PORT=8081'),
    });
    // As in the README: the deploy user may run these three commands as root, nothing else.
    const rule = `sysdeploy ALL=(root) NOPASSWD: /usr/bin/systemctl reset-failed ${unit}, /usr/bin/systemctl restart ${unit}, /usr/bin/systemctl status ${unit} --no-pager --full --lines=0, /usr/bin/journalctl --unit ${unit} --lines=100 --no-pager\n`;
    await host.exec(['bash', '-c', 'cat > /etc/sudoers.d/sysdeploy && chmod 0440 /etc/sudoers.d/sysdeploy && visudo -cq && systemctl daemon-reload'], {
      input: rule,
    });

    const run = await deploy({
      username: 'sysdeploy',
      'systemd-unit': unit,
      'project-dir': dir,
      'artifact-path': 'v1',
      'install-command': INSTALL,
      'health-url': '',
      'health-command': 'curl -fsS http://127.0.0.1:8081/health',
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('deployed');
    const id = run.outputs['release-id']!;
    expect((await host.exec(['curl', '-fsS', 'http://127.0.0.1:8081/'])).trim()).toBe(`version=v1 installed=${id} secret-ok=False`);
    expect((await onHost(`stat -c %U ${dir}/releases/${id}/server.py ${dir}/current`)).trim().split('\n')).toEqual(['sysdeploy', 'sysdeploy']);
    // Without the rule, the restart is refused and the gate fails at once: the old process answering must not pass for the new release.
    await host.exec(['rm', '/etc/sudoers.d/sysdeploy']);
    const refused = await deploy({
      username: 'sysdeploy',
      'systemd-unit': unit,
      'project-dir': dir,
      'artifact-path': 'v3',
      'health-url': '',
      'health-command': 'curl -fsS http://127.0.0.1:8081/health',
    });
    expect(refused.outputs.status).toBe('failed');
    expect(refused.errors.join('\n')).toMatch(/systemctl restart failed \(exit 1\): sudo: a password is required/);
  });
});
