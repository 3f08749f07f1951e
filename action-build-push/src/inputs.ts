import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import * as core from '@actions/core';
import {
  InputError,
  getBoolean,
  getDuration,
  getEnum,
  getList,
  getString,
  invalidInput,
  maskSecret,
  readInputs,
  type InputDefinition,
} from '@skiff/action-kit';
import { TAG_PATTERN } from './metadata';
import { KNOWN_PLATFORMS } from './platforms';

/** A released BuildKit, pinned so a new release cannot change a build without a change here. */
export const DEFAULT_BUILDKIT_IMAGE = 'moby/buildkit:v0.25.1';

/** What action.yml declares; a unit test keeps action.yml and the README in step with these. */
export const ACTION_INPUTS: readonly InputDefinition[] = [
  {
    name: 'image',
    description:
      'Image name without a tag, e.g. ghcr.io/owner/app. Defaults to ghcr.io/OWNER/REPO of this repository. Always lowercased (GHCR refuses uppercase).',
    required: false,
  },
  { name: 'registry', description: 'Registry to log in to. Defaults to the host part of `image`.', required: false },
  { name: 'username', description: 'User name for the registry login. Defaults to the user who triggered the workflow (github.actor).', required: false },
  { name: 'password', description: 'Password or token for the registry login. Defaults to `github-token`.', required: false, secret: true },
  {
    name: 'github-token',
    description: 'Token used to log in to ghcr.io when `password` is not set; the default job token needs `packages: write` permission to push.',
    required: false,
    default: '${{ github.token }}',
    secret: true,
  },
  { name: 'context', description: 'Build context directory, relative to the workspace.', required: false, default: '.' },
  { name: 'file', description: 'Path of the Dockerfile, relative to the workspace. Defaults to Dockerfile in the context.', required: false },
  { name: 'target', description: 'Build stage to stop at (docker build --target).', required: false },
  { name: 'build-args', description: 'Build arguments, one KEY=VALUE per line.', required: false },
  {
    name: 'build-secrets',
    description: 'BuildKit secrets, one id=value per line; read in the Dockerfile with RUN --mount=type=secret,id=ID. Masked.',
    required: false,
    secret: true,
  },
  { name: 'labels', description: 'Extra image labels, one KEY=VALUE per line, added to the OCI labels.', required: false },
  { name: 'platforms', description: "Target platforms, comma-separated, e.g. linux/amd64,linux/arm64. Defaults to the runner's platform.", required: false },
  { name: 'tags', description: 'Extra tags (names only, no image), one per line, added to the tags computed from the event.', required: false },
  {
    name: 'push',
    description: 'Push the image after building it (true or false). A pull request from a fork is built but never pushed.',
    required: false,
    default: 'true',
  },
  {
    name: 'cache',
    description: "Layer cache: auto (gha when the runner's cache service is available, else none), gha, registry (IMAGE:buildcache) or none.",
    required: false,
    default: 'auto',
  },
  {
    name: 'builder',
    description:
      'buildx builder: auto (the current builder when its driver can do what is asked, else a docker-container builder made for this run and removed after it), ' +
      "docker (the engine's own builder, never make one) or the name of an existing builder.",
    required: false,
    default: 'auto',
  },
  {
    name: 'buildkit-image',
    description: 'BuildKit image of the docker-container builder that builder: auto makes when one is needed (several platforms, a cache export).',
    required: false,
    default: DEFAULT_BUILDKIT_IMAGE,
  },
  {
    name: 'smoke-test',
    description: 'Run the built image before pushing and push only if it becomes healthy (true or false).',
    required: false,
    default: 'false',
  },
  { name: 'smoke-url', description: 'For the smoke test: container port and path that must answer 2xx, e.g. :8000/health.', required: false },
  { name: 'smoke-command', description: 'For the smoke test: a command run with sh -c inside the container that must exit 0.', required: false },
  { name: 'smoke-timeout', description: 'How long the smoke test waits for the container to pass, like 60, 90s or 2m.', required: false, default: '60s' },
  {
    name: 'scan-severity',
    description: 'Scan the pushed image with trivy and fail on findings of these severities, e.g. CRITICAL,HIGH. Needs trivy on PATH.',
    required: false,
  },
];
export const ACTION_OUTPUTS = {
  digest: 'The manifest digest of the pushed image (sha256:...). Empty when nothing was pushed.',
  image: 'The image name, lowercased, without a tag.',
  'image-ref': 'The image pinned by digest (name@sha256:...), what a deploy should use. Empty when nothing was pushed.',
  tags: 'Every tag as a full reference (name:tag), one per line.',
  version: 'The version computed from the event: 1.2.3 for a v1.2.3 tag, the branch, pr-N, or sha-abcdef0.',
  metadata: 'JSON with image, tags, labels, version, revision, digest and whether it was pushed.',
} as const;

export type CacheMode = 'auto' | 'gha' | 'registry' | 'none';
export type BuilderChoice = { mode: 'auto' } | { mode: 'docker' } | { mode: 'named'; name: string };
export const SEVERITIES = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface SmokeOptions {
  url?: { port: number; path: string };
  command?: string;
  timeoutSeconds: number;
}

export interface BuildPushInputs {
  image: string;
  /** True when the given or default name had uppercase letters that were lowered. */
  imageLowercased: boolean;
  registry: string;
  username?: string;
  password?: string;
  /** Absolute paths. */
  context: string;
  file: string;
  target?: string;
  buildArgs: string[];
  /** id → value; values are masked as soon as they are read. */
  buildSecrets: Record<string, string>;
  labels: Record<string, string>;
  platforms: string[];
  tags: string[];
  push: boolean;
  cache: CacheMode;
  builder: BuilderChoice;
  buildkitImage: string;
  smoke?: SmokeOptions;
  scanSeverities: Severity[];
}

// Docker's reference grammar for a repository name: an optional registry host[:port], then
// path components separated by `/` (each may contain `.`, `_`, `__` or `-` runs).
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_NAME = new RegExp(`^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?${COMPONENT}(?:/${COMPONENT})*$`);

function readImage(): { image: string; lowercased: boolean } {
  const given = getString('image');
  if (given === undefined) {
    const repository = process.env.GITHUB_REPOSITORY;
    if (!repository) throw new InputError('image', 'Input "image" is required when GITHUB_REPOSITORY is not set (outside GitHub Actions)');
    const image = `ghcr.io/${repository.toLowerCase()}`;
    return { image, lowercased: image !== `ghcr.io/${repository}` };
  }
  const image = given.toLowerCase();
  const name = image.includes('/') ? image : `docker.io/library/${image}`;
  if (!IMAGE_NAME.test(name) || /[:@]/.test(image.slice(image.lastIndexOf('/') + 1))) {
    throw invalidInput('image', 'an image name without a tag, in lowercase, like ghcr.io/owner/app', given);
  }
  return { image, lowercased: image !== given };
}

/** The registry an image name points at, as docker decides it: a first component with `.` or `:`, or localhost. */
export function registryOf(image: string): string {
  const first = image.split('/')[0]!;
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

/** `KEY=VALUE` lines → checked `KEY=VALUE` strings. */
function readPairs(name: string, what: string, options: { secret?: boolean } = {}): Array<[string, string]> {
  const lines = getList(name, options.secret ? { secret: true } : {}) ?? [];
  return lines.map((line) => {
    const at = line.indexOf('=');
    const key = at > 0 ? line.slice(0, at).trim() : '';
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
      throw invalidInput(
        name,
        `one ${what}=VALUE per line, the ${what} made of letters, digits, '_', '.' or '-'`,
        options.secret ? key || '(line without =)' : line,
      );
    }
    return [key, line.slice(at + 1)];
  });
}

function readPlatforms(): string[] {
  const platforms = getList('platforms', { split: 'any' }) ?? [];
  const unknown = platforms.filter((platform) => !KNOWN_PLATFORMS.includes(platform));
  if (unknown.length > 0) {
    throw new InputError(
      'platforms',
      `Input "platforms" has unknown platform(s) ${unknown.map((p) => JSON.stringify(p)).join(', ')}; expected OS/ARCH[/VARIANT] from: ${KNOWN_PLATFORMS.join(', ')}`,
    );
  }
  return [...new Set(platforms)];
}

function readTags(): string[] {
  // Lines or commas; not spaces, so `not a tag` is reported as one bad tag rather than three tags.
  const tags = (getList('tags') ?? [])
    .flatMap((line) => line.split(','))
    .map((tag) => tag.trim())
    .filter((tag) => tag !== '');
  const invalid = tags.filter((tag) => !TAG_PATTERN.test(tag));
  if (invalid.length > 0) {
    throw new InputError(
      'tags',
      `Input "tags" has invalid tag(s) ${invalid.map((t) => JSON.stringify(t)).join(', ')}; a tag is a name only (no image, no ':'), ` +
        'starting with a letter, digit or _, then up to 127 letters, digits, _, . or -',
    );
  }
  return [...tags];
}

// buildx's own rule for builder names.
const BUILDER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;

function readBuilder(): BuilderChoice {
  const given = getString('builder', { default: 'auto' });
  if (given === 'auto' || given === 'docker') return { mode: given };
  if (!BUILDER_NAME.test(given)) throw invalidInput('builder', 'auto, docker, or the name of a buildx builder (letters, digits, _, . or -)', given);
  return { mode: 'named', name: given };
}

// A reference docker can pull: [registry/]name[:tag][@sha256:digest], lowercase name.
const IMAGE_REFERENCE = new RegExp(
  `^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?${COMPONENT}(?:/${COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$`,
);

function readBuildkitImage(): string {
  const given = getString('buildkit-image', { default: DEFAULT_BUILDKIT_IMAGE });
  if (!IMAGE_REFERENCE.test(given))
    throw invalidInput('buildkit-image', 'an image reference like moby/buildkit:v0.25.1 or registry.example.com/buildkit@sha256:…', given);
  return given;
}

function readSmokeUrl(): SmokeOptions['url'] {
  const text = getString('smoke-url');
  if (text === undefined) return undefined;
  const match = /^:?(\d{1,5})(\/\S*)?$/.exec(text);
  const port = Number(match?.[1]);
  if (!match || port < 1 || port > 65535) throw invalidInput('smoke-url', 'a container port and path like :8000/health', text);
  return { port, path: match[2] ?? '/' };
}

/** Read beside `context` rather than after it, so a missing Dockerfile is reported with every other problem. */
function readDockerfile(): string | undefined {
  const given = getString('file');
  const context = resolve(getString('context', { default: '.' }));
  if (given === undefined && !isDirectory(context)) return undefined; // the context's own error says it all
  const path = given === undefined ? resolve(context, 'Dockerfile') : resolve(given);
  if (!isFile(path)) {
    throw given === undefined
      ? new InputError('file', `Input "file" is not set and the context has no Dockerfile (looked for ${path})`)
      : invalidInput('file', 'the path of a Dockerfile in the workspace', given);
  }
  return path;
}

export function readBuildPushInputs(): BuildPushInputs {
  const inputs = readInputs({
    image: readImage,
    registry: () => getString('registry'),
    username: () => getString('username') ?? (process.env.GITHUB_ACTOR || undefined),
    password: () => getString('password', { secret: true }) ?? getString('github-token', { secret: true }),
    context: () => {
      const context = getString('context', { default: '.' });
      if (!isDirectory(resolve(context))) throw invalidInput('context', 'a directory in the workspace', context);
      return resolve(context);
    },
    file: readDockerfile,
    target: () => getString('target'),
    buildArgs: () => readPairs('build-args', 'KEY').map(([key, value]) => `${key}=${value}`),
    buildSecrets: () => {
      const pairs = readPairs('build-secrets', 'id', { secret: true });
      for (const [, value] of pairs) maskSecret(value);
      return Object.fromEntries(pairs);
    },
    labels: () => Object.fromEntries(readPairs('labels', 'KEY')),
    platforms: readPlatforms,
    tags: readTags,
    push: () => getBoolean('push', { default: true }),
    cache: () => getEnum('cache', ['auto', 'gha', 'registry', 'none'] as const, { default: 'auto' }),
    builder: readBuilder,
    buildkitImage: readBuildkitImage,
    smokeTest: () => getBoolean('smoke-test', { default: false }),
    smokeUrl: readSmokeUrl,
    smokeCommand: () => getString('smoke-command'),
    smokeTimeout: () => getDuration('smoke-timeout', { default: 60, min: 1, max: 3600 }),
    scanSeverities: () => {
      const given = getList('scan-severity', { split: 'any' }) ?? [];
      const upper = given.map((s) => s.toUpperCase());
      const bad = given.filter((_, i) => !(SEVERITIES as readonly string[]).includes(upper[i]!));
      if (bad.length > 0) throw invalidInput('scan-severity', `a comma-separated list of ${SEVERITIES.join(', ')}`, given.join(','));
      return [...new Set(upper)] as Severity[];
    },
  });
  // These depend on other inputs, so they are checked once those are known (still before anything runs).
  readInputs({
    credentials: () => {
      if (!inputs.push) return;
      if (inputs.password === undefined) {
        throw new InputError(['password', 'github-token'], 'Inputs "password" and "github-token" are both empty but "push" is true; pushing needs a token');
      }
      if (inputs.username === undefined) {
        throw new InputError('username', 'Input "username" is empty and GITHUB_ACTOR is not set; pushing needs a user name for the login');
      }
    },
    smoke: () => {
      if (!inputs.smokeTest && (inputs.smokeUrl !== undefined || inputs.smokeCommand !== undefined)) {
        throw new InputError(
          ['smoke-test'],
          'Inputs "smoke-url"/"smoke-command" are set but "smoke-test" is not true; set smoke-test: true to run the smoke test',
        );
      }
    },
  });
  if (inputs.image.lowercased) core.info(`Image name lowercased to ${inputs.image.image}: GHCR refuses uppercase letters in image names`);
  return {
    image: inputs.image.image,
    imageLowercased: inputs.image.lowercased,
    registry: inputs.registry ?? registryOf(inputs.image.image),
    ...(inputs.username === undefined ? {} : { username: inputs.username }),
    ...(inputs.password === undefined ? {} : { password: inputs.password }),
    context: inputs.context,
    file: inputs.file!,
    ...(inputs.target === undefined ? {} : { target: inputs.target }),
    buildArgs: inputs.buildArgs,
    buildSecrets: inputs.buildSecrets,
    labels: inputs.labels,
    platforms: inputs.platforms,
    tags: inputs.tags,
    push: inputs.push,
    cache: inputs.cache,
    builder: inputs.builder,
    buildkitImage: inputs.buildkitImage,
    ...(inputs.smokeTest
      ? {
          smoke: {
            ...(inputs.smokeUrl === undefined ? {} : { url: inputs.smokeUrl }),
            ...(inputs.smokeCommand === undefined ? {} : { command: inputs.smokeCommand }),
            timeoutSeconds: inputs.smokeTimeout,
          },
        }
      : {}),
    scanSeverities: inputs.scanSeverities,
  };
}
