import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import {
  sshdConnectOptions,
  startArtifactService,
  startPostgres,
  startSshd,
  tempDir,
  type ArtifactService,
  type Postgres,
  type SshdServer,
} from '@skiff/testbed';
import { join } from 'node:path';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { DefaultArtifactClient } from '@actions/artifact';
import { ArtifactServiceClient } from '../src/artifact-client';
import { ArtifactStore, GitHubArtifactsApi } from '../src/artifact-store';
import { backupSource, drillSource, findBackup, parseSources, pruneSource, restoreBackup, type Source } from '../src';
import { backupOptions } from './fixtures';

let sshd: SshdServer;
let ssh: SshConnection;
let pg: Postgres;
let service: ArtifactService;
let temp: { path: string; remove: () => Promise<void> };
const saved: Record<string, string | undefined> = {};

let clock = Date.parse('2026-05-01T03:00:00Z');
const tick = () => new Date((clock += 3_600_000));
const options = backupOptions(tick);

async function psql(database: string, sql: string): Promise<string> {
  const { stdout } = await promisify(execFile)('psql', ['-h', '127.0.0.1', '-p', String(pg.port), '-U', pg.user, '-d', database, '-X', '-tAc', sql], {
    env: { ...process.env, PGPASSWORD: pg.password },
  });
  return stdout.trim();
}
const checksum = (database: string) => psql(database, "select count(*) || ':' || md5(string_agg(id || '/' || note, ',' order by id)) from notes");

beforeAll(async () => {
  [sshd, pg, service, temp] = await Promise.all([startSshd(), startPostgres(), startArtifactService(), tempDir('skiffbk-artifact')]);
  // @actions/artifact reads the runner's variables at each call, as it does inside an action.
  for (const [key, value] of Object.entries({ ...service.env, RUNNER_TEMP: temp.path })) {
    saved[key] = process.env[key];
    process.env[key] = value;
  }
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  await psql(
    pg.database,
    'create table notes (id int primary key, note text); insert into notes select g, repeat(md5(g::text), 3) from generate_series(1, 3000) g',
  );
});

afterAll(async () => {
  for (const [key, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await ssh?.close();
  await Promise.all([sshd?.stop(), pg?.stop(), service?.stop(), temp?.remove()]);
});

const source = (): Source => {
  const { sources, problems } = parseSources(
    `- type: postgres\n  name: notes\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: ${pg.user}\n  database: ${pg.database}\n  password: "${pg.password}"\n`,
  );
  expect(problems).toEqual([]);
  return sources[0]!;
};

describe("artifact destination through a stand-in for GitHub's artifact service", () => {
  it('backup (age) → list → restore gives identical data, over Twirp CreateArtifact / blob blocks / FinalizeArtifact and List / GetSignedArtifactURL', async () => {
    const store = new ArtifactStore('nightly');
    const identity = await generateIdentity();
    const { manifest } = await backupSource(ssh, store, source(), options({ encryptRecipients: [await identityToRecipient(identity)] }));
    expect(manifest.destination).toBe('artifact');
    expect(manifest.file).toMatch(/^notes-\d{8}T\d{6}Z\.dump\.age$/);
    expect(manifest.location).toMatch(new RegExp(`^artifact:nightly\\.${manifest.file.replace(/\./g, '\\.')}#\\d+$`));
    const stored = service.artifacts.find((a) => a.name === `nightly.${manifest.file}`)!;
    expect(stored.data.length).toBe(manifest.size);
    expect(stored.data.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(stored.digest).toBe(`sha256:${manifest.sha256}`);
    expect(service.artifacts.map((a) => a.name).sort()).toEqual([`nightly.${manifest.file}`, `nightly.${manifest.id}.manifest.json`]);
    expect(service.requests).toEqual(
      expect.arrayContaining(['CreateArtifact', `blob PUT block nightly.${manifest.file}`, `blob PUT blocklist nightly.${manifest.file}`, 'FinalizeArtifact']),
    );

    const listed = await store.list('notes');
    expect(listed.map((m) => m.id)).toEqual([manifest.id]);
    expect(listed[0]).toEqual(manifest);
    expect(service.requests).toEqual(expect.arrayContaining(['ListArtifacts', 'GetSignedArtifactURL']));

    await restoreBackup(
      ssh,
      store,
      source(),
      await findBackup(store, source(), 'latest'),
      { database: 'notes_copy', force: false },
      { identities: [identity] },
    );
    expect(await checksum('notes_copy')).toBe(await checksum(pg.database));
    expect(await checksum('notes_copy')).toMatch(/^3000:/);
    // The runner temp files are gone.
    expect(await readdir(temp.path)).toEqual([]);
  });

  it('an unencrypted backup, a drill report as its own artifact, and a tampered artifact refused before the target is touched', async () => {
    const store = new ArtifactStore('plain');
    const { manifest } = await backupSource(ssh, store, source(), options());
    expect(manifest.encryption).toBeNull();
    const drill = await drillSource(ssh, store, source(), {});
    expect(drill.report).toEqual(['public.notes|3000']);
    expect(service.artifacts.some((a) => a.name === `plain.${manifest.id}.drill.json`)).toBe(true);

    const stored = service.artifacts.find((a) => a.name === `plain.${manifest.file}`)!;
    stored.data = Buffer.from(stored.data);
    stored.data.writeUInt8(stored.data.readUInt8(stored.data.length - 5) ^ 0xff, stored.data.length - 5);
    await expect(restoreBackup(ssh, store, source(), manifest, { database: 'notes_tampered', force: false })).rejects.toThrow(
      /sha256 of artifact .* does not match|but its manifest says/,
    );
    expect(await psql('postgres', "select count(*) from pg_database where datname = 'notes_tampered'")).toBe('0');

    await store.remove(manifest);
    expect(service.artifacts.filter((a) => a.name.startsWith(`plain.${manifest.id}`))).toEqual([]);
    expect(await store.list('notes')).toEqual([]);
  });

  it('speaks the same protocol as @actions/artifact: each side reads what the other wrote', async () => {
    const official = new DefaultArtifactClient();
    const ours = new ArtifactServiceClient();
    // Ours → @actions/artifact.
    const payload = Buffer.concat([Buffer.from('skiff interop\n'), (await import('node:crypto')).randomBytes(9 * 1024 * 1024)]);
    const upload = await ours.upload(
      'interop-ours.bin',
      (await import('node:stream')).Readable.from([payload.subarray(0, 3_000_000), payload.subarray(3_000_000)]),
    );
    expect(service.requests.filter((r) => r === 'blob PUT block interop-ours.bin').length).toBe(3);
    const id = await upload.finalize();
    const { artifact } = await official.getArtifact('interop-ours.bin');
    expect(artifact.id).toBe(id);
    expect(artifact.size).toBe(payload.length);
    const into = join(temp.path, 'official-download');
    const downloaded = await official.downloadArtifact(id, { path: into, expectedHash: `sha256:${upload.sha256}` });
    expect(downloaded.digestMismatch).toBe(false);
    // Buffer.equals: a deep toEqual over 9 MiB takes a minute.
    expect((await readFile(join(into, 'interop-ours.bin'))).equals(payload)).toBe(true);
    // @actions/artifact → ours.
    const file = join(temp.path, 'interop-official.txt');
    await writeFile(file, 'written by @actions/artifact\n'.repeat(1000));
    await official.uploadArtifact('interop-official.txt', [file], temp.path, { skipArchive: true });
    const listed = await ours.list('interop-official.txt');
    expect(listed.map((a) => a.name)).toEqual(['interop-official.txt']);
    const chunks: Buffer[] = [];
    for await (const chunk of await ours.download('interop-official.txt')) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks)).toEqual(await readFile(file));
    await ours.delete('interop-official.txt');
    await expect(official.getArtifact('interop-official.txt')).rejects.toThrow(/not found/i);
    await (await import('node:fs/promises')).rm(into, { recursive: true });
    await (await import('node:fs/promises')).rm(file);
  });

  it('a failed or rejected backup is never published', async () => {
    const store = new ArtifactStore('failing');
    const bad = parseSources(
      `- type: postgres\n  name: notes\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: ${pg.user}\n  database: no_such_db\n  password: "${pg.password}"\n`,
    ).sources[0]!;
    await expect(backupSource(ssh, store, bad, options())).rejects.toThrow(/no_such_db/);
    await expect(backupSource(ssh, store, source(), options({ minSize: 50 * 1024 * 1024 }))).rejects.toThrow(/smaller than min-size/);
    expect(service.artifacts.filter((a) => a.name.startsWith('failing.') && a.finalized)).toEqual([]);
    expect(await store.list('notes')).toEqual([]);
  });
});

describe("artifacts of earlier workflow runs, through GitHub's REST API (github-token)", () => {
  const useEnv = (env: Record<string, string>) => {
    for (const [key, value] of Object.entries(env)) {
      if (!(key in saved)) saved[key] = process.env[key];
      process.env[key] = value;
    }
  };
  const github = () => new GitHubArtifactsApi({ token: service.githubToken, repository: service.repository, apiUrl: service.apiUrl });

  it('run 1 backs up (with globals); run 2, another run id, lists it (page 2 of the listing), restores it with sha256 checked, and prunes it; the token only goes to the API', async () => {
    const superPassword = (await readFile(join(pg.dir, 'superpw'), 'utf8')).trim();
    const { sources } = parseSources(
      `- type: postgres\n  name: nightly-notes\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: postgres\n  password: "${superPassword}"\n  database: ${pg.database}\n  globals: true\n`,
    );
    const notes = sources[0]!;
    try {
      useEnv(service.env);
      const { manifest } = await backupSource(ssh, new ArtifactStore('cross', { github: github() }), notes, options());
      expect(manifest.globals?.file).toBe(`${manifest.id}.globals.sql`);
      const made = service.artifacts.filter((a) => a.name.startsWith(`cross.${manifest.id}`));
      expect(made.map((a) => a.name).sort()).toEqual([`cross.${manifest.file}`, `cross.${manifest.id}.globals.sql`, `cross.${manifest.id}.manifest.json`]);
      expect(new Set(made.map((a) => a.workflowRunId))).toEqual(new Set([service.workflowRunId]));
      // The repository's CI made many newer artifacts since: the backup is on the listing's second page.
      for (let i = 0; i < 150; i++) {
        service.artifacts.push({
          id: 900_000 + i,
          runId: 'ci',
          workflowRunId: 1,
          jobId: 'ci',
          name: `coverage-${i}`,
          mimeType: 'application/zip',
          data: Buffer.from('PK'),
          size: 2,
          createdAt: new Date(),
          finalized: true,
        });
      }

      const run2 = service.newRun();
      expect(run2.workflowRunId).not.toBe(service.workflowRunId);
      useEnv(run2.env);
      // The runner's artifact service alone sees only the run it belongs to.
      expect(await new ArtifactStore('cross').list('nightly-notes')).toEqual([]);
      const store = new ArtifactStore('cross', { github: github() });
      const before = service.requests.length;
      expect(await store.list('nightly-notes')).toEqual([manifest]);
      expect(service.requests.slice(before)).toEqual(
        expect.arrayContaining([
          'REST GET /repos/Acme-Corp/Shop-App/actions/artifacts?per_page=100&page=1',
          'REST GET /repos/Acme-Corp/Shop-App/actions/artifacts?per_page=100&page=2',
          `REST GET /repos/Acme-Corp/Shop-App/actions/artifacts/${made.find((a) => a.name.endsWith('.manifest.json'))!.id}/zip`,
        ]),
      );

      const result = await restoreBackup(ssh, store, notes, await findBackup(store, notes, 'latest'), { database: 'notes_run2', force: false });
      expect(result.globals).toBe('applied');
      // Restored by the superuser without owners: read it as the superuser.
      const { stdout } = await promisify(execFile)(
        'psql',
        [
          '-h',
          '127.0.0.1',
          '-p',
          String(pg.port),
          '-U',
          'postgres',
          '-d',
          'notes_run2',
          '-X',
          '-tAc',
          "select count(*) || ':' || md5(string_agg(id || '/' || note, ',' order by id)) from notes",
        ],
        { env: { ...process.env, PGPASSWORD: superPassword } },
      );
      expect(stdout.trim()).toBe(await checksum(pg.database));
      for (const a of made.filter((a) => !a.name.endsWith('.manifest.json'))) {
        expect(service.requests).toContain(`REST GET /repos/Acme-Corp/Shop-App/actions/artifacts/${a.id}/zip`);
        expect(service.requests).toContain(`blob GET ${a.name}`);
      }
      // A changed byte in the run-1 artifact: refused before the target is touched.
      const data = made.find((a) => a.name === `cross.${manifest.file}`)!;
      const original = data.data;
      data.data = Buffer.from(original);
      data.data[100] = data.data[100]! ^ 0x01;
      await expect(restoreBackup(ssh, store, notes, manifest, { database: 'notes_run2_tampered', force: false })).rejects.toThrow(
        /sha256 of artifact cross\..*#\d+ is [0-9a-f]{64}, but its manifest says/,
      );
      expect(await psql('postgres', "select count(*) from pg_database where datname = 'notes_run2_tampered'")).toBe('0');
      data.data = original;

      // A drill in run 2 of run 1's backup: its report is an artifact of run 2.
      const drill = await drillSource(ssh, store, notes, {});
      expect(drill.manifest.id).toBe(manifest.id);
      expect(drill.globals).toBe('verified');
      expect(drill.report).toEqual(['public.notes|3000']);
      expect(service.artifacts.find((a) => a.name === `cross.${manifest.id}.drill.json`)?.runId).toBe(run2.runId);

      // A wrong token: GitHub's 401, said plainly, without the token in the message.
      const wrong = new ArtifactStore('cross', {
        github: new GitHubArtifactsApi({ token: 'ghs_wrongwrongwrong', repository: service.repository, apiUrl: service.apiUrl }),
      });
      const refused = await wrong.list('nightly-notes').then(
        () => undefined,
        (error: Error) => error.message,
      );
      expect(refused).toBe('GitHub API GET /api/repos/Acme-Corp/Shop-App/actions/artifacts answered 401: Bad credentials (github-token is not valid)');

      // Pruning deletes across runs, which needs actions: write.
      service.githubTokenPermission = 'read';
      await expect(store.remove(manifest)).rejects.toThrow(/answered 403: Resource not accessible by integration \(github-token needs `actions: write`/);
      service.githubTokenPermission = 'write';
      const { manifest: newer } = await backupSource(ssh, store, notes, options());
      const deletes = service.requests.length;
      const pruned = await pruneSource(store, 'nightly-notes', { keepDaily: 1, minKeep: 1 }, { now: new Date(clock), dryRun: false });
      expect(pruned).toEqual({ kept: [newer.id], pruned: [manifest.id] });
      const deleted = service.requests.slice(deletes).filter((r) => r.startsWith('REST DELETE'));
      const api = '/repos/Acme-Corp/Shop-App/actions/artifacts';
      // Manifest first: an interrupted prune leaves orphan data, never a manifest without data.
      expect(deleted[0]).toBe(`REST DELETE ${api}/${made.find((a) => a.name.endsWith('.manifest.json'))!.id}`);
      expect([...deleted].sort()).toEqual(made.map((a) => `REST DELETE ${api}/${a.id}`).sort());
      expect(service.artifacts.filter((a) => a.name.startsWith(`cross.${manifest.id}`))).toEqual([]);
      expect((await store.list('nightly-notes')).map((m) => m.id)).toEqual([newer.id]);

      // Every API request carried the token as a bearer; no blob request carried any (the stand-in refuses those).
      expect(service.restAuthorizations.length).toBeGreaterThan(10);
      expect(new Set(service.restAuthorizations)).toEqual(new Set([`Bearer ${service.githubToken}`, 'Bearer ghs_wrongwrongwrong']));
    } finally {
      service.githubTokenPermission = 'write';
      useEnv(service.env);
      for (let i = service.artifacts.length - 1; i >= 0; i--) if (service.artifacts[i]!.runId === 'ci') service.artifacts.splice(i, 1);
    }
  });
});
