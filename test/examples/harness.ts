// What every example test needs: the example copied as a user's repository, the server prepared
// the way the example's README says, and the example's own workflows run through
// test/workflow-runner.ts with the repository's variables and secrets.
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, type Registry } from '@skiff/testbed';
import { runWorkflow, type ActionStandIn, type WorkflowRun } from '../workflow-runner';

export const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

/** A copy of examples/<name> to work on as the user's repository; `edit` stands for their next commit. */
export async function userRepository(name: string) {
  const dir = await tempDir(`skiff-example-${name}`);
  await cp(join(EXAMPLES, name), dir.path, { recursive: true });
  return {
    path: dir.path,
    remove: dir.remove,
    async edit(file: string, change: (text: string) => string) {
      const path = join(dir.path, file);
      await writeFile(path, change(await readFile(path, 'utf8')));
    },
  };
}

/** The ```sh blocks of examples/<name>/README.md, in order: what a user is told to type. */
export async function readmeShellBlocks(name: string): Promise<string[]> {
  const text = await readFile(join(EXAMPLES, name, 'README.md'), 'utf8');
  return [...text.matchAll(/^( *)```sh\n([\s\S]*?)^\1```$/gm)].map((m) => m[2]!.replace(new RegExp(`^${m[1]}`, 'gm'), ''));
}

/** What runReadmeSetup needs of a server: a root shell on it and root's login key. */
export interface ReadmeServer {
  exec(args: readonly string[]): Promise<string>;
  privateKeyPath: string;
}

/**
 * Runs a README's server set-up block on the server as root, exactly as written but for the
 * placeholder key line, which gets the test's deploy key (`keyOf`'s root key: one deploy key for
 * several servers). The server has no sudo (it is root).
 */
export async function runReadmeSetup(host: ReadmeServer, block: string, placeholderKey: string, keyOf: ReadmeServer = host): Promise<string> {
  if (!block.includes(placeholderKey)) throw new Error(`the README block no longer shows the placeholder key ${placeholderKey}:\n${block}`);
  const publicKey = (await readFile(`${keyOf.privateKeyPath}.pub`, 'utf8')).trim();
  const script = block.replace(placeholderKey, publicKey);
  const output = await host.exec(['bash', '-ec', `sudo() { "$@"; }\n${script}`]);
  // This test server's sshd runs without PAM, and sshd then refuses accounts whose password is
  // locked (useradd's default); with PAM, as on Ubuntu and Debian, a key login works as is.
  await host.exec(['usermod', '-p', '*', 'deploy']);
  return output;
}

/** GET over plain HTTP; status and body (no redirects, 5 s limit). */
export async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000), redirect: 'manual' });
  return { status: response.status, body: await response.text() };
}

export interface ExampleSettings {
  /** The user's repository (a copy of the example). */
  repository: string;
  /** The repository's variables and secrets, as its settings page would hold them. */
  vars: Record<string, string>;
  secrets: Record<string, string>;
  /** The GHCR stand-in: it takes the run's actor and token as its login, as GHCR takes the job token. */
  registry?: Registry;
  /** The commit the run is for (github.sha, GITHUB_SHA): each push of the user's is a new one. */
  sha?: string;
  /** More internet names the test bed serves from loopback (`api.cloudflare.com` → `127.0.0.1:PORT`), beside ghcr.io. */
  hostAliases?: Record<string, string>;
  /** The runner's environment for actions, e.g. NODE_EXTRA_CA_CERTS for a stand-in served over TLS. */
  env?: Record<string, string>;
  /** Stand-ins for third-party actions the example's own jobs use (docker/setup-qemu-action). */
  actions?: Record<string, ActionStandIn>;
}

/** Runs one of the example's workflows as GitHub would on this event; SKIFF_EXAMPLE_LOGS=1 prints every step's log. */
export async function runExampleWorkflow(
  settings: ExampleSettings,
  workflow: string,
  event: { name: string; inputs?: Record<string, string | boolean> },
): Promise<WorkflowRun> {
  const run = await runWorkflow({
    repository: settings.repository,
    workflow: `.github/workflows/${workflow}`,
    event,
    vars: settings.vars,
    secrets: settings.secrets,
    // Without a registry (an example that ships no image), the run's actor and token are plain test values.
    github: {
      actor: settings.registry?.username ?? 'acme-dev',
      token: settings.registry?.password ?? 'ghs_example-job-token',
      ...(settings.sha ? { sha: settings.sha } : {}),
    },
    hostAliases: { ...(settings.registry ? { 'ghcr.io': settings.registry.address } : {}), ...settings.hostAliases },
    ...(settings.env ? { env: settings.env } : {}),
    ...(settings.actions ? { actions: settings.actions } : {}),
  });
  if (process.env.SKIFF_EXAMPLE_LOGS)
    for (const job of run.jobs) for (const step of job.steps) console.log(`=== ${workflow} ${job.id} / ${step.name} (${step.outcome})\n${step.log}`);
  return run;
}
