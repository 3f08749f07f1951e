import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MYSQL_CHECKSUM_SQL,
  MYSQL_SEED_SQL,
  ensureHubMariadb,
  freePort,
  sh,
  startArtifactService,
  startContainerMariadb,
  startMariadb,
  startS3,
  tempDir,
  type ArtifactService,
  type ContainerMariadb,
  type Mariadb,
  type S3Server,
} from '@skiff/testbed';
import { runnerSide, s3Destination } from './runner-side-fixtures';

/**
 * A managed MariaDB backed up from the runner, as a managed PostgreSQL is: MariaDB 10.11 over TLS
 * (the user may only log in with TLS; the runner's own mariadb-dump is 10.11) holding ~6 MB of the
 * realistic tables (a tenth of real-size-sources' rows: the runner's streaming is proven at ~60 MB
 * by the PostgreSQL test, mariadb-dump's at ~55 MB by real-size-sources and the modern server), and
 * MariaDB 11.8 in a container (the runner's mariadb-dump is too old for it: `mariadb:11.8` must
 * be the one that runs).
 */

const MB = 1024 * 1024;
let tls: Mariadb;
let maria11: ContainerMariadb;
let s3: S3Server;
let artifacts: ArtifactService;
let runnerTemp: { path: string; remove: () => Promise<void> };
const shopPassword = `pw-${Math.random().toString(36).slice(2, 14)}`;
let expectedShop = '';
let expectedNotes = '';

/** The realistic tables at a tenth of their rows: far beyond any pipe buffer, quick to seed and restore. */
const SHOP_SEED = MYSQL_SEED_SQL.replace('seq_1_to_200000', 'seq_1_to_20000')
  .replace('seq_1_to_250000', 'seq_1_to_25000')
  .replace('rand() * 200000', 'rand() * 20000');
const SEED_11 = ['create table notes (id int primary key, body text)', 'insert into notes select seq, repeat(md5(seq), 8) from seq_1_to_30000'].join(';\n');
const CHECKSUM_11 =
  "set session group_concat_max_len = 1073741824; select concat('notes|', count(*), '|', md5(group_concat(concat_ws('/', id, body) order by id separator '\\n'))) from notes";

const s3Inputs = () => s3Destination(s3, 'maria');
const shopUrl = (password = shopPassword, mode = 'verify-full') => `mariadb://shop:${encodeURIComponent(password)}@127.0.0.1:${tls.port}/shop?sslmode=${mode}`;
const shopSource = (url = shopUrl()) =>
  `- name: shop\n  url: "${url}"\n  compression: gzip\n  ca-certificate: |\n${tls.caPem!.trim().replace(/^/gm, '    ')}\n`;
const notesSource = (extra = '') =>
  `- name: notes\n  url: "mariadb://${maria11.user}:${maria11.password}@127.0.0.1:${maria11.port}/${maria11.database}"\n${extra}`;

const { backup, expectNoLeak } = runnerSide(() => runnerTemp.path);

beforeAll(async () => {
  // mariadb:10.11 is the throwaway server of a drill of the 10.11 database; mariadb:11.8 serves and drills the other.
  await ensureHubMariadb('10.11');
  await ensureHubMariadb('11.8');
  [tls, maria11, s3, artifacts, runnerTemp] = await Promise.all([
    startMariadb({ tls: true }),
    startContainerMariadb('mariadb:11.8'),
    startS3('skiffbk-maria'),
    startArtifactService(),
    tempDir('skiffbk-maria-temp'),
  ]);
  // The backup user may only log in over TLS, as managed databases require.
  await tls.sql(`create user 'shop'@'127.0.0.1' identified by '${shopPassword}' require ssl; grant all on *.* to 'shop'@'127.0.0.1'; create database shop`);
  await Promise.all([tls.sql(SHOP_SEED, 'shop'), maria11.sql(maria11.database, SEED_11)]);
  [expectedShop, expectedNotes] = await Promise.all([tls.sql(MYSQL_CHECKSUM_SQL, 'shop'), maria11.sql(maria11.database, CHECKSUM_11)]);
}, 600_000);

afterAll(async () => {
  await Promise.all([tls?.stop(), maria11?.stop(), s3?.stop(), artifacts?.stop(), runnerTemp?.remove()]);
});

describe('a managed MariaDB backed up from the runner (no host)', () => {
  it('the data is the size it claims, and the servers are the releases the tests need', async () => {
    // InnoDB's table statistics lag behind fresh inserts until analyzed.
    await tls.sql('analyze table customers, events', 'shop');
    const bytes = Number(await tls.sql("select sum(data_length + index_length) from information_schema.tables where table_schema = 'shop'"));
    expect(bytes).toBeGreaterThan(5 * MB);
    expect(maria11.version).toMatch(/^11\.8\./);
    expect(await sh('mariadb-dump', ['--version'])).toMatch(/10\.11\.\d+-MariaDB/);
  });

  it("over TLS (verify-full against the given CA) to S3 with age: the runner's own mariadb-dump 10.11; restore and both drills", async () => {
    const identity = await generateIdentity();
    const run = await backup({ sources: shopSource(), ...s3Inputs(), 'encrypt-recipients': await identityToRecipient(identity) });
    expect(run.code, run.masked).toBe(0);
    expect(run.outputs.verified).toBe('true');
    expect(run.outputs.location).toMatch(/^s3:\/\/skiffbk-maria\/maria\/shop\/shop-\d{8}T\d{6}Z\.sql\.gz\.age$/);
    expect(Number(run.outputs.size)).toBeGreaterThan(MB);
    expect(run.summary).toMatch(/shop: MariaDB 10\.11 at 127\.0\.0\.1:\d+ as shop \(sslmode verify-full\); client: the runner's mariadb-dump 10\.11\./);
    await expectNoLeak(run, [shopPassword]);

    const restored = await backup({ sources: shopSource(), ...s3Inputs(), mode: 'restore', 'restore-target': 'shop_copy', 'decrypt-identity': identity });
    expect(restored.code, restored.masked).toBe(0);
    expect(await tls.sql(MYSQL_CHECKSUM_SQL, 'shop_copy')).toBe(expectedShop);

    const databases = () => tls.sql('show databases');
    const before = await databases();
    const drill = await backup({ sources: shopSource(), ...s3Inputs(), mode: 'drill', 'decrypt-identity': identity });
    expect(drill.code, drill.masked).toBe(0);
    expect(drill.summary).toContain('customers\\|20000');
    expect(drill.summary).toContain('events\\|25000');
    expect(drill.masked).toMatch(/start a throwaway MariaDB 10\.11 \(mariadb:10\.11\) for the drill/);
    expect(await databases()).toBe(before);
    expect(await sh('docker', ['ps', '-a', '-q', '--filter', 'label=skiff.backup=shop'])).toBe('');

    const onServer = await backup({ sources: shopSource(), ...s3Inputs(), mode: 'drill', 'drill-target': 'server', 'decrypt-identity': identity });
    expect(onServer.code, onServer.masked).toBe(0);
    expect(onServer.summary).toContain('customers\\|20000');
    expect(await databases()).toBe(before);
    await expectNoLeak(onServer, [shopPassword]);
  });

  it("a release newer than the runner's mariadb-dump (11.8 vs 10.11) is dumped by mariadb-dump 11.8 from mariadb:11.8, to an artifact, and drilled on a throwaway 11.8", async () => {
    const run = await backup({ sources: notesSource(), destination: 'artifact', 'artifact-name': 'maria' }, artifacts.env);
    expect(run.code, run.masked).toBe(0);
    expect(run.summary).toMatch(
      /notes: MariaDB 11\.8 at 127\.0\.0\.1:\d+ as app; client: mariadb-dump 11\.8\.\d+ in a container of mariadb:11\.8 \(the runner's mariadb-dump is 10\.11\.\d+\)/,
    );
    const manifest = JSON.parse(
      artifacts.artifacts.find((artifact) => artifact.name === `maria.${run.outputs['backup-id']}.manifest.json`)!.data.toString('utf8'),
    ) as {
      tools: Record<string, string>;
    };
    expect(manifest.tools['mariadb-dump']).toMatch(/11\.8\.\d+-MariaDB/);
    await expectNoLeak(run, [maria11.password]);

    const drill = await backup({ sources: notesSource(), destination: 'artifact', 'artifact-name': 'maria', mode: 'drill' }, artifacts.env);
    expect(drill.code, drill.masked).toBe(0);
    expect(drill.summary).toContain('notes\\|30000');
    expect(drill.masked).toMatch(/start a throwaway MariaDB 11\.8 \(mariadb:11\.8\) for the drill/);
    expect(await sh('docker', ['ps', '-a', '-q', '--filter', 'label=skiff.backup=notes'])).toBe('');
    expect(await maria11.sql(maria11.database, CHECKSUM_11)).toBe(expectedNotes);
  });

  it('one database that cannot be reached does not stop the others: each gets its own row, the run fails naming it', async () => {
    // A port nothing listens on: the reachable database must still be backed up and drilled.
    const gone = `- name: gone\n  url: "mariadb://app:pw@127.0.0.1:${await freePort()}/app"\n`;
    const sources = gone + notesSource();
    const run = await backup({ sources, destination: 'artifact', 'artifact-name': 'maria-two' }, artifacts.env);
    expect(run.code, run.masked).toBe(1);
    expect(run.errors.join('\n')).toMatch(/gone: cannot connect to the database at 127\.0\.0\.1:\d+ as app/);
    expect(run.errors.join('\n')).toMatch(/1 of 2 backups failed: gone/);
    expect(run.outputs.verified).toBe('false');
    expect(run.outputs['backup-id']).toMatch(/^notes-\d{8}T\d{6}Z$/);
    expect(run.summary).toMatch(/\| gone \| FAILED \|.*cannot connect/);
    expect(run.summary).toMatch(/\| notes \| notes-\d{8}T\d{6}Z \|/);
    expect(artifacts.artifacts.some((artifact) => artifact.name === `maria-two.${run.outputs['backup-id']}.manifest.json`)).toBe(true);

    const drill = await backup({ sources, destination: 'artifact', 'artifact-name': 'maria-two', mode: 'drill' }, artifacts.env);
    expect(drill.code, drill.masked).toBe(1);
    expect(drill.summary).toContain('notes\\|30000');
    expect(drill.summary).toMatch(/\| gone \| — \| FAILED \|/);
    await expectNoLeak(drill, [maria11.password]);
  });

  const failures = [
    {
      what: 'a wrong password',
      sources: () => shopSource(shopUrl('not-the-password')),
      error: /shop: cannot connect to the database at .*Access denied for user 'shop'/,
    },
    {
      what: 'a user that must use TLS, with sslmode disable',
      sources: () => `- name: shop\n  url: "${shopUrl(shopPassword, 'disable')}"\n`,
      error: /shop: cannot connect .*\(sslmode disable\): .*Access denied/,
    },
    {
      // MariaDB 11.4 and later make a certificate of their own when given none: 10.11 is the one without TLS.
      what: 'sslmode=require against a server without TLS',
      sources: async () => {
        const plain = await startMariadb();
        stopAfter.push(() => plain.stop());
        return `- name: plain\n  url: "mariadb://root:${plain.password}@127.0.0.1:${plain.port}/${plain.database}?sslmode=require"\n`;
      },
      error: /plain: cannot connect to the database at .*\(sslmode require\): the server does not speak TLS, and sslmode require requires it/,
    },
  ];
  const stopAfter: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of stopAfter) await stop();
  });
  for (const { what, sources, error } of failures) {
    it(`${what}: fails with a clear error before anything is read, nothing stored`, async () => {
      const run = await backup({ sources: await sources(), ...s3Inputs() });
      expect(run.code, run.masked).toBe(1);
      expect(run.errors.join('\n')).toMatch(error);
      expect(run.summary).toMatch(/### backup: nothing was read or stored/);
      await expectNoLeak(run, [shopPassword, maria11.password]);
    });
  }
});
