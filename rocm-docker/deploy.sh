#!/usr/bin/env bash
# One-command deploy of tsr on an AMD GPU host: sd-server containers (one per model family) behind
# `tsr serve`, which runs as a hardened systemd service with a token. Safe to run again: every
# step checks what is there first, so a second run changes nothing that is already right.
set -euo pipefail
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/.." && pwd)"

# Where the install goes; the environment can move any of it (tests do, and so may odd hosts).
TSR_PREFIX="${TSR_PREFIX:-/opt/tsr}"
TSR_CONFIG="${TSR_CONFIG:-/etc/tsr/config.toml}"
TSR_ENV_FILE="${TSR_ENV_FILE:-/etc/tsr/tsr.env}"
TSR_MODELS_ENV="${TSR_MODELS_ENV:-/etc/tsr/models.env}"
SYSTEMD_UNIT_DIR="${SYSTEMD_UNIT_DIR:-/etc/systemd/system}"
TSR_DEV_KFD="${TSR_DEV_KFD:-/dev/kfd}"
TSR_DEV_DRI="${TSR_DEV_DRI:-/dev/dri}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-180}"
TSR_USER="tsr"
DATA_DIR="/var/lib/tsr"
UNIT_NAME="tsr-server.service"
VENV="$TSR_PREFIX/venv"
TSR_BIN="$VENV/bin/tsr"
COMPOSE_FILE="$TSR_PREFIX/docker-compose.yml"

DRY_RUN=0
SKIP_BUILD=0
HOST="0.0.0.0"
PORT="8765"
FAMILIES=""
declare -a BUILD_ARGS=()
declare -a PLAN=() # "family<TAB>port" lines

usage() {
  cat <<EOF
Usage: sudo ./deploy.sh [options]

Deploy tsr on this AMD GPU host: build the sd-server images, start one container per family,
write tsr's [[backends]], create an API token, install and start the tsr-server systemd unit,
and wait until everything answers. Run it again after changing models.env or upgrading.

Options:
  --families LIST      families to serve, comma-separated (default: every family whose
                       <FAMILY>_MODEL is set in $TSR_MODELS_ENV)
  --host ADDR          address tsr serve listens on (default $HOST; 127.0.0.1 = ssh tunnel only)
  --port PORT          port tsr serve listens on (default $PORT)
  --ref REF            stable-diffusion.cpp commit or tag to build (passed to build-all.sh)
  --gpu-targets LIST   GPU architectures to build for, e.g. 'gfx1100' (passed to build-all.sh)
  --skip-build         use the sd-server images already built
  --dry-run            print every action, change nothing
  -h, --help           show this help

Files (environment variables move them):
  TSR_MODELS_ENV    $TSR_MODELS_ENV (what each container loads; created from the example)
  TSR_CONFIG        $TSR_CONFIG (tsr's config; [[backends]] are written into it)
  TSR_ENV_FILE      $TSR_ENV_FILE (TSR_TOKEN, mode 0600)
  TSR_PREFIX        $TSR_PREFIX (tsr's virtualenv and the compose file)
  SYSTEMD_UNIT_DIR  $SYSTEMD_UNIT_DIR
EOF
}

say() { echo "==> $*"; }
note() { echo "    $*"; }
warn() { echo "deploy.sh: warning: $*" >&2; }
die() {
  echo "deploy.sh: $*" >&2
  exit 1
}

# run COMMAND...: show it, and run it unless this is a dry run
run() {
  local line
  printf -v line '%q ' "$@"
  if ((DRY_RUN)); then
    note "would run: ${line% }"
  else
    note "+ ${line% }"
    "$@"
  fi
}

# python for the stdlib-only helper steps: the tsr install's, a system one >= 3.11, or uv's
helper_python() {
  if [[ -x $VENV/bin/python ]]; then
    "$VENV/bin/python" "$HERE/deploy_config.py" "$@"
  elif python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python3 "$HERE/deploy_config.py" "$@"
  else
    uv run --no-project --quiet --python '>=3.11' python "$HERE/deploy_config.py" "$@"
  fi
}

# the helper steps that need tsr itself (tomlkit, tsr.config): only the tsr install's python
tsr_python() {
  "$VENV/bin/python" "$HERE/deploy_config.py" "$@"
}

all_families() {
  sed -n 's/^\[families\.\([A-Za-z0-9_-]*\)\][[:space:]]*$/\1/p' "$HERE/model-defaults.toml"
}

parse_args() {
  while (($#)); do
    case "$1" in
      --families) FAMILIES="${2:?--families needs a list such as sd15,sdxl}"; shift 2 ;;
      --host) HOST="${2:?--host needs an address}"; shift 2 ;;
      --port) PORT="${2:?--port needs a number}"; shift 2 ;;
      --ref) BUILD_ARGS+=(--ref "${2:?--ref needs a commit or tag}"); shift 2 ;;
      --gpu-targets) BUILD_ARGS+=(--gpu-targets "${2:?--gpu-targets needs a list}"); shift 2 ;;
      --skip-build) SKIP_BUILD=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument $1 (see --help)" ;;
    esac
  done
  if ! [[ $PORT =~ ^[0-9]{1,5}$ ]] || ((10#$PORT < 1 || 10#$PORT > 65535)); then
    die "--port $PORT is not a port number (1-65535)"
  fi
}

check_prerequisites() {
  say "checking prerequisites"
  local -a problems=()
  if ((EUID != 0 && !DRY_RUN)); then
    problems+=("run as root (sudo ./deploy.sh): it installs a systemd unit, a system user and files under /etc and $TSR_PREFIX")
  fi
  if ! command -v docker >/dev/null 2>&1; then
    problems+=("docker is not installed: see https://docs.docker.com/engine/install/")
  elif ! docker compose version >/dev/null 2>&1; then
    problems+=("the docker compose plugin (Compose v2) is missing: install docker-compose-plugin")
  elif ! docker info >/dev/null 2>&1; then
    problems+=("cannot talk to the docker daemon: start it (systemctl start docker) and run deploy.sh as root")
  fi
  [[ -e $TSR_DEV_KFD ]] || problems+=("$TSR_DEV_KFD is missing: the amdgpu driver's compute interface is not loaded (install the AMD GPU driver, then reboot)")
  [[ -d $TSR_DEV_DRI ]] || problems+=("$TSR_DEV_DRI is missing: no GPU render devices (is the amdgpu driver loaded?)")
  local tool
  for tool in uv systemctl curl; do
    command -v "$tool" >/dev/null 2>&1 || problems+=("$tool is not installed (needed to $(tool_purpose "$tool"))")
  done
  local group
  for group in video render docker; do
    getent group "$group" >/dev/null 2>&1 || problems+=("the '$group' group does not exist on this host ($(group_purpose "$group"))")
  done
  if ((${#problems[@]})); then
    printf 'deploy.sh: %s\n' "${problems[@]}" >&2
    exit 1
  fi
  VIDEO_GID="$(getent group video | cut -d: -f3)"
  RENDER_GID="$(getent group render | cut -d: -f3)"
  local who="${SUDO_USER:-${USER:-}}"
  if [[ -n $who && $who != root ]]; then
    local groups
    groups=" $(id -nG "$who" 2>/dev/null || true) "
    for group in video render; do
      if [[ $groups != *" $group "* ]]; then
        warn "$who is not in the '$group' group: ROCm tools on the host (rocminfo) need it; the containers get it by themselves (fix: usermod -aG video,render $who)"
      fi
    done
  fi
  note "docker, compose, $TSR_DEV_KFD, $TSR_DEV_DRI, uv, systemctl, curl: ok (video gid $VIDEO_GID, render gid $RENDER_GID)"
}

tool_purpose() {
  case "$1" in
    uv) echo "install tsr; see https://docs.astral.sh/uv/" ;;
    systemctl) echo "run tsr serve as a service" ;;
    curl) echo "check that the services answer" ;;
  esac
}

group_purpose() {
  case "$1" in
    video | render) echo "ROCm devices belong to it; install the AMD GPU driver, or groupadd --system $1" ;;
    docker) echo "the tsr service joins it to switch models with docker compose" ;;
  esac
}

prepare_models_env() {
  say "model settings: $TSR_MODELS_ENV"
  if [[ ! -f $TSR_MODELS_ENV ]]; then
    run install -D -m 0644 "$HERE/models.env.example" "$TSR_MODELS_ENV"
    die "$TSR_MODELS_ENV is new: set MODELS_DIR, LORA_DIR and the <FAMILY>_MODEL of each family to serve in it, then run deploy.sh again"
  fi
  # the tsr service user runs the switch command, which reads this file (it holds no secret)
  if (((8#$(stat -c %a "$TSR_MODELS_ENV") & 8#004) == 0)); then
    run chmod a+r "$TSR_MODELS_ENV"
  fi
  local plan_output
  plan_output="$(helper_python plan --models-env "$TSR_MODELS_ENV" --families "$FAMILIES")" \
    || die "fix $TSR_MODELS_ENV (see above), then run deploy.sh again"
  mapfile -t PLAN <<<"$plan_output"
  local entry
  for entry in "${PLAN[@]}"; do
    note "family ${entry%%$'\t'*}: sd-server on 127.0.0.1:${entry##*$'\t'}"
  done
  local -a set_env=(set-env --models-env "$TSR_MODELS_ENV")
  ((DRY_RUN)) && set_env+=(--dry-run)
  local line
  while IFS= read -r line; do
    [[ -n $line ]] && note "$line"
  done < <(helper_python "${set_env[@]}" "VIDEO_GID=$VIDEO_GID" "RENDER_GID=$RENDER_GID")
  # on a host deployed before, find config problems now rather than after a long build
  if [[ -x $VENV/bin/python ]]; then
    tsr_python write-config --dry-run --config "$TSR_CONFIG" --compose "$COMPOSE_FILE" \
      --models-env "$TSR_MODELS_ENV" --families "$(planned_families | paste -sd, -)" >/dev/null \
      || die "fix $TSR_CONFIG (see above), then run deploy.sh again"
  fi
}

planned_families() {
  local entry
  for entry in "${PLAN[@]}"; do
    echo "${entry%%$'\t'*}"
  done
}

build_images() {
  local -a families
  mapfile -t families < <(planned_families)
  if ((SKIP_BUILD)); then
    say "skipping the image build (--skip-build)"
    return
  fi
  say "building sd-server images: ${families[*]}"
  if ((DRY_RUN)); then
    local line
    while IFS= read -r line; do
      note "would run: $line"
    done < <("$HERE/build-all.sh" --dry-run "${BUILD_ARGS[@]}" "${families[@]}")
  else
    "$HERE/build-all.sh" "${BUILD_ARGS[@]}" "${families[@]}"
  fi
}

install_tsr() {
  say "installing tsr into $VENV"
  if id -u "$TSR_USER" >/dev/null 2>&1; then
    note "system user $TSR_USER exists"
  else
    run useradd --system --home-dir "$DATA_DIR" --no-create-home --shell /usr/sbin/nologin "$TSR_USER"
  fi
  # uv's own Python (when the system's is older than 3.11) goes under the prefix, where the
  # service user can read it, not under root's home
  if [[ ! -x $VENV/bin/python ]]; then
    run env UV_PYTHON_INSTALL_DIR="$TSR_PREFIX/python" uv venv --quiet --python '>=3.11' "$VENV"
  fi
  # the versions uv.lock pins (the ones tsr is tested with), then tsr itself from this checkout
  run uv export --project "$REPO_ROOT" --frozen --no-dev --no-emit-project --no-hashes \
    --quiet --output-file "$TSR_PREFIX/requirements.lock"
  run env UV_PYTHON_INSTALL_DIR="$TSR_PREFIX/python" uv pip install --quiet \
    --python "$VENV/bin/python" --constraints "$TSR_PREFIX/requirements.lock" \
    --reinstall-package tsr "$REPO_ROOT"
  if cmp -s "$HERE/docker-compose.yml" "$COMPOSE_FILE"; then
    note "$COMPOSE_FILE unchanged"
  else
    run install -D -m 0644 "$HERE/docker-compose.yml" "$COMPOSE_FILE"
  fi
}

start_containers() {
  local -a wanted others=() compose=(docker compose -f "$COMPOSE_FILE" --env-file "$TSR_MODELS_ENV")
  mapfile -t wanted < <(planned_families)
  local family
  while IFS= read -r family; do
    printf '%s\n' "${wanted[@]}" | grep -qxF -- "$family" || others+=("$family")
  done < <(all_families)
  say "starting sd-server containers: ${wanted[*]}"
  # MODEL in this shell would override every service's model: only tsr's switch sets it
  run env -u MODEL "${compose[@]}" up -d "${wanted[@]}"
  if ((${#others[@]})); then
    run env -u MODEL "${compose[@]}" rm --stop --force "${others[@]}"
  fi
}

write_tsr_config() {
  say "tsr config: $TSR_CONFIG"
  local -a args=(write-config --config "$TSR_CONFIG" --compose "$COMPOSE_FILE"
    --models-env "$TSR_MODELS_ENV" --families "$(planned_families | paste -sd, -)")
  if [[ ! -x $VENV/bin/python ]]; then
    # dry run before the first install: say what the backends will be
    local entry
    for entry in "${PLAN[@]}"; do
      note "would write [[backends]] ${entry%%$'\t'*} (http://127.0.0.1:${entry##*$'\t'})"
    done
    return
  fi
  ((DRY_RUN)) && args+=(--dry-run)
  local output
  output="$(tsr_python "${args[@]}")" || die "could not update $TSR_CONFIG (see above)"
  local line
  while IFS= read -r line; do
    note "$line"
  done <<<"$output"
  # the service user reads the config; it holds no token (that is in $TSR_ENV_FILE)
  run chown "root:$TSR_USER" "$TSR_CONFIG"
  run chmod 0640 "$TSR_CONFIG"
}

ensure_token() {
  say "API token: $TSR_ENV_FILE"
  if [[ -f $TSR_ENV_FILE ]] && grep -q '^TSR_TOKEN=.' "$TSR_ENV_FILE"; then
    note "keeping the token already there"
    run chmod 0600 "$TSR_ENV_FILE"
    return
  fi
  if ((DRY_RUN)); then
    note "would generate a token into $TSR_ENV_FILE (mode 0600)"
    return
  fi
  install -d -m 0755 "$(dirname "$TSR_ENV_FILE")"
  local tmp token
  tmp="$(mktemp "$TSR_ENV_FILE.XXXXXX")" # mktemp creates it with mode 0600
  token="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  {
    if [[ -f $TSR_ENV_FILE ]]; then
      grep -v '^TSR_TOKEN=' "$TSR_ENV_FILE" || true
    fi
    echo "TSR_TOKEN=$token"
  } >"$tmp"
  chmod 0600 "$tmp"
  mv -f "$tmp" "$TSR_ENV_FILE"
  note "generated a new token (never printed)"
}

install_unit() {
  local unit="$SYSTEMD_UNIT_DIR/$UNIT_NAME"
  say "systemd unit: $unit"
  if [[ -x $VENV/bin/python ]]; then
    local -a args=(render-unit --output "$unit" --tsr-bin "$TSR_BIN" --host "$HOST"
      --port "$PORT" --config "$TSR_CONFIG" --env-file "$TSR_ENV_FILE" --user "$TSR_USER"
      --data-dir "$DATA_DIR")
    ((DRY_RUN)) && args+=(--dry-run)
    local output
    output="$(tsr_python "${args[@]}")" || die "could not write $unit (see above)"
    note "$output"
  else
    note "would write $unit"
  fi
  run systemctl daemon-reload
  run systemctl enable "$UNIT_NAME"
  run systemctl restart "$UNIT_NAME"
}

wait_healthy() {
  local local_host="$HOST"
  [[ $local_host == 0.0.0.0 || $local_host == "::" ]] && local_host="127.0.0.1"
  local -a urls=("http://$local_host:$PORT/api/health")
  local entry
  for entry in "${PLAN[@]}"; do
    urls+=("http://127.0.0.1:${entry##*$'\t'}/")
  done
  say "waiting for the services to answer (up to ${HEALTH_TIMEOUT}s)"
  local url deadline=$((SECONDS + HEALTH_TIMEOUT))
  for url in "${urls[@]}"; do
    if ((DRY_RUN)); then
      note "would wait for $url"
      continue
    fi
    until curl -fsS -o /dev/null --max-time 5 "$url" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        die "$url did not answer within ${HEALTH_TIMEOUT}s; look at: journalctl -u $UNIT_NAME, docker compose -f $COMPOSE_FILE --env-file $TSR_MODELS_ENV logs"
      fi
      sleep 2
    done
    note "$url answers"
  done
}

summary() {
  local shown_host="$HOST"
  if [[ $HOST == 0.0.0.0 || $HOST == "::" ]]; then
    shown_host="$(hostname -f 2>/dev/null || hostname)"
  fi
  if ((DRY_RUN)); then
    say "dry run complete: nothing was changed"
  else
    say "done"
  fi
  echo "tsr server:  http://$shown_host:$PORT"
  echo "token:       in $TSR_ENV_FILE (readable by root only; it is never printed)"
  echo "on a client: tsr remote add gpu http://$shown_host:$PORT --token-env TSR_GPU_TOKEN"
  echo "             and set TSR_GPU_TOKEN to the TSR_TOKEN value from that file"
}

main() {
  parse_args "$@"
  ((DRY_RUN)) && say "dry run: nothing will be changed"
  check_prerequisites
  prepare_models_env
  build_images
  install_tsr
  write_tsr_config
  start_containers
  ensure_token
  install_unit
  wait_healthy
  summary
}

main "$@"
