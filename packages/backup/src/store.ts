import type { Readable } from 'node:stream';
import type { Command, Executor } from '@skiff/shell';
import type { Manifest } from './manifest';
import type { Source } from './sources';

export interface BackupRequest {
  source: Source;
  id: string;
  time: Date;
  /** The dump command (secrets already arranged). */
  dump: Command;
  /** postgres with `globals: true`: `pg_dumpall --globals-only`, stored beside the dump in the same backup. */
  globals?: Command;
  /** A 0600 file on the server holding a host-level tool's secret; removed when the dump ends. */
  secretFile?: string;
  minSize: number;
  /** Size of the newest earlier backup of this source, for the shrink guard. */
  previousSize?: number;
  maxShrinkPercent: number;
  encryptRecipients: readonly string[];
  tools: Record<string, string>;
}

/** How a stored backup's raw data reaches a restore: read on the server, or streamed from the runner. */
export type RawData =
  | { kind: 'server'; check: Command[]; feed: Command; /** Reads the raw globals SQL, when the backup has them. */ globals?: Command }
  | { kind: 'stream'; open: () => Promise<Readable>; cleanup: () => Promise<void>; globals?: () => Promise<Readable> };

/** One destination: where backups and their manifests live. */
export interface Store {
  readonly kind: 'host' | 's3' | 'artifact';
  describe(): string;
  /** Manifests of one source, newest first. */
  list(sourceName: string): Promise<Manifest[]>;
  backup(executor: Executor, request: BackupRequest): Promise<Manifest>;
  remove(manifest: Manifest): Promise<void>;
  /** Verifies the stored bytes' sha256 (of the globals too, when the backup has them) (before anything is written anywhere) and returns how to read the raw dump. */
  fetch(manifest: Manifest, identities: readonly string[]): Promise<RawData>;
  /** Writes a small report next to the manifest (e.g. a drill's numbers). */
  writeReport(manifest: Manifest, name: string, content: string): Promise<void>;
  /** Releases connections (sockets of an SDK client) so the process can exit. */
  close?(): void;
}

export class BackupFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupFailed';
  }
}

export function newestFirst(manifests: Manifest[]): Manifest[] {
  return manifests.sort((a, b) => Date.parse(b.time) - Date.parse(a.time) || b.id.localeCompare(a.id));
}
