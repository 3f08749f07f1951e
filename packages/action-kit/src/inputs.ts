import * as core from '@actions/core';
import { InputError, InputErrors, inputErrorsOf } from './errors';
import { maskSecret } from './secrets';

/**
 * Typed readers for `INPUT_*`. GitHub passes an unset input as an empty string, so empty
 * means "not given": the reader returns the default, reports a missing required input, or
 * returns undefined. Every reader throws InputError naming the input and the expected form.
 */
export interface ReadOptions<T> {
  required?: boolean;
  default?: T;
  /** Never show the value in error messages, and mask it in the log as soon as it is read. */
  secret?: boolean;
}

/** `T` when a default or `required: true` guarantees a value, otherwise `T | undefined`. */
export type ReadResult<T, O> = O extends { default: T } | { required: true } ? T : T | undefined;

const MAX_SHOWN_VALUE = 80;

/** The raw input, trimmed; undefined when not given. */
export function rawInput(name: string): string | undefined {
  const value = core.getInput(name);
  return value === '' ? undefined : value;
}

export function invalidInput(name: string, expected: string, value: string, secret = false): InputError {
  if (secret) return new InputError(name, `Input "${name}" must be ${expected} (the value is secret, so it is not shown)`);
  const shown = value.length > MAX_SHOWN_VALUE ? `${value.slice(0, MAX_SHOWN_VALUE)}…` : value;
  return new InputError(name, `Input "${name}" must be ${expected}; got ${JSON.stringify(shown)}`);
}

export function missingInput(name: string): InputError {
  return new InputError(name, `Input "${name}" is required; set it under "with:" in the workflow step`);
}

function read<T, O extends ReadOptions<T>>(name: string, options: O | undefined, parse: (value: string) => T): ReadResult<T, O> {
  const value = rawInput(name);
  if (value === undefined) {
    if (options?.default !== undefined) return options.default;
    if (options?.required) throw missingInput(name);
    return undefined as ReadResult<T, O>;
  }
  if (options?.secret) maskSecret(value);
  return parse(value);
}

export function getString<const O extends ReadOptions<string>>(name: string, options?: O): ReadResult<string, O> {
  return read(name, options, (value) => value);
}

/** One item per non-empty line, each trimmed; with `split: 'any'` commas and spaces separate items too. */
export function getList<const O extends ReadOptions<readonly string[]> & { split?: 'lines' | 'any' }>(
  name: string,
  options?: O,
): ReadResult<readonly string[], O> {
  const separator = options?.split === 'any' ? /[\s,]+/ : /\r?\n/;
  return read<readonly string[], O>(name, options, (value) =>
    value
      .split(separator)
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  );
}

/**
 * Only `true` or `false` (any case). Unlike YAML 1.1 we refuse `yes`, `on`, `1`: a typo in
 * a flag such as `insecure-ignore-host-key` must stop the run, not silently mean false.
 */
export function getBoolean<const O extends ReadOptions<boolean>>(name: string, options?: O): ReadResult<boolean, O> {
  return read(name, options, (value) => {
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    throw invalidInput(name, 'true or false', value, options?.secret);
  });
}

export interface IntegerOptions extends ReadOptions<number> {
  min?: number;
  max?: number;
  /** Words for the expected form, e.g. "a TCP port (1-65535)". */
  expected?: string;
}

function rangeWords(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` of at least ${min}`;
  if (max !== undefined) return ` of at most ${max}`;
  return '';
}

export function getInteger<const O extends IntegerOptions>(name: string, options?: O): ReadResult<number, O> {
  const expected = options?.expected ?? `a whole number${rangeWords(options?.min, options?.max)}`;
  return read(name, options, (value) => {
    const number = /^[+-]?\d+$/.test(value) ? Number(value) : Number.NaN;
    const inRange =
      Number.isSafeInteger(number) && (options?.min === undefined || number >= options.min) && (options?.max === undefined || number <= options.max);
    if (!inRange) throw invalidInput(name, expected, value, options?.secret);
    return number;
  });
}

export function getPort<const O extends ReadOptions<number>>(name: string, options?: O): ReadResult<number, O> {
  return getInteger(name, { ...options, min: 1, max: 65535, expected: 'a TCP port number from 1 to 65535' }) as ReadResult<number, O>;
}

export function getEnum<const T extends string, const O extends ReadOptions<T>>(name: string, values: readonly T[], options?: O): ReadResult<T, O> {
  return read(name, options, (value) => {
    const match = values.find((candidate) => candidate.toLowerCase() === value.toLowerCase());
    if (match === undefined) throw invalidInput(name, `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`, value, options?.secret);
    return match;
  });
}

const UNIT_SECONDS = { h: 3600, m: 60, s: 1 } as const;

/** `90`, `90s`, `2m`, `1h`, `1m30s`, `1h5m` → seconds; undefined if the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(trimmed);
  if (!match || trimmed === '') return undefined;
  const [, h = '0', m = '0', s = '0'] = match;
  return Number(h) * UNIT_SECONDS.h + Number(m) * UNIT_SECONDS.m + Number(s) * UNIT_SECONDS.s;
}

export interface DurationOptions extends ReadOptions<number> {
  /** Seconds. */
  min?: number;
  max?: number;
}

/** A duration in seconds; plain numbers are seconds. */
export function getDuration<const O extends DurationOptions>(name: string, options?: O): ReadResult<number, O> {
  return read(name, options, (value) => {
    const seconds = parseDuration(value);
    const range = rangeWords(options?.min, options?.max);
    const expected = `a duration like 90, 90s or 2m${range ? ` (in seconds${range})` : ''}`;
    if (seconds === undefined) throw invalidInput(name, expected, value, options?.secret);
    if ((options?.min !== undefined && seconds < options.min) || (options?.max !== undefined && seconds > options.max)) {
      throw invalidInput(name, expected, value, options?.secret);
    }
    return seconds;
  });
}

/**
 * Runs readers and keeps going past failures, so every bad input is reported in one run
 * instead of one per fix-and-retry cycle.
 */
export class InputCollector {
  private readonly errors: InputError[] = [];

  /** The reader's value, or undefined if it threw an input error (which is kept for `finish`). */
  read<T>(reader: () => T): T | undefined {
    return this.known(this.take(reader));
  }

  add(error: InputError): void {
    this.errors.push(error);
  }

  get failed(): boolean {
    return this.errors.length > 0;
  }

  /** Throws all collected errors together, if any. */
  finish(): void {
    if (this.errors.length > 0) throw new InputErrors(this.errors);
  }

  /** Like `read`, but a failed reader leaves NOT_READ, so `result` can tell it from an input that is legitimately unset. */
  take<T>(reader: () => T): Taken<T> {
    try {
      return reader();
    } catch (error) {
      const inputErrors = inputErrorsOf(error);
      if (inputErrors.length === 0) throw error;
      this.errors.push(...inputErrors);
      return NOT_READ;
    }
  }

  /** For a reader that depends on another input: that input's value, or undefined when it could not be read (its error is already kept). */
  known<T>(value: Taken<T>): T | undefined {
    return value === NOT_READ ? undefined : value;
  }

  /** Throws every collected error together; otherwise the values, typed without NOT_READ (none can be left once no reader failed). */
  result<const V extends Record<string, unknown>>(values: V): { [K in keyof V]: Exclude<V[K], typeof NOT_READ> } {
    this.finish();
    const unread = Object.keys(values).filter((key) => values[key] === NOT_READ);
    if (unread.length > 0) throw new Error(`Inputs not read, with no input error to say why: ${unread.join(', ')}`);
    return values as { [K in keyof V]: Exclude<V[K], typeof NOT_READ> };
  }
}

/** What InputCollector.take holds for a reader that failed. */
export const NOT_READ: unique symbol = Symbol('input not read');
export type Taken<T> = T | typeof NOT_READ;

type Readers = Record<string, () => unknown>;

/**
 * `readInputs({ host: () => getString('host', { required: true }), ... })` → `{ host: string, ... }`,
 * or one InputErrors listing every input that was wrong.
 */
export function readInputs<const R extends Readers>(readers: R): { [K in keyof R]: ReturnType<R[K]> } {
  const collector = new InputCollector();
  const values: Record<string, unknown> = {};
  for (const [key, reader] of Object.entries(readers)) values[key] = collector.read(reader);
  collector.finish();
  return values as { [K in keyof R]: ReturnType<R[K]> };
}
