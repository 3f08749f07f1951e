import type { Compression, SourceType } from './sources';

/**
 * Written only after a backup has been stored and verified: its existence IS the claim that the
 * backup is good. Listing, retention and restore read manifests, never file times.
 */
export interface Manifest {
  format: 'skiff-backup/1';
  id: string;
  source: string;
  type: SourceType;
  /** ISO 8601 UTC time the dump started. */
  time: string;
  destination: 'host' | 's3' | 'artifact';
  /** Path on the server, `s3://bucket/key`, or `artifact:<name>#<id>`. */
  location: string;
  /** Stored object name, next to `<id>.manifest.json`. */
  file: string;
  /** Bytes stored (after compression and encryption) and their sha256. */
  size: number;
  sha256: string;
  /** The raw dump as the tool wrote it, when it passed through the runner. */
  rawSize?: number;
  rawSha256?: string;
  compression: Compression;
  encryption: { recipients: string[] } | null;
  /**
   * postgres `globals: true`: the `pg_dumpall --globals-only` object stored beside `file`
   * (`<id>.globals.sql[.gz][.age]`), same compression and encryption, checked on its own.
   */
  globals?: { file: string; size: number; sha256: string; rawSize?: number; rawSha256?: string; verification: string[] };
  /** Checks the backup passed before this manifest was written. */
  verification: string[];
  tools: Record<string, string>;
  durationMs: number;
}

export function parseManifest(text: string, where: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`manifest ${where} is not JSON`);
  }
  const m = value as Partial<Manifest>;
  if (m.format !== 'skiff-backup/1' || typeof m.id !== 'string' || typeof m.time !== 'string' || typeof m.sha256 !== 'string' || typeof m.file !== 'string') {
    throw new Error(`manifest ${where} is not a skiff-backup/1 manifest`);
  }
  return m as Manifest;
}

export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest)}\n`;
}
