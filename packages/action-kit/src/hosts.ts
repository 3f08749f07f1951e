import { isIP } from 'node:net';
import type { SshConnectOptions } from '@skiff/ssh';
import type { InputDefinition } from './definitions';
import { InputError } from './errors';
import { getBoolean, getInteger, getString, invalidInput } from './inputs';
import { SSH_INPUTS, readSshInputs } from './ssh-inputs';

/** One entry of a multi-host `host` input: overrides of `username`/`port` are per host. */
export interface HostAddress {
  host: string;
  port?: number;
  username?: string;
}

const HOST_FORM =
  'one or more servers separated by newlines or commas, each a hostname or IP address with an optional user@ in front and :port after ' +
  '(IPv6 in brackets when a port follows), e.g. "web1.example.com, deploy@10.0.0.5:2222, [2001:db8::1]:22"';

// RFC 1123 labels; a trailing dot (FQDN) is allowed.
const HOSTNAME = /^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Parses one `[user@]host[:port]` entry; undefined when it is not one. */
export function parseHostEntry(entry: string): HostAddress | undefined {
  const at = entry.lastIndexOf('@');
  const username = at === -1 ? undefined : entry.slice(0, at);
  if (username !== undefined && !/^[A-Za-z0-9._][A-Za-z0-9._-]*$/.test(username)) return undefined;
  const rest = at === -1 ? entry : entry.slice(at + 1);
  let host: string;
  let rawPort: string | undefined;
  if (rest.startsWith('[')) {
    const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
    if (!match || isIP(match[1]!) !== 6) return undefined;
    host = match[1]!;
    rawPort = match[2];
  } else if (isIP(rest) === 6) {
    // A bare IPv6 address cannot carry a port: its last group would be read as one.
    host = rest;
  } else {
    const match = /^([^:]+)(?::(\d+))?$/.exec(rest);
    if (!match) return undefined;
    host = match[1]!;
    rawPort = match[2];
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) return undefined;
  }
  const port = rawPort === undefined ? undefined : Number(rawPort);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) return undefined;
  return { host, ...(port === undefined ? {} : { port }), ...(username === undefined ? {} : { username }) };
}

/** The `host` input as a list: newline or comma separated; every bad entry and duplicate is reported together. */
export function parseHostList(value: string, name = 'host'): HostAddress[] {
  const entries = value
    .split(/[\n,]/)
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (entries.length === 0) throw invalidInput(name, HOST_FORM, value);
  const bad = entries.filter((entry) => parseHostEntry(entry) === undefined);
  if (bad.length > 0) throw invalidInput(name, HOST_FORM, bad.join(', '));
  const hosts = entries.map((entry) => parseHostEntry(entry)!);
  const seen = new Set<string>();
  for (const [index, host] of hosts.entries()) {
    const key = `${host.username ?? ''}@${host.host.toLowerCase()}:${host.port ?? ''}`;
    if (seen.has(key)) throw new InputError(name, `Input "${name}" lists ${JSON.stringify(entries[index])} more than once; list each server once`);
    seen.add(key);
  }
  return hosts;
}

/** `user@host:port` as shown in logs and summaries (IPv6 in brackets). */
export function hostLabel(target: Pick<SshConnectOptions, 'host' | 'port' | 'username'>): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${target.username}@${host}:${target.port}`;
}

/** The shared SSH inputs with `host` taking several servers, plus how to run them. */
export const MULTI_HOST_INPUTS = [
  ...SSH_INPUTS.map((input) =>
    input.name === 'host'
      ? {
          ...input,
          description:
            'Servers to connect to, separated by newlines or commas: hostnames or IP addresses, each optionally as user@host:port to override "username" and "port" (IPv6 as [addr]:port).',
        }
      : input,
  ),
  {
    name: 'parallel',
    description: 'With several hosts: run them at the same time (true) or one after another in the listed order, stopping at the first failure (false).',
    required: false,
    default: 'false',
  },
  { name: 'max-parallel', description: 'With parallel: true, at most this many hosts at once.', required: false, default: '10' },
] as const satisfies readonly InputDefinition[];

/**
 * Reads the shared SSH inputs for several servers: one SshConnectOptions per host entry, with
 * that entry's user and port overriding `username` and `port`. readSshInputs stays the
 * single-host reader; both share every other rule.
 */
export function readSshTargets(): SshConnectOptions[] {
  let hosts: HostAddress[] = [];
  const base = readSshInputs(() => {
    hosts = parseHostList(getString('host', { required: true }));
    return hosts[0]!.host;
  });
  return hosts.map((entry) => ({
    ...base,
    host: entry.host,
    port: entry.port ?? base.port,
    username: entry.username ?? base.username,
  }));
}

export interface RunMode {
  parallel: boolean;
  /** Hosts at once when parallel (default 10). */
  maxParallel?: number;
  /**
   * Once a host fails, start no more hosts (the rest are `skipped`). Always true when serial;
   * in parallel it defaults to false, so one bad host does not hide the others' results.
   */
  stopOnFailure?: boolean;
}

export function readRunMode(): RunMode {
  return {
    parallel: getBoolean('parallel', { default: false }),
    maxParallel: getInteger('max-parallel', { default: 10, min: 1, max: 100 }),
  };
}

export interface HostResult<T> {
  target: SshConnectOptions;
  label: string;
  status: 'ok' | 'failed' | 'skipped';
  durationMs: number;
  value?: T;
  error?: Error;
}

export interface HostContext {
  index: number;
  label: string;
  /** Aborted when another host failed and stopOnFailure is set: long work should stop early. */
  signal: AbortSignal;
}

/**
 * Runs `fn` for every host, serially in order (stopping at the first failure) or in parallel
 * with a limit, and returns one result per host in input order. It never throws for a host's
 * failure: callers decide what a partial result means (deploy's all-or-nothing can roll back
 * the `ok` hosts when any result is `failed`).
 */
export async function forEachHost<T>(
  targets: readonly SshConnectOptions[],
  mode: RunMode,
  fn: (target: SshConnectOptions, context: HostContext) => Promise<T>,
): Promise<HostResult<T>[]> {
  const limit = mode.parallel ? Math.max(1, mode.maxParallel ?? 10) : 1;
  const stopOnFailure = mode.parallel ? (mode.stopOnFailure ?? false) : true;
  const abort = new AbortController();
  const results: HostResult<T>[] = targets.map((target) => ({ target, label: hostLabel(target), status: 'skipped', durationMs: 0 }));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      if (stopOnFailure && abort.signal.aborted) return;
      const index = next++;
      if (index >= targets.length) return;
      const result = results[index]!;
      const started = performance.now();
      try {
        result.value = await fn(result.target, { index, label: result.label, signal: abort.signal });
        result.status = 'ok';
      } catch (error) {
        result.status = 'failed';
        result.error = error instanceof Error ? error : new Error(String(error));
        abort.abort(result.error);
      } finally {
        result.durationMs = Math.round(performance.now() - started);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, targets.length) }, worker));
  return results;
}

/** The failed results' errors as one message naming each host. */
export function hostFailures(results: readonly HostResult<unknown>[]): string | undefined {
  const failed = results.filter((result) => result.status === 'failed');
  if (failed.length === 0) return undefined;
  const skipped = results.filter((result) => result.status === 'skipped').length;
  const lines = failed.map((result) => `${result.label}: ${result.error?.message ?? 'failed'}`);
  if (skipped > 0) lines.push(`${skipped} host(s) not started because of the failure`);
  return failed.length === 1 && skipped === 0 && results.length === 1 ? failed[0]!.error!.message : lines.join('\n');
}
