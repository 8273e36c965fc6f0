# Shared by the scripts in this folder, which source it. Sourcing it only defines variables and
# functions: it changes no shell option, directory or trap of whoever sources it.
#
# What the scripts install, and only what each one uses (see the README's "Setup"):
# - Debian/Ubuntu packages, through apt-get: python3-venv, build-essential, openssl, and the
#   servers the tests start throwaway instances of (postgresql, mariadb-server, activemq,
#   rabbitmq-server, pgbouncer). A server package installed here is installed with its system service kept
#   from starting, and that service is disabled: nothing is left running. A server the machine
#   already had is never touched. For `sam local` (scripts/sam-local and its test), docker.io
#   (its dockerd is started only while they run, see start_docker_engine) and debootstrap (the
#   Lambda base image's root filesystem, see ensure_lambda_base_image).
# - The pinned Python tools (tools/requirements.txt) into .venv in the repository, and for the
#   tests checkov (tools/checkov-requirements.txt) into .venv-checkov.

OPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "installing needs root: run as root, or install sudo"
  fi
}

# The Debian packages a need stands for, printed when missing. Needs: base, postgres, mariadb,
# activemq, rabbitmq, pgbouncer, docker (the engine and the base image's debootstrap).
missing_packages() {
  local need
  for need in "$@"; do
    case "$need" in
      base)
        python3 -c 'import venv, ensurepip' 2>/dev/null || echo python3-venv
        command -v cc >/dev/null || echo build-essential
        command -v openssl >/dev/null || echo openssl ;;
      postgres) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo postgresql ;;
      mariadb) command -v mariadb-install-db >/dev/null || echo mariadb-server mariadb-client ;;
      activemq) [ -f /usr/share/activemq/bin/activemq.jar ] || echo activemq ;;
      rabbitmq) [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || echo rabbitmq-server ;;
      pgbouncer) [ -x /usr/sbin/pgbouncer ] || echo pgbouncer ;;
      docker)
        command -v dockerd >/dev/null || echo docker.io
        command -v debootstrap >/dev/null || echo debootstrap ;;
      *) die "unknown need: $need" ;;
    esac
  done
}

# The system services a package we installed would start at boot.
services_of() {
  case "$1" in
    postgresql) echo postgresql ;;
    mariadb-server) echo mariadb ;;
    activemq) echo activemq ;;
    rabbitmq-server) echo rabbitmq-server epmd ;;
    pgbouncer) echo pgbouncer ;;
    docker.io) echo docker.socket docker containerd ;;
  esac
}

# Installs packages with their daemons kept from starting (Debian's policy-rc.d, unless the
# machine has one of its own), then disables their services. Runs in a subshell, so its trap
# stays its own.
install_packages() (
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# ops-suite setup: no daemon starts while it installs packages.\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    ours=1
    trap 'as_root rm -f "$policy"' EXIT
  fi
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  local package service
  for package in "$@"; do
    for service in $(services_of "$package"); do
      if [ -d /run/systemd/system ]; then
        as_root systemctl disable --now "$service" >/dev/null 2>&1 || true
      else
        [ -n "$ours" ] || as_root service "$service" stop >/dev/null 2>&1 || true
        as_root update-rc.d "$service" disable >/dev/null 2>&1 || true
      fi
    done
  done
  # An epmd that the install started anyway (only when no Erlang node uses it).
  case " $* " in *" rabbitmq-server "*) epmd -kill >/dev/null 2>&1 || true ;; esac
)

# Installs the Debian packages of the given needs that are missing, and checks for cargo.
ensure_system_packages() {
  local missing
  missing="$(missing_packages base "$@" | tr '\n' ' ')"
  if [ -n "${missing// /}" ]; then
    command -v apt-get >/dev/null || die "this setup installs with apt-get, for Debian and Ubuntu. Elsewhere, install the equivalents of these Debian packages yourself, then run this again: $missing"
    say "installing Debian packages: $missing(their services are kept stopped and disabled)"
    # shellcheck disable=SC2086
    install_packages $missing
  fi
  command -v cargo >/dev/null || die "cargo is not installed: install Rust with rustup (https://rustup.rs), then run this again"
}

# rustfmt and clippy, which the test command runs before the tests (rustup's default profile has
# both).
ensure_rust_lints() {
  cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1 ||
    die "the test command checks formatting and lints: install them with 'rustup component add rustfmt clippy', then run this again"
}

# A virtualenv in the repository with a pinned requirements file installed; reinstalled only
# when the pins change.
pinned_venv() {
  local venv="$OPS_ROOT/$1" requirements="$OPS_ROOT/tools/$2" want
  local stamp="$venv/.requirements.sha256"
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing Python tools into $1 (tools/$2)"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -r "$requirements"
    echo "$want" > "$stamp"
  fi
}

# The Python tools (moto, cargo-lambda, zig, cfn-lint, the SAM CLI), pinned in
# tools/requirements.txt, in the repository's .venv.
ensure_venv() {
  pinned_venv .venv requirements.txt
}

# checkov, in a virtualenv of its own (.venv-checkov): its pins conflict with the SAM CLI's.
ensure_checkov_venv() {
  pinned_venv .venv-checkov checkov-requirements.txt
}

# The environment the scripts run the tools in.
tools_env() {
  export PATH="$OPS_ROOT/.venv/bin:$PATH"
  export SAM_CLI_TELEMETRY=0
}

# One build for tests and demo alike: building every target together keeps one feature set,
# so the AWS SDK is compiled once, not once per way of building.
build_workspace() {
  say "building the workspace"
  (cd "$OPS_ROOT" && cargo build --workspace --all-targets --locked)
}

# --- Docker, for `sam local` -------------------------------------------------------------------

# Where sam-local keeps what it makes between runs (the engine's log, the base image's build).
sam_local_dir() {
  local dir="${CARGO_TARGET_DIR:-$OPS_ROOT/target}/sam-local"
  mkdir -p "$dir" && echo "$dir"
}

# Starts Debian's dockerd when no engine answers, and prints its process id (nothing when one
# already ran: that one is not ours to stop). --iptables=false: this machine's kernel has no
# usable iptables; the default bridge stays, as SAM publishes its emulator's port on it.
# The running Docker engine's address on its default bridge (empty when it has none yet).
bridge_gateway() {
  local gateway bridge
  gateway="$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || true)"
  # A dockerd that has just made the default bridge (a machine's first start) may list its
  # subnet without a gateway: the bridge's own address is the gateway then.
  if [ -z "$gateway" ] && command -v ip >/dev/null; then
    bridge="$(docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null || true)"
    gateway="$(ip -4 -o addr show "${bridge:-docker0}" 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)"
  fi
  echo "$gateway"
}

start_docker_engine() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd is missing: install Debian's docker.io (scripts/test and scripts/sam-local do)" >&2; return 1; }
  local log pid waited=0
  log="$(sam_local_dir)/dockerd.log"
  # setsid: its own session, so it outlives this shell and a terminal's ^C reaches it only
  # through stop_docker_engine.
  setsid dockerd --iptables=false </dev/null >"$log" 2>&1 &
  pid=$!
  # Up once it answers and its default bridge has an address: a dockerd just started answers
  # `docker info` before it has set that network up (seen on a machine's first start), and the
  # callers put the stand-ins on the bridge's gateway.
  until docker info >/dev/null 2>&1 && [ -n "$(bridge_gateway)" ]; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$waited" -ge 60 ]; then
      kill "$pid" 2>/dev/null
      echo "dockerd did not start, or has no default bridge (log: $log):" >&2
      tail -n 5 "$log" >&2
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  echo "$pid"
}

# Stops a dockerd that start_docker_engine started (given its process id), and waits until it
# has gone, so that its socket, bridge and data directory are free for the next one.
stop_docker_engine() {
  local pid="$1" waited=0
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 60 ]; do
    sleep 0.5
    waited=$((waited + 1))
  done
  kill -9 "$pid" 2>/dev/null || true
}

# The image SAM builds its provided.al2023 x86_64 image FROM. No registry is reached from here,
# so it is made locally under that name: a Debian root filesystem of this machine's release
# (debootstrap, from the mirror apt uses), with Lambda's variables. A stand-in, not Amazon Linux
# 2023: SAM needs only /bin/sh, mv and chmod in it; the functions need a glibc. Built once, then
# reused (sam local runs with --skip-pull-image).
LAMBDA_BASE_IMAGE=public.ecr.aws/lambda/provided:al2023-x86_64

ensure_lambda_base_image() (
  docker image inspect "$LAMBDA_BASE_IMAGE" >/dev/null 2>&1 && exit 0
  command -v debootstrap >/dev/null || die "debootstrap is missing (it makes the local Lambda base image): install Debian's debootstrap (scripts/test and scripts/sam-local do)"
  set -e
  local suite mirror work
  suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  mirror="$(apt_mirror)"
  work="$(sam_local_dir)/base-image"
  rm -rf "$work" && mkdir -p "$work"
  trap 'rm -rf "$work"' EXIT
  say "building the local Lambda base image $LAMBDA_BASE_IMAGE (Debian $suite, minbase, once)"
  debootstrap --variant=minbase "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  rm -rf "$work"/root/usr/share/doc/* "$work"/root/usr/share/man/* "$work"/root/var/cache/apt/archives/*.deb \
    "$work"/root/var/lib/apt/lists/*
  tar -C "$work/root" -cf "$work/rootfs.tar" .
  rm -rf "$work/root"
  # Lambda's own variables for provided.al2023 (the code is in /var/task).
  cat >"$work/Dockerfile" <<'DOCKERFILE'
FROM scratch
ADD rootfs.tar /
ENV LANG=en_US.UTF-8 TZ=:/etc/localtime \
    PATH=/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin \
    LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib \
    LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime
WORKDIR /var/task
DOCKERFILE
  docker build -q -t "$LAMBDA_BASE_IMAGE" "$work" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
)

# The Debian mirror apt is configured with (deb822 or one-line sources), for debootstrap.
apt_mirror() {
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n 1)"
  [ -n "$uri" ] || uri="$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -n 1)"
  echo "${uri:-http://deb.debian.org/debian}"
}

# The machine type of an ELF file as Lambda names it (x86_64, arm64), or what it is otherwise.
elf_architecture() {
  local magic machine
  magic="$(od -An -N4 -tx1 "$1" 2>/dev/null | tr -d ' ')"
  [ "$magic" = 7f454c46 ] || { echo "not-elf"; return; }
  machine="$(od -An -j18 -N2 -tu2 --endian=little "$1" | tr -d ' ')"
  case "$machine" in
    62) echo x86_64 ;;
    183) echo arm64 ;;
    *) echo "elf-machine-$machine" ;;
  esac
}
