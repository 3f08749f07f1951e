import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { posix, relative, resolve, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { quote, raw, type Command } from '@skiff/shell';

/**
 * The `files` input: configuration files from the repository that the compose file bind-mounts
 * (`./Caddyfile:/etc/caddy/Caddyfile`) or names as a `configs:`/`secrets:` file.
 *
 * On the server each mount gets its own content-addressed copy, `<project-dir>/.skiff/files/<hash>/<name>`,
 * and the release's `files.override.json` points the mount there. So a release keeps exactly
 * the files it shipped (a rollback brings its own back), and since the path changes only when
 * the content does, Compose recreates the services whose mounted files changed and no others.
 */
export interface ShippedFile {
  /** Where Compose looks for it, relative to the project directory (= the first compose file's folder in the repository), posix. */
  path: string;
  /** Permission bits as the repository has them (0644, or 0755 for scripts). */
  mode: number;
  content: Buffer;
}

export const FILES_OVERRIDE = 'files.override.json';
export const SHIPPED_DIR = 'files';
export const STORE = '.skiff/files';
/** Config files, not data: more than this belongs in the image. */
export const MAX_FILES = 500;
export const MAX_BYTES = 20 * 1024 * 1024;

const GLOB_CHARS = /[*?]/;

function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let index = 0; index < pattern.length; index++) {
    const char = pattern[index]!;
    if (char === '*' && pattern[index + 1] === '*') {
      // `**/` matches any number of folders, including none.
      source += pattern[index + 2] === '/' ? '(?:.*/)?' : '.*';
      index += pattern[index + 2] === '/' ? 2 : 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function walk(root: string, dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === '.git') continue;
    const full = resolve(dir, entry.name);
    // Followed like tar -h would: a symlinked config ships its content.
    const stat = statSync(full);
    if (stat.isDirectory()) walk(root, full, out);
    else if (stat.isFile()) out.push(relative(root, full).split(sep).join('/'));
  }
}

/**
 * Expands the input's lines (paths, folders or globs with `*`, `**`, `?`, relative to the
 * workspace) to files, each placed relative to `composeDir` (the first compose file's folder,
 * relative to the workspace). Throws a message naming what is wrong; the caller names the input.
 */
export function expandShippedFiles(workspace: string, composeDir: string, patterns: readonly string[]): ShippedFile[] {
  const problems: string[] = [];
  const found = new Map<string, string>();
  let all: string[] | undefined;
  for (const pattern of patterns) {
    const clean = pattern.replace(/^\.\//, '').replace(/\/+$/, '');
    if (clean === '' || clean.startsWith('/') || clean.split('/').includes('..')) {
      problems.push(`${JSON.stringify(pattern)} is not a path inside the repository`);
      continue;
    }
    let matches: string[];
    if (GLOB_CHARS.test(clean)) {
      all ??= (() => {
        const files: string[] = [];
        walk(workspace, workspace, files);
        return files;
      })();
      const regexp = globToRegExp(clean);
      matches = all.filter((file) => regexp.test(file));
    } else {
      const full = resolve(workspace, clean);
      let stat;
      try {
        stat = statSync(full);
      } catch {
        problems.push(`${JSON.stringify(pattern)} does not exist`);
        continue;
      }
      if (stat.isDirectory()) {
        matches = [];
        walk(workspace, full, matches);
      } else matches = [clean];
    }
    if (matches.length === 0) problems.push(`${JSON.stringify(pattern)} matches no file`);
    for (const file of matches) found.set(file, file);
  }
  const files: ShippedFile[] = [];
  let bytes = 0;
  for (const file of [...found.keys()].sort()) {
    const placed = posix.relative(composeDir === '' ? '.' : composeDir, file);
    if (placed.startsWith('../') || placed === '..') {
      problems.push(`${file} is outside ${composeDir || 'the repository root'}/, the first compose file's folder, from which Compose resolves ./ paths`);
      continue;
    }
    const full = resolve(workspace, file);
    const content = readFileSync(full);
    bytes += content.length;
    files.push({ path: placed, mode: statSync(full).mode & 0o111 ? 0o755 : 0o644, content });
  }
  if (files.length > MAX_FILES || bytes > MAX_BYTES) {
    problems.push(
      `${files.length} files, ${bytes} bytes: more than ${MAX_FILES} files or ${MAX_BYTES / 1024 / 1024} MiB is not configuration; bake it into the image`,
    );
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return files;
}

type VolumeEntry = string | { type?: string; source?: string; target?: string; [key: string]: unknown };
interface ConfigShape {
  services?: Record<string, { volumes?: VolumeEntry[]; configs?: unknown[]; secrets?: unknown[] } | null>;
  configs?: Record<string, { file?: string } | null>;
  secrets?: Record<string, { file?: string } | null>;
}

/** One place Compose reads shipped files from, and the store entry that replaces it. */
export interface FileMount {
  /** Project-relative source (a shipped file, or a folder holding shipped files). */
  source: string;
  /** Content hash of what is shipped under `source`: the store entry's name. */
  hash: string;
}

export interface FilesResolution {
  mounts: FileMount[];
  /** files.override.json, ready to upload. */
  override: string;
  /** Services whose mounts or configs read shipped files. */
  services: string[];
}

function covered(files: readonly ShippedFile[], source: string): ShippedFile[] {
  return files.filter((file) => file.path === source || file.path.startsWith(`${source}/`));
}

function treeHash(files: readonly ShippedFile[], source: string): string {
  const hash = createHash('sha256');
  for (const file of covered(files, source)) {
    hash.update(
      `${file.path === source ? '' : file.path.slice(source.length + 1)}\0${file.mode.toString(8)}\0${createHash('sha256').update(file.content).digest('hex')}\n`,
    );
  }
  return hash.digest('hex').slice(0, 24);
}

export const storePath = (projectDir: string, mount: FileMount): string => `${projectDir}/${STORE}/${mount.hash}/${posix.basename(mount.source)}`;

/**
 * Reads `compose config` output and points every bind mount, config and secret that reads a
 * shipped file at that file's store entry. A shipped file nothing reads is an error: it would
 * otherwise sit on the server while the service reads something else.
 */
export function resolveShippedFiles(configYaml: string, projectDir: string, files: readonly ShippedFile[]): FilesResolution {
  const config = (parseYaml(configYaml) ?? {}) as ConfigShape;
  const prefix = `${projectDir}/`;
  const mounts = new Map<string, FileMount>();
  const used = new Set<string>();
  const mountFor = (absolute: string | undefined): FileMount | undefined => {
    if (absolute === undefined || !absolute.startsWith(prefix)) return undefined;
    const source = posix.normalize(absolute.slice(prefix.length)).replace(/\/+$/, '');
    if (source === '' || source === '.') return undefined;
    const shipped = covered(files, source);
    if (shipped.length === 0) return undefined;
    for (const file of shipped) used.add(file.path);
    const mount = mounts.get(source) ?? { source, hash: treeHash(files, source) };
    mounts.set(source, mount);
    return mount;
  };

  const override: {
    services: Record<string, { volumes?: VolumeEntry[]; labels?: Record<string, string> }>;
    configs?: Record<string, { file: string }>;
    secrets?: Record<string, { file: string }>;
  } = { services: {} };
  const hashesOf = new Map<string, Set<string>>();
  const touch = (service: string, mount: FileMount) => {
    const set = hashesOf.get(service) ?? new Set<string>();
    set.add(mount.hash);
    hashesOf.set(service, set);
  };
  for (const [name, service] of Object.entries(config.services ?? {})) {
    for (const volume of service?.volumes ?? []) {
      if (typeof volume === 'string') {
        // Compose v1 prints the short form, `source:target[:mode]`.
        const [source, ...rest] = volume.split(':');
        const mount = mountFor(source);
        if (!mount) continue;
        ((override.services[name] ??= {}).volumes ??= []).push([storePath(projectDir, mount), ...rest].join(':'));
        touch(name, mount);
      } else if (volume.type === 'bind') {
        const mount = mountFor(volume.source);
        if (!mount) continue;
        ((override.services[name] ??= {}).volumes ??= []).push({ ...volume, source: storePath(projectDir, mount) });
        touch(name, mount);
      }
    }
  }
  for (const kind of ['configs', 'secrets'] as const) {
    for (const [name, definition] of Object.entries(config[kind] ?? {})) {
      const mount = mountFor(definition?.file);
      if (!mount) continue;
      (override[kind] ??= {})[name] = { file: storePath(projectDir, mount) };
      for (const [serviceName, service] of Object.entries(config.services ?? {})) {
        const refs = (service?.[kind] ?? []) as Array<string | { source?: string }>;
        if (refs.some((ref) => (typeof ref === 'string' ? ref : ref.source) === name)) touch(serviceName, mount);
      }
    }
  }
  // A config or secret file's path is not part of a service's hash: the label makes Compose
  // recreate the services that read it when, and only when, the content changes.
  for (const [service, hashes] of hashesOf) (override.services[service] ??= {}).labels = { 'dev.skiff.files': [...hashes].sort().join(',') };

  const unused = files.filter((file) => !used.has(file.path)).map((file) => file.path);
  if (unused.length > 0) {
    throw new Error(
      `Input "files": ${unused.map((path) => `${path} (Compose would find it at ${prefix}${path})`).join(', ')} ${unused.length === 1 ? 'is' : 'are'} not read by any bind mount, config or secret of the compose file; ship only files a service mounts`,
    );
  }
  return { mounts: [...mounts.values()], override: `${JSON.stringify(override, null, 2)}\n`, services: [...hashesOf.keys()].sort() };
}

/**
 * Copies each mount's shipped files from the release into its store entry, unless an earlier
 * release stored the same content already. The copy goes to a temporary name first, so a store
 * entry is always whole.
 */
export function storeShippedFiles(projectDir: string, releasePath: string, mounts: readonly FileMount[]): Command[] {
  const store = `${projectDir}/${STORE}`;
  return [
    ['mkdir', '-p', '-m', '755', `${projectDir}/.skiff`, store],
    ...mounts.map((mount): Command => {
      const entry = `${store}/${mount.hash}`;
      const temporary = `${entry}.tmp`;
      return [
        raw('if [ ! -e'),
        entry,
        raw(']; then rm -rf --'),
        temporary,
        raw('&& mkdir -m 755 --'),
        temporary,
        raw('&& cp -R --preserve=mode --'),
        `${releasePath}/${SHIPPED_DIR}/${mount.source}`,
        `${temporary}/${posix.basename(mount.source)}`,
        raw('&& mv --'),
        temporary,
        entry,
        raw('; fi'),
      ];
    }),
  ];
}

/** Removes store entries that no kept release's override names any more. */
export function pruneStore(projectDir: string, releasesPath: string): Command[] {
  return [
    [raw(`store=${quote(`${projectDir}/${STORE}`)} releases=${quote(releasesPath)}`)],
    [
      raw(
        `if [ -d "$store" ]; then for entry in "$store"/*; do [ -e "$entry" ] || continue; name=\${entry##*/}; if ! grep -qsF -- "/${STORE}/$name/" "$releases"/*/${FILES_OVERRIDE}; then rm -rf -- "$entry"; fi; done; fi`,
      ),
    ],
  ];
}
