import type { Compression, SourceType } from './sources';

/** What a raw dump looks like: file extension, the magic bytes it must start with, a trailer it must end with. */
export interface Format {
  extension: string;
  magic?: { offset: number; bytes: Buffer };
  trailer?: string;
  describe: string;
}

/** Per source type. */
export const FORMATS: Record<SourceType, Format> = {
  postgres: { extension: 'dump', magic: { offset: 0, bytes: Buffer.from('PGDMP') }, describe: 'PostgreSQL custom-format header PGDMP' },
  mysql: { extension: 'sql', trailer: '-- Dump completed', describe: 'mysqldump "-- Dump completed" trailer' },
  redis: { extension: 'rdb', magic: { offset: 0, bytes: Buffer.from('REDIS') }, describe: 'RDB header REDIS' },
  sqlite: { extension: 'sqlite', magic: { offset: 0, bytes: Buffer.from('SQLite format 3\0', 'latin1') }, describe: 'SQLite header' },
  files: { extension: 'tar', magic: { offset: 257, bytes: Buffer.from('ustar') }, describe: 'tar header' },
};

/**
 * `pg_dumpall --globals-only` (roles, tablespaces): plain SQL that opens with the cluster-dump
 * banner and closes with "…dump complete", so a cut-off file is told apart from a whole one.
 */
export const GLOBALS_FORMAT: Format = {
  extension: 'globals.sql',
  magic: { offset: 0, bytes: Buffer.from('--\n-- PostgreSQL database cluster dump\n') },
  trailer: '-- PostgreSQL database cluster dump complete',
  describe: 'pg_dumpall cluster dump header and "complete" trailer',
};

export function storedExtension(type: SourceType | Format, compression: Compression, encrypted: boolean): string {
  return [(typeof type === 'string' ? FORMATS[type] : type).extension, compression === 'gzip' ? 'gz' : undefined, encrypted ? 'age' : undefined]
    .filter(Boolean)
    .join('.');
}

/** `<source-name>-<UTC yyyymmddThhmmssZ>`: sorts by time, readable, safe in paths and keys. */
export function backupId(sourceName: string, time: Date): string {
  const stamp = time
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${sourceName}-${stamp}`;
}
