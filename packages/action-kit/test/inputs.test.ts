import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InputError, InputErrors, getBoolean, getDuration, getEnum, getInteger, getList, getPort, getString, parseDuration, readInputs } from '../src/index';

const savedEnv = { ...process.env };
let stdout: string[] = [];

function setInputs(values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values)) process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
}

function errorOf(read: () => unknown): InputError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(InputError);
    return error as InputError;
  }
  throw new Error('expected an InputError, but reading succeeded');
}

beforeEach(() => {
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk));
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('getString', () => {
  it('returns the trimmed value', () => {
    setInputs({ name: '  web  ' });
    expect(getString('name')).toBe('web');
  });

  it('treats an empty input as not given', () => {
    setInputs({ name: '' });
    expect(getString('name')).toBeUndefined();
    expect(getString('name', { default: 'app' })).toBe('app');
  });

  it('names a missing required input', () => {
    expect(errorOf(() => getString('host', { required: true })).message).toBe('Input "host" is required; set it under "with:" in the workflow step');
  });

  it('reads names with spaces the way the runner passes them', () => {
    setInputs({ 'my input': 'x' });
    expect(process.env.INPUT_MY_INPUT).toBe('x');
    expect(getString('my input')).toBe('x');
  });

  it('masks secret inputs as soon as they are read', () => {
    setInputs({ token: 'hunter2-very-secret' });
    getString('token', { secret: true });
    expect(stdout).toContain('::add-mask::hunter2-very-secret\n');
  });
});

describe('getList', () => {
  it('splits lines and drops blank ones', () => {
    setInputs({ files: 'a.yml\n\n  b.yml  \n' });
    expect(getList('files')).toEqual(['a.yml', 'b.yml']);
  });

  it('with split any, also splits on commas and spaces', () => {
    setInputs({ tags: 'a, b c\nd' });
    expect(getList('tags', { split: 'any' })).toEqual(['a', 'b', 'c', 'd']);
    expect(getList('tags')).toEqual(['a, b c', 'd']);
  });
});

describe('getBoolean', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['False', false],
  ])('reads %s', (value, expected) => {
    setInputs({ flag: value });
    expect(getBoolean('flag')).toBe(expected);
  });

  it.each(['yes', '1', 'on', 'ture'])('refuses %s instead of guessing', (value) => {
    setInputs({ flag: value });
    expect(errorOf(() => getBoolean('flag', { default: false })).message).toBe(`Input "flag" must be true or false; got "${value}"`);
  });

  it('uses the default when not given', () => {
    expect(getBoolean('flag', { default: true })).toBe(true);
    expect(getBoolean('flag')).toBeUndefined();
  });
});

describe('getInteger and getPort', () => {
  it('reads whole numbers within range', () => {
    setInputs({ keep: '7' });
    expect(getInteger('keep', { min: 1, max: 30 })).toBe(7);
  });

  it.each(['0', '31', '2.5', '1e1', 'seven', '0x10'])('refuses %s for a 1..30 range', (value) => {
    setInputs({ keep: value });
    expect(errorOf(() => getInteger('keep', { min: 1, max: 30 })).message).toBe(`Input "keep" must be a whole number from 1 to 30; got "${value}"`);
  });

  it('checks ports', () => {
    setInputs({ port: '2222' });
    expect(getPort('port', { default: 22 })).toBe(2222);
    setInputs({ port: '70000' });
    expect(errorOf(() => getPort('port')).message).toBe('Input "port" must be a TCP port number from 1 to 65535; got "70000"');
  });

  it('uses the default port', () => {
    expect(getPort('port', { default: 22 })).toBe(22);
  });
});

describe('getEnum', () => {
  it('returns the canonical spelling of a case-insensitive match', () => {
    setInputs({ mode: 'Rolling' });
    expect(getEnum('mode', ['rolling', 'recreate'] as const)).toBe('rolling');
  });

  it('lists the allowed values', () => {
    setInputs({ mode: 'blue-green' });
    expect(errorOf(() => getEnum('mode', ['rolling', 'recreate'])).message).toBe('Input "mode" must be one of "rolling", "recreate"; got "blue-green"');
  });
});

describe('durations', () => {
  it.each([
    ['90', 90],
    ['90s', 90],
    ['2m', 120],
    ['1h', 3600],
    ['1m30s', 90],
    ['1h5m', 3900],
    ['2M', 120],
    ['0', 0],
  ])('parses %s as %i seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(['', 'soon', '1.5m', '-5', '30s1m', 'm', '5 minutes', '1d'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('reads a duration input', () => {
    setInputs({ 'connect-timeout': '1m30s' });
    expect(getDuration('connect-timeout', { default: 20 })).toBe(90);
  });

  it('names the input, the expected form and the bad value', () => {
    setInputs({ 'connect-timeout': 'soon' });
    expect(errorOf(() => getDuration('connect-timeout', { default: 20 })).message).toBe(
      'Input "connect-timeout" must be a duration like 90, 90s or 2m; got "soon"',
    );
  });

  it('checks the range', () => {
    setInputs({ 'connect-timeout': '0s' });
    expect(errorOf(() => getDuration('connect-timeout', { min: 1 })).message).toBe(
      'Input "connect-timeout" must be a duration like 90, 90s or 2m (in seconds of at least 1); got "0s"',
    );
  });
});

describe('secret inputs in errors', () => {
  it('never shows the value', () => {
    setInputs({ 'api-token': 'tok_live_abcdefgh' });
    const error = errorOf(() => getInteger('api-token', { secret: true }));
    expect(error.message).toContain('Input "api-token" must be a whole number');
    expect(error.message).not.toContain('tok_live');
  });
});

describe('readInputs', () => {
  it('returns every value when all are valid', () => {
    setInputs({ host: 'example.com', port: '2222' });
    expect(readInputs({ host: () => getString('host', { required: true }), port: () => getPort('port', { default: 22 }) })).toEqual({
      host: 'example.com',
      port: 2222,
    });
  });

  it('reports every bad input together', () => {
    setInputs({ port: 'ssh', 'connect-timeout': 'soon' });
    const error = errorOf(() =>
      readInputs({
        host: () => getString('host', { required: true }),
        port: () => getPort('port', { default: 22 }),
        timeout: () => getDuration('connect-timeout', { default: 20 }),
      }),
    );
    expect(error).toBeInstanceOf(InputErrors);
    expect((error as InputErrors).errors).toHaveLength(3);
    expect(error.inputs).toEqual(['host', 'port', 'connect-timeout']);
    expect(error.message).toBe(
      [
        '3 problems with the inputs:',
        '- Input "host" is required; set it under "with:" in the workflow step',
        '- Input "port" must be a TCP port number from 1 to 65535; got "ssh"',
        '- Input "connect-timeout" must be a duration like 90, 90s or 2m; got "soon"',
      ].join('\n'),
    );
  });

  it('flattens nested groups of errors', () => {
    const error = errorOf(() =>
      readInputs({
        group: () => readInputs({ a: () => getString('a', { required: true }), b: () => getString('b', { required: true }) }),
        c: () => getString('c', { required: true }),
      }),
    ) as InputErrors;
    expect(error.errors.map((e) => e.inputs[0])).toEqual(['a', 'b', 'c']);
  });

  it('lets other errors through untouched', () => {
    const bug = new TypeError('bug');
    expect(() =>
      readInputs({
        a: () => {
          throw bug;
        },
      }),
    ).toThrow(bug);
  });
});
