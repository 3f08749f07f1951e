import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import type { Executor } from '@skiff/shell';
import { ArtifactServiceClient, type UploadedBlob } from './artifact-client';
import { GLOBALS_FORMAT, storedExtension } from './formats';
import type { GitHubArtifactsApi } from './github-artifacts';
import { parseManifest, serializeManifest, type Manifest } from './manifest';
import { fetchChecked, globalsVerification, runnerVerification, sizeProblems, streamDump } from './runner-stream';
import { BackupFailed, newestFirst, type BackupRequest, type RawData, type Store } from './store';

/** One artifact as this store sees it: in this run (artifact service) or an earlier one (REST API). */
interface Ref {
  id: number;
  name: string;
  current: boolean;
}

/**
 * Backups as GitHub Actions artifacts: one artifact per stored file, `<prefix>.<file>`, streamed
 * block by block to the artifact service (never whole in memory or on the runner's disk) and
 * published (finalized) only after every check passed, so a rejected backup never appears.
 * New backups belong to the run that makes them. With `github` (the REST API and a token with
 * `actions: read`), list, restore and drill also see the backups of earlier runs and prune
 * deletes them (`actions: write`); without it only this run's. GitHub's artifact retention
 * (90 days by default) still removes them in the end. Anyone who can read the repository can
 * download them: encrypt them (encrypt-recipients).
 */
export class ArtifactStore implements Store {
  readonly kind = 'artifact' as const;
  private client?: ArtifactServiceClient;
  /** Artifacts never change: a manifest read once is kept by artifact id. */
  private readonly manifests = new Map<number, Manifest>();

  constructor(
    /** Names every artifact: `<prefix>.<backup file>`. */
    readonly prefix: string,
    private readonly options: { client?: ArtifactServiceClient; tempRoot?: string; github?: GitHubArtifactsApi; log?: (message: string) => void } = {},
  ) {}

  private get service(): ArtifactServiceClient {
    return (this.client ??= this.options.client ?? new ArtifactServiceClient());
  }

  describe(): string {
    return `GitHub artifacts ${this.prefix}.*${this.options.github ? '' : ' (this run only)'}`;
  }

  private name(file: string): string {
    return `${this.prefix}.${file}`;
  }

  /** This run's artifacts, then every other run's the REST API shows (the same artifact once). */
  private async refs(): Promise<Ref[]> {
    const mine = `${this.prefix}.`;
    const refs: Ref[] = (await this.service.list()).filter((a) => a.name.startsWith(mine)).map((a) => ({ id: a.id, name: a.name, current: true }));
    const github = this.options.github;
    if (github) {
      const seen = new Set(refs.map((ref) => ref.id));
      for (const a of await github.list()) if (a.name.startsWith(mine) && !seen.has(a.id)) refs.push({ id: a.id, name: a.name, current: false });
      if (github.truncated) this.options.log?.(`the repository has more artifacts than the ${refs.length} newest looked at; older backups were not listed`);
    }
    return refs;
  }

  /** The artifact holding `file`: this run's if it has one, else the newest. */
  private async ref(file: string): Promise<Ref> {
    const named = (await this.refs()).filter((ref) => ref.name === this.name(file));
    const ref = named.find((r) => r.current) ?? named.sort((a, b) => b.id - a.id)[0];
    if (!ref)
      throw new Error(
        `artifact ${this.name(file)} not found${this.options.github ? ' (expired or deleted?)' : ' in this run (set github-token to reach earlier runs)'}`,
      );
    return ref;
  }

  private async open(ref: Ref): Promise<Readable> {
    return ref.current ? this.service.download(ref.name) : this.options.github!.download(ref.id);
  }

  private async text(ref: Ref): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.open(ref)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private async delete(ref: Ref): Promise<void> {
    if (ref.current) await this.service.delete(ref.name);
    else await this.options.github!.delete(ref.id);
  }

  async list(sourceName: string): Promise<Manifest[]> {
    const pattern = new RegExp(`^${escape(this.prefix)}\\.${escape(sourceName)}-\\d{8}T\\d{6}Z\\.manifest\\.json$`);
    const byId = new Map<string, Manifest>();
    for (const ref of (await this.refs()).filter((r) => pattern.test(r.name))) {
      let manifest = this.manifests.get(ref.id);
      if (!manifest) {
        manifest = parseManifest(await this.text(ref), `artifact ${ref.name}#${ref.id}`);
        this.manifests.set(ref.id, manifest);
      }
      if (manifest.source === sourceName) byId.set(manifest.id, manifest);
    }
    return newestFirst([...byId.values()]);
  }

  async backup(executor: Executor, request: BackupRequest): Promise<Manifest> {
    const started = Date.now();
    const { source } = request;
    const encrypted = request.encryptRecipients.length > 0;
    const file = `${request.id}.${storedExtension(source.type, source.compression, encrypted)}`;
    // The globals first; like the dump they are published only once everything has passed.
    let globals: { manifest: NonNullable<Manifest['globals']>; upload: UploadedBlob } | undefined;
    if (request.globals) {
      const globalsFile = `${request.id}.${storedExtension(GLOBALS_FORMAT, source.compression, encrypted)}`;
      let upload: UploadedBlob | undefined;
      const part = await streamDump(
        executor,
        request,
        async (body) => {
          upload = await this.service.upload(this.name(globalsFile), body);
        },
        async () => undefined,
        { dump: request.globals, format: GLOBALS_FORMAT, what: 'pg_dumpall --globals-only' },
      );
      const sha256 = part.stored.digest();
      if (upload!.sha256 !== sha256 || upload!.size !== part.stored.bytes)
        throw new BackupFailed(`artifact ${this.name(globalsFile)}: the uploaded bytes differ from the stream's; not published`);
      globals = {
        manifest: {
          file: globalsFile,
          size: part.stored.bytes,
          sha256,
          rawSize: part.raw.bytes,
          rawSha256: part.raw.digest(),
          verification: globalsVerification(),
        },
        upload: upload!,
      };
    }
    let uploaded: UploadedBlob | undefined;
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
    if (uploaded!.sha256 !== sha256 || uploaded!.size !== stored.bytes)
      throw new BackupFailed(`artifact ${this.name(file)}: the uploaded bytes differ from the stream's; not published`);
    if (globals) await globals.upload.finalize();
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
      ...(globals ? { globals: globals.manifest } : {}),
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

  /** Every artifact of the backup, in every run: manifest first, so an interruption leaves orphans, never a manifest without its data. */
  async remove(manifest: Manifest): Promise<void> {
    const files = [`${manifest.id}.manifest.json`, manifest.file, ...(manifest.globals ? [manifest.globals.file] : []), `${manifest.id}.drill.json`];
    const refs = await this.refs();
    for (const file of files) {
      for (const ref of refs.filter((r) => r.name === this.name(file))) {
        await this.delete(ref);
        this.manifests.delete(ref.id);
      }
    }
  }

  /** Downloads to a runner temp file while hashing; a mismatch stops here, before the server is touched. */
  async fetch(manifest: Manifest, identities: readonly string[]): Promise<RawData> {
    return fetchChecked(manifest, identities, this.options.tempRoot ?? process.env.RUNNER_TEMP ?? tmpdir(), async (file) => {
      const ref = await this.ref(file);
      return { body: await this.open(ref), where: `artifact ${ref.name}#${ref.id}` };
    });
  }

  /** In this run; a report of the same name this run made before (a second drill) is replaced. */
  async writeReport(manifest: Manifest, name: string, content: string): Promise<void> {
    const artifact = this.name(`${manifest.id}.${name}.json`);
    if ((await this.service.list(artifact)).length > 0) await this.service.delete(artifact);
    await this.publish(artifact, content);
  }
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export { GitHubArtifactsApi, GitHubApiError } from './github-artifacts';
export type { GitHubSettings, RepoArtifact } from './github-artifacts';
