import type { Compression, SourceType } from './sources';

/** What a raw dump of each type looks like: file extension and the magic bytes it must start with. */
export const FORMATS: Record<SourceType, { extension: string; magic?: { offset: number; bytes: Buffer }; trailer?: string; describe: string }> = {
  postgres: { extension: 'dump', magic: { offset: 0, bytes: Buffer.from('PGDMP') }, describe: 'PostgreSQL custom-format header PGDMP' },
  mysql: { extension: 'sql', trailer: '-- Dump completed', describe: 'mysqldump "-- Dump completed" trailer' },
  redis: { extension: 'rdb', magic: { offset: 0, bytes: Buffer.from('REDIS') }, describe: 'RDB header REDIS' },
  sqlite: { extension: 'sqlite', magic: { offset: 0, bytes: Buffer.from('SQLite format 3\0', 'latin1') }, describe: 'SQLite header' },
  files: { extension: 'tar', magic: { offset: 257, bytes: Buffer.from('ustar') }, describe: 'tar header' },
};

export function storedExtension(type: SourceType, compression: Compression, encrypted: boolean): string {
  return [FORMATS[type].extension, compression === 'gzip' ? 'gz' : undefined, encrypted ? 'age' : undefined].filter(Boolean).join('.');
}

/** `<source-name>-<UTC yyyymmddThhmmssZ>`: sorts by time, readable, safe in paths and keys. */
export function backupId(sourceName: string, time: Date): string {
  const stamp = time.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  return `${sourceName}-${stamp}`;
}
