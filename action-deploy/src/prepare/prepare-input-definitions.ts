import type { InputDefinition } from '@skiff/action-kit';

/** The inputs only `prepare: true` reads; a deploy refuses them by name. */
export const PREPARE_INPUTS = [
  {
    name: 'prepare',
    description:
      'true: instead of deploying, prepare a fresh server, connecting as root or a user with passwordless sudo (README, "Prepare your server"): the deploy user and its keys, its project directory, Docker with the Compose plugin checked, the deploy user\'s access to it (the docker group, or with `sudo: true` one sudoers rule), and the host key fingerprints to paste into `fingerprint`/`known-hosts`. Every step checks before it changes; a second run changes nothing and says so. With `dry-run`, the plan. Ubuntu 22.04/24.04 and Debian 12/13.',
    required: false,
    default: 'false',
  },
  {
    name: 'deploy-user',
    description:
      'With prepare: the user deploys log in as, created if missing (home /home/USER, bash, no password). An existing user with another home or shell is refused, not changed.',
    required: false,
    default: 'deploy',
  },
  {
    name: 'deploy-user-keys',
    description:
      "With prepare: the public key(s) the deploy user logs in with, one per line as in authorized_keys (e.g. `ssh-ed25519 AAAA… ci@example`); the private half is the deploys' `key`. Keys already there are left as they are.",
    required: false,
  },
  {
    name: 'harden-ssh',
    description:
      'With prepare: `true` also sets sshd to key logins only and no root login (PermitRootLogin no, PasswordAuthentication no, KbdInteractiveAuthentication no, in /etc/ssh/sshd_config.d/00-skiff-hardening.conf), after a key login as the deploy user with `deploy-user-key` worked, under a lockout guard: unless a new key login as the deploy user works after sshd reloads, the change is undone (at once, or by a timer on the server if the connection is gone). Afterwards prepare must connect as a sudo user, not root.',
    required: false,
    default: 'false',
  },
  {
    name: 'deploy-user-key',
    description:
      "With prepare and harden-ssh: the deploy user's private key (one of deploy-user-keys), to prove its login before and after sshd is hardened; use a secret. Not kept on the server.",
    required: false,
    secret: true,
  },
] as const satisfies readonly InputDefinition[];

export const PREPARE_ONLY_INPUTS: readonly string[] = PREPARE_INPUTS.filter((input) => input.name !== 'prepare').map((input) => input.name);
