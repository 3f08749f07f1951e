import { InputCollector, InputError, getBoolean, getDuration, getList, getString, invalidInput, maskSecret, type InputDefinition } from '@skiff/action-kit';

export const COOLIFY_INPUTS = [
  {
    name: 'coolify-url',
    description: 'strategy: coolify — address of the Coolify instance, e.g. https://coolify.example.com (its API is under /api/v1).',
    required: false,
  },
  {
    name: 'coolify-token',
    description:
      'strategy: coolify — Coolify API token (Keys & Tokens → API tokens) with the `deploy` and `read` permissions (and `read:sensitive` to see deployment logs on failure), e.g. from a secret. Sent only in the Authorization header.',
    required: false,
    secret: true,
  },
  {
    name: 'coolify-uuid',
    description: 'strategy: coolify — UUID(s) of the Coolify resources to deploy, separated by newlines or commas. Set this or coolify-tag.',
    required: false,
  },
  {
    name: 'coolify-tag',
    description: 'strategy: coolify — Coolify tag(s) whose resources are deployed, separated by newlines or commas. Set this or coolify-uuid.',
    required: false,
  },
  {
    name: 'coolify-image-tag',
    description:
      "strategy: coolify — the image tag each application of coolify-uuid runs (Coolify's Docker Image build pack), e.g. the commit SHA the image was pushed as: set through Coolify's API before the deploy (the token needs `write`), so the deploy runs exactly that build and a manual rollback is a deploy of an earlier tag. With rollback-on-failure, a release that fails its deployment or the health gate is deployed again with the tag each application had before. Empty: Coolify deploys whatever tag it has.",
    required: false,
  },
  { name: 'coolify-force', description: "strategy: coolify — rebuild without cache (Coolify's `force`), true or false.", required: false, default: 'false' },
  {
    name: 'coolify-timeout',
    description: 'strategy: coolify — how long every deployment may take until Coolify reports it finished or failed, e.g. 20m.',
    required: false,
    default: '20m',
  },
  {
    name: 'coolify-poll-interval',
    description: "strategy: coolify — pause between two questions to Coolify about a deployment's status.",
    required: false,
    default: '5s',
  },
] as const satisfies readonly InputDefinition[];

export interface CoolifyInputs {
  /** The API base, `<coolify-url>/api/v1`, no trailing slash. */
  apiUrl: string;
  token: string;
  /** Exactly one of uuids and tags is non-empty (Coolify refuses both in one request). */
  uuids: readonly string[];
  tags: readonly string[];
  force: boolean;
  /** The Docker image tag set on every application before the deploy; undefined leaves Coolify's. */
  imageTag?: string;
  timeoutSeconds: number;
  pollSeconds: number;
}

// Docker's tag grammar: what `docker tag` accepts after the colon.
const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
// Coolify's resource uuids are cuid2 strings; tags are names. Neither may hold the comma that joins them in the query.
const UUID = /^[A-Za-z0-9_-]{1,64}$/;
const TAG = /^[^,\s][^,\r\n]{0,99}$/;

function readApiUrl(): string {
  const value = getString('coolify-url', { required: true });
  const expected = 'the http:// or https:// address of the Coolify instance, e.g. https://coolify.example.com, without user:password, query or fragment';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidInput('coolify-url', expected, value);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw invalidInput('coolify-url', expected, value);
  }
  // Both https://c.example and https://c.example/api/v1 are what people copy from Coolify's docs.
  const path = url.pathname.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
  return `${url.origin}${path}/api/v1`;
}

function readIds(name: 'coolify-uuid' | 'coolify-tag', pattern: RegExp, expected: string): readonly string[] {
  const items = (getList(name, { split: 'lines' }) ?? [])
    .flatMap((line) => line.split(','))
    .map((item) => item.trim())
    .filter((item) => item !== '');
  for (const item of items) if (!pattern.test(item)) throw invalidInput(name, expected, item);
  return [...new Set(items)];
}

/** The coolify strategy's own inputs; undefined for other strategies. */
export function readCoolifyInputs(strategy: string): CoolifyInputs | undefined {
  if (strategy !== 'coolify') return undefined;
  const c = new InputCollector();
  const apiUrl = c.read(readApiUrl);
  const token = c.read(() => {
    const value = getString('coolify-token', { required: true, secret: true });
    maskSecret(value);
    if (/[\s]/.test(value.trim()) || value.trim() === '') throw invalidInput('coolify-token', 'a Coolify API token on one line', value, true);
    return value.trim();
  });
  const uuids = c.read(() => readIds('coolify-uuid', UUID, 'Coolify resource UUIDs (letters, digits, - and _), separated by newlines or commas'));
  const tags = c.read(() => readIds('coolify-tag', TAG, 'Coolify tag names, separated by newlines or commas'));
  const force = c.read(() => getBoolean('coolify-force', { default: false }));
  const imageTag = c.read(() => {
    const value = getString('coolify-image-tag');
    if (value !== undefined && !IMAGE_TAG.test(value))
      throw invalidInput(
        'coolify-image-tag',
        'a Docker image tag (letters, digits, _, . and -, at most 128, not starting with . or -), e.g. the commit SHA',
        value,
      );
    return value;
  });
  const timeoutSeconds = c.read(() => getDuration('coolify-timeout', { default: 1200, min: 1, max: 6 * 3600 }));
  const pollSeconds = c.read(() => getDuration('coolify-poll-interval', { default: 5, min: 1, max: 300 }));
  if (uuids !== undefined && tags !== undefined) {
    if (uuids.length === 0 && tags.length === 0)
      c.add(
        new InputError(
          ['coolify-uuid', 'coolify-tag'],
          'strategy: coolify needs "coolify-uuid" (the resources to deploy) or "coolify-tag" (deploy every resource with that tag); neither is set',
        ),
      );
    if (uuids.length > 0 && tags.length > 0)
      c.add(
        new InputError(
          ['coolify-uuid', 'coolify-tag'],
          'Inputs "coolify-uuid" and "coolify-tag" are both set; Coolify deploys by uuid or by tag, not both, so set one of them',
        ),
      );
  }
  if (imageTag !== undefined && tags !== undefined && tags.length > 0)
    c.add(
      new InputError(
        ['coolify-image-tag', 'coolify-tag'],
        'Input "coolify-image-tag" sets the tag of the applications named in "coolify-uuid"; with "coolify-tag" they are not known before the deploy, so list them in coolify-uuid',
      ),
    );
  // Coolify keeps its own deployment history, which its API does not offer; an earlier build is deployed by its image tag.
  if (getString('rollback') !== undefined)
    c.add(
      new InputError(
        'rollback',
        'Input "rollback" is not available with strategy: coolify; deploy the earlier image with coolify-image-tag (e.g. its commit SHA), or redeploy an earlier deployment in Coolify itself',
      ),
    );
  // Only with a tag of ours is there an earlier build to return to.
  if (imageTag === undefined && getString('rollback-on-failure')?.toLowerCase() === 'false')
    c.add(
      new InputError(
        'rollback-on-failure',
        'Input "rollback-on-failure" is used by strategy: coolify only with coolify-image-tag (without it there is no earlier tag to return to, and nothing is rolled back anyway); remove it',
      ),
    );
  // There is no SSH host: the gate can only be health-url, checked from the runner.
  if (getString('health-command') !== undefined)
    c.add(new InputError('health-command', 'Input "health-command" runs on an SSH host, and strategy: coolify has none; use health-url'));
  if (getString('health-from')?.toLowerCase() === 'host')
    c.add(new InputError('health-from', 'Input "health-from: host" needs an SSH host, and strategy: coolify has none; use health-from: runner'));
  if ((getList('health-url') ?? []).some((url) => url.includes('{host}')))
    c.add(new InputError('health-url', 'Input "health-url" uses {host}, but strategy: coolify deploys to no SSH host; write the app\'s public address'));
  c.finish();
  return {
    apiUrl: apiUrl!,
    token: token!,
    uuids: uuids!,
    tags: tags!,
    force: force!,
    ...(imageTag === undefined ? {} : { imageTag }),
    timeoutSeconds: timeoutSeconds!,
    pollSeconds: pollSeconds!,
  };
}
