import { or, pipe, raw, type Command } from '@skiff/shell';
import { docker, type DockerCli } from '../../compose-commands';
import { ENV_FILE } from '../../release-history';
import { STATE_SEPARATOR } from './stack-file';

/** The server's clock in milliseconds: Swarm's UpdateStatus times are the server's, so "since" must be too. */
export const serverClockMs = (): Command[] => [['date', '+%s%3N']];

/** `active true` on a Swarm manager: only a manager can deploy a stack. */
export function swarmNodeState(cli: Pick<DockerCli, 'sudo'>): Command[] {
  return [docker(cli, 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')];
}

/**
 * `docker stack deploy` of the release's compose files with skiff-stack.yml merged last. From the
 * release directory, so relative paths in the files (env_file: .env, configs, secrets) are the
 * release's own; the release's .env is exported first because `docker stack deploy` fills
 * ${VARIABLES} only from its environment. --prune removes services the files no longer have (as
 * `up --remove-orphans` does); --with-registry-auth gives the nodes the server's registry login;
 * --resolve-image always makes Swarm pin every tag to the digest the registry has now.
 */
export function stackDeploy(cli: Pick<DockerCli, 'sudo'>, stack: string, releaseDir: string, files: readonly string[], hasEnv: boolean): Command[] {
  return [
    ['cd', releaseDir],
    ...(hasEnv
      ? [
          ['set', '-a'],
          ['.', `./${ENV_FILE}`],
          ['set', '+a'],
        ]
      : []),
    docker(cli, 'stack', 'deploy', '--prune', '--with-registry-auth', '--resolve-image', 'always', ...files.flatMap((file) => ['--compose-file', file]), stack),
  ];
}

/** Every service of the stack as `docker service inspect` shows it, then its tasks, one JSON line each. */
export function stackState(cli: Pick<DockerCli, 'sudo'>, stack: string): Command[] {
  return [
    pipe(docker(cli, 'service', 'ls', '--quiet', '--filter', `label=com.docker.stack.namespace=${stack}`), [
      'xargs',
      '-r',
      ...docker(cli, 'service', 'inspect'),
    ]),
    ['echo', STATE_SEPARATOR],
    // A stack with no services yet makes `stack ps` fail; that is "no tasks", not an error.
    or([...docker(cli, 'stack', 'ps', '--no-trunc', '--format', '{{json .}}', stack), raw('2>/dev/null')], ['true']),
  ];
}

/** For a person finding out why: the tasks (with their errors) and the last log lines of each service. */
export function stackDiagnostics(cli: Pick<DockerCli, 'sudo'>, stack: string, services: readonly string[]): { title: string; commands: Command[] }[] {
  return [
    { title: `docker stack ps ${stack}`, commands: [docker(cli, 'stack', 'ps', '--no-trunc', stack)] },
    ...services.map((service) => ({
      title: `docker service logs --tail 100 ${stack}_${service}`,
      commands: [docker(cli, 'service', 'logs', '--no-task-ids', '--timestamps', '--tail', '100', `${stack}_${service}`)],
    })),
  ];
}
