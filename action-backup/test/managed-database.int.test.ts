import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  ensureHubImages,
  ensureHubPostgres17,
  freePort,
  sh,
  startArtifactService,
  startBundle,
  startContainerPostgres,
  startPostgres,
  startS3,
  tempDir,
  type ArtifactService,
  type ContainerPostgres,
  type Postgres,
  type S3Server,
} from '@skiff/testbed';
import { runnerSide, s3Destination } from './runner-side-fixtures';
import { runWorkflow } from '../../test/workflow-runner';

/**
 * A managed database, as PaaS teams have one: no server shell of ours, only a URL with a password
 * and TLS. The dump runs on the runner, with client tools matched to the server's major version.
 * Two servers: PostgreSQL 15 with TLS (the runner's own pg_dump is 15) holding ~6 MB of mixed
 * data, and PostgreSQL 17 in a container (the runner's pg_dump is too old for it: the client
 * image `postgres:17` must be the one that runs). The realistic tables at a tenth of their rows: far
 * beyond any pipe buffer; the same runner-side path at ~60 MB (S3 with age, the drill on a throwaway
 * PostgreSQL 15) runs in examples/coolify-managed-db through its workflows.
 */

/** POSTGRES_SEED_SQL at a tenth of its rows (~6 MB). */
const SEED_15 = POSTGRES_SEED_SQL.replace('generate_series(1, 250000)', 'generate_series(1, 25000)')
  .replace('random() * 250000', 'random() * 25000')
  .replace('generate_series(1, 200000)', 'generate_series(1, 20000)');

const MB = 1024 * 1024;
let tls: Postgres;
let pg17: ContainerPostgres;
let s3: S3Server;
let artifacts: ArtifactService;
let runnerTemp: { path: string; remove: () => Promise<void> };
let expected15 = '';
let expected17 = '';

const SEED_17 = [
  'create table notes (id bigint primary key, body text, at timestamptz)',
  'insert into notes select g, repeat(md5(g::text), 8), now() from generate_series(1, 40000) g',
].join(';\n');
const CHECKSUM_17 = "select 'notes|' || count(*) || '|' || md5(string_agg(n::text, E'\\n' order by id)) from notes n";

const s3Inputs = () => s3Destination(s3, 'managed');
const tlsUrl = (password = tls.password) =>
  `postgresql://${tls.user}:${encodeURIComponent(password)}@127.0.0.1:${tls.port}/${tls.database}?sslmode=verify-full`;
/** The YAML a user writes, the url and CA coming from secrets. */
const tlsSource = (url = tlsUrl()) => `- name: shop\n  url: "${url}"\n  compression: gzip\n  ca-certificate: |\n${tls.caPem!.trim().replace(/^/gm, '    ')}\n`;
const pg17Source = (extra = '') => `- name: notes\n  url: "postgresql://${pg17.user}:${pg17.password}@127.0.0.1:${pg17.port}/${pg17.database}"\n${extra}`;

const { backup, expectNoLeak } = runnerSide(() => runnerTemp.path);

const s3Keys = async () => {
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  try {
    return ((await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((object) => object.Key!).sort();
  } finally {
    client.destroy();
  }
};

beforeAll(async () => {
  // postgres:15 (from ensureHubImages) is the throwaway server of a drill of the PostgreSQL 15 database.
  await Promise.all([ensureHubImages(), ensureHubPostgres17()]);
  [tls, pg17, s3, artifacts, runnerTemp] = await Promise.all([
    startPostgres({ tls: true }),
    startContainerPostgres('postgres:17'),
    startS3('skiffbk-managed'),
    startArtifactService(),
    tempDir('skiffbk-managed-temp'),
  ]);
  await Promise.all([tls.psql(tls.database, `set role ${tls.user};\n${SEED_15}`), pg17.psql(pg17.database, SEED_17)]);
  [expected15, expected17] = await Promise.all([tls.psql(tls.database, POSTGRES_CHECKSUM_SQL), pg17.psql(pg17.database, CHECKSUM_17)]);
}, 600_000);

afterAll(async () => {
  await Promise.all([tls?.stop(), pg17?.stop(), s3?.stop(), artifacts?.stop(), runnerTemp?.remove()]);
});

describe('a managed PostgreSQL backed up from the runner (no host)', () => {
  it('the data is the size it claims, and the servers are the versions the tests need', async () => {
    // The tables themselves (an empty database's catalogs alone are ~7 MB).
    expect(Number(await tls.psql(tls.database, "select pg_total_relation_size('customers') + pg_total_relation_size('events')"))).toBeGreaterThan(4 * MB);
    expect(
      expected15
        .trim()
        .split('\n')
        .map((line) => line.split('|').slice(0, 2).join('|')),
    ).toEqual(['customers|25000', 'events|20000']);
    expect(pg17.version).toMatch(/^17\./);
    expect(await sh('pg_dump', ['--version'])).toMatch(/\(PostgreSQL\) 15\./);
  });

  it("over TLS (verify-full against the given CA) to S3 with age: the runner's own pg_dump 15, verified; no password on any command line, in the log or left on disk", async () => {
    const identity = await generateIdentity();
    const logBefore = (await readFile(tls.logPath, 'utf8')).length;
    const started = startBundle('action-backup', {
      inputs: {
        sources: tlsSource(),
        ...s3Inputs(),
        'encrypt-recipients': await identityToRecipient(identity),
        'keep-daily': '7',
        'keep-weekly': '4',
        'keep-monthly': '3',
      },
      env: { RUNNER_TEMP: runnerTemp.path },
      timeoutMs: 400_000,
    });
    // Every process on the machine, while the backup runs: the password must be on none of their command lines.
    const commandLines = new Set<string>();
    let running = true;
    const watching = (async () => {
      for (let round = 0; running && round < 4000; round++) {
        for (const line of (await sh('ps', ['-eww', '-o', 'args='])).split('\n')) if (line.includes('pg_') || line.includes('psql')) commandLines.add(line);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const run = await started.done.finally(() => (running = false));
    await watching;
    expect(run.code, run.masked).toBe(0);
    expect(run.outputs.verified).toBe('true');
    expect(run.outputs.location).toMatch(/^s3:\/\/skiffbk-managed\/managed\/shop\/shop-\d{8}T\d{6}Z\.dump\.gz\.age$/);
    expect(Number(run.outputs.size)).toBeGreaterThan(MB);
    expect(run.summary).toMatch(
      /Databases reached from the runner[\s\S]*shop: PostgreSQL 15 at 127\.0\.0\.1:\d+ as skiff \(sslmode verify-full\); client: the runner's pg_dump 15\./,
    );
    // The dump really ran: pg_dump was seen, and never with the password.
    expect([...commandLines].some((line) => /\bpg_dump\b.*--format=custom/.test(line))).toBe(true);
    expect([...commandLines].filter((line) => line.includes(tls.password))).toEqual([]);
    // Every connection the backup made was TLS.
    const log = (await readFile(tls.logPath, 'utf8')).slice(logBefore);
    const authorized = log.split('\n').filter((line) => line.includes('connection authorized: user=skiff'));
    expect(authorized.length).toBeGreaterThan(0);
    expect(authorized.filter((line) => !/SSL enabled/.test(line))).toEqual([]);
    await expectNoLeak(run, [tls.password, encodeURIComponent(tls.password)]);

    // The same data to an artifact (the same stream, another sink), verified.
    const toArtifact = await backup(
      { sources: tlsSource(), destination: 'artifact', 'artifact-name': 'tls', 'encrypt-recipients': await identityToRecipient(identity) },
      artifacts.env,
    );
    expect(toArtifact.code, toArtifact.masked).toBe(0);
    expect(toArtifact.outputs.verified).toBe('true');
    expect(Number(toArtifact.outputs.size)).toBeGreaterThan(MB);

    // list reads only the destination: it works with the database down.
    const down = `- name: shop\n  url: "postgresql://skiff:x@127.0.0.1:${await freePort()}/skiff_test"\n`;
    const listed = await backup({ sources: down, ...s3Inputs(), mode: 'list' });
    expect(listed.code, listed.masked).toBe(0);
    expect(listed.summary).toContain(run.outputs['backup-id']);

    // The backup restores into another database on the same server, identical row by row.
    const restored = await backup({ sources: tlsSource(), ...s3Inputs(), mode: 'restore', 'restore-target': 'shop_copy', 'decrypt-identity': identity });
    expect(restored.code, restored.masked).toBe(0);
    expect(await tls.psql('shop_copy', POSTGRES_CHECKSUM_SQL)).toBe(expected15);
    await expectNoLeak(restored, [tls.password]);

    // A drill restores into a throwaway PostgreSQL 15 on the runner, never writing to the server.
    const databasesBefore = await tls.psql('postgres', 'select datname from pg_database order by 1');
    const drill = await backup({ sources: tlsSource(), ...s3Inputs(), mode: 'drill', 'decrypt-identity': identity });
    expect(drill.code, drill.masked).toBe(0);
    expect(drill.summary).toContain('customers\\|25000');
    expect(drill.summary).toContain('events\\|20000');
    expect(drill.masked).toMatch(/start a throwaway PostgreSQL 15 \(postgres:15\) for the drill/);
    expect(await tls.psql('postgres', 'select datname from pg_database order by 1')).toBe(databasesBefore);
    expect(await sh('docker', ['ps', '-a', '-q', '--filter', 'label=skiff.backup=shop'])).toBe('');
    await expectNoLeak(drill, [tls.password]);

    // Where the user allows it, a scratch database on the same server instead, dropped afterwards.
    const onServer = await backup({ sources: tlsSource(), ...s3Inputs(), mode: 'drill', 'drill-target': 'server', 'decrypt-identity': identity });
    expect(onServer.code, onServer.masked).toBe(0);
    expect(onServer.masked).toMatch(/drill shop-\d{8}T\d{6}Z into skiff_drill_/);
    expect(onServer.masked).not.toMatch(/throwaway/);
    expect(onServer.summary).toContain('customers\\|25000');
    expect(await tls.psql('postgres', 'select datname from pg_database order by 1')).toBe(databasesBefore);
  });

  it('dry-run plans the dump on the runner without connecting anywhere', async () => {
    const run = await backup({ sources: `- url: "postgresql://app:pw@127.0.0.1:${await freePort()}/app"\n`, ...s3Inputs(), 'dry-run': 'true' });
    expect(run.code, run.masked).toBe(0);
    expect(run.outputs.plan).toMatch(/dump on the runner, with the client tools of the server's major version \(asked first\) to s3:\/\/skiffbk-managed/);
    expect(run.outputs.plan).toContain('pg_dump -h 127.0.0.1');
    expect(run.outputs.plan).not.toContain('pw@');
  });

  it("a server newer than the runner's pg_dump (17 vs 15) is dumped by pg_dump 17 from postgres:17, to an artifact, and drilled on a throwaway PostgreSQL 17", async () => {
    const run = await backup({ sources: pg17Source(), destination: 'artifact', 'artifact-name': 'managed' }, artifacts.env);
    expect(run.code, run.masked).toBe(0);
    expect(run.summary).toMatch(
      /notes: PostgreSQL 17 at 127\.0\.0\.1:\d+ as app; client: pg_dump 17\.\d+ in a container of postgres:17 \(the runner's pg_dump is 15\.\d+\)/,
    );
    const manifest = JSON.parse(
      artifacts.artifacts.find((artifact) => artifact.name === `managed.${run.outputs['backup-id']}.manifest.json`)!.data.toString('utf8'),
    ) as {
      tools: Record<string, string>;
    };
    // Which binary ran: the manifest records the dump tool's own version line.
    expect(manifest.tools.pg_dump).toMatch(/^pg_dump \(PostgreSQL\) 17\./);
    await expectNoLeak(run, [pg17.password]);

    const drill = await backup({ sources: pg17Source(), destination: 'artifact', 'artifact-name': 'managed', mode: 'drill' }, artifacts.env);
    expect(drill.code, drill.masked).toBe(0);
    expect(drill.summary).toContain(`notes\\|40000`);
    expect(drill.masked).toMatch(/start a throwaway PostgreSQL 17 \(postgres:17\) for the drill/);
    expect(await sh('docker', ['ps', '-a', '-q', '--filter', 'label=skiff.backup=notes'])).toBe('');

    // The runner's own pg_dump 15 would have refused: the matching client is what made this work.
    const direct = await sh('bash', ['-c', `PGPASSWORD=${pg17.password} pg_dump -h 127.0.0.1 -p ${pg17.port} -U app app >/dev/null 2>&1; echo $?`]);
    expect(direct.trim()).not.toBe('0');
    expect(await pg17.psql(pg17.database, CHECKSUM_17)).toBe(expected17);
  });

  it('the starter workflow, copied as a user would, backs the database up nightly through backup.yml: the URL from the DATABASE_URL secret, no host', async () => {
    const repository = await tempDir('skiffbk-managed-repo');
    try {
      await mkdir(join(repository.path, '.github/workflows'), { recursive: true });
      await copyFile(
        join(import.meta.dirname, '../../workflows-templates/skiff-managed-db-backup.yml'),
        join(repository.path, '.github/workflows/backup-db.yml'),
      );
      const identity = await generateIdentity();
      const run = await runWorkflow({
        repository: repository.path,
        workflow: '.github/workflows/backup-db.yml',
        event: { name: 'schedule' },
        vars: { S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket, BACKUP_AGE_RECIPIENT: await identityToRecipient(identity) },
        secrets: {
          DATABASE_URL: `postgresql://${tls.user}:${tls.password}@127.0.0.1:${tls.port}/${tls.database}?sslmode=require`,
          S3_ACCESS_KEY_ID: s3.accessKeyId,
          S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
        },
      });
      try {
        expect(run.result, run.log).toBe('success');
        const step = run.action('action-backup');
        expect(step.outputs.verified).toBe('true');
        expect(step.outputs.location).toMatch(/^s3:\/\/skiffbk-managed\/skiff-backups\/app\/app-\d{8}T\d{6}Z\.dump\.age$/);
        expect(run.log).not.toContain(tls.password);
      } finally {
        await run.remove();
      }
    } finally {
      await repository.remove();
    }
  });

  const failures = [
    {
      what: 'a wrong password',
      sources: () => tlsSource(tlsUrl('not-the-password')),
      error: /shop: cannot connect to the database at 127\.0\.0\.1:\d+ as skiff \(sslmode verify-full\): .*password authentication failed for user "skiff"/,
    },
    {
      what: 'an unreachable host',
      sources: async () => `- name: gone\n  url: "postgresql://app:pw@127.0.0.1:${await freePort()}/app"\n`,
      error: /gone: cannot connect to the database at 127\.0\.0\.1:\d+ as app: .*Connection refused/,
    },
    {
      what: 'sslmode=require against a server without TLS',
      sources: () => pg17Source('  sslmode: require\n'),
      error: /notes: cannot connect to the database at .*\(sslmode require\): .*server does not support SSL, but SSL was required/,
    },
  ];
  for (const { what, sources, error } of failures) {
    it(`${what}: fails with a clear error before anything is read, nothing stored, summary says so`, async () => {
      const before = await s3Keys();
      const run = await backup({ sources: await sources(), ...s3Inputs() });
      expect(run.code, run.masked).toBe(1);
      expect(run.errors.join('\n')).toMatch(error);
      expect(run.summary).toMatch(/### backup: nothing was read or stored/);
      expect(await s3Keys()).toEqual(before);
      await expectNoLeak(run, [tls.password, pg17.password]);
    });
  }
});
