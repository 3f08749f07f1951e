// What every example test needs: the example copied as a user's repository, the server prepared
// the way the example's README says, and the example's own workflows run through
// test/workflow-runner.ts with the repository's variables and secrets.
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, type ModernHost } from '@skiff/testbed';

export const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

/** A copy of examples/<name> to work on as the user's repository; `edit` stands for their next commit. */
export async function userRepository(name: string) {
  const dir = await tempDir(`skiff-example-${name}`);
  await cp(join(EXAMPLES, name), dir.path, { recursive: true });
  return {
    path: dir.path,
    remove: dir.remove,
    async edit(file: string, change: (text: string) => string) {
      const path = join(dir.path, file);
      await writeFile(path, change(await readFile(path, 'utf8')));
    },
  };
}

/**
 * The deploy user the README asks for: a login of its own with the key, in the docker group,
 * owning the project directory. (Issue #17's `prepare` mode will do this; until then, by hand.)
 */
export async function addDeployUser(host: ModernHost, projectDir: string): Promise<void> {
  const publicKey = (await readFile(`${host.privateKeyPath}.pub`, 'utf8')).trim();
  await host.exec([
    'sh',
    '-ec',
    // '*' = no password but not locked: this sshd runs without PAM, and then refuses locked accounts.
    'id deploy >/dev/null 2>&1 || useradd -m -s /bin/bash -G docker -p "*" deploy; ' +
      'install -d -m 700 -o deploy -g deploy /home/deploy/.ssh; ' +
      'printf "%s\\n" "$1" > /home/deploy/.ssh/authorized_keys; chown deploy:deploy /home/deploy/.ssh/authorized_keys; chmod 600 /home/deploy/.ssh/authorized_keys; ' +
      'install -d -o deploy -g deploy "$2"',
    'sh',
    publicKey,
    projectDir,
  ]);
}

/** GET over plain HTTP; status and body (no redirects, 5 s limit). */
export async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000), redirect: 'manual' });
  return { status: response.status, body: await response.text() };
}
