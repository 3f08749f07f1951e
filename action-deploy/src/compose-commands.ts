import { or, pipe, raw, redirectTo, type Command } from '@skiff/shell';

/** How docker and compose are invoked on this server, found once per run by `detectComposeCommand`. */
export interface DockerCli {
  /** `v2` is the `docker compose` plugin, `v1` the old standalone `docker-compose`. */
  compose: 'v2' | 'v1';
  /** Prefix every docker command with `sudo -n` (non-interactive: a password prompt would hang the job). */
  sudo: boolean;
  /**
   * v2 only: the plugin `docker compose` would start, run as Compose's standalone program instead
   * (one program start instead of three, ~0.1 s and ~0.1 CPU-s less per compose command on a small
   * VM); set only where the probe found docker's choice plain (see `detectComposeCommand`).
   */
  composePlugin?: string;
  /**
   * The probe's answer is the one the last deploy to this project kept (`keepCli`): docker would
   * still pick that plugin, but the engine was not asked. A failure before the switch then runs
   * the whole probe for its clearer error (`clearerDockerError`).
   */
  kept?: boolean;
}

/** One compose project as it lives in one release directory. */
export interface ComposeProject {
  name: string;
  /**
   * The stable project directory, not the release directory: relative bind mounts such as
   * `./data:/data` must point at the same place in every release.
   */
  directory: string;
  /** Absolute remote paths, in the order they are merged; the image lock comes last so its pins win. */
  files: readonly string[];
  /** The release's `.env`, passed explicitly so interpolation uses the release being deployed, not the running one. */
  envFile?: string;
}

function sudo(cli: Pick<DockerCli, 'sudo'>): Command {
  return cli.sudo ? ['sudo', '-n'] : [];
}

export function docker(cli: Pick<DockerCli, 'sudo'>, ...args: string[]): Command {
  return [...sudo(cli), 'docker', ...args];
}

export function compose(cli: DockerCli, project: ComposeProject, ...args: string[]): Command {
  const program = cli.compose === 'v1' ? ['docker-compose'] : cli.composePlugin ? [cli.composePlugin] : ['docker', 'compose'];
  return [
    ...sudo(cli),
    ...program,
    '--project-name',
    project.name,
    '--project-directory',
    project.directory,
    ...project.files.flatMap((file) => ['-f', file]),
    ...(project.envFile === undefined ? [] : ['--env-file', project.envFile]),
    ...args,
  ];
}

/** Where the docker CLI looks for plugins after its config folder's `cli-plugins`, in its order (Linux). */
const PLUGIN_DIRS = [
  '/usr/local/lib/docker/cli-plugins',
  '/usr/local/libexec/docker/cli-plugins',
  '/usr/lib/docker/cli-plugins',
  '/usr/libexec/docker/cli-plugins',
];

/**
 * Prints `v2` (followed by the plugin's path where it can be run directly), `v1` or `none`, then
 * up to 300 bytes of what `docker version` said when it could not reach the engine, then
 * `engine-ok` or `engine-failed` (or, with `keptIn`, the kept answer and `engine-kept`). v2 is
 * tried first: where both exist the plugin is the maintained one, and v1 is end-of-life. The
 * engine is checked separately because `docker compose version` answers without it: a user
 * outside the docker group would otherwise only fail at the pull, after the release was
 * uploaded. The two checks run at once
 * (each is a Go program's start, ~0.2 s on a small VM), and docker's complaint is read whole
 * before it is cut: a `head -c` reading it would stop early, and under pipefail docker's SIGPIPE
 * would turn a warning into a failed engine.
 */
export function detectComposeCommand(sudoDocker: boolean, keptIn?: string): Command[] {
  const s = sudo({ sudo: sudoDocker });
  const quiet = raw('>/dev/null 2>&1');
  // `docker compose version` is three program starts (docker, the plugin's metadata, the plugin);
  // the plugin docker would pick, run itself, is one. Only where docker's choice is plain: no sudo
  // (its rules may name docker alone), no extra plugin folders in the CLI's config, and it must say
  // it is Compose v2 or later (v1 says `docker-compose version 1.…`). The compose commands that
  // follow run it the same way: given no `compose` argument, it is Compose's documented standalone
  // form, which turns its arguments into the plugin's and runs the same code.
  const direct: Command[] = sudoDocker
    ? []
    : [
        [raw('config_dir=${DOCKER_CONFIG:-${HOME:-}/.docker} direct=')],
        [
          raw('if ! grep -qs cliPluginsExtraDirs "$config_dir/config.json"; then for dir in "$config_dir/cli-plugins"'),
          ...PLUGIN_DIRS,
          raw('; do if [ -x "$dir/docker-compose" ]; then direct=$dir/docker-compose; break; fi; done; fi'),
        ],
      ];
  // The answer kept by the last deploy to this project (see `keepCli`) stands while docker would
  // still pick the same plugin: no program is started, and the engine is not asked (`engine-kept`).
  const kept: Command[] =
    sudoDocker || keptIn === undefined
      ? []
      : [
          [
            raw('if [ -n "$direct" ] && read -r kept 2>/dev/null <'),
            keptCliPath(keptIn),
            raw('&& [ "$kept" = "v2 $direct" ]; then printf \'%s\\n%s\\n\' "$kept" engine-kept; exit 0; fi'),
          ],
        ];
  return [
    ...direct,
    ...kept,
    [raw('found=$(mktemp) && trap \'rm -f "$found"\' EXIT')],
    [
      raw(
        sudoDocker
          ? '{ if'
          : '{ if [ -n "$direct" ] && said=$("$direct" version 2>/dev/null) && [ "${said#Docker Compose version }" != "$said" ]; then echo "v2 $direct"; elif',
      ),
      ...s,
      'docker',
      'compose',
      'version',
      quiet,
      raw('; then echo v2; elif'),
      ...s,
      'docker-compose',
      'version',
      quiet,
      raw('; then echo v1; else echo none; fi; } >"$found" &'),
    ],
    [
      raw('if said=$('),
      ...s,
      'docker',
      'version',
      '--format',
      '{{.Server.Version}}',
      raw('2>&1 >/dev/null); then engine=engine-ok; else engine=engine-failed; fi'),
    ],
    [raw('wait && cat "$found" && printf \'%s\\n%s\\n\' "${said:0:300}" "$engine"')],
  ];
}

/** Where a deploy keeps the probe's answer for the next one: `v2 <the plugin run directly>`. */
export function keptCliPath(projectDir: string): string {
  return `${projectDir}/.skiff/docker-cli`;
}

/** Keeps a probe's answer that named a plugin to run directly (only that answer is ever kept). */
export function keepCli(projectDir: string, cli: DockerCli): Command[] {
  if (cli.composePlugin === undefined || cli.kept) return [];
  return [['mkdir', '-p', `${projectDir}/.skiff`], redirectTo(['printf', '%s\\n', `v2 ${cli.composePlugin}`], keptCliPath(projectDir))];
}

/** Every script that touches the project runs from the project directory, so v1 and v2 agree on relative paths. */
export function inProject(project: ComposeProject, commands: readonly Command[]): Command[] {
  return [['cd', project.directory], ...commands];
}

/** `services` empty: every service. */
export const pull = (cli: DockerCli, project: ComposeProject, services: readonly string[] = []): Command[] =>
  inProject(project, [compose(cli, project, 'pull', ...services)]);

export const build = (cli: DockerCli, project: ComposeProject, services: readonly string[]): Command[] =>
  inProject(project, [compose(cli, project, 'build', ...services)]);

/**
 * `commands` run with a registry login that lives only as long as this script: a throwaway
 * Docker config dir (0700, removed by the trap however the script ends), the password read from
 * the script's stdin by `docker login --password-stdin`, and each docker (or docker-compose)
 * command of `commands` pointed at that config (a variable name no env file is likely to set: a
 * stack deploy sources the release's .env into the same shell). The user's own ~/.docker/cli-plugins (where a
 * hand-installed Compose plugin lives) stays visible.
 */
export function withRegistryLogin(cli: DockerCli, login: { registry: string; username: string }, commands: readonly Command[]): Command[] {
  if (cli.compose === 'v1' && cli.sudo)
    throw new Error(
      'registry-username needs the Compose v2 plugin when sudo: true (docker-compose v1 reads its login from DOCKER_CONFIG, which sudo drops); install the plugin, or log the server in to the registry once by hand',
    );
  const config = raw('"$skiff_login_config"');
  // docker-compose (v1) and the Compose plugin run directly have no `--config`: they read DOCKER_CONFIG.
  const readsEnv = (token: Command[number]) => token === 'docker-compose' || (cli.composePlugin !== undefined && token === cli.composePlugin);
  const pointed = (command: Command): Command => {
    const at = command.findIndex((token) => token === 'docker' || readsEnv(token));
    if (at < 0 || command.slice(0, at).some((token) => token !== 'sudo' && token !== '-n')) return command;
    if (readsEnv(command[at]!)) return [raw('DOCKER_CONFIG="$skiff_login_config"'), ...command];
    return [...command.slice(0, at + 1), '--config', config, ...command.slice(at + 1)];
  };
  return [
    [raw('skiff_login_config=$(mktemp -d "${TMPDIR:-/tmp}/skiff-docker-config.XXXXXX")')],
    [raw(`trap 'rm -rf -- "$skiff_login_config"' EXIT`)],
    [raw("trap 'exit 143' TERM INT HUP")],
    [raw('if [ -d "$HOME/.docker/cli-plugins" ]; then ln -s -- "$HOME/.docker/cli-plugins" "$skiff_login_config/cli-plugins"; fi')],
    [...docker(cli, '--config'), config, 'login', '--username', login.username, '--password-stdin', login.registry, raw('>/dev/null')],
    ...commands.map(pointed),
  ];
}

/** The pull, logged in for this pull only (see withRegistryLogin). */
export function pullWithLogin(
  cli: DockerCli,
  project: ComposeProject,
  login: { registry: string; username: string },
  services: readonly string[] = [],
): Command[] {
  return inProject(project, withRegistryLogin(cli, login, [compose(cli, project, 'pull', ...services)]));
}

/** The merged configuration as YAML (v1 has no `--format json`; JSON is YAML, so one parser serves both). */
export const config = (cli: DockerCli, project: ComposeProject): Command[] => inProject(project, [compose(cli, project, 'config')]);

export const up = (cli: DockerCli, project: ComposeProject): Command[] => inProject(project, [compose(cli, project, 'up', '-d', '--remove-orphans')]);

export const ps = (cli: DockerCli, project: ComposeProject): Command[] => inProject(project, [compose(cli, project, 'ps', '-a')]);

export function logs(cli: DockerCli, project: ComposeProject, services: readonly string[], tail = 100): Command[] {
  return inProject(project, [compose(cli, project, 'logs', '--no-color', '--tail', String(tail), ...services)]);
}

/**
 * One line per image: its repo digests as a JSON array, in argument order. An image with no
 * repo digest (built on the server, never pushed) prints `[]` and is left as it is.
 */
export function repoDigests(cli: DockerCli, images: readonly string[]): Command[] {
  return [docker(cli, 'image', 'inspect', '--format', '{{json .RepoDigests}}', ...images)];
}

/** Removes images no kept release uses; one still used by a container (of any project) is refused by docker and kept. */
export function removeImages(cli: DockerCli, images: readonly string[]): Command[] {
  return images.map((image) => or([...docker(cli, 'image', 'rm', image), raw('>/dev/null 2>&1')], ['true']));
}

/** `docker inspect` of every container of the project, one-offs included; empty output when there are none. */
export function inspectProjectContainers(cli: DockerCli, projectName: string): Command[] {
  return [pipe(docker(cli, 'ps', '-aq', '--filter', `label=com.docker.compose.project=${projectName}`), ['xargs', '-r', ...docker(cli, 'inspect')])];
}

/**
 * `docker inspect` of the containers an earlier look found (one program start, where listing the
 * project first is two), or, if any of them is gone, of every container of the project as
 * `inspectProjectContainers` would.
 */
export function inspectSeenContainers(cli: DockerCli, projectName: string, ids: readonly string[]): Command[] {
  if (ids.length === 0) return inspectProjectContainers(cli, projectName);
  return [
    [
      raw('if seen=$('),
      ...docker(cli, 'inspect', ...ids),
      raw('2>/dev/null); then printf \'%s\\n\' "$seen"; else'),
      ...inspectProjectContainers(cli, projectName)[0]!,
      raw('; fi'),
    ],
  ];
}

// ── strategy: rolling ────────────────────────────────────────────────────────────────────────

/**
 * `<service> <hash>` per line: the configuration hash Compose compares with each container's
 * `config-hash` label to decide what `up` recreates.
 */
export const configHashes = (cli: DockerCli, project: ComposeProject): Command[] => inProject(project, [compose(cli, project, 'config', '--hash', '*')]);

/** One tab-separated line per container of the project, one-offs included: id, service, one-off, config hash, state, name, image. */
export function listContainers(cli: DockerCli, projectName: string): Command[] {
  const labels = ['service', 'oneoff', 'config-hash'].map((label) => `{{.Label "com.docker.compose.${label}"}}`);
  return [
    docker(
      cli,
      'ps',
      '-a',
      '--no-trunc',
      '--filter',
      `label=com.docker.compose.project=${projectName}`,
      '--format',
      ['{{.ID}}', ...labels, '{{.State}}', '{{.Names}}', '{{.Image}}'].join('\\t'),
    ),
  ];
}

/**
 * Starts new containers of each service next to its running ones, up to `scales` in total:
 * --no-recreate leaves the old containers as they are (Compose would otherwise replace them,
 * the very downtime this avoids) and --no-deps leaves every other service alone.
 */
export function scaleUp(cli: DockerCli, project: ComposeProject, scales: Readonly<Record<string, number>>): Command[] {
  const services = Object.keys(scales);
  return inProject(project, [
    compose(
      cli,
      project,
      'up',
      '-d',
      '--no-deps',
      '--no-recreate',
      ...services.flatMap((service) => ['--scale', `${service}=${scales[service]}`]),
      ...services,
    ),
  ]);
}

export const LISTED_MARK = '--- skiff: listed ---';

/**
 * scaleUp, then the project's containers whether or not it succeeded (what it did create must be
 * found to be removed), then its exit status: one round trip. Compose's output goes to stderr,
 * so stdout holds only the list, ended by LISTED_MARK when the list itself worked.
 */
export function scaleUpThenList(cli: DockerCli, project: ComposeProject, projectName: string, scales: Readonly<Record<string, number>>): Command[] {
  const [cd, start] = scaleUp(cli, project, scales);
  const [list] = listContainers(cli, projectName);
  return [[raw('started=0')], cd!, [...start!, raw('>&2 || started=$?')], list!, ['echo', LISTED_MARK], [raw('exit "$started"')]];
}

/** Starts services that have no container yet (and what they need), waiting until they are healthy; running containers are kept as they are. */
export const startMissing = (cli: DockerCli, project: ComposeProject, services: readonly string[]): Command[] =>
  inProject(project, [compose(cli, project, 'up', '-d', '--wait', '--no-recreate', ...services)]);

/**
 * Prints `watching`, then a line for each health change or exit of the containers `filters`
 * select (`docker events` filters, e.g. `container=<id>`), until the runner closes stdin or the
 * connection goes. `--since` the moment it started, so what happens while `docker events`
 * connects to the engine is not missed. The health gate looks again at each line; it is a
 * wake-up call, never a verdict.
 */
export function watchContainerEvents(cli: DockerCli, filters: readonly string[]): Command[] {
  const selected = [...filters, 'type=container', 'event=health_status', 'event=die'].flatMap((filter) => ['--filter', filter]);
  return [
    [raw('since=$(date +%s.%N)')],
    ['echo', 'watching'],
    [...docker(cli, 'events', '--since'), raw('"$since"'), ...selected, '--format', '{{.Status}}', raw('&')],
    [raw('events=$!')],
    [raw('read -r _ || true')],
    [raw('kill "$events" 2>/dev/null || true')],
  ];
}

/** `docker inspect` of these containers; one removed meanwhile is left out rather than failing the check. */
export function inspectContainers(cli: DockerCli, ids: readonly string[]): Command[] {
  return ids.length === 0 ? [] : [or(docker(cli, 'inspect', ...ids), ['true'])];
}

/**
 * Stops containers (each gets its own stop timeout, which Compose sets from stop_grace_period,
 * so requests in flight can finish) and removes them. `docker stop` stops them in parallel.
 */
export function stopAndRemove(cli: DockerCli, ids: readonly string[]): Command[] {
  return ids.length === 0 ? [] : [docker(cli, 'stop', ...ids), docker(cli, 'rm', ...ids)];
}

/** One container of the project, from `docker ps` (see listContainers). */
export interface ContainerRow {
  id: string;
  service: string;
  oneOff: boolean;
  hash: string;
  state: string;
  name: string;
  /** The image it was created from, as named then (for a Skiff release, the pinned image@sha256:…). */
  image: string;
}

/** What listContainers prints, a row per container. */
export function parseContainerRows(stdout: string): ContainerRow[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', service = '', oneOff = '', hash = '', state = '', name = '', image = ''] = line.split('\t');
      return { id, service, oneOff: oneOff.toLowerCase() === 'true', hash, state, name, image };
    });
}
