import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { InputCollector, InputError, getString, invalidInput, missingInput, type InputDefinition } from '@skiff/action-kit';

export const SYSTEMD_INPUTS = [
  {
    name: 'systemd-unit',
    description:
      'strategy: systemd — the service unit that runs the app from <project-dir>/current, e.g. myapp or myapp.service (it must already be installed on the server). Restarted after every switch.',
    required: false,
  },
  {
    name: 'artifact-path',
    description:
      'strategy: systemd — what a release is made of: a file or directory on the runner, relative to the workspace. A directory is streamed as a tar archive; a .tar/.tar.gz/.tgz/.tar.xz/.tar.zst/.tar.bz2 file is unpacked; any other file is copied in as it is. Exactly one of artifact-path and git-repository.',
    required: false,
  },
  {
    name: 'git-repository',
    description:
      'strategy: systemd — the clone URL the server fetches the commit (GITHUB_SHA) from, e.g. git@github.com:acme/app.git (the server needs its own read access, e.g. a deploy key). Exactly one of artifact-path and git-repository.',
    required: false,
  },
  {
    name: 'install-command',
    description:
      'strategy: systemd — commands run in the new release directory before the switch (e.g. `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt`), with SKIFF_RELEASE_DIR, SKIFF_RELEASE_ID and SKIFF_PROJECT_DIR set. Failure stops the deploy with nothing switched.',
    required: false,
  },
] as const satisfies readonly InputDefinition[];

export type ReleaseSource =
  | {
      kind: 'artifact';
      /** As given, for messages. */
      path: string;
      /** Absolute path on the runner. */
      absolute: string;
      isDirectory: boolean;
    }
  | { kind: 'git'; repository: string; sha: string };

export interface SystemdInputs {
  /** Full unit name, always ending in `.service`. */
  unit: string;
  /** Absent only for `rollback:`, which re-deploys a release already on the server. */
  source?: ReleaseSource;
  installCommand?: string;
}

// systemd's own characters for unit names; the leading letter keeps a name from reading as an option.
const UNIT = /^[A-Za-z0-9_][A-Za-z0-9:_.\\-]*(@[A-Za-z0-9:_.\\-]+)?\.service$/;
const OTHER_UNIT_TYPES = /\.(socket|target|timer|mount|automount|path|slice|scope|device|swap)$/;

/** `myapp` → `myapp.service`, as systemctl reads it; only service units (and template instances) have a process to restart. */
export function parseUnit(value: string): string {
  const name = value.endsWith('.service') || OTHER_UNIT_TYPES.test(value) ? value : `${value}.service`;
  if (!UNIT.test(name) || name.length > 255) {
    throw invalidInput('systemd-unit', 'the name of a service unit, e.g. myapp, myapp.service or myapp@blue.service (letters, digits and :_.\\- only)', value);
  }
  return name;
}

/**
 * Clone URLs git understands: scheme URLs (https, ssh, git, file) and scp-like `user@host:path`.
 * A password or token inside an https URL would sit on the server's command line and in its
 * repo config, so it is refused: server-side credentials (deploy key, credential helper) belong
 * on the server.
 */
export function parseGitRepository(value: string): string {
  const expected = 'a clone URL the server can fetch from: git@host:owner/repo.git, ssh://…, https://… (without user:password) or file:///path';
  if (/[\s\0]/.test(value) || value.startsWith('-')) throw invalidInput('git-repository', expected, value);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (!['https', 'http', 'ssh', 'git', 'file'].includes(scheme)) throw invalidInput('git-repository', expected, value);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw invalidInput('git-repository', expected, value);
    }
    if (url.password !== '' || ((scheme === 'https' || scheme === 'http') && url.username !== '')) {
      throw new InputError(
        'git-repository',
        'Input "git-repository" must not carry credentials (user:password or a token in the URL would end up on the server\'s command line and in its git config); give the server its own read access, e.g. a deploy key, and use the plain URL',
      );
    }
    return value;
  }
  if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$/.test(value) || /^[A-Za-z0-9.-]+:[^/\s][^\s]*$/.test(value)) return value;
  throw invalidInput('git-repository', expected, value);
}

function readArtifact(value: string): ReleaseSource {
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  const absolute = resolve(workspace, value);
  let isDirectory: boolean;
  try {
    const stat = statSync(absolute);
    if (!stat.isDirectory() && !stat.isFile()) throw new Error('not a file or directory');
    isDirectory = stat.isDirectory();
  } catch (error) {
    throw new InputError(
      'artifact-path',
      `Input "artifact-path" must name a file or directory on the runner, relative to the workspace (${workspace}); cannot use ${JSON.stringify(value)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
  return { kind: 'artifact', path: value, absolute, isDirectory };
}

function readSha(): string {
  const sha = (process.env.GITHUB_SHA ?? '').toLowerCase();
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) {
    throw new InputError(
      'git-repository',
      `Input "git-repository" deploys the commit in GITHUB_SHA, which must be a full commit SHA; GITHUB_SHA is ${JSON.stringify(process.env.GITHUB_SHA ?? '')}`,
    );
  }
  return sha;
}

/** The systemd strategy's own inputs; undefined for other strategies. Every problem is reported together. */
export function readSystemdInputs(strategy: string): SystemdInputs | undefined {
  const names = SYSTEMD_INPUTS.map((input) => input.name);
  if (strategy !== 'systemd') {
    const stray = names.filter((name) => getString(name) !== undefined);
    if (stray.length > 0)
      throw new InputError(stray, `Input(s) ${stray.map((name) => `"${name}"`).join(', ')} only apply to strategy: systemd (strategy is ${strategy})`);
    return undefined;
  }
  const c = new InputCollector();
  const unitValue = getString('systemd-unit');
  const unit = unitValue === undefined ? c.add(missingInput('systemd-unit')) : c.read(() => parseUnit(unitValue));
  const artifact = getString('artifact-path');
  const repository = getString('git-repository');
  const installCommand = getString('install-command');
  // A rollback re-deploys a release already on the server, so it needs no source (the same workflow may still name one).
  const rollback = getString('rollback') !== undefined;
  let source: ReleaseSource | undefined;
  if (!rollback) {
    if (artifact !== undefined && repository !== undefined) {
      c.add(
        new InputError(
          ['artifact-path', 'git-repository'],
          'Inputs "artifact-path" and "git-repository" are both set; with strategy: systemd a release comes from exactly one of them',
        ),
      );
    } else if (artifact === undefined && repository === undefined) {
      c.add(
        new InputError(
          ['artifact-path', 'git-repository'],
          'strategy: systemd needs one of "artifact-path" (a file or directory on the runner to upload) or "git-repository" (a clone URL the server fetches GITHUB_SHA from)',
        ),
      );
    } else if (artifact !== undefined) {
      source = c.read(() => readArtifact(artifact));
    } else {
      const url = c.read(() => parseGitRepository(repository!));
      const sha = c.read(readSha);
      if (url !== undefined && sha !== undefined) source = { kind: 'git', repository: url, sha };
    }
  }
  c.finish();
  return { unit: unit!, ...(source ? { source } : {}), ...(installCommand === undefined ? {} : { installCommand }) };
}
