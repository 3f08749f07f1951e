import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  InputError,
  getBoolean,
  getString,
  invalidInput,
  readInputs,
  type InputDefinition,
} from '@skiff/action-kit';

/** What action.yml declares; a unit test keeps action.yml and the README in step with these. */
export const ACTION_INPUTS: readonly InputDefinition[] = [
  {
    name: 'image',
    description: 'Image name without a tag, e.g. ghcr.io/owner/app. Defaults to ghcr.io/OWNER/REPO of this repository, in lowercase.',
    required: false,
  },
  { name: 'context', description: 'Build context directory, relative to the workspace.', required: false, default: '.' },
  { name: 'file', description: 'Path of the Dockerfile, relative to the workspace. Defaults to Dockerfile in the context.', required: false },
  { name: 'push', description: 'Push the image after building it (true or false).', required: false, default: 'true' },
  {
    name: 'github-token',
    description: 'Token used to log in to ghcr.io; the default job token needs `packages: write` permission to push.',
    required: false,
    default: '${{ github.token }}',
    secret: true,
  },
];
export const ACTION_OUTPUTS = {
  image: 'The image name that is built (without a tag).',
} as const;

export interface BuildPushInputs {
  image: string;
  /** Absolute paths. */
  context: string;
  file: string;
  push: boolean;
  githubToken?: string;
}

// Docker's reference grammar for a repository name: an optional registry host[:port], then
// lowercase path components separated by `/` (each may contain `.`, `_`, `__` or `-` runs).
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_NAME = new RegExp(`^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?${COMPONENT}(?:/${COMPONENT})*$`);

function readImage(): string {
  const given = getString('image');
  if (given === undefined) {
    const repository = process.env.GITHUB_REPOSITORY;
    if (!repository) throw new InputError('image', 'Input "image" is required when GITHUB_REPOSITORY is not set (outside GitHub Actions)');
    // ghcr.io refuses uppercase names, and GitHub owners and repositories often have some.
    return `ghcr.io/${repository.toLowerCase()}`;
  }
  const name = given.includes('/') ? given : `docker.io/library/${given}`;
  if (!IMAGE_NAME.test(name) || /[:@]/.test(given.slice(given.lastIndexOf('/') + 1))) {
    throw invalidInput('image', 'an image name without a tag, in lowercase, like ghcr.io/owner/app', given);
  }
  return given;
}

function isDirectory(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}

export function readBuildPushInputs(): BuildPushInputs {
  const inputs = readInputs({
    image: readImage,
    context: () => {
      const context = getString('context', { default: '.' });
      if (!isDirectory(resolve(context))) throw invalidInput('context', 'a directory in the workspace', context);
      return resolve(context);
    },
    file: () => getString('file'),
    push: () => getBoolean('push', { default: true }),
    githubToken: () => getString('github-token', { secret: true }),
  });
  // The Dockerfile's default depends on the context, so it is checked once the context is known.
  const file = readInputs({
    file: () => {
      const path = inputs.file === undefined ? resolve(inputs.context, 'Dockerfile') : resolve(inputs.file);
      if (!isFile(path)) {
        throw inputs.file === undefined
          ? new InputError('file', `Input "file" is not set and the context has no Dockerfile (looked for ${path})`)
          : invalidInput('file', 'the path of a Dockerfile in the workspace', inputs.file);
      }
      return path;
    },
    token: () => {
      if (inputs.push && inputs.githubToken === undefined) {
        throw new InputError('github-token', 'Input "github-token" is empty but "push" is true; pushing to ghcr.io needs a token');
      }
    },
  }).file;
  return {
    image: inputs.image,
    context: inputs.context,
    file,
    push: inputs.push,
    ...(inputs.githubToken === undefined ? {} : { githubToken: inputs.githubToken }),
  };
}
