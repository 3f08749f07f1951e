import { quote } from './quote';

/** Shell syntax written by Skiff itself (operators, redirections); never user data. */
export interface Raw {
  readonly raw: string;
}

/** A string token is always data: it is quoted when rendered. */
export type Token = string | Raw;

/** A command as an argv-like array, built by pure functions and rendered in one place. */
export type Command = readonly Token[];

export function raw(syntax: string): Raw {
  return { raw: syntax };
}

export function isRaw(token: Token): token is Raw {
  return typeof token !== 'string';
}

export function render(command: Command): string {
  return command.map((token) => (isRaw(token) ? token.raw : quote(token))).join(' ');
}

function joinWith(operator: string, commands: readonly Command[]): Command {
  const joined: Token[] = [];
  commands.forEach((command, index) => {
    if (index > 0) joined.push(raw(operator));
    joined.push(...command);
  });
  return joined;
}

/** `a | b | c` — with pipefail in force any failing stage fails the pipeline. */
export function pipe(...commands: Command[]): Command {
  return joinWith('|', commands);
}

/** `a && b` */
export function and(...commands: Command[]): Command {
  return joinWith('&&', commands);
}

/** `a || b` */
export function or(...commands: Command[]): Command {
  return joinWith('||', commands);
}

/**
 * `{ { a; } || exit $?; cat >/dev/null; }` — for a pipeline's last stage that may stop reading
 * before its input ends (pg_restore after what it needs, tar at the end-of-archive blocks, a check
 * that has seen enough): without it the writer dies of SIGPIPE and pipefail fails a good run, or
 * not, depending on how much fit the pipe buffer. The rest is read and dropped. A failing `a`
 * ends the stage with its own status at once, also inside a command substitution, where bash
 * clears errexit.
 */
export function readToEnd(consumer: Command): Command {
  return [raw('{ {'), ...consumer, raw('; } || exit $?; cat >/dev/null; }')];
}

/** `( a )` — a subshell, e.g. so `cd` does not leak into the next command. */
export function subshell(command: Command): Command {
  return [raw('('), ...command, raw(')')];
}

/** `a > path` (or `>>` with append). The path is data and gets quoted. */
export function redirectTo(command: Command, path: string, options: { append?: boolean } = {}): Command {
  return [...command, raw(options.append ? '>>' : '>'), path];
}

/** `a < path` */
export function redirectFrom(command: Command, path: string): Command {
  return [...command, raw('<'), path];
}
