import { raw, script, type Command } from '@skiff/shell';

/**
 * prepare, the pure part: each step is one script that checks before it changes and prints one
 * line, `already: …` or `changed: …`, or `refused: …` with exit status 3 where the server is
 * not what the step expects (nothing of that step changed then). Skiff's own script text goes
 * to `bash -c`; every value is a positional argument, quoted like any other token.
 */

export const REFUSED_EXIT = 3;

export function stepScript(body: string, args: readonly string[]): Command {
  return ['bash', '-c', `set -euo pipefail\n${body}`, 'skiff-prepare', ...args];
}

/** As root: the commands themselves, or one `sudo -n bash -c` around them for a sudo user. */
export function asRoot(elevate: boolean, commands: readonly Command[]): Command[] {
  return elevate ? [['sudo', '-n', 'bash', '-c', script(commands)]] : [...commands];
}

/** What prepare needs to know before it changes anything: the distribution, root or sudo, the SSH host keys. */
export function inspectServer(): Command[] {
  return [
    ['cat', '/etc/os-release'],
    ['echo', '--- uid'],
    ['id', '-u'],
    ['echo', '--- sudo'],
    [raw('if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then echo yes; else echo no; fi')],
    ['echo', '--- host keys'],
    [raw('cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null || true')],
  ];
}

const USER = `u="$1"
if entry=$(getent passwd "$u"); then
  home=$(printf '%s' "$entry" | cut -d: -f6)
  shell=$(printf '%s' "$entry" | cut -d: -f7)
  if [ "$home" != "/home/$u" ] || [ "$shell" != /bin/bash ]; then
    echo "refused: user $u already exists with home $home and shell $shell, where prepare expects /home/$u and /bin/bash; choose another deploy-user, or set that user up yourself"
    exit ${REFUSED_EXIT}
  fi
  echo "already: user $u exists (home /home/$u, shell /bin/bash)"
else
  # '*': no password to log in with, but not a locked account, which sshd refuses even with a key when UsePAM is off.
  useradd --create-home --home-dir "/home/$u" --shell /bin/bash --user-group --password '*' "$u"
  echo "changed: created user $u (home /home/$u, shell /bin/bash, no password)"
fi`;

/** The deploy user, created with a home and bash; one that exists differently is refused, never changed. */
export function ensureUser(user: string): Command[] {
  return [stepScript(USER, [user])];
}

const KEYS = `u="$1"; shift
group=$(id -gn "$u")
dir="/home/$u/.ssh"
file="$dir/authorized_keys"
fixed=""
if [ ! -d "$dir" ]; then install -d -m 0700 -o "$u" -g "$group" "$dir"; fixed="created $dir"; fi
if [ ! -e "$file" ]; then install -m 0600 -o "$u" -g "$group" /dev/null "$file"; fi
if [ "$(stat -c '%a %U' "$dir")" != "700 $u" ]; then chmod 0700 "$dir"; chown "$u:$group" "$dir"; fixed="fixed the owner and mode of $dir"; fi
if [ "$(stat -c '%a %U' "$file")" != "600 $u" ]; then chmod 0600 "$file"; chown "$u:$group" "$file"; fixed="fixed the owner and mode of $file"; fi
added=0
present=0
while [ "$#" -gt 1 ]; do
  if grep -qF -- "$1" "$file"; then present=$((present + 1)); else printf '%s\\n' "$2" >>"$file"; added=$((added + 1)); fi
  shift 2
done
if [ "$added" -gt 0 ]; then echo "changed: added $added key(s) to $file ($present already there)\${fixed:+; $fixed}"
elif [ -n "$fixed" ]; then echo "changed: $fixed; all $present key(s) already there"
else echo "already: all $present key(s) in $file"; fi`;

/** Each public key in the user's authorized_keys once (matched by type and key, whatever its comment or options), 0600 in a 0700 ~/.ssh. */
export function ensureAuthorizedKeys(user: string, keys: readonly { match: string; line: string }[]): Command[] {
  return [stepScript(KEYS, [user, ...keys.flatMap((key) => [key.match, key.line])])];
}

const PROJECT_DIR = `d="$1"; u="$2"
group=$(id -gn "$u")
if [ -d "$d" ]; then
  owner=$(stat -c %U "$d")
  if [ "$owner" = "$u" ]; then echo "already: $d exists, owned by $u"; exit 0; fi
  if [ -n "$(ls -A "$d")" ]; then
    echo "refused: $d exists, owned by $owner, and is not empty; prepare gives only an empty or new project directory to $u (chown it yourself if its files are meant for $u)"
    exit ${REFUSED_EXIT}
  fi
  chown "$u:$group" "$d"
  echo "changed: gave the empty $d (owned by $owner) to $u"
elif [ -e "$d" ]; then
  echo "refused: $d exists and is not a directory"
  exit ${REFUSED_EXIT}
else
  install -d -o "$u" -g "$group" -m 0755 "$d"
  echo "changed: created $d, owned by $u"
fi`;

/** project-dir, owned by the deploy user; an existing one is taken over only when empty. */
export function ensureProjectDir(projectDir: string, user: string): Command[] {
  return [stepScript(PROJECT_DIR, [projectDir, user])];
}

const DOCKER_GROUP = `u="$1"
if ! getent group docker >/dev/null; then echo "refused: there is no docker group on this server; install Docker from your distribution's packages (they create it)"; exit ${REFUSED_EXIT}; fi
case " $(id -nG "$u") " in
  *" docker "*) echo "already: $u is in the docker group" ;;
  *) usermod -aG docker "$u"; echo "changed: added $u to the docker group (it takes effect at $u's next login)" ;;
esac`;

const DOCKER_SUDO = `u="$1"
docker_path=$(command -v docker || true)
if [ -z "$docker_path" ]; then echo "refused: docker is not installed, so there is no command to allow $u with sudo"; exit ${REFUSED_EXIT}; fi
if ! command -v visudo >/dev/null 2>&1; then echo "refused: sudo: true, but sudo is not installed on this server (apt-get install sudo)"; exit ${REFUSED_EXIT}; fi
rule="$u ALL=(root) NOPASSWD: $docker_path"
file="/etc/sudoers.d/skiff-$u-docker"
if [ -f "$file" ] && [ "$(cat "$file")" = "$rule" ]; then echo "already: $file allows $u to run $docker_path with sudo -n"; exit 0; fi
tmp=$(mktemp)
printf '%s\\n' "$rule" >"$tmp"
if ! visudo -cf "$tmp" >/dev/null; then rm -f "$tmp"; echo "refused: visudo does not accept the rule: $rule"; exit ${REFUSED_EXIT}; fi
install -m 0440 -o root -g root "$tmp" "$file"
rm -f "$tmp"
echo "changed: wrote $file: $rule"`;

/** The deploy user's way to the engine: the docker group, or with sudo: true the one sudoers rule the README documents. */
export function ensureDockerAccess(user: string, via: 'group' | 'sudo'): Command[] {
  return [stepScript(via === 'group' ? DOCKER_GROUP : DOCKER_SUDO, [user])];
}

/** The drop-in that hardens sshd; `00-` so it comes before a cloud image's own (sshd keeps the first value it reads). */
export const HARDENING_FILE = '/etc/ssh/sshd_config.d/00-skiff-hardening.conf';

export const HARDENING = `# Written by skiff prepare (harden-ssh): key logins only, and no root login.
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
`;

const SSHD_STATE = `if ! grep -Eiq '^[[:space:]]*Include[[:space:]]+/etc/ssh/sshd_config\\.d/\\*\\.conf' /etc/ssh/sshd_config; then
  echo "refused: /etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/*.conf, where prepare puts its settings; add that Include line at its top, or harden sshd yourself"
  exit ${REFUSED_EXIT}
fi
effective=$(sshd -T 2>/dev/null | grep -Ei '^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication) ' | sort | tr '\\n' ' ')
echo "effective: $effective"`;

/** Whether sshd_config reads sshd_config.d, and what sshd would apply now for the three settings hardening sets. */
export function readSshdState(): Command[] {
  return [['bash', '-c', `set -euo pipefail\n${SSHD_STATE}`, 'skiff-prepare']];
}

/** Writes the hardening drop-in and reloads sshd; a configuration sshd refuses is removed again before any reload. */
export function applyHardening(): Command[] {
  return [
    ['printf', '%s', HARDENING, raw('>'), HARDENING_FILE],
    ['chmod', '0644', HARDENING_FILE],
    [raw('if ! said=$(sshd -t 2>&1); then rm -f'), HARDENING_FILE, raw('; echo "sshd -t refused the configuration: $said" >&2; exit 3; fi')],
    ['systemctl', 'reload', 'ssh'],
  ];
}

/** What the guard's revert runs: the drop-in gone, sshd reloaded. */
export function undoHardening(): Command[] {
  return [
    ['rm', '-f', HARDENING_FILE],
    ['systemctl', 'reload', 'ssh'],
  ];
}
