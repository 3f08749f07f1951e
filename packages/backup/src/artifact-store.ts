import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DefaultArtifactClient, type ArtifactClient } from '@actions/artifact';
import type { Executor } from '@skiff/shell';
import { storedExtension } from './formats';
import { parseManifest, serializeManifest, type Manifest } from './manifest';
import { encryptedNeedsIdentity, Inspector, localRawData, runnerVerification, sizeProblems, streamDump } from './runner-stream';
import { BackupFailed, newestFirst, type BackupRequest, type RawData, type Store } from './store';

/**
 * Backups as GitHub Actions artifacts (one artifact per stored file, uploaded unzipped), through
 * @actions/artifact and the runner's artifact service. That client uploads files, not streams, so
 * the stored bytes go to a 0600 file in the runner's temp directory first: disk bounded by the
 * backup's stored size, memory flat. Artifacts belong to a workflow run: list, restore and drill
 * see the backups of the run they are part of, and GitHub's artifact retention (retention-days)
 * decides how long they live; anyone who can read the repository can download them, so they
 * should be encrypted (encrypt-recipients).
 */
export class ArtifactStore implements Store {
  readonly kind = 'artifact' as const;

  constructor(
    /** Names every artifact: `<prefix>.<backup file>`. */
    readonly prefix: string,
    private readonly options: { retentionDays?: number; client?: ArtifactClient; tempRoot?: string } = {},
  ) {}

  private get client(): ArtifactClient {
    return (this.options.client ??= new DefaultArtifactClient());
  }

  describe(): string {
    return `GitHub artifacts ${this.prefix}.*`;
  }

  private name(file: string): string {
    return `${this.prefix}.${file}`;
  }

  private async tempDir(): Promise<{ path: string; remove: () => Promise<void> }> {
    const path = await mkdtemp(join(this.options.tempRoot ?? process.env.RUNNER_TEMP ?? tmpdir(), 'skiff-backup-'));
    return { path, remove: () => rm(path, { recursive: true, force: true }) };
  }

  /** Downloads one artifact into a fresh directory and returns the path of the file in it. */
  private async download(name: string, dir: string): Promise<string> {
    const { artifact } = await this.client.getArtifact(name);
    await this.client.downloadArtifact(artifact.id, { path: dir });
    const files = await readdir(dir);
    if (files.length !== 1) throw new Error(`artifact ${name} held ${files.length} files; expected the one backup file`);
    return join(dir, files[0]!);
  }

  private async uploadFile(path: string, dir: string): Promise<{ id?: number; digest?: string }> {
    return this.client.uploadArtifact(path.split('/').pop()!, [path], dir, {
      skipArchive: true,
      ...(this.options.retentionDays ? { retentionDays: this.options.retentionDays } : {}),
    });
  }

  async list(sourceName: string): Promise<Manifest[]> {
    const pattern = new RegExp(`^${escape(this.prefix)}\\.${escape(sourceName)}-\\d{8}T\\d{6}Z\\.manifest\\.json$`);
    const { artifacts } = await this.client.listArtifacts({ latest: true });
    const manifests: Manifest[] = [];
    for (const artifact of artifacts.filter((a) => pattern.test(a.name))) {
      const dir = await this.tempDir();
      try {
        await this.client.downloadArtifact(artifact.id, { path: dir.path });
        const [file] = await readdir(dir.path);
        manifests.push(parseManifest(await readFile(join(dir.path, file!), 'utf8'), `artifact ${artifact.name}`));
      } finally {
        await dir.remove();
      }
    }
    return newestFirst(manifests.filter((manifest) => manifest.source === sourceName));
  }

  async backup(executor: Executor, request: BackupRequest): Promise<Manifest> {
    const started = Date.now();
    const { source } = request;
    const encrypted = request.encryptRecipients.length > 0;
    const file = `${request.id}.${storedExtension(source.type, source.compression, encrypted)}`;
    const dir = await this.tempDir();
    try {
      const path = join(dir.path, this.name(file));
      const { raw, stored } = await streamDump(executor, request, (body) => pipeline(body, createWriteStream(path, { mode: 0o600 })), () => rm(path, { force: true }));
      const problems = sizeProblems(request, stored.bytes);
      // Nothing was uploaded yet: a rejected backup never becomes an artifact.
      if (problems.length > 0) throw new BackupFailed(`backup of ${source.name} rejected (not uploaded): ${problems.join('; ')}`);
      const sha256 = stored.digest();
      const uploaded = await this.uploadFile(path, dir.path);
      if (uploaded.digest !== undefined && uploaded.digest !== sha256) {
        throw new BackupFailed(`artifact ${this.name(file)}: uploaded sha256 ${uploaded.digest} differs from the stream's ${sha256}; no manifest written`);
      }
      await rm(path);
      const manifest: Manifest = {
        format: 'skiff-backup/1',
        id: request.id,
        source: source.name,
        type: source.type,
        time: request.time.toISOString(),
        destination: 'artifact',
        location: `artifact:${this.name(file)}${uploaded.id !== undefined ? `#${uploaded.id}` : ''}`,
        file,
        size: stored.bytes,
        sha256,
        rawSize: raw.bytes,
        rawSha256: raw.digest(),
        compression: source.compression,
        encryption: encrypted ? { recipients: [...request.encryptRecipients] } : null,
        verification: runnerVerification(request),
        tools: request.tools,
        durationMs: Date.now() - started,
      };
      const manifestPath = join(dir.path, this.name(`${request.id}.manifest.json`));
      await writeFile(manifestPath, serializeManifest(manifest), { mode: 0o600 });
      await this.uploadFile(manifestPath, dir.path);
      return manifest;
    } finally {
      await dir.remove();
    }
  }

  async remove(manifest: Manifest): Promise<void> {
    // Manifest first: an interruption leaves an orphan file, never a manifest without its data.
    await this.client.deleteArtifact(this.name(`${manifest.id}.manifest.json`));
    await this.client.deleteArtifact(this.name(manifest.file));
    await this.client.deleteArtifact(this.name(`${manifest.id}.drill.json`)).catch(() => undefined);
  }

  /** Downloads to a runner temp file, checks sha256 against the manifest, before the server is touched. */
  async fetch(manifest: Manifest, identities: readonly string[]): Promise<RawData> {
    encryptedNeedsIdentity(manifest, identities);
    const dir = await this.tempDir();
    try {
      const path = await this.download(this.name(manifest.file), dir.path);
      const hash = new Inspector();
      await pipeline(createReadStream(path), hash, async function* (source) {
        for await (const _ of source) void _;
      });
      const actual = hash.digest();
      if (actual !== manifest.sha256) throw new Error(`sha256 of artifact ${this.name(manifest.file)} is ${actual}, but its manifest says ${manifest.sha256}; refusing to restore it`);
      return await localRawData(path, manifest, identities, dir.remove);
    } catch (error) {
      await dir.remove();
      throw error;
    }
  }

  async writeReport(manifest: Manifest, name: string, content: string): Promise<void> {
    const dir = await this.tempDir();
    try {
      const path = join(dir.path, this.name(`${manifest.id}.${name}.json`));
      await writeFile(path, content, { mode: 0o600 });
      await this.uploadFile(path, dir.path);
    } finally {
      await dir.remove();
    }
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
