import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Executor } from '@skiff/shell';
import { ArtifactServiceClient } from './artifact-client';
import { storedExtension } from './formats';
import { parseManifest, serializeManifest, type Manifest } from './manifest';
import { encryptedNeedsIdentity, Inspector, localRawData, runnerVerification, sizeProblems, streamDump } from './runner-stream';
import { BackupFailed, newestFirst, type BackupRequest, type RawData, type Store } from './store';

/**
 * Backups as GitHub Actions artifacts: one artifact per stored file, `<prefix>.<file>`, streamed
 * block by block to the artifact service (never whole in memory or on the runner's disk) and
 * published (finalized) only after every check passed, so a rejected backup never appears.
 * Artifacts belong to a workflow run: list, restore, drill and prune see the backups of the run
 * they are part of, and GitHub's artifact retention decides how long they live. Anyone who can
 * read the repository can download them: encrypt them (encrypt-recipients).
 */
export class ArtifactStore implements Store {
  readonly kind = 'artifact' as const;
  private client?: ArtifactServiceClient;

  constructor(
    /** Names every artifact: `<prefix>.<backup file>`. */
    readonly prefix: string,
    private readonly options: { client?: ArtifactServiceClient; tempRoot?: string } = {},
  ) {}

  private get service(): ArtifactServiceClient {
    return (this.client ??= this.options.client ?? new ArtifactServiceClient());
  }

  describe(): string {
    return `GitHub artifacts ${this.prefix}.*`;
  }

  private name(file: string): string {
    return `${this.prefix}.${file}`;
  }

  private async text(name: string): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.service.download(name)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async list(sourceName: string): Promise<Manifest[]> {
    const pattern = new RegExp(`^${escape(this.prefix)}\\.${escape(sourceName)}-\\d{8}T\\d{6}Z\\.manifest\\.json$`);
    const manifests: Manifest[] = [];
    for (const artifact of (await this.service.list()).filter((a) => pattern.test(a.name))) {
      manifests.push(parseManifest(await this.text(artifact.name), `artifact ${artifact.name}`));
    }
    return newestFirst(manifests.filter((manifest) => manifest.source === sourceName));
  }

  async backup(executor: Executor, request: BackupRequest): Promise<Manifest> {
    const started = Date.now();
    const { source } = request;
    const encrypted = request.encryptRecipients.length > 0;
    const file = `${request.id}.${storedExtension(source.type, source.compression, encrypted)}`;
    let uploaded: Awaited<ReturnType<ArtifactServiceClient['upload']>> | undefined;
    const { raw, stored } = await streamDump(
      executor,
      request,
      async (body) => {
        uploaded = await this.service.upload(this.name(file), body);
      },
      // Nothing to undo: an artifact that is never finalized never becomes visible.
      async () => undefined,
    );
    const problems = sizeProblems(request, stored.bytes);
    if (problems.length > 0) throw new BackupFailed(`backup of ${source.name} rejected (never published): ${problems.join('; ')}`);
    const sha256 = stored.digest();
    if (uploaded!.sha256 !== sha256 || uploaded!.size !== stored.bytes) throw new BackupFailed(`artifact ${this.name(file)}: the uploaded bytes differ from the stream's; not published`);
    const artifactId = await uploaded!.finalize();
    const manifest: Manifest = {
      format: 'skiff-backup/1',
      id: request.id,
      source: source.name,
      type: source.type,
      time: request.time.toISOString(),
      destination: 'artifact',
      location: `artifact:${this.name(file)}#${artifactId}`,
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
    await this.publish(this.name(`${request.id}.manifest.json`), serializeManifest(manifest));
    return manifest;
  }

  private async publish(name: string, content: string): Promise<void> {
    const upload = await this.service.upload(name, Readable.from([Buffer.from(content)]), 'application/json');
    await upload.finalize();
  }

  async remove(manifest: Manifest): Promise<void> {
    // Manifest first: an interruption leaves an orphan file, never a manifest without its data.
    await this.service.delete(this.name(`${manifest.id}.manifest.json`));
    await this.service.delete(this.name(manifest.file));
    const report = this.name(`${manifest.id}.drill.json`);
    if ((await this.service.list(report)).length > 0) await this.service.delete(report);
  }

  /** Downloads to a runner temp file while hashing; a mismatch stops here, before the server is touched. */
  async fetch(manifest: Manifest, identities: readonly string[]): Promise<RawData> {
    encryptedNeedsIdentity(manifest, identities);
    const dir = await mkdtemp(join(this.options.tempRoot ?? process.env.RUNNER_TEMP ?? tmpdir(), 'skiff-restore-'));
    const cleanup = () => rm(dir, { recursive: true, force: true });
    try {
      const path = join(dir, manifest.file);
      const hash = new Inspector();
      await pipeline(await this.service.download(this.name(manifest.file)), hash, createWriteStream(path, { mode: 0o600 }));
      const actual = hash.digest();
      if (actual !== manifest.sha256) throw new Error(`sha256 of artifact ${this.name(manifest.file)} is ${actual}, but its manifest says ${manifest.sha256}; refusing to restore it`);
      return await localRawData(path, manifest, identities, cleanup);
    } catch (error) {
      await cleanup();
      throw error;
    }
  }

  async writeReport(manifest: Manifest, name: string, content: string): Promise<void> {
    await this.publish(this.name(`${manifest.id}.${name}.json`), content);
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
