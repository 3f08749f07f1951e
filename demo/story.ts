import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Decrypter } from 'age-encryption';
import { registryManifestDigest, sh, type BundleRun, type RunnerEvent, sshdActionInputs } from '@skiff/testbed';
import { control, runAction, type Action, type ActionRun } from './actions';
import { Checks, header, note, print, showRun, type StepResult } from './report';
import { POSTGRES_IMAGE } from './app';
import { CF_TABLE, DEMO_SHA, IMAGE_REPO, PROJECT, type Sandbox } from './sandbox';

/**
 * The story `npm run demo` tells, one step per beat of the issue: build & push v1 → deploy v1 →
 * deploy a broken v2 → automatic rollback to v1 → back up PostgreSQL (verified, encrypted) → list
 * backups → restore drill → allowlist sync with proof. Each step runs a committed action bundle
 * the runner's way, shows what a job page would show, then checks what really happened on the
 * "servers" — by HTTP, Docker, PostgreSQL, S3 and real connections, not by the action's word.
 */

export const STEP_TITLES = [
  'Build & push v1',
  'Deploy v1',
  'Deploy a broken v2',
  'Automatic rollback to v1',
  'Back up PostgreSQL (verified, encrypted)',
  'List backups',
  'Restore drill',
  'Cloudflare allowlist on the edge host',
] as const;

const ORDERS = 2000;

interface Outcome {
  ok: boolean;
  result: string;
}

/** What a later step needs from an earlier one, in words for the final table. */
const NEEDS: Record<keyof Memory, string> = {
  v1: 'the image of step 1',
  v1Release: 'the release of step 2',
  backupId: 'the backup of step 5',
  backupLocation: 'the backup of step 5',
};

/** What later steps need from earlier ones. */
interface Memory {
  v1?: { image: string; imageRef: string; digest: string };
  v1Release?: string;
  backupId?: string;
  backupLocation?: string;
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(4000) });
    return { status: response.status, body: (await response.text()).trim() };
  } catch (error) {
    return { status: 0, body: (error as Error).message };
  }
}

/** SQL inside the stack's PostgreSQL, through Compose (as an operator would on the server). */
function psql(database: string, sql: string): Promise<string> {
  return sh('docker', ['compose', '-p', PROJECT, 'exec', '-T', 'db', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-qtA', '-d', database, '-c', sql], {
    timeoutMs: 60_000,
  }).then((out) => out.trim());
}

/** curl from one of this machine's source addresses; the firewall's verdict in a few words. */
async function connectFrom(source: string, url: string): Promise<{ answered: boolean; text: string }> {
  const args = ['-s', '--interface', source, '--connect-timeout', '2', '--max-time', '4', '-o', '-', '-w', '\n%{http_code}', url];
  try {
    const out = (await sh('curl', args, { timeoutMs: 10_000 })).trim().split('\n');
    return { answered: true, text: `HTTP ${out.at(-1)} "${out.slice(0, -1).join(' ').trim()}"` };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const why = code === 7 ? 'connection refused' : code === 28 ? 'no answer within 2 s (dropped)' : `curl exit ${String(code)}`;
    return { answered: false, text: why };
  }
}

/** Whether a secret shows up in what a job page would show: the log (the runner hides ::add-mask:: lines) or the summary. */
function leaks(run: BundleRun, secret: string): boolean {
  return run.summary.includes(secret) || run.stdout.split('\n').some((line) => line.includes(secret) && !line.startsWith('::add-mask::'));
}

/** The app container's image as Compose started it (the deploy pins it to name@sha256:…). */
async function runningAppImage(): Promise<string> {
  const id = (await sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', 'label=com.docker.compose.service=app']))
    .trim()
    .split('\n')[0];
  if (!id) return '(no running app container)';
  return (await sh('docker', ['inspect', '--format', '{{.Config.Image}}', id])).trim();
}

export class Story {
  private readonly memory: Memory = {};
  readonly results: StepResult[] = [];

  constructor(private readonly sandbox: Sandbox) {}

  private get image(): string {
    return `${this.sandbox.registry.address}/${IMAGE_REPO}`;
  }

  private ssh(server = this.sandbox.vps, host = server.host): Record<string, string> {
    return { ...sshdActionInputs(server), host };
  }

  private run(action: Action, inputs: Record<string, string>, expectedCode: number, event?: RunnerEvent): Promise<ActionRun> {
    return runAction(action, this.sandbox.job, inputs, event).then((run) => {
      showRun(action, run, expectedCode);
      return run;
    });
  }

  private deployInputs(images: string): Record<string, string> {
    const { appPort, projectDir } = this.sandbox;
    // env-file is a secret input: it becomes the release's .env (0600) and is masked in the log.
    return {
      ...this.ssh(),
      'project-dir': projectDir,
      'project-name': PROJECT,
      'env-file': `SHOP_SECRET_KEY=${this.sandbox.appSecret}\n`,
      images,
      // Checked from the server through the SSH connection: the app listens on the VPS's loopback only.
      'health-url': `http://127.0.0.1:${appPort}/health`,
      'health-from': 'host',
      'health-interval': '1s',
      'health-timeout': '20s',
      'rollback-on-failure': 'true',
    };
  }

  private backupInputs(extra: Record<string, string>): Record<string, string> {
    const { s3 } = this.sandbox;
    return {
      ...this.ssh(),
      sources: `- type: postgres\n  service: db\n  project: ${PROJECT}\n  database: shop\n  user: postgres\n`,
      destination: 's3',
      's3-endpoint': s3.endpoint,
      's3-bucket': s3.bucket,
      's3-prefix': 'shop',
      's3-access-key-id': s3.accessKeyId,
      's3-secret-access-key': s3.secretAccessKey,
      ...extra,
    };
  }

  /** Runs every step in order; a step whose input an earlier failure took away is reported as not run. */
  async tell(): Promise<StepResult[]> {
    const steps: [string, string, () => Promise<Outcome>, (keyof Memory)[]][] = [
      [
        STEP_TITLES[0],
        'the image is built, smoke-tested (its /health answers) and pushed; the registry serves the digest the action outputs.',
        () => this.buildPush(),
        [],
      ],
      [STEP_TITLES[1], 'the stack (app v1 + PostgreSQL) starts on the VPS, pinned to the digest, and passes the health gate.', () => this.deployV1(), ['v1']],
      [STEP_TITLES[2], 'the step FAILS (exit 1) because v2 fails the health gate; status rolled-back.', () => this.deployV2(), ['v1Release']],
      [STEP_TITLES[3], 'v1 serves again, from the same digest, with the database untouched.', () => this.checkRollback(), ['v1Release']],
      [
        STEP_TITLES[4],
        'pg_dump in the db service streams through the runner, encrypted with age, to S3; verified before it counts.',
        () => this.backup(),
        ['v1Release'],
      ],
      [STEP_TITLES[5], 'the backup just made is listed.', () => this.list(), ['backupId']],
      [STEP_TITLES[6], 'the latest backup is decrypted, restored into a scratch database, counted and dropped.', () => this.drill(), ['backupId']],
      [
        STEP_TITLES[7],
        'the host accepts web traffic only from Cloudflare ranges: an allowed source gets in, another is refused; SSH keeps working.',
        () => this.allowlist(),
        [],
      ],
    ];
    for (const [index, [title, expectation, step, needs]] of steps.entries()) {
      if (control.stopped) break;
      const missing = needs.filter((key) => this.memory[key] === undefined);
      if (missing.length > 0) {
        this.results.push({ title, status: 'skipped', result: `needs ${missing.map((key) => NEEDS[key]).join(' and ')}`, seconds: 0 });
        continue;
      }
      header(index + 1, steps.length, title, expectation);
      const started = performance.now();
      let outcome: Outcome;
      try {
        outcome = await step();
      } catch (error) {
        print(`  ✘ ${(error as Error).message}`);
        outcome = { ok: false, result: (error as Error).message.split('\n')[0]! };
      }
      const seconds = (performance.now() - started) / 1000;
      this.results.push({ title, status: outcome.ok ? 'passed' : 'failed', result: outcome.result, seconds });
    }
    return this.results;
  }

  private async buildPush(): Promise<Outcome> {
    const { registry } = this.sandbox;
    const ref = 'refs/tags/v1.0.0';
    const event: RunnerEvent = {
      name: 'push',
      ref,
      sha: DEMO_SHA,
      payload: {
        ref,
        after: DEMO_SHA,
        repository: {
          name: 'shop',
          full_name: IMAGE_REPO,
          html_url: `https://github.com/${IMAGE_REPO}`,
          default_branch: 'main',
          description: 'The Skiff demo shop',
        },
        head_commit: { id: DEMO_SHA, message: 'Release 1.0.0', timestamp: '2026-01-15T10:00:00Z' },
      },
    };
    note(`A push of tag v1.0.0; the app's source is in the workspace's app/ folder.`);
    const run = await this.run(
      'action-build-push',
      {
        image: this.image,
        username: registry.username,
        password: registry.password,
        context: 'app',
        'smoke-test': 'true',
        'smoke-url': ':8080/health',
        'smoke-timeout': '30s',
      },
      0,
      event,
    );
    const check = new Checks();
    const { outputs } = run.main;
    const digest = outputs.digest ?? '';
    check.that(run.main.code === 0, `the step succeeded (exit ${run.main.code})`);
    check.that(/^sha256:[0-9a-f]{64}$/.test(digest), `digest output: ${digest || '(empty)'}`);
    const tags = (outputs.tags ?? '').split('\n');
    check.that(
      tags.includes(`${this.image}:1.0.0`) && tags.includes(`${this.image}:latest`),
      `tags include 1.0.0 and latest (${tags.map((t) => t.split(':').at(-1)).join(', ')})`,
    );
    const served = await registryManifestDigest(registry, IMAGE_REPO, '1.0.0');
    check.that(served === digest && digest !== '', `"GHCR" serves ${IMAGE_REPO}:1.0.0 as ${served ?? 'nothing'}`);
    check.that(run.post?.code === 0, `the post step (registry logout) ran: exit ${run.post?.code}`);
    if (check.ok) this.memory.v1 = { image: this.image, imageRef: outputs['image-ref'] ?? `${this.image}@${digest}`, digest };
    return { ok: check.ok, result: check.ok ? `pushed ${IMAGE_REPO}:1.0.0 = ${digest.slice(0, 19)}…` : check.failed.join('; ') };
  }

  private async deployV1(): Promise<Outcome> {
    const v1 = this.memory.v1!;
    note(`images: app=${v1.imageRef} (the image-ref output of step 1). env-file: SHOP_SECRET_KEY=… (a secret input).`);
    note(`db runs ${POSTGRES_IMAGE}, built on the VPS: it has no registry digest, so the deploy says it cannot pin it.`);
    const run = await this.run('action-deploy', this.deployInputs(`app=${v1.imageRef}`), 0);
    const check = new Checks();
    const { outputs } = run.main;
    check.that(run.main.code === 0, `the step succeeded (exit ${run.main.code})`);
    check.that(outputs.status === 'deployed', `status output: ${outputs.status}`);
    const release = outputs['release-id'] ?? '';
    check.that(release !== '', `release-id output: ${release || '(empty)'}`);
    const home = await httpGet(`http://127.0.0.1:${this.sandbox.appPort}/`);
    check.that(home.body === 'Skiff demo shop v1', `the VPS's app answers: HTTP ${home.status} "${home.body}"`);
    const image = await runningAppImage();
    check.that(image.endsWith(`@${v1.digest}`), `the app container runs ${image}`);
    const env = await sh('docker', ['compose', '-p', PROJECT, 'exec', '-T', 'app', 'env']);
    const secret = this.sandbox.appSecret;
    check.that(env.includes(`SHOP_SECRET_KEY=${secret}`), 'the app got SHOP_SECRET_KEY from the env-file');
    check.that(!leaks(run.main, secret), 'the secret appears nowhere in the log (only in the ::add-mask:: command) or the summary');
    check.that(run.post?.code === 0, `the post step (deploy lock) ran: exit ${run.post?.code}`);
    if (!check.ok) return { ok: false, result: check.failed.join('; ') };
    this.memory.v1Release = release;

    print();
    note(`Meanwhile the shop takes ${ORDERS} orders (written into the stack's PostgreSQL, database "shop").`);
    await psql('postgres', 'create database shop');
    await psql(
      'shop',
      `create table orders (id serial primary key, customer text not null, total_cents int not null, placed_at timestamptz not null default now()); insert into orders (customer, total_cents) select 'customer-' || g, 100 + (g * 37) % 9900 from generate_series(1, ${ORDERS}) g`,
    );
    return { ok: true, result: `release ${release} healthy, serving v1` };
  }

  private async deployV2(): Promise<Outcome> {
    note(`images: app=${this.sandbox.v2Image} — the bad release, whose /health answers 500.`);
    const run = await this.run('action-deploy', this.deployInputs(`app=${this.sandbox.v2Image}`), 1);
    const check = new Checks();
    const { outputs } = run.main;
    check.that(run.main.code === 1, `the step failed, as it must (exit ${run.main.code})`);
    check.that(outputs.status === 'rolled-back', `status output: ${outputs.status}`);
    check.that(outputs['rolled-back'] === 'true', `rolled-back output: ${outputs['rolled-back']}`);
    check.that(outputs['previous-release-id'] === this.memory.v1Release, `previous-release-id output names v1's release: ${outputs['previous-release-id']}`);
    check.that(run.post?.code === 0, `the post step (deploy lock) ran: exit ${run.post?.code}`);
    return { ok: check.ok, result: check.ok ? `failed the health gate (exit 1), status rolled-back` : check.failed.join('; ') };
  }

  private async checkRollback(): Promise<Outcome> {
    note('No action runs here: the rollback happened inside step 3. This step looks at the VPS from outside.');
    const check = new Checks();
    const port = this.sandbox.appPort;
    const home = await httpGet(`http://127.0.0.1:${port}/`);
    check.that(home.body === 'Skiff demo shop v1', `the app answers: HTTP ${home.status} "${home.body}"`);
    const health = await httpGet(`http://127.0.0.1:${port}/health`);
    check.that(health.status === 200, `/health answers: HTTP ${health.status} "${health.body}"`);
    const image = await runningAppImage();
    check.that(image.endsWith(`@${this.memory.v1!.digest}`), `the app container runs v1's digest again: ${image}`);
    const orders = await psql('shop', 'select count(*) from orders');
    check.that(orders === String(ORDERS), `the database still holds ${orders} orders`);
    return { ok: check.ok, result: check.ok ? `v1 serves again, ${orders} orders intact` : check.failed.join('; ') };
  }

  private async backup(): Promise<Outcome> {
    const { age, s3 } = this.sandbox;
    note(`encrypt-recipients: ${age.recipient} (only the public key; the identity never goes to CI).`);
    const run = await this.run('action-backup', this.backupInputs({ 'encrypt-recipients': age.recipient, 'keep-daily': '7' }), 0);
    const check = new Checks();
    const { outputs } = run.main;
    check.that(run.main.code === 0, `the step succeeded (exit ${run.main.code})`);
    check.that(outputs.verified === 'true', `verified output: ${outputs.verified}`);
    const id = outputs['backup-id'] ?? '';
    check.that(id !== '', `backup-id output: ${id || '(empty)'}`);
    const location = /^s3:\/\/([^/]+)\/(.+)$/.exec(outputs.location ?? '');
    check.that(location !== null, `location output: ${outputs.location}`);
    if (location === null) return { ok: false, result: check.failed.join('; ') };

    // Fetch the stored object ourselves: it must be age ciphertext, and our identity must open it to a pg_dump archive.
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    try {
      const object = await client.send(new GetObjectCommand({ Bucket: location[1], Key: location[2] }));
      const stored = await object.Body!.transformToByteArray();
      const head = Buffer.from(stored.subarray(0, 21)).toString('latin1');
      check.that(head === 'age-encryption.org/v1', `the object in S3 (${stored.length} bytes) is age ciphertext: starts "${head}"`);
      const decrypter = new Decrypter();
      decrypter.addIdentity(age.identity);
      const plain = await decrypter.decrypt(stored);
      const magic = Buffer.from(plain.subarray(0, 5)).toString('latin1');
      check.that(magic === 'PGDMP', `decrypted with the demo's identity it is a pg_dump archive (${plain.length} bytes, starts "${magic}")`);
    } finally {
      client.destroy();
    }
    if (check.ok) {
      this.memory.backupId = id;
      this.memory.backupLocation = outputs.location;
    }
    return { ok: check.ok, result: check.ok ? `${id}, encrypted, ${outputs.size} bytes in S3` : check.failed.join('; ') };
  }

  private async list(): Promise<Outcome> {
    const run = await this.run('action-backup', this.backupInputs({ mode: 'list' }), 0);
    const check = new Checks();
    check.that(run.main.code === 0, `the step succeeded (exit ${run.main.code})`);
    check.that(run.main.summary.includes(this.memory.backupId!), `the summary lists ${this.memory.backupId}`);
    return { ok: check.ok, result: check.ok ? `lists ${this.memory.backupId}` : check.failed.join('; ') };
  }

  private async drill(): Promise<Outcome> {
    note("decrypt-identity: the demo's age identity (a secret: masked in the log).");
    const run = await this.run('action-backup', this.backupInputs({ mode: 'drill', 'backup-id': 'latest', 'decrypt-identity': this.sandbox.age.identity }), 0);
    const check = new Checks();
    const { main } = run;
    check.that(main.code === 0, `the step succeeded (exit ${main.code})`);
    check.that(main.outputs.verified === 'true', `verified output: ${main.outputs.verified}`);
    check.that(main.outputs['backup-id'] === this.memory.backupId, `drilled backup-id: ${main.outputs['backup-id']}`);
    check.that(/orders\D+2000\b/.test(main.summary) || /2000\D+orders/.test(main.summary), `the summary shows the restored copy's ${ORDERS} orders`);
    check.that(!leaks(main, this.sandbox.age.identity), 'the identity appears nowhere in the log (only in the ::add-mask:: command) or the summary');
    const databases = (await psql('postgres', 'select datname from pg_database where not datistemplate order by 1')).split('\n');
    check.that(databases.join(',') === 'postgres,shop', `the scratch database is gone again (databases: ${databases.join(', ')})`);
    return { ok: check.ok, result: check.ok ? `restored ${main.outputs['backup-id']} into a scratch database: ${ORDERS} orders` : check.failed.join('; ') };
  }

  private async allowlist(): Promise<Outcome> {
    const { edge, cloudflare } = this.sandbox;
    const sources = `${edge.allowed} (inside ${edge.range}, listed as a Cloudflare range by the stand-in) and ${edge.refused} (listed nowhere)`;
    note(`The edge host ${edge.host.nsAddress} serves its shop page on :80. Two visitors: ${sources}.`);
    const before = await Promise.all([connectFrom(edge.allowed, edge.web.url), connectFrom(edge.refused, edge.web.url)]);
    note(`Before: from ${edge.allowed}: ${before[0].text}; from ${edge.refused}: ${before[1].text}.`);

    const run = await this.run(
      'action-cf-allowlist',
      { ...this.ssh(edge.sshd, edge.host.nsAddress), 'source-url': cloudflare.url, table: CF_TABLE, ports: '80,443', 'confirm-timeout': '20s' },
      0,
    );
    const check = new Checks();
    check.that(run.main.code === 0, `the step succeeded (exit ${run.main.code})`);
    check.that(run.main.outputs.changed === 'true', `changed output: ${run.main.outputs.changed}`);
    const [allowed, refused] = await Promise.all([connectFrom(edge.allowed, edge.web.url), connectFrom(edge.refused, edge.web.url)]);
    check.that(allowed.answered, `from ${edge.allowed} (a "Cloudflare" address): ${allowed.text}`);
    check.that(!refused.answered, `from ${edge.refused} (any other address): ${refused.text}`);
    check.that(before[0].answered && before[1].answered, 'both got in before the allowlist, so the firewall is what changed');
    const knownHosts = join(this.sandbox.job.env.HOME!, 'edge_known_hosts');
    await writeFile(knownHosts, `${edge.sshd.knownHostsLine}\n`);
    const ssh = await sh(
      'ssh',
      [
        '-i',
        edge.sshd.privateKeyPath,
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'BatchMode=yes',
        '-o',
        'ConnectTimeout=4',
        `root@${edge.host.nsAddress}`,
        'echo ssh-ok',
      ],
      { timeoutMs: 15_000 },
    ).catch((e: Error) => e.message);
    check.that(ssh.trim() === 'ssh-ok', `a fresh SSH login to the host still works: ${ssh.trim().split('\n')[0]}`);
    check.that(
      cloudflare.server.requests.some((r) => r.path === '/client/v4/ips'),
      `the action read the IP list from the stand-in (${cloudflare.server.requests.length} request)`,
    );
    return { ok: check.ok, result: check.ok ? `${edge.allowed} gets in, ${edge.refused}: ${refused.text}` : check.failed.join('; ') };
  }
}
