# Shared by scripts/demo and scripts/test: install what the suite needs, idempotently.
# Sourced, not run. Everything it installs goes into the repository (.venv) or the system
# package manager; nothing is left running.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian/Ubuntu packages: Python's venv module and the database/broker servers the tests start
# throwaway instances of. Installed only when missing, and only where apt-get can run.
ensure_system_packages() {
  local missing=()
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  command -v timeout >/dev/null || missing+=(coreutils)
  command -v cc >/dev/null || missing+=(build-essential)
  command -v openssl >/dev/null || missing+=(openssl)
  # Throwaway database servers for secret-rotation's tests (only the binaries are used).
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v mariadb-install-db >/dev/null || missing+=(mariadb-server mariadb-client)
  # ActiveMQ 5.x for mq-poller's tests (started per test with a config of the test's own).
  [ -f /usr/share/activemq/bin/activemq.jar ] || missing+=(activemq)
  if [ "${#missing[@]}" -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing system packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null; then
    echo "cargo is not installed: install Rust with rustup (https://rustup.rs) and run this again." >&2
    exit 1
  fi
}

# The Python tools (moto, cargo-lambda, zig, cfn-lint, SAM CLI), pinned in tools/requirements.txt,
# in the project-local virtualenv; reinstalled only when the pins change.
ensure_venv() {
  local stamp=".venv/.requirements.sha256" want
  want="$(sha256sum tools/requirements.txt | cut -d' ' -f1)"
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing the Python tools into .venv (tools/requirements.txt)"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r tools/requirements.txt
    echo "$want" > "$stamp"
  fi
  export PATH="$ROOT/.venv/bin:$PATH"
  export SAM_CLI_TELEMETRY=0
}

# One build for tests and demo alike: building every target together keeps one feature set,
# so the AWS SDK is compiled once, not once per way of building.
build_workspace() {
  say "building the workspace"
  cargo build --workspace --all-targets --locked
}

# RabbitMQ for mq-poller's AMQP tests: the one on 127.0.0.1:5672 when it answers (guest/guest);
# otherwise a node of our own, installed if need be, started now and stopped on exit.
ensure_rabbitmq() {
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    return
  fi
  if ! command -v rabbitmq-server >/dev/null; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing rabbitmq-server"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rabbitmq-server >/dev/null
    (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && return
  fi
  say "starting a RabbitMQ node for the tests"
  local base="$ROOT/.local/rabbitmq"
  mkdir -p "$base"
  export RABBITMQ_NODENAME=ops-suite-test@localhost RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25699 \
    RABBITMQ_MNESIA_BASE="$base/mnesia" RABBITMQ_LOG_BASE="$base/log" RABBITMQ_PID_FILE="$base/pid"
  rabbitmq-server -detached
  trap 'rabbitmqctl -n ops-suite-test@localhost stop >/dev/null 2>&1 || true' EXIT
  for _ in $(seq 1 120); do
    (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && return
    sleep 1
  done
  echo "RabbitMQ did not start; see $base/log" >&2
  exit 1
}

setup() {
  ensure_system_packages
  ensure_venv
  ensure_rabbitmq
}
