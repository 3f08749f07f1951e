import { quote, raw, type Command } from '@skiff/shell';
import type { Place } from './sources';

/**
 * Runs `argv` where the source lives: inside a Compose service, a named container or on the
 * host. `-T`/`-i` only attach stdin when data flows in (a restore); a dump never needs a TTY.
 */
export function inPlace(place: Place, argv: Command, options: { stdin?: boolean } = {}): Command {
  switch (place.kind) {
    case 'host':
      return argv;
    case 'container':
      return ['docker', 'exec', ...(options.stdin ? ['-i'] : []), ...(place.user ? ['-u', place.user] : []), place.container, ...argv];
    case 'compose':
      return [
        'docker',
        'compose',
        ...(place.project ? ['-p', place.project] : []),
        ...(place.projectDirectory ? ['--project-directory', place.projectDirectory] : []),
        ...(place.composeFiles ?? []).flatMap((file) => ['-f', file]),
        'exec',
        '-T',
        ...(place.user ? ['-u', place.user] : []),
        place.service,
        ...argv,
      ];
  }
}

/**
 * Inside a container the password stays in the container's own environment: the tool is started
 * by a tiny `sh -c` that copies `$from` into the variable the tool reads, so the secret never
 * appears in any argv (the server's `ps` shows only the variable's name).
 */
export function withContainerSecret(toolVariable: string, from: string | undefined, argv: readonly string[]): Command {
  if (from === undefined) return argv;
  return ['sh', '-c', `${toolVariable}="$${from}" exec "$@"`, 'sh', ...argv];
}

/** On the host the secret comes from a 0600 file the runner uploaded; `$(cat …)` keeps it out of argv. */
export function envFromFile(variable: string, file: string): Command {
  return [raw(`${variable}="$(cat ${quote(file)})"`)];
}
