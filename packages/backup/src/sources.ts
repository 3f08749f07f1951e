import { parse as parseYaml } from 'yaml';

export const SOURCE_TYPES = ['postgres', 'mysql', 'redis', 'sqlite', 'files'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];
export type Compression = 'gzip' | 'none';

/** Where the dump tool runs on the server. */
export type Place =
  | { kind: 'compose'; service: string; project?: string; projectDirectory?: string; composeFiles?: readonly string[]; user?: string }
  | { kind: 'container'; container: string; user?: string }
  | { kind: 'host' };

export interface Source {
  /** Names its backups: `<name>-<time>`; letters, digits, `.`, `_`, `-`. */
  name: string;
  type: SourceType;
  place: Place;
  compression: Compression;
  /** postgres / mysql */
  database?: string;
  user?: string;
  /** host-level postgres / mysql / redis: where the server listens. */
  hostname?: string;
  port?: number;
  /** host-level tools only: uploaded in a 0600 file for the dump, never on a command line. */
  password?: string;
  /** in-container tools: the container's own env var that holds the password (it stays in the container). */
  passwordEnv?: string;
  /** postgres: also store `pg_dumpall --globals-only` (roles, tablespaces) as a second object of the same backup. */
  globals?: boolean;
  /** sqlite: the live database file (on the host, or inside the container). */
  path?: string;
  /** files: host paths and named Docker volumes. */
  paths?: readonly string[];
  volumes?: readonly string[];
  /** files with volumes: image that has tar, used to read the volumes (nothing is pulled). */
  helperImage?: string;
}

export class SourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SourceError';
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A value echoed into an error: quoted, and cut short, so a 100 kB mistake does not flood the log. */
function shown(value: unknown): string {
  const text = JSON.stringify(value);
  return text.length > 82 ? `${text.slice(0, 80)}…"` : text;
}
const IDENT = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,62}$/;
const KEYS = new Set([
  'name',
  'type',
  'service',
  'project',
  'project-directory',
  'compose-files',
  'container',
  'exec-user',
  'host',
  'port',
  'database',
  'user',
  'password',
  'password-env',
  'globals',
  'path',
  'paths',
  'volumes',
  'helper-image',
  'compression',
]);

/** Raw-data compression that pays off: pg_dump -Fc is compressed already. */
export function defaultCompression(type: SourceType): Compression {
  return type === 'postgres' ? 'none' : 'gzip';
}

/**
 * Parses the `sources` input (a YAML list). Every problem in every entry is collected, each
 * naming the entry and the field, so one run shows all of them before anything connects.
 */
export function parseSources(text: string): { sources: Source[]; problems: string[] } {
  const problems: string[] = [];
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    return { sources: [], problems: [`is not valid YAML: ${(error as Error).message.split('\n')[0]}`] };
  }
  if (!Array.isArray(document) || document.length === 0) {
    return { sources: [], problems: ['must be a YAML list with one entry per thing to back up, e.g. "- type: postgres\\n  service: db\\n  database: app"'] };
  }
  const sources: Source[] = [];
  document.forEach((entry, index) => {
    const where = `entry ${index + 1}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`${where} must be a mapping with a "type" field`);
      return;
    }
    const source = parseSource(entry as Record<string, unknown>, (message) => problems.push(`${where}: ${message}`));
    if (source) sources.push(source);
  });
  const seen = new Set<string>();
  for (const source of sources) {
    if (seen.has(source.name)) problems.push(`two entries are named "${source.name}"; give each a distinct "name" (it names the backups)`);
    seen.add(source.name);
  }
  return { sources, problems };
}

function parseSource(entry: Record<string, unknown>, problem: (message: string) => void): Source | undefined {
  const before = { count: 0 };
  const fail = (message: string) => {
    before.count++;
    problem(message);
  };
  for (const key of Object.keys(entry)) if (!KEYS.has(key)) fail(`unknown field ${shown(key)} (known: ${[...KEYS].join(', ')})`);
  const str = (key: string, pattern?: RegExp, expected?: string): string | undefined => {
    const value = entry[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') return void fail(`"${key}" must be a string`);
    const text = String(value);
    if (pattern && !pattern.test(text)) return void fail(`"${key}" must be ${expected}; got ${key === 'password' ? '(secret)' : shown(text)}`);
    return text;
  };
  const list = (key: string): string[] | undefined => {
    const value = entry[key];
    if (value === undefined || value === null) return undefined;
    const items = Array.isArray(value) ? value : [value];
    if (!items.every((item) => typeof item === 'string' && item !== '')) return void fail(`"${key}" must be a list of non-empty strings`);
    return items as string[];
  };

  const type = str('type');
  if (type === undefined || !(SOURCE_TYPES as readonly string[]).includes(type)) {
    fail(`"type" must be one of ${SOURCE_TYPES.join(', ')}; got ${shown(type ?? null)}`);
    return undefined;
  }
  const sourceType = type as SourceType;
  const service = str('service', NAME, 'a Compose service name');
  const container = str('container', NAME, 'a container name or id');
  const execUser = str('exec-user', IDENT, 'a user name');
  if (service !== undefined && container !== undefined) fail('set "service" (a Compose service) or "container", not both');
  let place: Place = { kind: 'host' };
  if (service !== undefined) {
    const project = str('project', /^[a-z0-9][a-z0-9_-]*$/, 'a Compose project name (lowercase letters, digits, _ and -)');
    const projectDirectory = str('project-directory', /^\//, 'an absolute path');
    const composeFiles = list('compose-files');
    place = {
      kind: 'compose',
      service,
      ...(project ? { project } : {}),
      ...(projectDirectory ? { projectDirectory } : {}),
      ...(composeFiles ? { composeFiles } : {}),
      ...(execUser ? { user: execUser } : {}),
    };
  } else if (container !== undefined) {
    place = { kind: 'container', container, ...(execUser ? { user: execUser } : {}) };
  }

  const database = str('database', IDENT, 'a database name (letters, digits, _ . @ -)');
  const user = str('user', IDENT, 'a user name');
  const hostname = str('host', /^[A-Za-z0-9.:_-]+$/, 'a hostname or IP address');
  const portText = str('port', /^\d{1,5}$/, 'a port number');
  const password = str('password');
  const passwordEnv = str('password-env', /^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
  const compression = str('compression', /^(gzip|none)$/, 'gzip or none') as Compression | undefined;
  const path = str('path', /^\/[^\0]*$/, 'an absolute path');
  const paths = list('paths');
  const volumes = list('volumes');
  const helperImage = str('helper-image');
  const globalsValue = entry.globals;
  if (globalsValue !== undefined && typeof globalsValue !== 'boolean') fail('"globals" must be true or false');

  if (password !== undefined && place.kind !== 'host')
    fail('"password" is only for tools on the host; in a container use "password-env" (the container\'s own variable)');
  if (passwordEnv !== undefined && place.kind === 'host') fail('"password-env" names a variable inside the container; for the host use "password"');
  if ((sourceType === 'postgres' || sourceType === 'mysql') && database === undefined) fail(`"database" is required for ${sourceType}`);
  if (sourceType === 'sqlite' && path === undefined) fail('"path" (the database file) is required for sqlite');
  if (sourceType === 'files') {
    if (!paths?.length && !volumes?.length) fail('"paths" and/or "volumes" are required for files');
    if (place.kind !== 'host') fail('files are read on the host: use "paths" and "volumes", not "service" or "container"');
    for (const p of paths ?? []) if (!p.startsWith('/')) fail(`"paths" must be absolute; got ${shown(p)}`);
    if (volumes?.length && !helperImage) fail('"helper-image" (an image on the server with tar) is required to read "volumes"');
  }
  if (globalsValue === true && sourceType !== 'postgres') fail('"globals" is only for postgres');

  const name = str('name', NAME, 'letters, digits, ".", "_" and "-" (it names the backups)') ?? defaultName(sourceType, database, path, service ?? container);
  if (before.count > 0) return undefined;
  return {
    name,
    type: sourceType,
    place,
    compression: compression ?? defaultCompression(sourceType),
    ...(database !== undefined ? { database } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(hostname !== undefined ? { hostname } : {}),
    ...(portText !== undefined ? { port: Number(portText) } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(passwordEnv !== undefined ? { passwordEnv } : {}),
    ...(globalsValue === true ? { globals: true } : {}),
    ...(path !== undefined ? { path } : {}),
    ...(paths !== undefined ? { paths } : {}),
    ...(volumes !== undefined ? { volumes } : {}),
    ...(helperImage !== undefined ? { helperImage } : {}),
  };
}

function defaultName(type: SourceType, database: string | undefined, path: string | undefined, where: string | undefined): string {
  const detail =
    database ??
    (path
      ? path
          .split('/')
          .pop()!
          .replace(/\.[^.]*$/, '')
      : where);
  return [type, detail]
    .filter(Boolean)
    .join('-')
    .replace(/[^A-Za-z0-9._-]/g, '_');
}
