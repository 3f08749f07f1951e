import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { PlanRecorder, render, script } from '@skiff/shell';
import { readDeployInputs, type DeployInputs } from '../src/inputs';
import { markDeployed, pointCurrent, switchCurrent } from '../src/release-history';
import { runContext } from '../src/run-context';
import { planDeploy } from '../src/plan';
import { artifactStream, compressionOf, isArchiveName } from '../src/strategies/systemd/artifact';
import {
  createSystemdRelease,
  evaluateUnit,
  extractArchive,
  gitExport,
  inReleaseDir,
  inspectHost,
  parseShow,
  resetFailedUnit,
  restartUnit,
  runsFromCurrent,
  unitJournal,
  unitState,
  unitStatus,
} from '../src/strategies/systemd/systemd-commands';
import { parseGitRepository, parseUnit } from '../src/strategies/systemd/inputs';
import { restartFailureHint } from '../src/strategies/systemd/gate';

/** The systemd strategy's own settings, when it is the chosen one. */
const systemdOf = (inputs: DeployInputs) => (inputs.strategy.name === 'systemd' ? inputs.strategy.settings : undefined);

const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('systemd builders (exact argv)', () => {
  it('inspects the unit and the user, then reads the gate state', () => {
    expect(inspectHost('my app.service')).toEqual([
      ['id', '-u'],
      ['systemctl', 'show', 'my app.service', '--property=LoadState,FragmentPath,WorkingDirectory,ExecStart'],
    ]);
    expect(unitState('app.service')).toEqual([['systemctl', 'show', 'app.service', '--property=ActiveState,SubState,Result,NRestarts,MainPID,ExecMainStatus']]);
  });

  it('creates a release directory readable by the unit user', () => {
    expect(script(createSystemdRelease('/opt/my app', '20261122T010203Z-abc1234-9f0e'))).toBe(
      [
        'set -euo pipefail',
        "mkdir -p '/opt/my app/releases'",
        "mkdir -m 700 '/opt/my app/releases/20261122T010203Z-abc1234-9f0e'",
        "chmod 755 '/opt/my app/releases/20261122T010203Z-abc1234-9f0e'",
      ].join('\n'),
    );
  });

  it('unpacks stdin with the compression of the stream, never keeping the runner uid', () => {
    expect(extractArchive('/r', 'gzip')).toEqual([['tar', '-x', '-z', '--no-same-owner', '-f', '-', '-C', '/r']]);
    expect(extractArchive('/r', 'zstd')).toEqual([['tar', '-x', '--zstd', '--no-same-owner', '-f', '-', '-C', '/r']]);
    expect(extractArchive('/r', 'xz')).toEqual([['tar', '-x', '-J', '--no-same-owner', '-f', '-', '-C', '/r']]);
    expect(extractArchive('/r', 'bzip2')).toEqual([['tar', '-x', '-j', '--no-same-owner', '-f', '-', '-C', '/r']]);
    expect(extractArchive('/r', 'none')).toEqual([['tar', '-x', '--no-same-owner', '-f', '-', '-C', '/r']]);
  });

  it('fetches the commit into the bare cache only when missing and exports it with git archive', () => {
    const repo = "git@github.com:acme/it's.git";
    expect(script(gitExport('/opt/app', repo, SHA, '/opt/app/releases/R'))).toBe(
      [
        'set -euo pipefail',
        '[ -d /opt/app/repo ] || git init --quiet --bare /opt/app/repo',
        `if ! env 'GIT_TERMINAL_PROMPT=0' git -C /opt/app/repo cat-file -e '${SHA}^{commit}' 2>/dev/null ; then env 'GIT_TERMINAL_PROMPT=0' git -C /opt/app/repo fetch --quiet --no-tags 'git@github.com:acme/it'\\''s.git' ${SHA} || env 'GIT_TERMINAL_PROMPT=0' git -C /opt/app/repo fetch --quiet --no-tags --force 'git@github.com:acme/it'\\''s.git' '+refs/heads/*:refs/skiff/heads/*' '+refs/tags/*:refs/skiff/tags/*' ; fi`,
        `if ! env 'GIT_TERMINAL_PROMPT=0' git -C /opt/app/repo cat-file -e '${SHA}^{commit}' 2>/dev/null ; then echo 'commit ${SHA} is not in git@github.com:acme/it'\\''s.git' >&2; exit 1; fi`,
        `env 'GIT_TERMINAL_PROMPT=0' git -C /opt/app/repo archive '--format=tar' ${SHA} | tar -x --no-same-owner -f - -C /opt/app/releases/R`,
      ].join('\n'),
    );
  });

  it('runs install-command in the release directory, told where it is', () => {
    expect(inReleaseDir('/opt/app', 'R1', 'python3 -m compileall -q . && echo "$(id)"')).toEqual([
      ['cd', '/opt/app/releases/R1'],
      [
        'env',
        'SKIFF_RELEASE_DIR=/opt/app/releases/R1',
        'SKIFF_RELEASE_ID=R1',
        'SKIFF_PROJECT_DIR=/opt/app',
        'bash',
        '-c',
        'python3 -m compileall -q . && echo "$(id)"',
      ],
    ]);
    expect(render(inReleaseDir('/opt/app', 'R1', 'touch $(whoami)')[1]!)).toBe(
      "env 'SKIFF_RELEASE_DIR=/opt/app/releases/R1' 'SKIFF_RELEASE_ID=R1' 'SKIFF_PROJECT_DIR=/opt/app' bash -c 'touch $(whoami)'",
    );
  });

  it('restarts, and reads status and journal, with sudo -n only when asked', () => {
    expect(restartUnit('app.service', false)).toEqual([['systemctl', 'restart', 'app.service']]);
    expect(restartUnit('app.service', true)).toEqual([['sudo', '-n', 'systemctl', 'restart', 'app.service']]);
    expect(unitStatus('app.service', true)).toEqual([['sudo', '-n', 'systemctl', 'status', 'app.service', '--no-pager', '--full', '--lines=0']]);
    expect(unitJournal('app.service', false)).toEqual([['journalctl', '--unit', 'app.service', '--lines=100', '--no-pager']]);
    expect(resetFailedUnit('app.service', true)).toEqual([['sudo', '-n', 'systemctl', 'reset-failed', 'app.service']]);
  });

  it('says what to add to sudoers when a refused restart needs reset-failed', () => {
    const limit = 'Job for app.service failed. To force a start use "systemctl reset-failed app.service" followed by "systemctl start app.service" again.';
    expect(restartFailureHint('app.service', true, limit, false)).toContain('add `/usr/bin/systemctl reset-failed app.service` to its sudoers rule');
    // reset-failed ran, yet the restart failed: something else is wrong, and no sudoers advice.
    expect(restartFailureHint('app.service', true, limit, true)).toBe('');
    expect(restartFailureHint('app.service', true, 'sudo: a password is required', false)).toContain(
      'passwordless sudo for `systemctl reset-failed app.service`',
    );
    expect(restartFailureHint('app.service', false, 'Unit app.service has a bad setting', true)).toBe('');
  });

  it('switches current in two atomic steps and marks a release deployed separately', () => {
    expect(pointCurrent('/opt/app', 'R2')).toEqual([
      ['ln', '-sfn', 'releases/R2', '/opt/app/.current.tmp'],
      ['mv', '-T', '/opt/app/.current.tmp', '/opt/app/current'],
    ]);
    expect(markDeployed('/opt/app', 'R2')).toEqual([['touch', '/opt/app/releases/R2/deployed']]);
    expect(switchCurrent('/opt/app', 'R2')).toEqual([...pointCurrent('/opt/app', 'R2'), ...markDeployed('/opt/app', 'R2')]);
  });
});

describe('reading systemd', () => {
  it('parses systemctl show and id -u', () => {
    expect(
      parseShow(
        '0\nLoadState=loaded\nExecStart={ path=/usr/bin/python3 ; argv[]=/usr/bin/python3 /opt/app/current/app.py ; }\nWorkingDirectory=/opt/app/current\n',
      ),
    ).toEqual({
      uid: '0',
      LoadState: 'loaded',
      ExecStart: '{ path=/usr/bin/python3 ; argv[]=/usr/bin/python3 /opt/app/current/app.py ; }',
      WorkingDirectory: '/opt/app/current',
    });
  });

  it('knows whether the unit runs from current', () => {
    expect(runsFromCurrent({ WorkingDirectory: '/opt/app/current' }, '/opt/app')).toBe(true);
    expect(runsFromCurrent({ WorkingDirectory: '/', ExecStart: '{ argv[]=/opt/app/current/bin/app serve ; }' }, '/opt/app')).toBe(true);
    expect(runsFromCurrent({ WorkingDirectory: '/srv/app', ExecStart: '{ argv[]=/srv/app/app ; }' }, '/opt/app')).toBe(false);
  });

  it('judges the unit: active is ok, a crash since the restart fails at once, starting waits', () => {
    expect(evaluateUnit({ ActiveState: 'active', SubState: 'running', NRestarts: '3', MainPID: '42' }, 3)).toEqual({
      state: 'ok',
      detail: 'active (running), pid 42',
    });
    expect(evaluateUnit({ ActiveState: 'active', SubState: 'running', NRestarts: '4', MainPID: '43', ExecMainStatus: '1' }, 3)).toEqual({
      state: 'failed',
      detail: 'crashed: systemd restarted it 1 time(s) since the deploy; now active (running), pid 43, last exit status 1',
    });
    expect(evaluateUnit({ ActiveState: 'activating', SubState: 'start', NRestarts: '0' }, 0)).toEqual({ state: 'waiting', detail: 'activating (start)' });
    expect(evaluateUnit({ ActiveState: 'activating', SubState: 'auto-restart', NRestarts: '0', ExecMainStatus: '2' }, 0).state).toBe('failed');
    expect(evaluateUnit({ ActiveState: 'failed', SubState: 'failed', Result: 'exit-code', ExecMainStatus: '1', NRestarts: '0', MainPID: '0' }, 0)).toEqual({
      state: 'failed',
      detail: 'failed (failed), result exit-code, last exit status 1',
    });
    expect(evaluateUnit({ ActiveState: 'inactive', SubState: 'dead', NRestarts: '0' }, 0).state).toBe('failed');
  });

  it('tells the compression of an archive from its first bytes', () => {
    expect(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0]))).toBe('gzip');
    expect(compressionOf(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))).toBe('xz');
    expect(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))).toBe('zstd');
    expect(compressionOf(Buffer.from('BZh91AY'))).toBe('bzip2');
    expect(compressionOf(Buffer.from('app.py\0\0\0'))).toBe('none');
    expect(['a.tar', 'a.tgz', 'a.tar.gz', 'a.TAR.XZ', 'a.tar.zst', 'a.tar.bz2'].every(isArchiveName)).toBe(true);
    expect(['app', 'app.jar', 'app.zip', 'app.gz', 'tar'].some(isArchiveName)).toBe(false);
  });
});

describe('artifact-path on the runner', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'systemdskiff-artifact-'));
    await mkdir(join(dir, 'app/lib'), { recursive: true });
    await writeFile(join(dir, 'app/server.py'), 'print("hi")\n');
    await writeFile(join(dir, 'app/lib/data.bin'), Buffer.alloc(300_000, 7));
    await writeFile(join(dir, 'app-bin'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const collect = async (stream: Readable) => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const unpack = async (bytes: Buffer, flags: string[]) => {
    const out = await mkdtemp(join(dir, 'out-'));
    const result = spawnSync('tar', ['-x', ...flags, '-f', '-', '-C', out], { input: bytes });
    expect(result.status, result.stderr.toString()).toBe(0);
    return out;
  };

  it('a directory arrives whole as tar.gz even when tar finished before anyone read it', async () => {
    const artifact = await artifactStream(join(dir, 'app'), true);
    await artifact.finished; // the runner's tar has exited; Node must not have thrown its output away
    const out = await unpack(await collect(artifact.stream), ['-z']);
    expect(artifact.compression).toBe('gzip');
    expect(await readFile(join(out, 'server.py'), 'utf8')).toBe('print("hi")\n');
    expect((await readFile(join(out, 'lib/data.bin'))).equals(Buffer.alloc(300_000, 7))).toBe(true);
  });

  it('a single file is wrapped in a tar; a tarball is sent as it is with its compression', async () => {
    const single = await artifactStream(join(dir, 'app-bin'), false);
    const out = await unpack(await collect(single.stream), ['-z']);
    expect(spawnSync('sh', [join(out, 'app-bin')]).stdout.toString()).toBe('hi\n');
    spawnSync('tar', ['-C', join(dir, 'app'), '-cJf', join(dir, 'misnamed.tgz'), '.']);
    const archive = await artifactStream(join(dir, 'misnamed.tgz'), false);
    expect(archive.compression).toBe('xz');
    const bytes = await collect(archive.stream);
    expect(bytes.equals(await readFile(join(dir, 'misnamed.tgz')))).toBe(true);
    expect(await readFile(join(await unpack(bytes, ['-J']), 'server.py'), 'utf8')).toBe('print("hi")\n');
  });

  it('a failing tar on the runner is reported, not taken for a short archive', async () => {
    const artifact = await artifactStream(join(dir, 'gone'), true);
    artifact.stream.resume();
    await expect(artifact.finished).rejects.toThrow(/tar on the runner failed \(exit 2\): .*gone/);
  });
});

describe('systemd inputs', () => {
  let workspace = '';
  const saved = { ...process.env };
  const ssh = {
    host: 'example.com',
    username: 'deploy',
    password: 'pw-123456',
    fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    'project-dir': '/opt/app',
    strategy: 'systemd',
  };
  const failure = () => {
    try {
      readDeployInputs();
    } catch (error) {
      return (error as Error).message;
    }
    throw new Error('expected the inputs to be refused');
  };

  beforeEach(async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    workspace = await mkdtemp(join(tmpdir(), 'systemdskiff-inputs-'));
    await mkdir(join(workspace, 'build'));
    await writeFile(join(workspace, 'build/app.py'), 'print(1)\n');
    process.env.GITHUB_WORKSPACE = workspace;
    process.env.GITHUB_SHA = SHA;
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    process.env = { ...saved };
    await rm(workspace, { recursive: true, force: true });
  });

  it('reads an artifact deploy without any compose file in the workspace', () => {
    setInputs({ ...ssh, 'systemd-unit': 'shop', 'artifact-path': 'build', 'install-command': 'python3 -m compileall .' });
    expect(systemdOf(readDeployInputs())).toEqual({
      unit: 'shop.service',
      source: { kind: 'artifact', path: 'build', absolute: join(workspace, 'build'), isDirectory: true },
      installCommand: 'python3 -m compileall .',
    });
  });

  it('reads a git deploy of GITHUB_SHA', () => {
    setInputs({ ...ssh, 'systemd-unit': 'shop@blue.service', 'git-repository': 'file:///srv/shop.git' });
    expect(systemdOf(readDeployInputs())).toEqual({ unit: 'shop@blue.service', source: { kind: 'git', repository: 'file:///srv/shop.git', sha: SHA } });
  });

  it('needs exactly one source and a unit, all reported together before anything connects', () => {
    setInputs({ ...ssh });
    const none = failure();
    expect(none).toContain('Input "systemd-unit" is required');
    expect(none).toContain('strategy: systemd needs one of "artifact-path"');
    setInputs({ ...ssh, 'systemd-unit': 'shop', 'artifact-path': 'build', 'git-repository': 'git@github.com:a/b.git' });
    expect(failure()).toContain('Inputs "artifact-path" and "git-repository" are both set');
    setInputs({ ...ssh, 'systemd-unit': 'shop', 'artifact-path': 'missing-dir' });
    expect(failure()).toMatch(/Input "artifact-path" must name a file or directory on the runner, relative to the workspace .*"missing-dir" \(ENOENT\)/);
  });

  it('a rollback needs no source', () => {
    setInputs({ ...ssh, 'systemd-unit': 'shop', rollback: 'previous' });
    expect(systemdOf(readDeployInputs())).toEqual({ unit: 'shop.service' });
  });

  it('refuses a SHA-less git deploy and systemd inputs with another strategy', () => {
    process.env.GITHUB_SHA = 'main';
    setInputs({ ...ssh, 'systemd-unit': 'shop', 'git-repository': 'git@github.com:a/b.git' });
    expect(failure()).toContain('GITHUB_SHA, which must be a full commit SHA; GITHUB_SHA is "main"');
    setInputs({ ...ssh, strategy: 'recreate', 'systemd-unit': 'shop' });
    expect(failure()).toContain('"systemd-unit" only apply to strategy: systemd');
  });

  it('validates unit names', () => {
    expect(parseUnit('app')).toBe('app.service');
    expect(parseUnit('app-1.service')).toBe('app-1.service');
    expect(parseUnit('web@8080')).toBe('web@8080.service');
    expect(parseUnit('my.app')).toBe('my.app.service');
    for (const bad of ['-app', 'app.socket', 'app;rm', 'a b', 'web@.service', '']) {
      expect(() => parseUnit(bad), bad).toThrow(/Input "systemd-unit" must be the name of a service unit/);
    }
  });

  it('validates clone URLs and keeps credentials off the server', () => {
    for (const good of [
      'git@github.com:acme/app.git',
      'ssh://git@host:2222/acme/app.git',
      'https://github.com/acme/app.git',
      'file:///srv/app.git',
      'host:repos/app',
    ])
      expect(parseGitRepository(good)).toBe(good);
    expect(() => parseGitRepository('https://x-access-token:ghs_abc@github.com/acme/app.git')).toThrow(/must not carry credentials/);
    expect(() => parseGitRepository('https://ghs_abc@github.com/acme/app.git')).toThrow(/must not carry credentials/);
    for (const bad of ['--upload-pack=touch /tmp/x', 'ftp://host/a.git', 'just words', '/srv/app.git'])
      expect(() => parseGitRepository(bad), bad).toThrow(/Input "git-repository" must be a clone URL/);
  });

  it('dry-run plans the real commands: no docker, tar from stdin, install, switch, restart', async () => {
    setInputs({ ...ssh, 'systemd-unit': 'shop', 'artifact-path': 'build', 'install-command': 'make install', 'dry-run': 'true' });
    const inputs = readDeployInputs();
    const steps = await planDeploy(new PlanRecorder(), inputs, runContext({ GITHUB_SHA: SHA }));
    const text = steps.map((step) => (step.kind === 'run' ? `${step.description}\n${step.script}` : `${step.description} ${step.remotePath}`)).join('\n');
    expect(text).not.toContain('docker');
    expect(steps.map((step) => step.description)).toEqual([
      'take the deploy lock',
      'inspect shop.service (must be installed; sudo -n for systemctl unless the user is root)',
      'read releases',
      expect.stringMatching(/^create release \d{8}T\d{6}Z-0123456-0000$/),
      'upload meta.json',
      'upload build (tar.gz stream of the directory)',
      'install-command',
      expect.stringMatching(/^point current at /),
      'reset-failed shop.service',
      'restart shop.service',
      'state of shop.service',
      expect.stringMatching(/^the health gate/),
      'state of shop.service',
      expect.stringMatching(/^mark release \S+ current, append to the audit log$/),
    ]);
    expect(text).toMatch(/tar -x -z --no-same-owner -f - -C \/opt\/app\/releases\/\S+/);
    expect(text).toContain("bash -c 'make install'");
    expect(text).toContain('systemctl restart shop.service');
  });
});
