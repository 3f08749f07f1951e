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
  /** postgres: libpq's sslmode (disable … verify-full). */
  sslMode?: SslMode;
  /** postgres reached from the runner: the server's CA certificate (PEM), written to a runner file for PGSSLROOTCERT. */
  caCertificate?: string;
  /** postgres reached from the runner: the client image when the runner's own tools do not match; `{major}` is the server's major version. */
  clientImage?: string;
  /** Set when the run starts, for a source reached from the runner: what the dump tools need there. */
  runner?: RunnerSide;
}

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/**
 * The official image of a runner-side server's client tools, tagged with its release series as
 * the image tags name it: PostgreSQL 17, MariaDB 10.11, MySQL 8.0.
 */
export const DEFAULT_CLIENT_IMAGE = { postgres: 'postgres:{major}', mariadb: 'mariadb:{major}', mysql: 'mysql:{major}' } as const;
export type ServerFlavor = keyof typeof DEFAULT_CLIENT_IMAGE;

/**
 * A source reached from the runner, once the run has prepared it: a private directory (0700)
 * holding its credentials and CA files, and — when the runner's own tools do not match the
 * server's major version — the image whose tools run instead (the directory is shared with it
 * read-only, at the same path).
 */
export interface RunnerSide {
  directory: string;
  caFile?: string;
  /** Absent: the runner's own tools match the server. */
  clientImage?: string;
  /** mysql sources: whose client tools run (names and TLS options differ): MariaDB's or MySQL's. */
  mysqlClient?: 'mariadb' | 'mysql';
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
  'url',
  'url-env',
  'sslmode',
  'ca-certificate',
  'client-image',
]);

/** The connection fields a `url` sets; giving both is ambiguous. */
const URL_FIELDS = ['host', 'port', 'user', 'password', 'database'] as const;

interface UrlParts {
  type: 'postgres' | 'mysql';
  hostname: string;
  port?: string;
  user?: string;
  password?: string;
  database?: string;
  sslmode?: string;
}

const URL_TYPES: Record<string, UrlParts['type']> = { 'postgresql:': 'postgres', 'postgres:': 'postgres', 'mysql:': 'mysql', 'mariadb:': 'mysql' };

/**
 * `postgresql://user:password@host:5432/database?sslmode=require` (or mysql://, mariadb://), as
 * managed databases hand it out. Errors never repeat the URL: it holds the password.
 */
export function parseConnectionUrl(text: string): UrlParts | string {
  const expected = 'a URL like postgresql://user:password@host:5432/database?sslmode=require (or mysql://, mariadb://)';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"url" must be ${expected} (the value is not shown: it may hold a password)`;
  }
  const type = URL_TYPES[url.protocol];
  if (type === undefined)
    return `"url" must start with postgresql://, postgres://, mysql:// or mariadb://; got ${shown(url.protocol.replace(/:$/, '://'))} (${expected})`;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  if (hostname === '') return `"url" names no host (${expected})`;
  const decode = (value: string) => {
    try {
      return decodeURIComponent(value);
    } catch {
      return undefined;
    }
  };
  const user = url.username ? decode(url.username) : undefined;
  const password = url.password ? decode(url.password) : undefined;
  if ((url.username && user === undefined) || (url.password && password === undefined)) return '"url" has a user or password with broken %-escapes';
  const database = url.pathname.replace(/^\//, '');
  const unknown = [...url.searchParams.keys()].filter((key) => key !== 'sslmode');
  if (unknown.length > 0)
    return `"url" has parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((key) => shown(key)).join(', ')} that Skiff does not pass on; only sslmode is read (set the CA certificate as "ca-certificate")`;
  const sslmode = url.searchParams.get('sslmode') ?? undefined;
  return {
    type,
    hostname,
    ...(url.port ? { port: url.port } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(database ? { database: decode(database) ?? database } : {}),
    ...(sslmode !== undefined ? { sslmode } : {}),
  };
}

/** Raw-data compression that pays off: pg_dump -Fc is compressed already. */
export function defaultCompression(type: SourceType): Compression {
  return type === 'postgres' ? 'none' : 'gzip';
}

/**
 * Parses the `sources` input (a YAML list). Every problem in every entry is collected, each
 * naming the entry and the field, so one run shows all of them before anything connects.
 */
export function parseSources(text: string, options: { env?: Readonly<Record<string, string | undefined>> } = {}): { sources: Source[]; problems: string[] } {
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
    const source = parseSource(entry as Record<string, unknown>, (message) => problems.push(`${where}: ${message}`), options.env ?? {});
    if (source) sources.push(source);
  });
  const seen = new Set<string>();
  for (const source of sources) {
    if (seen.has(source.name)) problems.push(`two entries are named "${source.name}"; give each a distinct "name" (it names the backups)`);
    seen.add(source.name);
  }
  return { sources, problems };
}

function parseSource(
  entry: Record<string, unknown>,
  problem: (message: string) => void,
  env: Readonly<Record<string, string | undefined>>,
): Source | undefined {
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

  // A reusable workflow's `with:` cannot read secrets: the URL then comes from a variable the step's env sets from one.
  const urlEnv = entry['url-env'];
  let urlText = entry.url;
  if (urlEnv !== undefined && urlEnv !== null) {
    if (typeof urlText === 'string') fail('set "url" or "url-env", not both');
    else if (typeof urlEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(urlEnv))
      fail(`"url-env" must be an environment variable name; got ${shown(urlEnv)}`);
    else if (!env[urlEnv]) fail(`"url-env" names ${urlEnv}, which is not set or empty: set it from a secret (env: ${urlEnv}: \${{ secrets.${urlEnv} }})`);
    else urlText = env[urlEnv];
  }
  let fromUrl: UrlParts | undefined;
  if (urlText !== undefined && urlText !== null) {
    if (typeof urlText !== 'string') fail('"url" must be a string');
    else {
      const parsed = parseConnectionUrl(urlText);
      if (typeof parsed === 'string') fail(parsed);
      else fromUrl = parsed;
      for (const key of URL_FIELDS)
        if (entry[key] !== undefined && entry[key] !== null) fail(`set "url" or "${key}", not both (the url already says where and as whom)`);
    }
  }
  const type = str('type') ?? fromUrl?.type;
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

  if (fromUrl && type !== fromUrl.type) fail(`"url" is a ${fromUrl.type} URL but "type" is ${type}`);
  const fromUrlOr = (key: string, value: string | undefined, pattern: RegExp, expected: string): string | undefined => {
    if (value === undefined) return undefined;
    if (!pattern.test(value)) return void fail(`the "url"'s ${key} must be ${expected}; got ${shown(value)}`);
    return value;
  };
  const database = fromUrl
    ? fromUrlOr('database', fromUrl.database, IDENT, 'a database name (letters, digits, _ . @ -)')
    : str('database', IDENT, 'a database name (letters, digits, _ . @ -)');
  const user = fromUrl ? fromUrlOr('user', fromUrl.user, IDENT, 'a user name') : str('user', IDENT, 'a user name');
  const hostname = fromUrl
    ? fromUrlOr('host', fromUrl.hostname, /^[A-Za-z0-9.:_-]+$/, 'a hostname or IP address')
    : str('host', /^[A-Za-z0-9.:_-]+$/, 'a hostname or IP address');
  const portText = fromUrl ? fromUrlOr('port', fromUrl.port, /^\d{1,5}$/, 'a port number') : str('port', /^\d{1,5}$/, 'a port number');
  const password = fromUrl ? fromUrl.password : str('password');
  const sslModeText = str('sslmode') ?? fromUrl?.sslmode;
  if (sslModeText !== undefined && !(SSL_MODES as readonly string[]).includes(sslModeText))
    fail(`"sslmode" must be one of ${SSL_MODES.join(', ')}; got ${shown(sslModeText)}`);
  if (fromUrl?.sslmode !== undefined && entry.sslmode !== undefined) fail('set "sslmode" in the url or as a field, not both');
  const caCertificate = str('ca-certificate');
  if (caCertificate !== undefined && !/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(caCertificate))
    fail('"ca-certificate" must be the PEM text of the CA certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)');
  const clientImage = str('client-image', /^[a-z0-9][a-z0-9._/:@{}-]*$/, "an image name, e.g. postgres:{major} ({major} becomes the server's major version)");
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
  for (const [key, value] of [
    ['sslmode', sslModeText],
    ['ca-certificate', caCertificate],
    ['client-image', clientImage],
  ] as const) {
    if (value !== undefined && sourceType !== 'postgres' && sourceType !== 'mysql') fail(`"${key}" is only for postgres and mysql`);
    if (value !== undefined && place.kind !== 'host') fail(`"${key}" is for a server reached over the network ("host" or "url"), not one in a container`);
  }
  if (caCertificate !== undefined && sslModeText !== undefined && !['verify-ca', 'verify-full'].includes(sslModeText))
    fail(
      `"ca-certificate" is only checked with sslmode verify-ca or verify-full; sslmode is ${sslModeText} (leave sslmode out: verify-full is the default with a CA)`,
    );

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
    // A CA given is a CA to check against: without a mode, the strictest.
    ...(sslModeText !== undefined ? { sslMode: sslModeText as SslMode } : caCertificate !== undefined ? { sslMode: 'verify-full' as const } : {}),
    ...(caCertificate !== undefined ? { caCertificate } : {}),
    ...(clientImage !== undefined ? { clientImage } : {}),
  };
}

/**
 * Source fields that only a database reached from the runner uses; run over SSH they would be
 * ignored, so a caller with a server refuses them by name: `<source>'s "<field>"`.
 */
export function runnerOnlyFields(sources: readonly Source[]): string[] {
  return sources.flatMap((source) =>
    (
      [
        ['ca-certificate', source.caCertificate],
        ['client-image', source.clientImage],
        // MariaDB's and MySQL's clients take TLS options of different names: known only once the runner has chosen one.
        ['sslmode', source.type === 'mysql' ? source.sslMode : undefined],
      ] as const
    )
      .filter(([, value]) => value !== undefined)
      .map(([field]) => `${source.name}'s "${field}"`),
  );
}

/** A database the runner itself can reach over the network: no server shell needed. */
export function reachableFromRunner(source: Source): boolean {
  return (source.type === 'postgres' || source.type === 'mysql') && source.place.kind === 'host' && source.hostname !== undefined;
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
