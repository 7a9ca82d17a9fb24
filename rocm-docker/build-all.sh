#!/usr/bin/env bash
# Build the sd-server image of every family in model-defaults.toml (or of the ones named) as
# sd-server:rocm-FAMILY. The compile stage is shared, so the first image takes long (tens of
# minutes) and every further family takes seconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEFAULTS="$HERE/model-defaults.toml"
DOCKERFILE="$HERE/Dockerfile.sd-server"
IMAGE_PREFIX="sd-server:rocm-"

usage() {
  cat <<EOF
Usage: build-all.sh [options] [FAMILY...]

Build sd-server:rocm-FAMILY for each FAMILY (default: every family in model-defaults.toml).

Options:
  --ref REF            stable-diffusion.cpp commit or tag to build (env SD_CPP_REF;
                       default: the commit pinned in Dockerfile.sd-server)
  --gpu-targets LIST   GPU architectures, ';'-separated, e.g. 'gfx1100;gfx1030'
                       (env GPU_TARGETS; default: the Dockerfile's, gfx1030;gfx1100)
  --rocm-version V     ROCm release of the base images, e.g. 6.4.1 (env ROCM_VERSION)
  --no-cache           rebuild every layer
  --dry-run            print the docker commands instead of running them
  -h, --help           show this help

Families: $(list_families | tr '\n' ' ')
EOF
}

die() {
  echo "build-all.sh: $*" >&2
  exit 1
}

# family names are the [families.NAME] table headers; no TOML parser needed for that
list_families() {
  sed -n 's/^\[families\.\([A-Za-z0-9_-]*\)\][[:space:]]*$/\1/p' "$DEFAULTS"
}

main() {
  local ref="${SD_CPP_REF:-}" targets="${GPU_TARGETS:-}" rocm="${ROCM_VERSION:-}"
  local dry_run=0 no_cache=0
  local -a wanted=()
  while (($#)); do
    case "$1" in
      --ref) ref="${2:?--ref needs a commit or tag}"; shift 2 ;;
      --gpu-targets) targets="${2:?--gpu-targets needs a list such as gfx1100}"; shift 2 ;;
      --rocm-version) rocm="${2:?--rocm-version needs a version such as 6.4.1}"; shift 2 ;;
      --no-cache) no_cache=1; shift ;;
      --dry-run) dry_run=1; shift ;;
      -h | --help) usage; exit 0 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) wanted+=("$1"); shift ;;
    esac
  done

  [[ -f $DEFAULTS ]] || die "cannot find $DEFAULTS"
  local -a known=()
  mapfile -t known < <(list_families)
  ((${#known[@]})) || die "$DEFAULTS defines no [families.*] tables"
  if ((${#wanted[@]} == 0)); then
    wanted=("${known[@]}")
  fi
  local family
  for family in "${wanted[@]}"; do
    if ! printf '%s\n' "${known[@]}" | grep -qxF -- "$family"; then
      die "unknown family '$family'; known families: ${known[*]}"
    fi
  done
  if ((!dry_run)) && ! command -v docker >/dev/null 2>&1; then
    die "docker is not installed (or not on PATH); see README.md: prerequisites"
  fi

  local -a common=(docker build --file "$DOCKERFILE")
  [[ -n $ref ]] && common+=(--build-arg "SD_CPP_REF=$ref")
  [[ -n $targets ]] && common+=(--build-arg "GPU_TARGETS=$targets")
  [[ -n $rocm ]] && common+=(--build-arg "ROCM_VERSION=$rocm")
  ((no_cache)) && common+=(--no-cache)

  for family in "${wanted[@]}"; do
    local -a command=("${common[@]}" --build-arg "MODEL_FAMILY=$family"
      --tag "${IMAGE_PREFIX}${family}" "$HERE")
    if ((dry_run)); then
      local line
      printf -v line '%q ' "${command[@]}"
      echo "${line% }"
      continue
    fi
    echo "==> building ${IMAGE_PREFIX}${family}"
    "${command[@]}" || die "building ${IMAGE_PREFIX}${family} failed (docker's output above says why)"
  done
  if ((!dry_run)); then
    echo "built: $(printf "${IMAGE_PREFIX}%s " "${wanted[@]}")"
  fi
}

main "$@"
