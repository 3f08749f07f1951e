import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import type { Command } from '@skiff/shell';

/**
 * Compose services with `build:` that no `images:` line covers are built on the server, from
 * their context shipped with the release, and tagged `<project>-<service>:<release-id>`: each
 * release has its own image, so a rollback starts exactly the image that release built, and
 * the image goes when its release is pruned.
 */
export interface ServerBuild {
  service: string;
  /** The build context on the runner (absolute). */
  localContext: string;
  /** As the compose file names it, for messages. */
  declared: string;
}

export const BUILD_OVERRIDE = 'build.override.json';
export const BUILD_DIR = 'build';

interface ComposeShape {
  services?: Record<string, { build?: string | { context?: string } | null } | null>;
}

/** A context Docker fetches itself (a git or https URL) is not shipped. */
const REMOTE_CONTEXT = /^(https?:\/\/|git@|git:\/\/|ssh:\/\/|github\.com\/)/;

/**
 * Every service name of the compose files, merged in order, and those that build from a local
 * context. Relative contexts resolve from the first compose file's folder, as Compose resolves
 * them from the project directory. Throws a message naming what is wrong.
 */
export function findServerBuilds(
  workspace: string,
  composeFiles: readonly { path: string; content: string }[],
  images: Readonly<Record<string, string>>,
): { services: string[]; builds: ServerBuild[] } {
  const contexts = new Map<string, string | undefined>();
  for (const file of composeFiles) {
    const parsed = (parseYaml(file.content) ?? {}) as ComposeShape;
    for (const [service, definition] of Object.entries(parsed.services ?? {})) {
      if (!contexts.has(service)) contexts.set(service, undefined);
      const build = definition?.build;
      if (build === undefined || build === null) continue;
      contexts.set(service, typeof build === 'string' ? build : (build.context ?? '.'));
    }
  }
  const projectDir = resolve(workspace, dirname(composeFiles[0]?.path ?? '.'));
  const problems: string[] = [];
  const builds: ServerBuild[] = [];
  for (const [service, declared] of contexts) {
    if (declared === undefined || images[service] !== undefined || REMOTE_CONTEXT.test(declared)) continue;
    if (declared.includes('$')) {
      problems.push(`service ${service}: build context ${JSON.stringify(declared)} uses a variable, which the runner cannot resolve; name the folder`);
      continue;
    }
    const localContext = resolve(projectDir, declared);
    const inside = relative(workspace, localContext);
    if (inside.startsWith('..') || inside.split(sep).includes('..')) {
      problems.push(`service ${service}: build context ${declared} is outside the repository`);
      continue;
    }
    let isDirectory = false;
    try {
      isDirectory = statSync(localContext).isDirectory();
    } catch {
      isDirectory = false;
    }
    if (!isDirectory) {
      problems.push(`service ${service}: build context ${declared} is not a folder in the repository (${localContext})`);
      continue;
    }
    builds.push({ service, localContext, declared });
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
  return { services: [...contexts.keys()], builds };
}

export const builtImage = (projectName: string, service: string, releaseId: string): string =>
  `${projectName}-${service.toLowerCase().replace(/[^a-z0-9_.-]/g, '-')}:${releaseId}`;

/** Points each built service's context at the release's copy and names its image after the release. */
export function buildOverride(releasePath: string, projectName: string, releaseId: string, builds: readonly Pick<ServerBuild, 'service'>[]): string {
  const services = Object.fromEntries(
    builds.map(({ service }) => [
      service,
      { build: { context: `${releasePath}/${BUILD_DIR}/${service}` }, image: builtImage(projectName, service, releaseId) },
    ]),
  );
  return `${JSON.stringify({ services }, null, 2)}\n`;
}

/** Unpacks a context streamed on stdin; owners are the deploy user's, not the runner's. */
export function unpackContext(remoteDir: string): Command[] {
  return [
    ['mkdir', '-p', remoteDir],
    ['tar', '-x', '-f', '-', '--no-same-owner', '-C', remoteDir],
  ];
}

/**
 * The context as a tar stream, started only when read (a dry-run records the step and never
 * reads it). `.git` is left out; `.dockerignore` is applied by the build on the server.
 */
export function contextTar(localContext: string): Readable {
  let started = false;
  const stream = new Readable({
    read() {
      if (started) return;
      started = true;
      const tar = spawn('tar', ['--exclude-vcs', '-C', localContext, '-c', '-f', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      tar.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      tar.stdout.on('data', (chunk: Buffer) => {
        if (!stream.push(chunk)) tar.stdout.pause();
      });
      stream._read = () => void tar.stdout.resume();
      tar.on('error', (error) => stream.destroy(new Error(`packing the build context ${localContext} failed: ${error.message}`)));
      tar.on('close', (code) => {
        if (code === 0) stream.push(null);
        else stream.destroy(new Error(`packing the build context ${localContext} failed (tar exit ${code}): ${stderr.trim().slice(0, 500)}`));
      });
    },
  });
  return stream;
}
