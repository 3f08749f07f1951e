import type { InputDefinition } from '@skiff/action-kit';

/** The inputs only `prepare: true` reads; a deploy refuses them by name. */
export const PREPARE_INPUTS = [
  {
    name: 'prepare',
    description:
      "true: instead of deploying, prepare a fresh server, connecting as root or a user with passwordless sudo (README, \"Prepare your server\"): the deploy user and its keys, its project directory, Docker with the Compose v2 plugin (from the distribution's packages or Docker's apt repository) and log rotation, the deploy user's access to it (the docker group, or with `sudo: true` one sudoers rule), a swap file, unattended security upgrades, and the host key fingerprints to paste into `fingerprint`/`known-hosts`. Every step checks before it changes; a second run changes nothing and says so. With `dry-run`, the plan. Ubuntu 22.04/24.04 and Debian 12/13.",
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
  {
    name: 'install-docker',
    description:
      "With prepare: `distribution` installs Docker and the Compose v2 plugin from the distribution's packages where missing (Ubuntu: docker.io, docker-compose-v2; Debian 13: docker.io, docker-cli, docker-compose; with docker-buildx); `docker-repository` from Docker's apt repository (docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin; its key checked against `docker-repository-fingerprint`) — the only way on Debian 12, which has no Compose v2 package; `no` only checks. Then Docker is started and enabled. A Docker installed otherwise is used as it is if it works, never replaced.",
    required: false,
    default: 'distribution',
  },
  {
    name: 'docker-repository',
    description:
      "With prepare and install-docker: docker-repository: where Docker's apt repository is, without the distribution (`/debian` or `/ubuntu` is added), e.g. a mirror of it. Its signing key is read from `<url>/<distribution>/gpg` and used only if its fingerprint is `docker-repository-fingerprint`.",
    required: false,
    default: 'https://download.docker.com/linux',
  },
  {
    name: 'docker-repository-fingerprint',
    description:
      "With prepare and install-docker: docker-repository: the fingerprint of the key that signs the repository (40 hex digits, spaces allowed); Docker's own by default. Change it only for a mirror that signs with its own key.",
    required: false,
    default: '9DC858229FC7DD38854AE2D88D81803C0EBFCD88',
  },
  {
    name: 'docker-log-max-size',
    description:
      "With prepare: containers' json-file logs rotate at this size (Docker's log-opts max-size, e.g. `10m`), merged into /etc/docker/daemon.json with its other settings kept; `off` leaves logging as it is. Docker is restarted for it only while no container runs.",
    required: false,
    default: '10m',
  },
  {
    name: 'docker-log-max-file',
    description: 'With prepare: how many rotated log files each container keeps (log-opts max-file, 1–100).',
    required: false,
    default: '3',
  },
  {
    name: 'swap-size',
    description:
      'With prepare: a swap file /swapfile of this size (e.g. `1G`, `512M`), switched on now and at boot — worth it on a 1 GB VM where image pulls and builds run out of memory. Empty: no swap file. A server that already has other swap, or a /swapfile of another size, is refused.',
    required: false,
  },
  {
    name: 'unattended-upgrades',
    description:
      "With prepare: `true` installs unattended-upgrades and turns on daily security updates (APT::Periodic, apt's daily timers); `false` leaves them as they are.",
    required: false,
    default: 'true',
  },
] as const satisfies readonly InputDefinition[];

export const PREPARE_ONLY_INPUTS: readonly string[] = PREPARE_INPUTS.filter((input) => input.name !== 'prepare').map((input) => input.name);
