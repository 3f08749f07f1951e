#!/usr/bin/env bash
# Provisions the integration-test bed on Debian 12 (bookworm), as root.
# Idempotent: every part is probed first and only what is missing is installed, so a
# second run takes a few seconds. Nothing is ever pulled: base images are made locally.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
CACHE=/var/cache/skiff-testbed
PLUGINS=/usr/local/lib/docker/cli-plugins
DOCKERD_LOG=/var/log/skiff-dockerd.log
MIRROR=http://deb.debian.org/debian
BUSYBOX_IMAGE=skiff-testbed/busybox:1
DEBIAN_IMAGE=skiff-testbed/debian:bookworm
SYSTEMD_IMAGE=skiff-testbed/systemd:bookworm
MARIADB_IMAGE=skiff-testbed/mariadb:bookworm
POSTGRES17_IMAGE=skiff-testbed/postgres:17-trixie
MARIADB11_IMAGE=skiff-testbed/mariadb:11-trixie
APT_PACKAGES=(openssh-server docker.io docker-registry apache2-utils nftables iproute2 busybox-static
  debootstrap postgresql redis-server sqlite3 curl ca-certificates ufw sudo mariadb-server dpkg-dev)
# Other sessions on the same machine may be running apt at the same time: wait for the lock.
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

say() { printf '%-30s %s\n' "$1" "$2"; }
die() { printf 'setup-testbed: FAILED: %s\n' "$*" >&2; exit 1; }
trap 'die "line $LINENO: $BASH_COMMAND"' ERR

[[ $(id -u) -eq 0 ]] || die "must run as root"
mkdir -p "$CACHE"

# --- apt packages -----------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) != "ii " ]]; then missing+=("$pkg"); fi
done
if ((${#missing[@]})); then
  # Tests run their own sshd/postgres/redis/registry on free ports; services started by
  # postinst scripts would only hold ports and data dirs, so forbid them during install.
  temp_policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    temp_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$temp_policy" && chmod 755 "$temp_policy"
  fi
  apt-get "${APT_OPTS[@]}" update -qq >/dev/null || die "apt-get update failed"
  apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/tmp/skiff-apt.log 2>&1 ||
    { tail -n 30 /tmp/skiff-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
  [[ -n $temp_policy ]] && rm -f "$temp_policy"
  # Belt and braces for machines whose policy let a service start anyway.
  for svc in ssh postgresql redis-server docker-registry docker; do service "$svc" stop >/dev/null 2>&1 || true; done
  say "apt packages" "installed (${missing[*]})"
else
  say "apt packages" "ok"
fi

# --- Compose v2 and buildx, from trixie .debs without touching the system sources ---------
plugin_ok() {
  # Debian's build prints "2.26.1-4" (no leading v); upstream prints "v2.x".
  docker compose version --short 2>/dev/null | grep -Eq '^v?2\.' && docker buildx version >/dev/null 2>&1
}
if [[ -x $PLUGINS/docker-compose && -x $PLUGINS/docker-buildx ]] && plugin_ok; then
  say "compose/buildx" "ok"
else
  debs=("$CACHE"/docker-compose_*.deb "$CACHE"/docker-buildx_*.deb)
  if [[ ! -f ${debs[0]} || ! -f ${debs[1]} ]]; then
    work=$(mktemp -d)
    echo "deb $MIRROR trixie main" >"$work/trixie.list"
    mkdir -p "$work/lists/partial"
    O=(-o "Dir::Etc::SourceList=$work/trixie.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/lists"
      -o APT::Sandbox::User=root)
    apt-get "${APT_OPTS[@]}" "${O[@]}" update -qq >/dev/null || die "apt-get update (trixie lists) failed"
    (cd "$work" && apt-get "${APT_OPTS[@]}" "${O[@]}" download docker-compose docker-buildx >/dev/null) ||
      die "downloading docker-compose/docker-buildx from trixie failed"
    mv "$work"/docker-compose_*.deb "$work"/docker-buildx_*.deb "$CACHE"/
    rm -rf "$work"
  fi
  x=$(mktemp -d)
  for deb in "$CACHE"/docker-compose_*.deb "$CACHE"/docker-buildx_*.deb; do dpkg-deb -x "$deb" "$x"; done
  mkdir -p "$PLUGINS"
  install -m 755 "$x"/usr/libexec/docker/cli-plugins/docker-compose "$x"/usr/libexec/docker/cli-plugins/docker-buildx "$PLUGINS"/
  rm -rf "$x"
  plugin_ok || die "docker compose v2 / docker buildx do not work after installing into $PLUGINS"
  say "compose/buildx" "installed ($(docker compose version --short), buildx $(docker buildx version | awk '{print $2}'))"
fi

# --- Docker engine ------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  say "docker engine" "ok"
else
  # No init system here: run dockerd detached from this shell so it outlives the script.
  setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -n 20 "$DOCKERD_LOG" >&2; die "dockerd did not answer within 60 s (log: $DOCKERD_LOG)"; }
  say "docker engine" "started (log: $DOCKERD_LOG)"
fi

# --- Base images (nothing can be pulled here, so we make our own) --------------------------
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

busybox_tar=$CACHE/busybox-rootfs.tar
if have_image "$BUSYBOX_IMAGE"; then
  say "$BUSYBOX_IMAGE" "ok"
else
  if [[ ! -s $busybox_tar ]]; then
    root=$(mktemp -d)
    mkdir -p "$root"/{bin,tmp,etc,var/www,root}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    # Every applet busybox-static knows, so compose files can use sh/httpd/wget/nc/... freely.
    for applet in $("$root/bin/busybox" --list); do
      [[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -cf "$busybox_tar.tmp" . && mv "$busybox_tar.tmp" "$busybox_tar"
    rm -rf "$root"
  fi
  docker import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' "$busybox_tar" "$BUSYBOX_IMAGE" >/dev/null
  say "$BUSYBOX_IMAGE" "imported"
fi

# A Debian image from debootstrap, cached as a rootfs tarball so a machine where the image was
# deleted re-imports it in seconds.  Usage: debootstrap_image IMAGE TARBALL PACKAGES CMD-JSON [SUITE]
debootstrap_image() {
  local image=$1 tarball=$2 packages=$3 cmd=$4 suite=${5:-bookworm}
  if have_image "$image"; then
    say "$image" "ok"
    return
  fi
  if [[ ! -s $tarball ]]; then
    local root
    root=$(mktemp -d /var/tmp/skiff-debootstrap.XXXXXX)
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$MIRROR" >/tmp/skiff-debootstrap.log 2>&1 ||
      { tail -n 30 /tmp/skiff-debootstrap.log >&2; rm -rf "$root"; die "debootstrap of $image failed (log: /tmp/skiff-debootstrap.log)"; }
    # The .debs and apt lists are only dead weight in every image layer built on top.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker import --change "CMD $cmd" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$image" >/dev/null
  say "$image" "imported"
}

debootstrap_image "$DEBIAN_IMAGE" "$CACHE/debian-bookworm-rootfs.tar" \
  postgresql-15,redis-server,nginx-light,curl,ca-certificates '["bash"]'
# A "VPS" with real systemd (systemd-run timers, units) and sshd, for strategies and guards
# that behave differently when systemd runs; started per ../shared/TESTBED.md.
debootstrap_image "$SYSTEMD_IMAGE" "$CACHE/systemd-bookworm-rootfs.tar" \
  systemd,systemd-sysv,dbus,openssh-server,nftables,iproute2,python3,curl,ca-certificates,sudo '["/sbin/init"]'

# MariaDB for Compose services (the machine's own MariaDB is a host-level source), with the
# sqlite3 CLI and python3 for an app container that keeps a SQLite file.
debootstrap_image "$MARIADB_IMAGE" "$CACHE/mariadb-bookworm-rootfs.tar" \
  mariadb-server,sqlite3,python3 '["bash"]'

# A PostgreSQL major version other than the runner's (bookworm's 15): trixie's 17, server and
# client tools, for a managed database whose version differs from the runner's pg_dump.
debootstrap_image "$POSTGRES17_IMAGE" "$CACHE/postgres17-trixie-rootfs.tar" \
  postgresql-17,util-linux '["bash"]' trixie
# Likewise a MariaDB release other than the runner's client (10.11): trixie's 11.8.
debootstrap_image "$MARIADB11_IMAGE" "$CACHE/mariadb11-trixie-rootfs.tar" \
  mariadb-server,mariadb-client,util-linux '["bash"]' trixie

# --- Debian packages a test server installs with apt (python3-venv, sqlite3), as a local repository
# The systemd "VPS" has no route to Debian's mirror; a test copies this folder into it and points
# its apt there, so a README's `apt-get install` runs for real. Which .debs: what apt in the image,
# reading this machine's package lists, says that install needs, at exactly those versions.
APT_REPO=$CACHE/apt-bookworm
APT_REPO_WANTS="python3-venv sqlite3"
apt_repo_needs() {
  # shellcheck disable=SC2086 # the list is words
  docker run --rm -v /var/lib/apt/lists:/var/lib/apt/lists:ro "$SYSTEMD_IMAGE" apt-get install -s $APT_REPO_WANTS 2>/dev/null |
    awk '/^Inst /{gsub(/[()]/, "", $3); print $2 "=" $3}' | sort
}
apt_repo_list=$(apt_repo_needs || true)
if [[ -z $apt_repo_list ]]; then
  apt-get "${APT_OPTS[@]}" update -qq >/dev/null || die "apt-get update failed"
  apt_repo_list=$(apt_repo_needs || true)
fi
[[ -n $apt_repo_list ]] || die "apt in $SYSTEMD_IMAGE found nothing to install for $APT_REPO_WANTS"
if [[ -s $APT_REPO/Packages && $(cat "$APT_REPO/.skiff-packages" 2>/dev/null) == "$apt_repo_list" ]]; then
  say "local apt repository" "ok"
else
  rm -rf "$APT_REPO.partial" && mkdir -p "$APT_REPO.partial"
  # shellcheck disable=SC2086 # the list is words
  (cd "$APT_REPO.partial" && apt-get download -qq $apt_repo_list >/tmp/skiff-apt-download.log 2>&1) ||
    { tail -n 20 /tmp/skiff-apt-download.log >&2; die "downloading the local apt repository's packages failed"; }
  (cd "$APT_REPO.partial" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null) || die "dpkg-scanpackages failed (dpkg-dev)"
  printf '%s\n' "$apt_repo_list" >"$APT_REPO.partial/.skiff-packages"
  rm -rf "$APT_REPO" && mv "$APT_REPO.partial" "$APT_REPO"
  say "local apt repository" "provisioned ($(grep -c '^Package:' "$APT_REPO/Packages") packages)"
fi

have_image "$BUSYBOX_IMAGE" && have_image "$DEBIAN_IMAGE" && have_image "$SYSTEMD_IMAGE" && have_image "$MARIADB_IMAGE" && have_image "$POSTGRES17_IMAGE" && have_image "$MARIADB11_IMAGE" || die "base images missing after import"

# --- today's server: Debian sid's Docker 28.5 / Compose 2.40 / buildx 0.29 / containerd 2.1 ----
# A rootfs kept unpacked (never installed on this machine): @skiff/testbed's startModernHost
# boots it in namespaces of its own over an overlay, so a start takes a second. The package list
# is stored beside it; a different list provisions it again.
MODERN_ROOT=$CACHE/modern-root
MODERN_PACKAGES=docker.io,docker-cli,docker-compose,docker-buildx,containerd,runc,tini,iptables,openssh-server,openssh-sftp-server,iproute2,nftables,ca-certificates,curl,procps,gzip,util-linux
if [[ -x $MODERN_ROOT/usr/sbin/dockerd && -x $MODERN_ROOT/usr/bin/tini && $(cat "$MODERN_ROOT/.skiff-packages" 2>/dev/null) == "$MODERN_PACKAGES" ]]; then
  say "modern server rootfs" "ok"
else
  rm -rf "$MODERN_ROOT.partial"
  debootstrap --variant=minbase --include="$MODERN_PACKAGES" sid "$MODERN_ROOT.partial" "$MIRROR" >/tmp/skiff-debootstrap-modern.log 2>&1 ||
    { tail -n 30 /tmp/skiff-debootstrap-modern.log >&2; die "debootstrap of the modern server failed (log: /tmp/skiff-debootstrap-modern.log)"; }
  rm -rf "$MODERN_ROOT.partial"/var/cache/apt/archives/*.deb
  printf '%s\n' "$MODERN_PACKAGES" >"$MODERN_ROOT.partial/.skiff-packages"
  rm -rf "$MODERN_ROOT" && mv "$MODERN_ROOT.partial" "$MODERN_ROOT"
  say "modern server rootfs" "provisioned ($(chroot "$MODERN_ROOT" dockerd --version))"
fi
# --- fresh servers: Debian 13 and Ubuntu 24.04 with systemd and sshd, no Docker (prepare's hosts) --
# What a new VPS looks like before anyone touched it: systemd as PID 1, sshd, sudo, apt — and no
# Docker. @skiff/testbed's startFreshHost boots a copy of one in namespaces of its own (like the
# modern server, but with systemd as init). Its apt reads a local repository of the
# distribution's .debs (what prepare installs, with everything they need that the rootfs lacks),
# so prepare's `apt-get install` runs for real with no traffic beyond this machine.
FRESH_BASE_PACKAGES=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,ca-certificates,curl,less
# Ubuntu's archive key, from the ubuntu-keyring package (Debian 12 has none), pinned by hash.
UBUNTU_KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb
UBUNTU_KEYRING_SHA256=36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8
UBUNTU_MIRROR=http://archive.ubuntu.com/ubuntu
fresh_server() {
  local label=$1 root=$2 apt=$3 suite=$4 mirror=$5 sources=$6 wants=$7 script=$8
  shift 8 # the rest: debootstrap's own options
  local stamp="$FRESH_BASE_PACKAGES / $wants"
  if [[ -x $root/usr/sbin/sshd && -s $apt/Packages && $(cat "$root/.skiff-packages" 2>/dev/null) == "$stamp" ]]; then
    say "$label rootfs" "ok"
    return
  fi
  rm -rf "$root.partial" "$apt.partial" && mkdir -p "$apt.partial"
  debootstrap --variant=minbase --include="$FRESH_BASE_PACKAGES" "$@" "$suite" "$root.partial" "$mirror" ${script:+"$script"} >/tmp/skiff-debootstrap-fresh.log 2>&1 ||
    { tail -n 30 /tmp/skiff-debootstrap-fresh.log >&2; die "debootstrap of the $label failed (log: /tmp/skiff-debootstrap-fresh.log)"; }
  printf '%s\n' "$sources" >"$root.partial/etc/apt/sources.list"
  # shellcheck disable=SC2086 # the list is words
  chroot "$root.partial" sh -c "apt-get update -qq && apt-get install -qq -d -y --no-install-recommends $wants" >/tmp/skiff-apt-fresh.log 2>&1 ||
    { tail -n 20 /tmp/skiff-apt-fresh.log >&2; die "downloading the $label's packages failed"; }
  mv "$root.partial"/var/cache/apt/archives/*.deb "$apt.partial/"
  (cd "$apt.partial" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null) || die "dpkg-scanpackages failed (dpkg-dev)"
  # A new server's apt has no lists yet, and each server makes its own host keys; the kernel is
  # this machine's, so there are no modules to load.
  rm -rf "$root.partial"/var/lib/apt/lists/* "$root.partial"/etc/ssh/ssh_host_*
  rm -f "$root.partial"/etc/apt/sources.list.d/*
  echo 'deb [trusted=yes] file:/srv/skiff-apt ./' >"$root.partial/etc/apt/sources.list"
  mkdir -p "$root.partial/srv/skiff-apt"
  ln -sf /dev/null "$root.partial/etc/systemd/system/systemd-modules-load.service"
  chmod 0755 "$root.partial"
  printf '%s\n' "$stamp" >"$root.partial/.skiff-packages"
  rm -rf "$root" "$apt" && mv "$apt.partial" "$apt" && mv "$root.partial" "$root"
  say "$label rootfs" "provisioned ($(grep -c '^Package:' "$apt/Packages") packages in its apt repository)"
}
# Debian 12 as its cloud images have it: docker.io 20.10 and Compose v1 only, so Docker comes from
# Docker's apt repository (the stand-in below, built from this server's own packages).
fresh_server "fresh Debian 12 server" "$CACHE/fresh-bookworm-root" "$CACHE/apt-fresh-bookworm" bookworm "$MIRROR" \
  "deb $MIRROR bookworm main" "docker.io containerd runc tini iptables gpg unattended-upgrades" ""
fresh_server "fresh Debian 13 server" "$CACHE/fresh-trixie-root" "$CACHE/apt-trixie" trixie "$MIRROR" \
  "deb $MIRROR trixie main" "docker.io docker-cli docker-compose docker-buildx unattended-upgrades" ""
ubuntu_keyring=$CACHE/ubuntu-archive-keyring.gpg
if [[ ! -s $ubuntu_keyring ]]; then
  work=$(mktemp -d)
  curl -fsS -o "$work/keyring.deb" "$UBUNTU_MIRROR/$UBUNTU_KEYRING_DEB" || die "downloading ubuntu-keyring failed"
  echo "$UBUNTU_KEYRING_SHA256  $work/keyring.deb" | sha256sum -c --quiet - || die "ubuntu-keyring's .deb does not have the pinned SHA-256"
  dpkg-deb -x "$work/keyring.deb" "$work/x" && cp "$work/x/usr/share/keyrings/ubuntu-archive-keyring.gpg" "$ubuntu_keyring"
  rm -rf "$work"
fi
# Ubuntu 22.04 and 24.04 as their cloud images have them: docker.io and docker-compose-v2 from
# universe, updates on; 24.04's repository also has gpg, which prepare installs to check the key
# of Docker's apt repository (the stand-in below).
fresh_server "fresh Ubuntu 22.04 server" "$CACHE/fresh-jammy-root" "$CACHE/apt-jammy" jammy "$UBUNTU_MIRROR" \
  "deb $UBUNTU_MIRROR jammy main universe
deb $UBUNTU_MIRROR jammy-updates main universe
deb $UBUNTU_MIRROR jammy-security main universe" \
  "docker.io docker-compose-v2 docker-buildx unattended-upgrades" "" \
  --keyring="$ubuntu_keyring" --components=main,universe
fresh_server "fresh Ubuntu 24.04 server" "$CACHE/fresh-noble-root" "$CACHE/apt-noble" noble "$UBUNTU_MIRROR" \
  "deb $UBUNTU_MIRROR noble main universe
deb $UBUNTU_MIRROR noble-updates main universe
deb $UBUNTU_MIRROR noble-security main universe" \
  "docker.io docker-compose-v2 docker-buildx unattended-upgrades gpg" /usr/share/debootstrap/scripts/gutsy \
  --keyring="$ubuntu_keyring" --components=main,universe
# --- a stand-in for Docker's apt repository (download.docker.com is out of reach here) ------------
# Docker's layout (linux/<debian|ubuntu>/{gpg,dists/<codename>/{InRelease,Release,Release.gpg},
# dists/<codename>/stable/binary-amd64/Packages,pool/stable/…}), signed with a key of its own, and
# its five package names holding working binaries from the fresh server's own distribution:
# docker-ce and docker-ce-cli from its docker.io, containerd.io from its containerd and runc, and
# docker-compose-plugin and docker-buildx-plugin from Compose v2 and buildx (trixie's for Debian 12,
# which has none). Maintainer scripts as Docker's own do: the docker group, the units enabled and
# started. A test serves it over HTTP to the fresh server.
STANDIN=$CACHE/docker-repository-standin
# Each suite: ID CODENAME APT-FOLDER COMPOSE-DEB BUILDX-DEB LABEL (the label names where the binaries come from).
STANDIN_SUITES=(
  "debian bookworm $CACHE/apt-fresh-bookworm $(echo "$CACHE"/docker-compose_*.deb) $(echo "$CACHE"/docker-buildx_*.deb) Debian-12"
  "ubuntu noble $CACHE/apt-noble $(echo "$CACHE"/apt-noble/docker-compose-v2_*.deb) $(echo "$CACHE"/apt-noble/docker-buildx_*.deb) Ubuntu-24.04"
)
STANDIN_STAMP="$(printf '%s\n' "${STANDIN_SUITES[@]}" | cat - "$CACHE/apt-fresh-bookworm/Packages" "$CACHE/apt-noble/Packages" 2>/dev/null | sha256sum | cut -c1-16)"
if [[ -s $STANDIN/fingerprint && -s $STANDIN/linux/debian/dists/bookworm/InRelease && -s $STANDIN/linux/ubuntu/dists/noble/InRelease &&
  $(cat "$STANDIN/.stamp" 2>/dev/null) == "$STANDIN_STAMP" ]]; then
  say "Docker repository stand-in" "ok"
else
  work=$(mktemp -d /var/tmp/skiff-standin.XXXXXX)
  rm -rf "$STANDIN.partial"
  upstream() { dpkg-deb -f "$1" Version | sed -E 's/^[0-9]+://; s/[~+-].*//'; }
  # Depends of a .deb without the packages the stand-ins replace.
  depends_of() { dpkg-deb -f "$1" Depends | tr ',' '\n' | sed -E 's/^ +//' | grep -vE '^(containerd|runc|docker)' | paste -sd, - | sed 's/,/, /g'; }
  # gzip -1: the engine and plugins are ~100 MB, and xz takes minutes for a repository only this machine reads.
  standin() { # POOL NAME VERSION TREE DEPENDS RELATIONS DESCRIPTION POSTINST
    local pool=$1 name=$2 version=$3 tree=$4
    mkdir -p "$tree/DEBIAN"
    {
      printf 'Package: %s\nVersion: %s\nArchitecture: amd64\nMaintainer: Skiff test bed <testbed@skiff.invalid>\n' "$name" "$version"
      [[ -n $5 ]] && printf 'Depends: %s\n' "$5"
      [[ -n $6 ]] && printf '%s\n' "$6"
      printf 'Description: %s\n' "$7"
    } >"$tree/DEBIAN/control"
    if [[ -n $8 ]]; then printf '#!/bin/sh\nset -e\n%s\n' "$8" >"$tree/DEBIAN/postinst" && chmod 755 "$tree/DEBIAN/postinst"; fi
    dpkg-deb --build --root-owner-group -Zgzip -z1 "$tree" "$pool/${name}_${version}_amd64.deb" >/dev/null || die "building the stand-in $name failed"
  }
  standin_suite() { # ID CODENAME APT-FOLDER COMPOSE-DEB BUILDX-DEB LABEL
    local id=$1 codename=$2 apt=$3 label=${6//-/ } out=$STANDIN.partial/linux/$1 w=$work/$1
    local pool=$out/pool/stable lists=$out/dists/$2
    local suffix="-1~$id.${label##* }~$codename~standin" containerd runc dockerio
    mkdir -p "$pool" "$lists/stable/binary-amd64" "$w"
    deb_of() { local found=("$apt/$1"_*.deb); [[ -e ${found[0]} ]] || die "the $label server's apt repository has no $1"; echo "${found[0]}"; }
    containerd=$(deb_of containerd) runc=$(deb_of runc) dockerio=$(deb_of docker.io)
    dpkg-deb -x "$containerd" "$w/containerd.io" && dpkg-deb -x "$runc" "$w/containerd.io"
    rm -rf "$w/containerd.io/usr/share/doc"
    standin "$pool" containerd.io "$(upstream "$containerd")$suffix" "$w/containerd.io" \
      "$(depends_of "$containerd"), $(depends_of "$runc")" $'Provides: containerd, runc\nConflicts: containerd, runc\nReplaces: containerd, runc' \
      "stand-in for Docker's containerd.io: $label's containerd and runc" \
      'if [ "$1" = configure ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; systemctl enable containerd.service >/dev/null 2>&1 || true; systemctl start containerd.service || true; fi'
    dpkg-deb -x "$dockerio" "$w/docker-ce"
    rm -rf "$w/docker-ce/usr/share/doc"
    mkdir -p "$w/docker-ce-cli/usr/bin" && mv "$w/docker-ce/usr/bin/docker" "$w/docker-ce-cli/usr/bin/docker"
    standin "$pool" docker-ce-cli "5:$(upstream "$dockerio")$suffix" "$w/docker-ce-cli" "" $'Conflicts: docker.io, docker-cli' \
      "stand-in for Docker's docker-ce-cli: the docker command of $label's docker.io" ""
    standin "$pool" docker-ce "5:$(upstream "$dockerio")$suffix" "$w/docker-ce" \
      "containerd.io (>= 1.6), docker-ce-cli, $(depends_of "$dockerio")" $'Conflicts: docker.io, docker-engine' \
      "stand-in for Docker's docker-ce: the engine of $label's docker.io" \
      'if [ "$1" = configure ]; then
  getent group docker >/dev/null || groupadd --system docker
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; systemctl enable docker.service docker.socket >/dev/null 2>&1 || true; systemctl start docker.socket docker.service || true; fi
fi'
    local plugin deb
    for plugin in compose buildx; do
      if [[ $plugin == compose ]]; then deb=$4; else deb=$5; fi
      [[ -e $deb ]] || die "no $plugin .deb for the $label stand-in ($deb)"
      dpkg-deb -x "$deb" "$w/$plugin"
      mkdir -p "$w/docker-$plugin-plugin/usr/libexec/docker/cli-plugins"
      mv "$w/$plugin/usr/libexec/docker/cli-plugins/docker-$plugin" "$w/docker-$plugin-plugin/usr/libexec/docker/cli-plugins/"
      standin "$pool" "docker-$plugin-plugin" "$(upstream "$deb")$suffix" "$w/docker-$plugin-plugin" "" "" \
        "stand-in for Docker's docker-$plugin-plugin: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)" ""
    done
    (cd "$out" && dpkg-scanpackages --multiversion pool /dev/null >"dists/$codename/stable/binary-amd64/Packages" 2>/dev/null) || die "dpkg-scanpackages of the $label stand-in failed"
    gzip -k9 "$lists/stable/binary-amd64/Packages"
    {
      printf 'Origin: Docker\nLabel: Docker CE\nSuite: %s\nCodename: %s\nArchitectures: amd64\nComponents: stable\nDescription: Skiff test bed stand-in for Docker'"'"'s apt repository\nDate: %s\nSHA256:\n' \
        "$codename" "$codename" "$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
      for f in stable/binary-amd64/Packages stable/binary-amd64/Packages.gz; do
        printf ' %s %s %s\n' "$(sha256sum <"$lists/$f" | cut -d' ' -f1)" "$(stat -c %s "$lists/$f")" "$f"
      done
    } >"$lists/Release"
  }
  for suite in "${STANDIN_SUITES[@]}"; do
    # shellcheck disable=SC2086 # the suite is words
    standin_suite $suite
  done
  export GNUPGHOME=$work/gnupg
  mkdir -m 700 "$GNUPGHOME"
  gpg --batch -q --passphrase '' --quick-gen-key "Skiff test bed stand-in for Docker's apt repository <testbed@skiff.invalid>" ed25519 sign never 2>/dev/null ||
    die "generating the stand-in's signing key failed"
  for suite in "${STANDIN_SUITES[@]}"; do
    read -r id codename _ <<<"$suite"
    gpg --batch -q --armor --export >"$STANDIN.partial/linux/$id/gpg"
    gpg --batch -q --clearsign -o "$STANDIN.partial/linux/$id/dists/$codename/InRelease" "$STANDIN.partial/linux/$id/dists/$codename/Release"
    gpg --batch -q -abs -o "$STANDIN.partial/linux/$id/dists/$codename/Release.gpg" "$STANDIN.partial/linux/$id/dists/$codename/Release"
  done
  gpg --batch --with-colons --list-keys 2>/dev/null | awk -F: '$1 == "fpr" { print $10; exit }' >"$STANDIN.partial/fingerprint"
  unset GNUPGHOME
  printf '%s\n' "$STANDIN_STAMP" >"$STANDIN.partial/.stamp"
  rm -rf "$work" "$STANDIN" && mv "$STANDIN.partial" "$STANDIN"
  say "Docker repository stand-in" "built (Debian 12 and Ubuntu 24.04: $(ls "$STANDIN/linux/debian/pool/stable" | sed 's/_.*//' | paste -sd' ' -); key $(cat "$STANDIN/fingerprint"))"
fi
# --- real arm64 builds: qemu-aarch64 (static, from sid's qemu-user) and an arm64 busybox ---------
# Only unpacked, never installed: @skiff/testbed registers qemu in binfmt_misc for a test's run and
# removes it again; the arm64 busybox is the base of a two-platform test image.
QEMU_AARCH64=$CACHE/qemu-aarch64
BUSYBOX_ARM64=$CACHE/busybox-arm64
if [[ -x $QEMU_AARCH64 && -x $BUSYBOX_ARM64 ]]; then
  say "qemu-aarch64, arm64 busybox" "ok"
else
  work=$(mktemp -d /var/tmp/skiff-arm64.XXXXXX)
  chroot "$MODERN_ROOT" sh -c 'cd /var/cache/apt/archives && apt-get -qq download qemu-user' >/dev/null 2>&1 || die "downloading sid's qemu-user failed"
  mv "$MODERN_ROOT"/var/cache/apt/archives/qemu-user_*.deb "$work/"
  dpkg-deb -x "$work"/qemu-user_*.deb "$work/qemu"
  curl -fsS -o "$work/Packages.xz" "$MIRROR/dists/bookworm/main/binary-arm64/Packages.xz" || die "downloading the arm64 package list failed"
  busybox_deb=$(xz -dc "$work/Packages.xz" | awk '/^Package: busybox-static$/{f=1} f && /^Filename:/ && !done {print $2; done=1}')  # reads to the end: xz must not die of SIGPIPE under pipefail
  curl -fsS -o "$work/busybox.deb" "$MIRROR/$busybox_deb" || die "downloading $busybox_deb failed"
  dpkg-deb -x "$work/busybox.deb" "$work/busybox"
  install -m 755 "$work/qemu/usr/bin/qemu-aarch64" "$QEMU_AARCH64"
  install -m 755 "$work/busybox/bin/busybox" "$BUSYBOX_ARM64"
  rm -rf "$work"
  say "qemu-aarch64, arm64 busybox" "provisioned"
fi
# --- python:3.11-slim for two platforms, from Debian's .debs ------------------------------------
# A two-platform base for an image built for linux/amd64 and linux/arm64 (the arm64 RUN under
# qemu). apt, told the architecture, with its own lists and an empty dpkg status, resolves and
# downloads python3.11 and dash with everything they need; the .debs are unpacked into a root
# (no maintainer scripts: nothing there needs them) and made an image of that platform.
python_image() {
  local arch=$1
  local image=skiff-testbed/python:3.11-$arch tarball=$CACHE/python-$arch-rootfs.tar
  if have_image "$image"; then
    say "$image" "ok"
    return
  fi
  if [[ ! -s $tarball ]]; then
    local work
    work=$(mktemp -d /var/tmp/skiff-python.XXXXXX)
    mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/root"
    : >"$work/status"
    echo "deb $MIRROR bookworm main" >"$work/sources.list"
    local O=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$work/lists"
      -o "Dir::State::status=$work/status" -o "Dir::Cache::archives=$work/archives" -o "APT::Architecture=$arch"
      -o "APT::Architectures::=$arch" -o Debug::NoLocking=1 -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
    { apt-get "${APT_OPTS[@]}" "${O[@]}" update -qq &&
      apt-get "${APT_OPTS[@]}" "${O[@]}" install -y -qq --download-only --no-install-recommends python3.11 dash; } >/tmp/skiff-python-$arch.log 2>&1 ||
      { tail -n 20 "/tmp/skiff-python-$arch.log" >&2; rm -rf "$work"; die "downloading python3.11 for $arch failed"; }
    for deb in "$work"/archives/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
    mkdir -p "$work/root/usr/local/bin" "$work/root/tmp" && chmod 1777 "$work/root/tmp"
    for name in python python3; do ln -sf /usr/bin/python3.11 "$work/root/usr/local/bin/$name"; done
    tar -C "$work/root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$work"
  fi
  # The legacy builder records the platform asked for; this engine's `docker import --platform` does not.
  local context
  context=$(mktemp -d /var/tmp/skiff-python-image.XXXXXX)
  ln "$tarball" "$context/root.tar" 2>/dev/null || cp "$tarball" "$context/root.tar"
  printf '%s\n' 'FROM scratch' 'ADD root.tar /' 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' 'CMD ["python3"]' >"$context/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --platform "linux/$arch" -t "$image" "$context" >/dev/null || { rm -rf "$context"; die "building $image failed"; }
  rm -rf "$context"
  say "$image" "imported"
}
python_image amd64
python_image arm64

say "test bed" "ready"
