import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import {
  createNetnsHost,
  ensureBaseImages,
  freePort,
  processAlive,
  sh,
  spawnDaemon,
  startNetnsWebServer,
  startRegistry,
  startSshd,
  stopPid,
  tempDir,
  waitFor,
  type NetnsHost,
  type NetnsWebServer,
  type Registry,
  type SshdServer,
} from '@skiff/testbed';
import type { JobContext } from './actions';
import { composeFile, DEMO_LABEL, POSTGRES_IMAGE, writeAppContext, writePostgresContext } from './app';
import type { Cleanup } from './cleanup';
import { startCloudflareStandIn, type CloudflareStandIn } from './cloudflare';

/**
 * The throwaway world the story runs in, all on this machine: an OpenSSH server on loopback as
 * "the VPS" (root, so its docker is this machine's engine), a registry with auth as "GHCR",
 * s3rver as the S3 bucket, an age key pair, a network namespace as the host behind Cloudflare
 * with a stand-in for Cloudflare's IP list, and a "repository" checkout as the runner's workspace.
 * Every name starts with skiffdemo, so cleanup (and the next run after a crash) finds exactly ours.
 */

export const PROJECT = 'skiffdemo';
export const NETNS = 'skiffdemo-edge';
export const CF_TABLE = 'skiffdemo_cf';
/** The image's repository on "GHCR", like ghcr.io/acme/shop. */
export const IMAGE_REPO = 'acme/shop';
export const DEMO_SHA = '5d1f0e2c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e';
/** The lockout guard of action-cf-allowlist keeps its files here (on the namespace host, which shares this filesystem). */
const CF_STATE_ROOT = '/var/lib/skiff-cf';
const LOCK_FILE = join(tmpdir(), 'skiffdemo.lock');

export interface EdgeHost {
  host: NetnsHost;
  sshd: SshdServer;
  web: NetnsWebServer;
  /** A source address inside the range the Cloudflare stand-in lists. */
  allowed: string;
  /** A source address outside every listed range. */
  refused: string;
  range: string;
}

export interface Sandbox {
  root: string;
  /** What stands in for what, for the demo's opening table. */
  parts: [string, string][];
  vps: SshdServer;
  /** Where the app lives on the VPS (the deploy's project-dir). */
  projectDir: string;
  appPort: number;
  /** The app's secret, delivered in the deploy's env-file (a secret input). */
  appSecret: string;
  registry: Registry;
  s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string };
  age: { identity: string; recipient: string };
  job: JobContext;
  /** The bad release, pushed during set-up. */
  v2Image: string;
  edge: EdgeHost;
  cloudflare: CloudflareStandIn;
}

/** The lock file: who runs the demo, and the servers it started (so a run after a crash can stop them). */
interface LockState {
  pid: number;
  /** A server's pid and a path its command line contains (guards against a reused pid). */
  daemons: { pid: number; match: string }[];
}

async function readLock(): Promise<LockState | undefined> {
  try {
    return JSON.parse(await readFile(LOCK_FILE, 'utf8')) as LockState;
  } catch {
    return undefined;
  }
}

async function commandLine(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replaceAll('\0', ' ');
}

/**
 * One demo at a time: its names are fixed, and the start-up sweep would take a running demo's
 * parts away. A lock left by a demo that was killed (no cleanup ran) lists its servers: they go.
 */
async function takeLock(cleanup: Cleanup): Promise<void> {
  const previous = await readLock();
  if (previous && previous.pid !== process.pid && processAlive(previous.pid)) {
    throw new Error(`another demo is running (pid ${previous.pid}, lock ${LOCK_FILE}); wait for it or stop it first`);
  }
  for (const daemon of previous?.daemons ?? []) {
    if (processAlive(daemon.pid) && (await commandLine(daemon.pid)).includes(daemon.match)) await stopPid(daemon.pid);
  }
  const state: LockState = { pid: process.pid, daemons: [] };
  await writeFile(LOCK_FILE, `${JSON.stringify(state)}\n`);
  cleanup.add('demo lock', async () => {
    if ((await readLock())?.pid === process.pid) await rm(LOCK_FILE, { force: true });
  });
}

/** Adds started servers to the lock file. */
async function recordDaemons(daemons: LockState['daemons']): Promise<void> {
  const state = await readLock();
  if (state?.pid !== process.pid) return;
  state.daemons.push(...daemons);
  await writeFile(LOCK_FILE, `${JSON.stringify(state)}\n`);
}

/** The pid listening on a loopback TCP port (for servers whose helpers do not expose theirs). */
async function listenerPid(port: number): Promise<number | undefined> {
  const out = await sh('ss', ['-Hltnp', `sport = :${port}`]).catch(() => '');
  const pid = /pid=(\d+)/.exec(out)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

async function lines(args: string[]): Promise<string[]> {
  return (await sh('docker', args, { timeoutMs: 60_000 })).split('\n').filter(Boolean);
}

/**
 * Removes every Docker object of the demo: the Compose project's containers, volumes and
 * networks (by Compose's own labels) and every image built with the demo's label.
 */
export async function removeDemoDocker(): Promise<void> {
  const project = `label=com.docker.compose.project=${PROJECT}`;
  const containers = await lines(['ps', '-aq', '--filter', project]);
  if (containers.length > 0) await sh('docker', ['rm', '-f', '-v', ...containers], { timeoutMs: 60_000 });
  const volumes = await lines(['volume', 'ls', '-q', '--filter', project]);
  if (volumes.length > 0) await sh('docker', ['volume', 'rm', '-f', ...volumes], { timeoutMs: 60_000 });
  const networks = await lines(['network', 'ls', '-q', '--filter', project]);
  if (networks.length > 0) await sh('docker', ['network', 'rm', ...networks], { timeoutMs: 60_000 });
  const images = await lines(['images', '-aq', '--filter', `label=${DEMO_LABEL}=true`]);
  if (images.length > 0) await sh('docker', ['rmi', '-f', ...new Set(images)], { timeoutMs: 120_000 });
}

async function removeCfState(): Promise<void> {
  await rm(join(CF_STATE_ROOT, CF_TABLE), { recursive: true, force: true });
  // Only when nothing else lives there: a real guard directory of this machine stays.
  if ((await readdir(CF_STATE_ROOT).catch(() => ['keep'])).length === 0) await rmdir(CF_STATE_ROOT).catch(() => undefined);
}

/** What a crashed earlier run may have left: our Docker objects, the namespace (createNetnsHost replaces it), the guard files, temp dirs. */
async function sweepLeftovers(): Promise<void> {
  await removeDemoDocker();
  await removeCfState();
  for (const name of await readdir(tmpdir())) {
    if (name.startsWith('skiff-skiffdemo-')) await rm(join(tmpdir(), name), { recursive: true, force: true });
  }
}

async function startS3(dir: string, root: string, cleanup: Cleanup): Promise<Sandbox['s3']> {
  const bucket = 'skiffdemo-backups';
  const port = await freePort();
  const pid = spawnDaemon('s3rver', join(root, 'node_modules/.bin/s3rver'), [
    '-d',
    dir,
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-s',
    '--configure-bucket',
    bucket,
  ]);
  cleanup.add('s3rver', () => stopPid(pid));
  await recordDaemons([{ pid, match: dir }]);
  await waitFor('s3rver', async () => (await fetch(`http://127.0.0.1:${port}/`)).status < 500, 30_000, 200);
  return { endpoint: `http://127.0.0.1:${port}`, bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
}

async function startEdge(cleanup: Cleanup): Promise<{ edge: EdgeHost; cloudflare: CloudflareStandIn }> {
  const host = await createNetnsHost(NETNS);
  cleanup.add(`network namespace ${NETNS}`, () => host.remove());
  cleanup.add('allowlist guard files', removeCfState);
  const prefix = host.nsAddress.split('.').slice(0, 3).join('.');
  const allowed = `${prefix}.70`;
  const refused = `${prefix}.150`;
  const range = `${prefix}.64/27`;
  await host.addHostAddress(allowed);
  await host.addHostAddress(refused);
  const [sshd, web, cloudflare] = await Promise.all([
    startSshd({ netns: NETNS, listenAddress: host.nsAddress, port: 22 }).then((s) => (cleanup.add('edge sshd', () => s.stop()), s)),
    startNetnsWebServer(NETNS, host.nsAddress, 80, 'Skiff demo shop, behind Cloudflare\n').then((w) => (cleanup.add('edge web server', () => w.stop()), w)),
    startCloudflareStandIn(range).then((c) => (cleanup.add('Cloudflare stand-in', () => c.server.stop()), c)),
  ]);
  return { edge: { host, sshd, web, allowed, refused, range }, cloudflare };
}

async function dockerBuild(tag: string, context: string): Promise<void> {
  await sh('docker', ['build', '-q', '-t', tag, context], { timeoutMs: 300_000 });
}

/** Provisions the sandbox; every part is registered with `cleanup` as soon as it exists. */
export async function provision(root: string, cleanup: Cleanup): Promise<Sandbox> {
  await takeLock(cleanup);
  await sweepLeftovers();
  // Registered before anything is created, so it runs last: after the stack is down, nothing uses the images.
  cleanup.add('Docker containers, volumes, networks and images of the demo', removeDemoDocker);

  const work = await tempDir('skiffdemo');
  cleanup.add('temporary files', () => work.remove());
  const dir = (name: string) => join(work.path, name);
  const workspace = dir('repo');
  const vpsDockerConfig = dir('vps-docker');
  await Promise.all([mkdir(vpsDockerConfig), mkdir(dir('runner-home')), mkdir(dir('s3')), mkdir(dir('vps/srv'), { recursive: true })]);

  const [base, vps, registry, s3, age, edgeParts] = await Promise.all([
    ensureBaseImages(),
    // The VPS's own docker client config (its registry login), as a real server has in the deploy user's home.
    startSshd({ env: { DOCKER_CONFIG: vpsDockerConfig } }).then((s) => (cleanup.add('VPS sshd', () => s.stop()), s)),
    startRegistry().then((r) => (cleanup.add('registry', () => r.stop()), r)),
    startS3(dir('s3'), root, cleanup),
    generateIdentity().then(async (identity) => ({ identity, recipient: await identityToRecipient(identity) })),
    startEdge(cleanup),
  ]);
  // The edge host's servers run in its namespace, which the next run's createNetnsHost empties and replaces.
  const vpsPid = Number((await readFile(join(vps.dir, 'sshd.pid'), 'utf8').catch(() => '')).trim());
  const registryPid = await listenerPid(Number(registry.address.split(':')[1]));
  await recordDaemons([...(vpsPid > 0 ? [{ pid: vpsPid, match: vps.dir }] : []), ...(registryPid ? [{ pid: registryPid, match: registry.dir }] : [])]);

  const parts: [string, string][] = [
    ['the VPS', `OpenSSH on ${vps.host}:${vps.port} (root; its Docker is this machine's engine), host key ${vps.hostFingerprint}, pinned by every action`],
    ['GHCR', `a registry with a login on ${registry.address}`],
    ['S3', `s3rver on ${s3.endpoint}, bucket ${s3.bucket}`],
    ['an age key pair', `recipient ${age.recipient} (backups are encrypted to it; the identity stays with the demo)`],
    ['a host behind Cloudflare', `network namespace ${NETNS}: ${edgeParts.edge.host.nsAddress}, sshd on :22, a web page on :80`],
    [
      "Cloudflare's IP list",
      `a stand-in on ${edgeParts.cloudflare.server.url}: the real ranges plus ${edgeParts.edge.range} as the "edge" the demo can send from`,
    ],
  ];

  // The server logs in to the registry once, as a server admin does (`docker login ghcr.io`).
  await sh('docker', ['--config', vpsDockerConfig, 'login', '-u', registry.username, '--password-stdin', registry.address], { input: registry.password });

  // The repository: the app's source (v1) and its compose.yaml.
  const image = `${registry.address}/${IMAGE_REPO}`;
  await writeAppContext(join(workspace, 'app'), 'v1');
  const appPort = await freePort();
  await writeFile(join(workspace, 'compose.yaml'), composeFile(`${image}:latest`, appPort));
  await writePostgresContext(dir('postgres-image'), base.debian);
  await writeAppContext(dir('v2'), 'v2');

  // The bad release 1.1.0, pushed by someone without a smoke test; and PostgreSQL's image on the server.
  const v2Image = `${image}:1.1.0`;
  await Promise.all([
    dockerBuild(POSTGRES_IMAGE, dir('postgres-image')),
    (async () => {
      await dockerBuild(v2Image, dir('v2'));
      await sh('docker', ['--config', vpsDockerConfig, 'push', '-q', v2Image], { timeoutMs: 120_000 });
      // Only the registry keeps it: the deploy must pull it like any release.
      await sh('docker', ['rmi', v2Image]);
    })(),
  ]);
  parts.push(['the repository', `app/ (the shop's source, v1) and compose.yaml (app + PostgreSQL ${POSTGRES_IMAGE}, built on the VPS)`]);
  parts.push(['a bad release', `${v2Image}, pushed without a smoke test: its /health answers 500`]);

  return {
    root,
    parts,
    vps,
    projectDir: dir('vps/srv/shop'),
    appPort,
    appSecret: `shop-${randomBytes(12).toString('hex')}`,
    registry,
    s3,
    age,
    job: {
      root,
      workspace,
      env: {
        // One home for the whole job, as on a runner: build-push's post step logs out of the login its main step made.
        HOME: dir('runner-home'),
        GITHUB_REPOSITORY: IMAGE_REPO,
        GITHUB_ACTOR: 'demo-dev',
        GITHUB_SHA: DEMO_SHA,
        GITHUB_RUN_ID: '1001',
        GITHUB_SERVER_URL: 'https://github.com',
      },
    },
    v2Image,
    ...edgeParts,
  };
}
