import { chmod, chown, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './proc';
import { requirePart } from './parts';

export interface LoginUser {
  username: string;
  uid: number;
  gid: number;
  home: string;
  /** The sudoers.d file written for this user, if any. */
  sudoersPath?: string;
  /** Deletes the sudoers file, the user and its home. */
  remove(): Promise<void>;
}

export interface LoginUserOptions {
  /** Public key line(s) written to ~/.ssh/authorized_keys. */
  authorizedKeys: string;
  /** Commands the user may run as root with `sudo -n` (NOPASSWD), e.g. ['/usr/local/bin/docker']. */
  sudoCommands?: readonly string[];
}

/**
 * A local account that logs in over SSH with a key, in no supplementary group (so not in
 * `docker`), optionally with a sudoers.d file allowing exactly `sudoCommands`. Idempotent: a
 * leftover account from a crashed run is reused and its files rewritten. The test sshd must read
 * the user's own authorized_keys (`Match User NAME` + `AuthorizedKeysFile .ssh/authorized_keys`).
 */
export async function ensureLoginUser(username: string, options: LoginUserOptions): Promise<LoginUser> {
  if (!/^skiff[a-z0-9]+$/.test(username)) throw new Error(`test bed: login user names start with "skiff" (got ${username})`);
  const exists = await sh('id', ['-u', username]).then(
    () => true,
    () => false,
  );
  if (!exists) await sh('useradd', ['-m', '-s', '/bin/bash', username]);
  // No supplementary groups, whatever a previous run left; '*' is "no password" but not "locked" (sshd refuses locked accounts).
  await sh('usermod', ['-G', '', '-p', '*', username]);
  const uid = Number((await sh('id', ['-u', username])).trim());
  const gid = Number((await sh('id', ['-g', username])).trim());
  const home = (await sh('getent', ['passwd', username])).trim().split(':')[5]!;
  const sshDir = join(home, '.ssh');
  await mkdir(sshDir, { recursive: true });
  await writeFile(join(sshDir, 'authorized_keys'), options.authorizedKeys.endsWith('\n') ? options.authorizedKeys : `${options.authorizedKeys}\n`);
  await chmod(sshDir, 0o700);
  await chmod(join(sshDir, 'authorized_keys'), 0o600);
  await chown(sshDir, uid, gid);
  await chown(join(sshDir, 'authorized_keys'), uid, gid);
  let sudoersPath: string | undefined;
  if (options.sudoCommands && options.sudoCommands.length > 0) {
    await requirePart('sudo', ['sudo', '-V']);
    sudoersPath = `/etc/sudoers.d/skiff-testbed-${username}`;
    const line = `${username} ALL=(root) NOPASSWD: ${options.sudoCommands.join(', ')}\n`;
    const candidate = `${sudoersPath}.new`;
    await writeFile(candidate, line, { mode: 0o440 });
    // A broken sudoers.d file would break sudo for everyone: check it before it goes live.
    await sh('visudo', ['-cf', candidate]);
    await sh('mv', [candidate, sudoersPath]);
  }
  return {
    username,
    uid,
    gid,
    home,
    ...(sudoersPath ? { sudoersPath } : {}),
    async remove() {
      if (sudoersPath) await rm(sudoersPath, { force: true });
      // The user's sshd session processes may linger a moment after the connection closes.
      for (let attempt = 0; attempt < 20; attempt++) {
        const removed = await sh('userdel', ['-r', username]).then(
          () => true,
          (error: Error) => /does not exist/.test(error.message),
        );
        if (removed) return;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      await sh('userdel', ['-r', '-f', username]).catch(() => '');
    },
  };
}
