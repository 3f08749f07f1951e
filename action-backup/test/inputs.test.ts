import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { readBackupInputs } from '../src/inputs';

const login = {
  host: 'db.example.com',
  username: 'backup',
  key: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n',
  fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
};
const postgres = '- { type: postgres, service: db, database: app }\n';
const three = `${postgres}- { type: mysql, service: mysql, database: shop }\n- { type: redis, service: cache }\n`;

function problems(inputs: Record<string, string>): string {
  setInputs({ ...login, ...inputs });
  try {
    readBackupInputs();
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

beforeEach(() => vi.spyOn(process.stdout, 'write').mockImplementation(() => true));
afterEach(() => vi.restoreAllMocks());

describe('mode drill', () => {
  it('takes every source of the list (each into its own scratch copy)', () => {
    setInputs({ ...login, sources: three, mode: 'drill' });
    expect(readBackupInputs().sources.map((source) => source.name)).toEqual(['postgres-app', 'mysql-shop', 'redis-cache']);
  });

  it('refuses a backup-id with several sources (an id names one backup), and a drill-query a redis or files source cannot run', () => {
    expect(problems({ sources: three, mode: 'drill', 'backup-id': 'postgres-app-20260101T030000Z' })).toMatch(
      /"backup-id" names one backup .* mode drill has 3 sources/,
    );
    expect(problems({ sources: three, mode: 'drill', 'drill-query': 'select 1' })).toMatch(
      /"drill-query" is SQL for postgres, mysql and sqlite sources; redis-cache is redis/,
    );
    expect(problems({ sources: postgres, mode: 'drill', 'backup-id': 'postgres-app-20260101T030000Z', 'drill-query': 'select 1' })).toBe('');
  });

  it('restore still takes one source: restore-target names one place', () => {
    expect(problems({ sources: three, mode: 'restore' })).toMatch(/mode restore works on one source at a time/);
  });
});

describe('an input the mode does not use is an error that names it', () => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['backup', { 'restore-target': 'copy' }, /Input "restore-target" is only used by mode restore, and mode is backup/],
    ['backup', { force: 'true' }, /Input "force" is only used by mode restore/],
    ['backup', { 'drill-query': 'select 1' }, /Input "drill-query" is only used by mode drill/],
    ['backup', { 'backup-id': 'postgres-app-20260101T030000Z' }, /Input "backup-id" is only used by mode restore and drill/],
    ['drill', { 'keep-daily': '7' }, /Input "keep-daily" is only used by mode backup and prune, and mode is drill/],
    ['restore', { 'min-size': '5000' }, /Input "min-size" is only used by mode backup/],
    ['list', { 'max-shrink-percent': '20' }, /Input "max-shrink-percent" is only used by mode backup/],
  ];
  for (const [mode, extra, error] of cases) {
    it(`${Object.keys(extra)[0]} with mode ${mode}`, () => {
      expect(problems({ sources: postgres, mode, ...extra })).toMatch(error);
    });
  }

  it('the defaults a reusable workflow passes for every mode are not "set"', () => {
    const defaults = {
      'backup-id': 'latest',
      force: 'false',
      'min-size': '1024',
      'max-shrink-percent': '50',
      'keep-daily': '0',
      'keep-weekly': '0',
      'keep-monthly': '0',
      'keep-yearly': '0',
      'keep-days': '0',
    };
    for (const mode of ['backup', 'list', 'restore', 'drill', 'prune'])
      expect(problems({ sources: postgres, mode, ...defaults, ...(mode === 'prune' ? { 'keep-daily': '7' } : {}) })).toBe('');
  });
});

describe('a huge wrong value is not echoed whole', () => {
  it('100 kB in a source field gives an error of a few hundred characters that still names the field', () => {
    const message = problems({ sources: `- type: ${'x'.repeat(100_000)}\n` });
    expect(message).toMatch(/"type" must be one of postgres, mysql, redis, sqlite, files; got "xxxx/);
    expect(message.length).toBeLessThan(600);
  });
});

describe('the inputs as the runner passes them: every input with a default in action.yml is set', () => {
  // GitHub's runner sets INPUT_<NAME> for every input that has a default, given or not; a mode
  // that takes a default for "the user set this" refuses every workflow that uses it.
  const actionYml = parseYaml(readFileSync(join(import.meta.dirname, '..', 'action.yml'), 'utf8')) as { inputs: Record<string, { default?: string }> };
  const runnerDefaults = Object.fromEntries(
    Object.entries(actionYml.inputs)
      .filter(([, spec]) => spec.default !== undefined)
      .map(([name, spec]) => [name, String(spec.default).replace('${{ github.token }}', 'ghs_runnerDefaultToken000000000000000000')]),
  );
  it.each(['backup', 'list', 'restore', 'drill', 'prune'])('mode %s accepts them', (mode) => {
    expect(runnerDefaults).toHaveProperty('keep-daily');
    const extra: Record<string, string> = mode === 'restore' ? { 'restore-target': 'app_copy' } : mode === 'prune' ? { 'keep-daily': '7' } : {};
    expect(problems({ ...runnerDefaults, sources: postgres, mode, ...extra })).toBe('');
  });
});

describe('no host: every source a database the runner reaches itself', () => {
  const managed = '- url: "postgresql://app:s3cret@db.example.com/shop?sslmode=require"\n';
  const s3 = { destination: 's3', 's3-bucket': 'b', 's3-access-key-id': 'k', 's3-secret-access-key': 's' };
  function runnerProblems(inputs: Record<string, string>): string {
    setInputs(inputs);
    try {
      readBackupInputs();
      return '';
    } catch (error) {
      return (error as Error).message;
    }
  }

  it('needs no SSH inputs, and masks the password from the url', () => {
    const written: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((text) => written.push(String(text)) > 0);
    setInputs({ sources: managed, ...s3, port: '22', 'connect-timeout': '20s', 'insecure-ignore-host-key': 'false' });
    const inputs = readBackupInputs();
    expect(inputs.ssh).toBeUndefined();
    expect(inputs.sources[0]).toMatchObject({ hostname: 'db.example.com', sslMode: 'require' });
    expect(inputs.drillTarget).toBe('runner');
    expect(written).toContain('::add-mask::s3cret\n');
  });

  it('refuses, by name, SSH inputs that would mean nothing, a source that needs a server, and destination host', () => {
    expect(runnerProblems({ sources: managed, ...s3, username: 'deploy', fingerprint: 'SHA256:x' })).toMatch(
      /Inputs "username", "fingerprint" are for the SSH connection, and "host" is empty/,
    );
    expect(runnerProblems({ sources: `${managed}- { type: postgres, service: db, database: app }\n- { type: sqlite, path: /srv/app.db }\n`, ...s3 })).toMatch(
      /Input "host" is empty, so every source must be a PostgreSQL, MySQL or MariaDB database the runner reaches itself .*postgres-app \(postgres in compose\) needs a server, sqlite-app \(sqlite\) needs a server: set "host"/,
    );
    expect(runnerProblems({ sources: managed })).toMatch(
      /Input "destination" is host \(a directory on the server\), but "host" is empty; use destination s3 or artifact/,
    );
  });

  it('with a host, refuses what only a runner-side source uses, and drill-target outside a drill', () => {
    expect(problems({ sources: '- url: postgresql://u@10.0.0.5/db\n  client-image: postgres:{major}\n', ...s3 })).toMatch(
      /Input "sources": postgres-db's "client-image" is only for databases reached from the runner/,
    );
    expect(problems({ sources: postgres, mode: 'drill', 'drill-target': 'runner' })).toMatch(
      /Input "drill-target" chooses where a database reached from the runner is drilled/,
    );
    expect(runnerProblems({ sources: managed, ...s3, 'drill-target': 'server' })).toMatch(/Input "drill-target" is only used by mode drill/);
    expect(runnerProblems({ sources: managed, ...s3, mode: 'drill', 'drill-target': 'laptop' })).toMatch(/drill-target/);
  });
});
