/**
 * Every program this action runs on the runner, as argv arrays built by pure functions: no shell
 * ever sees them, so no value needs quoting, and tests check each one by its exact output.
 */
export type Argv = readonly string[];

export function loginCommand(registry: string, username: string): Argv {
  // The password goes to stdin: a command line is visible to every process on the runner.
  return ['docker', 'login', registry, '--username', username, '--password-stdin'];
}

export function logoutCommand(registry: string): Argv {
  return ['docker', 'logout', registry];
}

// --- buildx builders ---

/** `docker buildx inspect [--bootstrap] [NAME]`: the current builder when no name is given. */
export function buildxInspectCommand(name?: string, options: { bootstrap?: boolean } = {}): Argv {
  return ['docker', 'buildx', 'inspect', ...(options.bootstrap ? ['--bootstrap'] : []), ...(name === undefined ? [] : [name])];
}

/**
 * A throwaway docker-container builder. Not `--use`d: the runner's current builder stays what the
 * workflow set, and every build names this one with --builder. network=host lets BuildKit reach
 * what the engine reaches (a registry on the runner's loopback, as the docker driver can).
 */
export function buildxCreateCommand(name: string, buildkitImage: string): Argv {
  return [
    'docker',
    'buildx',
    'create',
    '--driver',
    'docker-container',
    '--name',
    name,
    '--driver-opt',
    `image=${buildkitImage}`,
    '--driver-opt',
    'network=host',
  ];
}

/** Removes the builder with its BuildKit container and state volume. */
export function buildxRemoveCommand(name: string): Argv {
  return ['docker', 'buildx', 'rm', name];
}

/** The Docker context whose engine builds with the `docker` driver; buildx names that builder after it. */
export const DOCKER_CONTEXT_SHOW: Argv = ['docker', 'context', 'show'];

/** The engine's storage driver status: the containerd image store lets the `docker` driver build several platforms and export a cache. */
export const DOCKER_DRIVER_STATUS: Argv = ['docker', 'info', '--format', '{{json .DriverStatus}}'];

export function usesContainerdStore(driverStatusJson: string): boolean {
  return /io\.containerd\.snapshotter/.test(driverStatusJson);
}

export interface BuildxInspect {
  name: string;
  driver: string;
  /** Status of each node (running, inactive, ...). */
  statuses: string[];
  /** Every platform any node can build, `*` (set by hand) removed; empty until the builder has booted. */
  platforms: string[];
}

/** Reads `docker buildx inspect` output (the builder's `Name:`/`Driver:` lines, then a block per node). */
export function parseBuildxInspect(output: string): BuildxInspect | undefined {
  const name = /^Name:\s+(\S+)/m.exec(output)?.[1];
  const driver = /^Driver:\s+(\S+)/m.exec(output)?.[1];
  if (name === undefined || driver === undefined) return undefined;
  const statuses = [...output.matchAll(/^Status:\s+(\S+)/gm)].map((m) => m[1]!);
  const platforms = [...output.matchAll(/^Platforms:\s+(.+)$/gm)]
    .flatMap((m) => m[1]!.split(','))
    .map((p) => p.trim().replace(/\*$/, ''))
    .filter((p) => p !== '');
  return { name, driver, statuses, platforms: [...new Set(platforms)] };
}

export interface BuildSpec {
  /** buildx builder to use (--builder); the current one when absent. */
  builder?: string;
  context: string;
  file: string;
  target?: string;
  platforms: readonly string[];
  buildArgs: readonly string[];
  labels: Readonly<Record<string, string>>;
  /** Full references (name:tag). */
  refs: readonly string[];
  /** id → the environment variable holding its value (never the value itself). */
  secretEnv?: Readonly<Record<string, string>>;
  cacheFrom?: readonly string[];
  cacheTo?: readonly string[];
  /** push: to the registry; load: into the engine's image store (needed to run it locally); none: only the builder's cache. */
  output: 'push' | 'load' | 'none';
  metadataFile?: string;
}

function commonBuildArgs(spec: BuildSpec): string[] {
  const args = ['--file', spec.file];
  if (spec.target !== undefined) args.push('--target', spec.target);
  if (spec.platforms.length > 0) args.push('--platform', spec.platforms.join(','));
  for (const arg of spec.buildArgs) args.push('--build-arg', arg);
  for (const [key, value] of Object.entries(spec.labels)) args.push('--label', `${key}=${value}`);
  for (const ref of spec.refs) args.push('--tag', ref);
  return args;
}

export function buildxBuildCommand(spec: BuildSpec): Argv {
  const args = [
    'docker',
    'buildx',
    'build',
    ...(spec.builder === undefined ? [] : ['--builder', spec.builder]),
    '--progress',
    'plain',
    ...commonBuildArgs(spec),
  ];
  for (const [id, env] of Object.entries(spec.secretEnv ?? {})) args.push('--secret', `id=${id},env=${env}`);
  for (const from of spec.cacheFrom ?? []) args.push('--cache-from', from);
  for (const to of spec.cacheTo ?? []) args.push('--cache-to', to);
  if (spec.output !== 'none') args.push(spec.output === 'push' ? '--push' : '--load');
  if (spec.metadataFile !== undefined) args.push('--metadata-file', spec.metadataFile);
  args.push(spec.context);
  return args;
}

/** The classic builder, for runners without buildx: it cannot push, take secrets or build several platforms. */
export function dockerBuildCommand(spec: BuildSpec): Argv {
  return ['docker', 'build', ...commonBuildArgs(spec), spec.context];
}

export function dockerPushCommand(ref: string): Argv {
  return ['docker', 'push', ref];
}

/** `docker push` ends with `TAG: digest: sha256:… size: N`: that digest is the manifest's. */
export function parsePushDigest(output: string): string | undefined {
  return /digest: (sha256:[0-9a-f]{64})/.exec(output)?.[1];
}

/** The pushed manifest's digest from buildx's --metadata-file JSON. */
export function parseMetadataDigest(metadataJson: string): string | undefined {
  const digest = (JSON.parse(metadataJson) as Record<string, unknown>)['containerimage.digest'];
  return typeof digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined;
}

export type CacheType = 'gha' | 'registry';

/** Cache import/export flags; gha is scoped per image so two images of one repository do not evict each other. */
export function cacheFlags(type: CacheType, image: string): { cacheFrom: string[]; cacheTo: string[] } {
  if (type === 'gha') return { cacheFrom: [`type=gha,scope=${image}`], cacheTo: [`type=gha,scope=${image},mode=max`] };
  return { cacheFrom: [`type=registry,ref=${image}:buildcache`], cacheTo: [`type=registry,ref=${image}:buildcache,mode=max`] };
}

// --- smoke test ---

export function imageHealthcheckCommand(image: string): Argv {
  return ['docker', 'image', 'inspect', '--format', '{{json .Config.Healthcheck}}', image];
}

export function runContainerCommand(name: string, image: string, options: { publishPort?: number; platform?: string } = {}): Argv {
  const args = ['docker', 'run', '--detach', '--name', name, '--label', 'org.skiff.smoke-test=true'];
  // Loopback only, on a port the engine picks: the smoke test must not expose the image to the network.
  if (options.publishPort !== undefined) args.push('--publish', `127.0.0.1::${options.publishPort}`);
  if (options.platform !== undefined) args.push('--platform', options.platform);
  args.push(image);
  return args;
}

export function containerStateCommand(name: string): Argv {
  return ['docker', 'inspect', '--format', '{{json .State}}', name];
}

export function containerPortCommand(name: string, port: number): Argv {
  return ['docker', 'port', name, `${port}/tcp`];
}

/** `docker port` prints one `HOST:PORT` line per binding; the IPv4 one is what the runner can reach. */
export function parseHostPort(output: string): number | undefined {
  const line = output.split('\n').find((l) => /^127\.0\.0\.1:\d+$/.test(l.trim()));
  return line === undefined ? undefined : Number(line.trim().split(':')[1]);
}

export function execInContainerCommand(name: string, command: string): Argv {
  return ['docker', 'exec', name, 'sh', '-c', command];
}

export function containerLogsCommand(name: string, lines = 100): Argv {
  return ['docker', 'logs', '--tail', String(lines), name];
}

export function removeContainerCommand(name: string): Argv {
  return ['docker', 'rm', '--force', '--volumes', name];
}

// --- scan ---

export function trivyCommand(imageRef: string, severities: readonly string[], outputFile: string): Argv {
  // Exit code 0: findings are judged from the report, so a trivy crash and a finding are told apart.
  return ['trivy', 'image', '--format', 'json', '--output', outputFile, '--severity', severities.join(','), '--exit-code', '0', '--no-progress', imageRef];
}
