import type { Executor } from '@skiff/shell';
import { detectComposeCommand, type DockerCli } from './compose-commands';

const GROUP_OR_SUDO =
  'Either add the SSH user to the docker group on the server (`sudo usermod -aG docker USER`, then log in again), ' +
  'or set `sudo: true` and allow the user passwordless sudo for docker (see the README, "Running docker with sudo").';

/** What the probe found wrong with docker on the server (as opposed to the connection failing under it). */
export class DockerUnusable extends Error {}

/**
 * Compose v2 if the server has it, else v1, and proof that docker reaches the engine; anything
 * missing is an error that says what to install or which of the two permission fixes to apply,
 * before the lock is taken or anything is uploaded.
 */
export async function detectDockerCli(server: Executor, sudo: boolean, dryRun = false, keptIn?: string): Promise<DockerCli> {
  const result = await server.run(detectComposeCommand(sudo, keptIn), { description: 'find docker compose', timeoutSeconds: 60 });
  if (dryRun) return { compose: 'v2', sudo };
  const lines = result.stdout.trim().split('\n');
  const [found, plugin] = splitOnce(lines[0]?.trim() ?? '');
  const engine = lines.at(-1)?.trim();
  const said = lines.slice(1, -1).join(' ').trim();
  if (found !== 'v2' && found !== 'v1') {
    if (sudo && /password is required|not allowed|not in the sudoers|may not run/i.test(said)) throw new DockerUnusable(sudoRefused(said));
    throw new DockerUnusable(
      `Neither \`docker compose\` (v2) nor \`docker-compose\` (v1) works on the server${sudo ? ' with sudo -n' : ''}. ` +
        'Install the Docker Compose plugin (e.g. the docker-compose-plugin package), or set sudo: true if the user is not in the docker group.',
    );
  }
  if (engine === 'engine-kept' && found === 'v2' && plugin) return { compose: 'v2', sudo, composePlugin: plugin, kept: true };
  if (engine !== 'engine-ok') {
    if (sudo && /password is required|not allowed|not in the sudoers|may not run/i.test(said)) throw new DockerUnusable(sudoRefused(said));
    if (!sudo && /permission denied/i.test(said)) {
      throw new DockerUnusable(`The SSH user may not use the Docker engine on the server (docker said: ${said}). ${GROUP_OR_SUDO}`);
    }
    throw new DockerUnusable(
      `docker cannot reach the Docker engine on the server${sudo ? ' with sudo -n' : ''} (docker said: ${said || 'nothing'}). Is the docker service running?`,
    );
  }
  return { compose: found, sudo, ...(found === 'v2' && plugin ? { composePlugin: plugin } : {}) };
}

/** `v2 /path/with spaces/docker-compose` → `v2` and the path. */
function splitOnce(line: string): [string, string | undefined] {
  const space = line.indexOf(' ');
  return space === -1 ? [line, undefined] : [line.slice(0, space), line.slice(space + 1)];
}

function sudoRefused(said: string): string {
  return (
    `sudo: true is set, but \`sudo -n docker\` is refused on the server (sudo said: ${said}). ` +
    'Allow the user passwordless sudo for docker (a sudoers.d line such as `deploy ALL=(root) NOPASSWD: /usr/bin/docker`), or add the user to the docker group and set sudo: false.'
  );
}

/**
 * When the probe's answer was kept from the last deploy, the engine was not asked before this
 * failure: the whole probe now says whether docker itself is the problem (engine down, the user
 * no longer in the docker group, the plugin gone) in its own clear words; otherwise (docker is
 * fine, or the probe could not run at all) the failure stands as it was.
 */
export async function clearerDockerError(server: Executor, cli: DockerCli, error: Error): Promise<Error> {
  if (!cli.kept) return error;
  try {
    await detectDockerCli(server, cli.sudo);
    return error;
  } catch (probed) {
    return probed instanceof DockerUnusable ? probed : error;
  }
}
