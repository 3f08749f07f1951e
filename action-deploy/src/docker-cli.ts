import type { Executor } from '@skiff/shell';
import { detectComposeCommand, type DockerCli } from './compose';

/** Compose v2 if the server has it, else v1; neither is an error that says what to install. */
export async function detectDockerCli(server: Executor, sudo: boolean, dryRun = false): Promise<DockerCli> {
  const result = await server.run(detectComposeCommand(sudo), { description: 'find docker compose', timeoutSeconds: 60 });
  const found = result.stdout.trim();
  if (found === 'v2' || found === 'v1') return { compose: found, sudo };
  if (dryRun) return { compose: 'v2', sudo };
  throw new Error(
    `Neither \`docker compose\` (v2) nor \`docker-compose\` (v1) works on the server${sudo ? ' with sudo -n' : ''}. ` +
      'Install the Docker Compose plugin (e.g. the docker-compose-plugin package), or set sudo: true if the user is not in the docker group.',
  );
}
