import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { renderReadme } from '../scripts/gen-action-docs.mjs';
import { checkUses, githubDiagnostics, root } from './workflow-check';
import { READ_BY_PREPARE } from '../action-deploy/src/prepare/inputs';
import { PREPARE_INPUTS } from '../action-deploy/src/prepare/prepare-input-definitions';

type Map = Record<string, unknown>;
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const ACTIONS = ['action-build-push', 'action-deploy', 'action-cf-allowlist', 'action-backup'];
const REUSABLE = ['build-deploy.yml', 'deploy.yml', 'rollback.yml', 'backup.yml', 'cf-allowlist.yml', 'prepare-server.yml'].map(
  (f) => `.github/workflows/${f}`,
);
const WORKFLOWS = readdirSync(join(root, '.github/workflows'))
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => `.github/workflows/${f}`);
const TEMPLATES = readdirSync(join(root, 'workflows-templates'))
  .filter((f) => /\.ya?ml$/.test(f))
  .map((f) => `workflows-templates/${f}`);
// The workflows of examples/<app>/, which users copy as they are.
const EXAMPLE_WORKFLOWS = readdirSync(join(root, 'examples')).flatMap((app) =>
  readdirSync(join(root, 'examples', app, '.github/workflows'))
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => `examples/${app}/.github/workflows/${f}`),
);

/** Every `uses:` in a workflow: job-level (reusable workflows) and step-level (actions). */
function allUses(text: string): string[] {
  const jobs = Object.values(((parseYaml(text) as Map).jobs ?? {}) as Record<string, Map>);
  return jobs.flatMap((job) => [
    ...(typeof job.uses === 'string' ? [job.uses] : []),
    ...((job.steps ?? []) as Map[]).flatMap((s) => (typeof s.uses === 'string' ? [s.uses] : [])),
  ]);
}

// The first call bundles GitHub's parser with esbuild (seconds on a busy 2-core machine; once a
// 5 s default timed out under a CI run's load), and a reusable workflow's validation reads every
// action it calls.
const PARSER_TIMEOUT_MS = 60_000;

describe("GitHub's parser accepts", () => {
  it.each([...WORKFLOWS, ...TEMPLATES, ...EXAMPLE_WORKFLOWS])(
    '%s',
    async (path) => {
      expect(await githubDiagnostics(path, read(path))).toEqual([]);
    },
    PARSER_TIMEOUT_MS,
  );
  it.each(ACTIONS.map((a) => `${a}/action.yml`))(
    '%s',
    async (path) => {
      expect(await githubDiagnostics(path, read(path))).toEqual([]);
    },
    PARSER_TIMEOUT_MS,
  );
});

describe('every uses: of a Skiff action or reusable workflow matches the callee', () => {
  it.each([...WORKFLOWS, ...TEMPLATES, ...EXAMPLE_WORKFLOWS])('%s', (path) => {
    expect(checkUses(read(path))).toEqual([]);
  });

  it('the reusable workflows call the actions at their own commit, through .skiff', () => {
    for (const path of REUSABLE) {
      const text = read(path);
      const local = allUses(text).filter((u) => u.startsWith('./'));
      expect(local.length, path).toBeGreaterThan(0);
      for (const uses of local) expect(uses, path).toMatch(/^\.\/\.skiff\/action-/);
      expect(text, path).toContain('repository: ${{ job.workflow_repository }}');
      expect(text, path).toContain('ref: ${{ job.workflow_sha }}');
    }
  });

  it('each starter workflow calls one of the reusable workflows', () => {
    for (const path of TEMPLATES)
      expect(
        allUses(read(path)).some((u) => /^OWNER\/skiff\/\.github\/workflows\/[\w-]+\.yml@[0-9a-f]{40}$/.test(u)),
        path,
      ).toBe(true);
  });
});

describe('security shape', () => {
  it('pins every third-party action to a full commit SHA', () => {
    for (const path of [...WORKFLOWS, ...TEMPLATES, ...EXAMPLE_WORKFLOWS]) {
      for (const uses of allUses(read(path))) {
        if (uses.startsWith('./') || uses.startsWith('$/')) continue;
        expect(uses, path).toMatch(/@[0-9a-f]{40}$/);
      }
    }
  });

  it('grants nothing at the top and least privilege per job', () => {
    for (const path of REUSABLE) {
      const yml = parseYaml(read(path)) as Map;
      expect(yml.permissions, path).toEqual({});
      for (const [id, job] of Object.entries(yml.jobs as Record<string, Map>)) {
        const permissions = job.permissions as Record<string, string>;
        expect(permissions, `${path} ${id}`).toBeDefined();
        const steps = (job.steps ?? []) as Map[];
        const pushes = steps.some((s) => s.uses === './.skiff/action-build-push');
        const deploys = job.environment !== undefined;
        expect(permissions.contents, `${path} ${id}`).toBe('read');
        expect(permissions.packages === 'write', `${path} ${id} packages: write only where pushing`).toBe(pushes);
        expect(permissions.deployments === 'write', `${path} ${id} deployments: write only where deploying`).toBe(deploys);
        expect(
          Object.keys(permissions).filter((k) => !['contents', 'packages', 'deployments'].includes(k)),
          `${path} ${id}`,
        ).toEqual([]);
      }
    }
  });

  it('never overlaps deploys of an environment, or backups / allowlist syncs of a target', () => {
    const group = (path: string, job: string) => ((parseYaml(read(path)) as Map).jobs as Record<string, Map>)[job]!.concurrency as Map;
    expect(group('.github/workflows/build-deploy.yml', 'deploy')).toEqual({
      group: 'skiff-deploy-${{ github.repository }}-${{ inputs.environment }}',
      'cancel-in-progress': false,
    });
    expect(group('.github/workflows/rollback.yml', 'rollback')).toEqual(group('.github/workflows/build-deploy.yml', 'deploy'));
    expect(group('.github/workflows/backup.yml', 'backup').group).toContain('${{ inputs.host }}');
    expect(group('.github/workflows/cf-allowlist.yml', 'allowlist').group).toContain('${{ inputs.hosts }}');
  });

  it('passes secrets only through secrets:, never as inputs', () => {
    for (const path of [...REUSABLE, ...TEMPLATES, ...EXAMPLE_WORKFLOWS]) {
      const text = read(path);
      // a secret in `with:` of a reusable workflow call would be logged like any input
      for (const job of Object.values(((parseYaml(text) as Map).jobs ?? {}) as Record<string, Map>)) {
        if (job.uses) expect(JSON.stringify(job.with ?? {}), path).not.toContain('secrets.');
      }
      expect(text, path).not.toMatch(/secrets:\s*inherit/);
    }
  });
});

describe('a reusable workflow can express what its action can do', () => {
  /** Inputs of the action that the workflow deliberately does not offer, each with the reason a user is told. */
  const AS_KEPT =
    'a rollback re-deploys a kept release exactly as it ran: its own compose files, env, files and images; nothing is built, pulled (but by swarm) or pruned';
  const SYSTEMD = 'strategy systemd ships a release directory, not images: deploy.yml deploys it';
  const JOB_ENVIRONMENT = "the job's own environment records the GitHub Deployment (one per run, not two)";
  const PREPARE = 'prepare-server.yml prepares a server';
  const PREPARE_ONLY = Object.fromEntries(PREPARE_INPUTS.map((input) => [input.name, PREPARE]));
  const deployInputs = Object.keys((parseYaml(read('action-deploy/action.yml')) as { inputs: Map }).inputs);
  const NOT_FOR_PREPARE = Object.fromEntries(
    deployInputs.filter((name) => !READ_BY_PREPARE.has(name)).map((name) => [name, 'a deploy input: prepare-server.yml only prepares the server']),
  );
  /** Per workflow, per action it runs: the inputs it deliberately does not offer, each with the reason a user is told. */
  const notOffered: Record<string, Record<string, Record<string, string>>> = {
    'build-deploy.yml': {
      'action-build-push': {
        registry:
          "images are pushed to the registry their name starts with (GHCR) with the job's token (github-token's default); for another registry call action-build-push directly",
        username: 'see registry',
        password: 'see registry',
        'github-token': 'see registry',
        builder: "auto: the runner's docker driver, or a docker-container builder when platforms or cache need one",
        'buildkit-image': 'see builder',
      },
      'action-deploy': {
        password: 'a CI job logs in with a key (SSH_KEY), never a password',
        'insecure-ignore-host-key': 'the reusable workflow always verifies the host key (known-hosts or fingerprint)',
        rollback: 'rollback.yml rolls back',
        environment: JOB_ENVIRONMENT,
        'environment-url': 'see environment',
        'github-token': 'see environment',
        'systemd-unit': SYSTEMD,
        'artifact-path': SYSTEMD,
        'git-repository': SYSTEMD,
        'install-command': SYSTEMD,
        ...PREPARE_ONLY,
      },
    },
    'deploy.yml': {
      'action-deploy': {
        password: 'a CI job logs in with a key (SSH_KEY), never a password',
        'insecure-ignore-host-key': 'the reusable workflow always verifies the host key (known-hosts or fingerprint)',
        rollback: 'rollback.yml rolls back',
        environment: JOB_ENVIRONMENT,
        'environment-url': 'see environment',
        'github-token': 'see environment',
        ...PREPARE_ONLY,
      },
    },
    'prepare-server.yml': { 'action-deploy': NOT_FOR_PREPARE },
    'rollback.yml': {
      'action-deploy': {
        password: 'a CI job logs in with a key (SSH_KEY), never a password',
        'insecure-ignore-host-key': 'the reusable workflow always verifies the host key (known-hosts or fingerprint)',
        'compose-file': AS_KEPT,
        'env-file': AS_KEPT,
        images: AS_KEPT,
        files: AS_KEPT,
        'build-on-server': AS_KEPT,
        'pull-timeout': AS_KEPT,
        'keep-releases': AS_KEPT,
        'pre-deploy': 'a rollback runs no migration: the kept release starts with the data as it is',
        'pre-deploy-timeout': 'see pre-deploy',
        'backup-before-deploy': 'take one with backup.yml before rolling back, if the data matters',
        'backup-path': 'see backup-before-deploy',
        'backup-keep': 'see backup-before-deploy',
        'rollback-on-failure': 'a failed rollback has nothing further to roll back to',
        'artifact-path': 'a systemd rollback switches to a kept release directory; nothing is uploaded',
        'git-repository': 'see artifact-path',
        'install-command': 'see artifact-path',
        environment: "the job's own environment records the GitHub Deployment (one per run, not two)",
        'environment-url': "see environment (it is the job environment's url)",
        'github-token': 'see environment',
        'coolify-url': 'strategy: coolify rolls back by deploying an earlier image: deploy.yml with coolify-image-tag (e.g. the earlier commit SHA)',
        'coolify-image-tag': 'see coolify-url',
        'coolify-token': 'see coolify-url',
        'coolify-uuid': 'see coolify-url',
        'coolify-tag': 'see coolify-url',
        'coolify-force': 'see coolify-url',
        'coolify-timeout': 'see coolify-url',
        'coolify-poll-interval': 'see coolify-url',
        ...PREPARE_ONLY,
      },
    },
    'backup.yml': {
      'action-backup': {
        password: 'a CI job logs in with a key (SSH_KEY), never a password',
        'insecure-ignore-host-key': 'the reusable workflow always verifies the host key (known-hosts or fingerprint)',
        'artifact-name': 'destination artifact needs actions: write for prune, which a caller granting contents: read cannot give; use the action directly',
        'github-token': 'only for destination artifact (see artifact-name)',
      },
    },
    'cf-allowlist.yml': {
      'action-cf-allowlist': {
        password: 'a CI job logs in with a key (SSH_KEY), never a password',
        'insecure-ignore-host-key': 'the reusable workflow always verifies the host key (known-hosts or fingerprint)',
        'source-url': "the workflow reads Cloudflare's own list (api.cloudflare.com); for a copy of it call action-cf-allowlist directly",
      },
    },
  };
  for (const [workflow, byAction] of Object.entries(notOffered)) {
    it(`${workflow} passes every input of each action it runs, but those it says it does not offer`, () => {
      const text = readFileSync(join(root, '.github/workflows', workflow), 'utf8');
      const steps = Object.values((parseYaml(text) as { jobs: Record<string, { steps?: { uses?: string; with?: Record<string, unknown> }[] }> }).jobs).flatMap(
        (job) => job.steps ?? [],
      );
      const actionSteps = steps.filter((s) => s.uses?.startsWith('./.skiff/action-'));
      expect(actionSteps.map((s) => s.uses!.replace('./.skiff/', '')).sort()).toEqual(Object.keys(byAction).sort());
      for (const step of actionSteps) {
        const reasons = byAction[step.uses!.replace('./.skiff/', '')]!;
        const action = parseYaml(readFileSync(join(root, step.uses!.replace('./.skiff/', ''), 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> };
        const missing = Object.keys(action.inputs).filter((name) => !(name in (step.with ?? {})) && !(name in reasons));
        expect(missing, step.uses).toEqual([]);
        for (const name of Object.keys(reasons)) expect(step.with ?? {}, step.uses).not.toHaveProperty(name);
      }
    });
  }
});

describe('starter workflow metadata', () => {
  it.each(TEMPLATES)('%s has a .properties.json with name, description, iconName, categories', (path) => {
    const properties = JSON.parse(read(path.replace(/\.ya?ml$/, '.properties.json'))) as Map;
    expect(Object.keys(properties).sort()).toEqual(['categories', 'description', 'iconName', 'name']);
    expect(typeof properties.name).toBe('string');
    expect(typeof properties.description).toBe('string');
    expect(readdirSync(join(root, 'workflows-templates'))).toContain(`${properties.iconName as string}.svg`);
    expect((properties.categories as string[]).length).toBeGreaterThan(0);
  });
});

describe('release-please', () => {
  it('has one component per action folder, tagged <folder>/v<version>, at the version in its package.json', () => {
    const config = JSON.parse(read('release-please-config.json')) as { packages: Record<string, Map>; [k: string]: unknown };
    const manifest = JSON.parse(read('.release-please-manifest.json')) as Record<string, string>;
    expect(Object.keys(config.packages).sort()).toEqual([...ACTIONS].sort());
    expect(Object.keys(manifest).sort()).toEqual([...ACTIONS].sort());
    expect(config['include-component-in-tag']).toBe(true);
    expect(config['tag-separator']).toBe('/');
    expect(config['include-v-in-tag']).toBe(true);
    for (const action of ACTIONS) {
      expect(config.packages[action]!.component).toBe(action);
      expect(manifest[action]).toBe((JSON.parse(read(`${action}/package.json`)) as { version: string }).version);
    }
  });
});

// Each check above must be able to fail: feed it deliberately wrong YAML.
describe('the checks catch mistakes', () => {
  const step = (uses: string, withBlock: string) =>
    `on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: ${uses}\n        with:\n${withBlock}`;

  it('GitHub parser: unknown key, bad expression context, bad runs.using', async () => {
    expect(await githubDiagnostics('.github/workflows/x.yml', 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n')).not.toEqual([]);
    expect(
      await githubDiagnostics(
        '.github/workflows/x.yml',
        'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ job.workflow_shaa }}\n',
      ),
    ).not.toEqual([]);
    const action = read('action-deploy/action.yml').replace(/using: .*node24.*/, "using: 'node99'");
    expect(await githubDiagnostics('action-deploy/action.yml', action)).not.toEqual([]);
  });

  it('GitHub parser: the job.workflow_* names we rely on are known to it', async () => {
    const ok = 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ job.workflow_repository }} ${{ job.workflow_sha }}\n';
    expect(await githubDiagnostics('.github/workflows/x.yml', ok)).toEqual([]);
  });

  it('local action: unknown input, missing required input, unknown action', () => {
    expect(checkUses(step('./.skiff/action-deploy', '          host: h\n          username: u\n          hostt: x\n'))).toEqual([
      'job a step 1 (action-deploy): unknown input "hostt"',
    ]);
    expect(checkUses(step('./action-backup', '          host: h\n          username: u\n'))).toEqual([
      'job a step 1 (action-backup): required input "sources" not given',
    ]);
    expect(checkUses(step('./.skiff/action-nope', '          a: b\n'))).toEqual(['job a step 1: action-nope/action.yml does not exist']);
  });

  it('reusable workflow: unknown input, missing required input, wrong types, secrets', () => {
    const call = (withBlock: string, secrets = '    secrets:\n      SSH_KEY: ${{ secrets.K }}\n') =>
      `on: push\njobs:\n  b:\n    uses: OWNER/skiff/.github/workflows/backup.yml@${'a'.repeat(40)}\n    with:\n${withBlock}${secrets}`;
    const good = '      host: h\n      username: u\n      sources: "- {type: redis}"\n';
    expect(checkUses(call(good))).toEqual([]);
    expect(checkUses(call(`${good}      keep-daily: "7"\n      dry-run: "true"\n      host2: x\n`))).toEqual([
      'job b → .github/workflows/backup.yml: input "keep-daily" is number, given string "7"',
      'job b → .github/workflows/backup.yml: input "dry-run" is boolean, given string "true"',
      'job b → .github/workflows/backup.yml: unknown input "host2"',
    ]);
    expect(checkUses(call('      host: 7\n      username: u\n'))).toEqual([
      'job b → .github/workflows/backup.yml: input "host" is string, given number 7',
      'job b → .github/workflows/backup.yml: required input "sources" not given',
    ]);
    expect(checkUses(call(good, '    secrets:\n      SSH_KEYS: x\n'))).toEqual(['job b → .github/workflows/backup.yml: unknown secret "SSH_KEYS"']);
    expect(
      checkUses(
        `on: push\njobs:\n  c:\n    uses: OWNER/skiff/.github/workflows/cf-allowlist.yml@${'a'.repeat(40)}\n    with:\n      hosts: h\n      username: u\n`,
      ),
    ).toEqual(['job c → .github/workflows/cf-allowlist.yml: required secret "SSH_KEY" not passed']);
    expect(checkUses(call(good, '    secrets: inherit\n'))).toEqual([]);
    expect(checkUses('on: push\njobs:\n  b:\n    uses: ./.github/workflows/nope.yml\n')).toEqual([
      'job b: .github/workflows/nope.yml does not exist or is not callable (no on.workflow_call)',
    ]);
  });

  it('pinning check: a tag is not a SHA', () => {
    expect('actions/checkout@v4').not.toMatch(/@[0-9a-f]{40}$/);
  });
});

describe('action README tables (scripts/gen-action-docs.mjs)', () => {
  it.each(ACTIONS)('%s/README.md is what the generator makes from action.yml', (action) => {
    const readme = read(`${action}/README.md`);
    expect(renderReadme(readme, read(`${action}/action.yml`))).toBe(readme);
  });

  it('notices drift: a new input, a changed default and a removed output all change the README', () => {
    const readme = read('action-backup/README.md');
    const yml = read('action-backup/action.yml')
      .replace(/^inputs:\n/m, "inputs:\n  brand-new:\n    description: 'A | piped description.'\n    required: true\n")
      .replace("default: '1024'", "default: '2048'")
      .replace(/^ {2}plan:\n {4}description: .*\n/m, '');
    const next = renderReadme(readme, yml);
    expect(next).toContain('| `brand-new` | yes |  | A \\| piped description. |');
    expect(next).toContain('| `min-size` | no | `2048` |');
    expect(next).not.toContain('| `plan` |');
    expect(next.split('\n').length).toBe(readme.split('\n').length);
  });

  it('replaces between markers when a README has them', () => {
    const readme = '# X\n\n<!-- inputs:start -->\nold\n<!-- inputs:end -->\n\n<!-- outputs:start -->\n<!-- outputs:end -->\n';
    const next = renderReadme(readme, "inputs:\n  a:\n    description: 'A.'\n    default: 'x'\noutputs:\n  o:\n    description: 'O.'\n");
    expect(next).toBe(
      '# X\n\n<!-- inputs:start -->\n| Input | Required | Default | Description |\n| --- | --- | --- | --- |\n| `a` | no | `x` | A. |\n<!-- inputs:end -->\n\n<!-- outputs:start -->\n| Output | Description |\n| --- | --- |\n| `o` | O. |\n<!-- outputs:end -->\n',
    );
  });
});
