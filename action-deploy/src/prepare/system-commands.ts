import { raw, type Command } from '@skiff/shell';
import { REFUSED_EXIT, stepScript } from './prepare-commands';

/**
 * prepare's steps that install and configure the system (Docker, its logs, swap, security
 * upgrades): the same contract as prepare-commands — check first, then one line `already: …`,
 * `changed: …` or `refused: …` (exit 3) last on stdout; apt's own output streams before it.
 */

/** apt as an unattended first boot needs it: waits for cloud-init's or a timer's apt instead of failing on its lock, keeps config files an admin changed. */
export const APT = `export DEBIAN_FRONTEND=noninteractive
apt_install() {
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \\
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}
apt_update() { apt-get update -q -o DPkg::Lock::Timeout=300; }
# Read whole before grep: grep -q stops at its match, and under pipefail apt-cache's SIGPIPE would fail the test.
apt_has() { local policy; policy=$(apt-cache policy "$1" 2>/dev/null) || return 1; grep -q 'Candidate: [^(]' <<<"$policy"; }`;

/** Where prepare installs Docker from when it is missing. */
export type DockerInstall = { kind: 'distribution' } | { kind: 'docker-repository'; url: string; fingerprint: string } | { kind: 'no' };

/** What Docker's apt repository installs, as Docker's own instructions name them. */
export const DOCKER_REPOSITORY_PACKAGES = ['docker-ce', 'docker-ce-cli', 'containerd.io', 'docker-buildx-plugin', 'docker-compose-plugin'];

/** Which distribution packages give Docker with the Compose v2 plugin; `optional` ones are installed where apt knows them. */
export interface DockerPackages {
  required: string[];
  optional: string[];
}

/**
 * Ubuntu ships the CLI inside docker.io and Compose v2 as docker-compose-v2; Debian 13 splits the
 * CLI into docker-cli (only a Recommends of docker.io, so --no-install-recommends needs it named)
 * and calls Compose v2 docker-compose. buildx lets compose build `build:` services with BuildKit.
 */
export function dockerPackagesFor(distribution: { id: string; version: string }): DockerPackages | undefined {
  if (distribution.id === 'ubuntu') return { required: ['docker.io', 'docker-compose-v2'], optional: ['docker-cli', 'docker-buildx'] };
  if (distribution.id === 'debian' && distribution.version !== '12')
    return { required: ['docker.io', 'docker-compose'], optional: ['docker-cli', 'docker-buildx'] };
  return undefined;
}

const DOCKER = `${APT}
hint="$1"; from="$2"; repository="$3"; fingerprint="$4"; compose_package="$5"; shift 5
required=(); optional=()
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do required+=("$1"); shift; done
[ "$#" -gt 0 ] && shift
optional=("$@")
did=()
install_docker() {
  local packages=("\${required[@]}") p
  apt_update
  for p in "\${optional[@]}"; do if apt_has "$p"; then packages+=("$p"); fi; done
  apt_install "\${packages[@]}"
  did+=("installed \${packages[*]}")
}
# Docker's own instructions, with the key checked: only a key whose primary fingerprint is the
# expected one is written, and the source and key go again if apt cannot install from them, so a
# failed run leaves no source that breaks every later apt-get update.
install_from_docker_repository() {
  local id codename arch base keyring=/etc/apt/keyrings/docker.asc sources=/etc/apt/sources.list.d/docker.sources
  id=$(. /etc/os-release && echo "$ID"); codename=$(. /etc/os-release && echo "\${VERSION_CODENAME:-}")
  base="$repository/$id"
  for f in /etc/apt/sources.list.d/docker.list /etc/apt/sources.list.d/docker.sources; do
    if [ -e "$f" ]; then echo "refused: $f already names an apt source for Docker, but Docker is not installed; install it from there yourself, or remove $f and run prepare again"; exit ${REFUSED_EXIT}; fi
  done
  local tools=()
  command -v curl >/dev/null 2>&1 || tools+=(curl)
  command -v gpg >/dev/null 2>&1 || tools+=(gpg)
  [ -e /etc/ssl/certs/ca-certificates.crt ] || tools+=(ca-certificates)
  if [ "\${#tools[@]}" -gt 0 ]; then apt_update; apt_install "\${tools[@]}"; did+=("installed \${tools[*]}"); fi
  # Not local: the EXIT trap runs after the function returned.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  if ! said=$(curl -fsSL --proto '=https,http' --max-time 120 -o "$work/key" "$base/gpg" 2>&1); then
    echo "refused: could not download Docker's signing key from $base/gpg: $said"; exit ${REFUSED_EXIT}
  fi
  local listed found
  listed=$(GNUPGHOME="$work" gpg --batch --show-keys --with-colons "$work/key" 2>/dev/null || true)
  found=$(awk -F: '$1 == "pub" { primary = 1; next } primary && $1 == "fpr" { print $10; primary = 0 }' <<<"$listed" | paste -sd' ' -)
  if [ "$found" != "$fingerprint" ]; then
    echo "refused: $base/gpg is not the key docker-repository-fingerprint names ($fingerprint): it holds \${found:-no OpenPGP key}; nothing was written"; exit ${REFUSED_EXIT}
  fi
  arch=$(dpkg --print-architecture)
  install -d -m 0755 /etc/apt/keyrings
  install -m 0644 "$work/key" "$keyring"
  printf '%s\\n' 'Types: deb' "URIs: $base" "Suites: $codename" 'Components: stable' "Architectures: $arch" "Signed-By: $keyring" >"$sources"
  trap 'rm -rf "$work"; rm -f "$sources" "$keyring"; echo "removed $sources and $keyring again: nothing was installed from them" >&2' EXIT
  local listed_by_apt
  # apt-get update may only warn about a source it could not read.
  if ! listed_by_apt=$(apt_update 2>&1) || grep -E '^[WE]: ' <<<"$listed_by_apt" | grep -F "$base" >/dev/null; then
    printf '%s\\n' "$listed_by_apt"
    echo "refused: apt could not read Docker's apt repository at $base, so its source and key are removed again: $(grep -E '^[WE]: ' <<<"$listed_by_apt" | tr '\\n' ' ' || true)"
    exit ${REFUSED_EXIT}
  fi
  printf '%s\\n' "$listed_by_apt"
  apt_install "\${required[@]}"
  trap 'rm -rf "$work"' EXIT
  did+=("added Docker's apt repository $base ($codename stable, key $fingerprint) in $sources" "installed \${required[*]}")
}
docker_path=$(command -v docker || true)
if [ -z "$docker_path" ] && [ ! -e /usr/sbin/dockerd ] && [ ! -e /usr/bin/dockerd ]; then
  if [ "$from" = no ] || [ "\${#required[@]}" -eq 0 ]; then echo "refused: Docker is not installed. $hint"; exit ${REFUSED_EXIT}; fi
  if [ "$from" = docker-repository ]; then install_from_docker_repository; source="Docker's apt repository"
  else install_docker; source="the distribution's packages"; fi
  docker_path=$(command -v docker || true)
  if [ -z "$docker_path" ]; then echo "refused: installed \${required[*]}, but there is still no docker command"; exit ${REFUSED_EXIT}; fi
else
  [ -n "$docker_path" ] || docker_path=$(command -v dockerd)
  case "$docker_path" in
    /snap/*) echo "refused: Docker here is the snap ($docker_path), whose confinement keeps compose from bind-mounting files outside home directories; remove it (snap remove docker) and run prepare again"; exit ${REFUSED_EXIT} ;;
  esac
  owners=$(dpkg-query -S "$(readlink -f "$docker_path")" 2>/dev/null || true)
  owner=\${owners%%$'\\n'*}
  owner=\${owner%%:*}
  case "$owner" in
    docker.io | docker-cli) source="the distribution's packages" ;;
    docker-ce | docker-ce-cli) source="Docker's apt repository" ;;
    "") echo "refused: $docker_path is not from any package (installed by hand or by a script?); prepare does not change a Docker it cannot update: remove it, or set install-docker: no once docker compose works"; exit ${REFUSED_EXIT} ;;
    *) source="package $owner" ;;
  esac
fi
if ! systemctl is-active --quiet docker; then
  if ! systemctl cat docker.service >/dev/null 2>&1; then echo "refused: docker is installed ($source) but there is no docker.service to start"; exit ${REFUSED_EXIT}; fi
  systemctl enable --now docker.service
  did+=("started docker")
fi
if ! systemctl is-enabled --quiet docker.service; then systemctl enable docker.service; did+=("enabled docker at boot"); fi
if ! engine=$(docker version --format '{{.Server.Version}}' 2>&1); then
  echo "refused: docker is installed ($source) but its engine does not answer: $(printf '%s' "$engine" | tr '\\n' ' ' | cut -c1-300)"
  exit ${REFUSED_EXIT}
fi
if ! compose=$(docker compose version --short 2>/dev/null); then
  if [ "$source" = "the distribution's packages" ] && [ -n "$compose_package" ]; then
    apt_update
    apt_install "$compose_package"
    did+=("installed $compose_package")
    compose=$(docker compose version --short)
  elif [ "$source" = "Docker's apt repository" ]; then
    echo "refused: Docker $engine from Docker's apt repository has no Compose v2 plugin; install docker-compose-plugin from that repository, then run prepare again"
    exit ${REFUSED_EXIT}
  else
    echo "refused: Docker $engine ($source) is installed, but not the Compose v2 plugin. $hint"
    exit ${REFUSED_EXIT}
  fi
fi
if [ "\${#did[@]}" -eq 0 ]; then echo "already: Docker $engine with Compose $compose, from $source, running and enabled"
else
  joined=$(printf '%s; ' "\${did[@]}")
  echo "changed: \${joined%; }: Docker $engine with Compose $compose, running and enabled at boot"
fi`;

/**
 * Docker and the Compose v2 plugin, running and enabled at boot: installed where missing from the
 * distribution's `packages` or from Docker's apt repository (`install.kind: no`, or a distribution
 * without packages: only checked, `hint` says how); a Docker from elsewhere is used as it is when
 * it works, and refused, never replaced, when it does not.
 */
export function ensureDocker(install: DockerInstall, packages: DockerPackages | undefined, hint: string): Command[] {
  if (install.kind === 'docker-repository')
    return [stepScript(DOCKER, [hint, install.kind, install.url, install.fingerprint, '', ...DOCKER_REPOSITORY_PACKAGES, '--'])];
  const required = install.kind === 'distribution' ? (packages?.required ?? []) : [];
  const optional = install.kind === 'distribution' ? (packages?.optional ?? []) : [];
  const composePackage = required.find((name) => name.startsWith('docker-compose')) ?? '';
  return [stepScript(DOCKER, [hint, install.kind, '', '', composePackage, ...required, '--', ...optional])];
}

export const DAEMON_JSON = '/etc/docker/daemon.json';

/** The engine's configuration as it is: `absent`, or `present` and the file. */
export function readDaemonJson(): Command[] {
  return [[raw('if [ -e'), DAEMON_JSON, raw(']; then echo present; cat'), DAEMON_JSON, raw('; else echo absent; fi')]];
}

const WRITE_DAEMON_JSON = `file="$1"; new="$file.skiff-new"; old="$file.skiff-old"
install -d -m 0755 "$(dirname "$file")"
cat >"$new"
if grep -q -- '--validate' <<<"$(dockerd --help 2>&1)"; then
  if ! said=$(dockerd --validate --config-file "$new" 2>&1); then rm -f "$new"; echo "refused: dockerd does not accept the new $file: $said"; exit ${REFUSED_EXIT}; fi
fi
had=no
if [ -e "$file" ]; then cp -p "$file" "$old"; had=yes; fi
mv "$new" "$file"
running=$(docker ps -q | wc -l)
if [ "$running" -eq 0 ]; then
  # dockerd before 23 has no --validate, and a setting can clash with the unit's own flags
  # (hosts against -H fd://): only a start proves the file. The admin's file comes back if not.
  if ! systemctl restart docker.service 2>/dev/null; then
    # dockerd's own reason, not systemd's "Failed to start" lines around it.
    why=$(journalctl -u docker.service -n 30 --no-pager -o cat 2>/dev/null | grep -iE 'unable|error|fail|invalid' | grep -vE '^(docker\\.service: |Failed to start |Start request repeated)' | tail -n 2 | tr '\\n' ' ' || true)
    if [ "$had" = yes ]; then mv "$old" "$file"; else rm -f "$file"; fi
    systemctl reset-failed docker.service docker.socket 2>/dev/null || true
    if systemctl restart docker.service 2>/dev/null; then again="Docker runs again with $file as it was"
    else again="Docker does not start with $file as it was either: fix $file (it is as you left it), start Docker (systemctl restart docker), then run prepare again"; fi
    echo "refused: Docker did not start with the new $file (\${why:-see journalctl -u docker}); $again"
    exit ${REFUSED_EXIT}
  fi
  rm -f "$old"
  echo "changed: wrote $file and restarted Docker; containers created from now on rotate their logs"
else
  rm -f "$old"
  echo "changed: wrote $file; Docker was not restarted, because $running container(s) run: it applies after the next restart of Docker (systemctl restart docker), to containers created after it"
fi`;

/** Writes daemon.json (its new text on stdin) after dockerd accepts it, and restarts the engine only while no container runs. */
export function writeDaemonJson(): Command[] {
  return [stepScript(WRITE_DAEMON_JSON, [DAEMON_JSON])];
}

export interface LogRotation {
  maxSize: string;
  maxFile: number;
}

/**
 * daemon.json with json-file log rotation merged in, every other setting kept; `undefined` when
 * it already rotates like that. A file that is not a JSON object, or that sends logs to another
 * driver, is refused: prepare does not guess what an admin meant.
 */
export function withLogRotation(current: string | undefined, rotation: LogRotation): { text: string; detail: string } | undefined {
  let config: Record<string, unknown> = {};
  if (current !== undefined && current.trim() !== '') {
    try {
      config = JSON.parse(current) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${DAEMON_JSON} is not valid JSON (${(error as Error).message}); fix it, then run prepare again`);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config))
      throw new Error(`${DAEMON_JSON} is not a JSON object; fix it, then run prepare again`);
  }
  const driver = config['log-driver'];
  if (driver !== undefined && driver !== 'json-file')
    throw new Error(
      `${DAEMON_JSON} sends container logs to the ${JSON.stringify(driver)} log driver, which docker-log-max-size does not apply to; keep yours with docker-log-max-size: off, or remove log-driver from ${DAEMON_JSON}`,
    );
  const options = (config['log-opts'] ?? {}) as Record<string, unknown>;
  const want = { 'max-size': rotation.maxSize, 'max-file': String(rotation.maxFile) };
  if (options['max-size'] === want['max-size'] && options['max-file'] === want['max-file']) return undefined;
  const before =
    options['max-size'] === undefined
      ? 'no rotation'
      : `max-size ${JSON.stringify(options['max-size'])}, max-file ${JSON.stringify(options['max-file'] ?? '1')}`;
  const text = `${JSON.stringify({ ...config, 'log-driver': 'json-file', 'log-opts': { ...options, ...want } }, null, 2)}\n`;
  return { text, detail: `json-file logs rotate at max-size ${want['max-size']}, max-file ${want['max-file']} (before: ${before})` };
}

const SWAP = `want="$1"; file=/swapfile
did=()
active_kib=$(awk -v f="$file" '$1 == f { print $3 }' /proc/swaps)
if [ -n "$active_kib" ]; then
  # /proc/swaps leaves out the swap header's page.
  have=$(( (active_kib + 4) / 1024 ))
  if [ "$have" -ne "$want" ]; then
    echo "refused: $file is on with $have MiB, not the $want MiB of swap-size; prepare does not resize swap in use (swapoff $file and remove it first, or set swap-size: \${have}M)"
    exit ${REFUSED_EXIT}
  fi
else
  others=$(awk 'NR > 1 { printf "%s%s (%d MiB)", sep, $1, $3 / 1024; sep = ", " }' /proc/swaps)
  if [ -n "$others" ]; then echo "refused: the server already has swap: $others; prepare adds $file only where there is none (remove swap-size to keep yours)"; exit ${REFUSED_EXIT}; fi
  if [ -e "$file" ]; then echo "refused: $file exists but is not switched on; remove it, or switch it on yourself"; exit ${REFUSED_EXIT}; fi
  avail=$(df -Pm / | awk 'NR == 2 { print $4 }')
  if [ "$avail" -lt $((want + 1024)) ]; then echo "refused: / has $avail MiB free; a $want MiB swap file should leave at least 1 GiB"; exit ${REFUSED_EXIT}; fi
  # A file that could not be switched on goes again: the next run would refuse it as not ours.
  trap 'swapoff "$file" 2>/dev/null || true; rm -f "$file"; echo "removed $file again" >&2' EXIT
  fallocate -l "\${want}M" "$file" 2>/dev/null || dd if=/dev/zero of="$file" bs=1M count="$want" status=none
  chmod 0600 "$file"
  mkswap "$file" >/dev/null
  swapon "$file"
  trap - EXIT
  did+=("created and switched on $file ($want MiB)")
fi
if ! grep -qE "^[[:space:]]*$file[[:space:]]" /etc/fstab 2>/dev/null; then
  printf '%s\\n' "$file none swap sw 0 0" >>/etc/fstab
  did+=("added it to /etc/fstab")
fi
if [ "\${#did[@]}" -eq 0 ]; then echo "already: $file is on ($want MiB) and in /etc/fstab"
else joined=$(printf '%s; ' "\${did[@]}"); echo "changed: \${joined%; }"; fi`;

/** A swap file /swapfile of `mebibytes`, on now and at boot; a server with other swap, or a /swapfile of another size, is refused. */
export function ensureSwap(mebibytes: number): Command[] {
  return [stepScript(SWAP, [String(mebibytes)])];
}

const AUTO_UPGRADES = `${APT}
did=()
if [ "$(dpkg-query -W -f='\${Status}' unattended-upgrades 2>/dev/null)" != "install ok installed" ]; then
  apt_update
  apt_install unattended-upgrades
  did+=("installed unattended-upgrades")
fi
periodic() { eval "$(apt-config shell lists APT::Periodic::Update-Package-Lists upgrade APT::Periodic::Unattended-Upgrade)"; [ "\${lists:-0}" = 1 ] && [ "\${upgrade:-0}" = 1 ]; }
if ! periodic; then
  printf '%s\\n' 'APT::Periodic::Update-Package-Lists "1";' 'APT::Periodic::Unattended-Upgrade "1";' >/etc/apt/apt.conf.d/20auto-upgrades
  if ! periodic; then echo "refused: wrote /etc/apt/apt.conf.d/20auto-upgrades, but a later file in /etc/apt/apt.conf.d still turns APT::Periodic::Unattended-Upgrade or Update-Package-Lists off (apt-config dump | grep Periodic)"; exit ${REFUSED_EXIT}; fi
  did+=("turned them on in /etc/apt/apt.conf.d/20auto-upgrades")
fi
for timer in apt-daily.timer apt-daily-upgrade.timer; do
  if ! systemctl is-enabled --quiet "$timer" || ! systemctl is-active --quiet "$timer"; then systemctl enable --now "$timer"; did+=("started $timer"); fi
done
if [ "\${#did[@]}" -eq 0 ]; then echo "already: unattended-upgrades installed, on daily (apt-daily-upgrade.timer)"
else joined=$(printf '%s; ' "\${did[@]}"); echo "changed: \${joined%; }"; fi`;

/** Security updates installed unattended: the package, APT::Periodic on, and apt's daily timers running. */
export function ensureUnattendedUpgrades(): Command[] {
  return [stepScript(AUTO_UPGRADES, [])];
}
