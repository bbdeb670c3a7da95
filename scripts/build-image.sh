#!/usr/bin/env bash
# Build the Tierwise image (images/Dockerfile): operator and router in one.
#
#   scripts/build-image.sh [--tag IMAGE] [--base IMAGE | --debian-base] [--extras LIST]
#                          [--save FILE.tar]
#
# 1. `pip wheel` the project (from a clean copy of its tracked files) and its runtime
#    dependencies, plus pip's own wheel, into a fresh build context: the build downloads
#    nothing and runs with --network none.
# 2. The base: the Dockerfile's default (a public python image) unless --base names another;
#    --debian-base builds one from Debian packages first (scripts/debian-base-image.sh) for
#    machines that reach no container registry.
# 3. docker build, labelled with the package version, git revision and source URL.
#
# --extras classifier adds the router's MiniLM prompt classifier; its torch comes from
# pip's configured indexes (TIERWISE_TORCH, default torch==2.13.0, the pin .ci/run uses).
# Environment: DOCKER (client, default docker; DOCKER_HOST picks the daemon), PYTHON
# (default python3, with pip). Prints the image's tag on its last line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
DOCKER=${DOCKER:-docker}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -n 1)
TAG="ghcr.io/tierwise/tierwise:$VERSION"
BASE=""
DEBIAN_BASE=0
EXTRAS=""
SAVE=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=${2:?}; shift 2 ;;
    --base) BASE=${2:?}; shift 2 ;;
    --debian-base) DEBIAN_BASE=1; shift ;;
    --extras) EXTRAS=${2:?}; shift 2 ;;
    --save) SAVE=${2:?}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "build-image: unknown argument '$1'" >&2; usage ;;
  esac
done
if [ -n "$BASE" ] && [ "$DEBIAN_BASE" = 1 ]; then
  echo "build-image: give --base IMAGE or --debian-base, not both" >&2; exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tierwise-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
step() { echo "build-image: $* (${SECONDS}s)" >&2; }

# pip warns once per package about this kind of machine's absent optional find-links.
quiet_pip() {
  "$PY" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; } >&2
  return "${PIPESTATUS[0]}"
}

# A clean copy: a stale build/ or egg-info in the checkout must not leak into the wheel.
copy_sources() {
  mkdir -p "$WORK/src"
  if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard -- \
        pyproject.toml README.md operator |
      while IFS= read -r -d '' file; do  # tracked but deleted files drop out
        if [ -f "$ROOT/$file" ]; then printf '%s\0' "$file"; fi
      done |
      tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK/src" -xf -
  else
    tar -C "$ROOT" --exclude=__pycache__ --exclude='*.egg-info' -cf - \
        pyproject.toml README.md operator | tar -C "$WORK/src" -xf -
  fi
}

step "wheels for tierwise${EXTRAS:+[$EXTRAS]} $VERSION"
copy_sources
requirements=("$WORK/src${EXTRAS:+[$EXTRAS]}")
case ",$EXTRAS," in *,classifier,*) requirements+=("${TIERWISE_TORCH:-torch==2.13.0}") ;; esac
pip_version=$("$PY" -c 'import pip; print(pip.__version__)')
quiet_pip wheel -q --wheel-dir "$WORK/context/wheels" "${requirements[@]}"
quiet_pip download -q --no-deps --only-binary=:all: --dest "$WORK/context/wheels" \
  "pip==$pip_version"

base_args=()
if [ "$DEBIAN_BASE" = 1 ]; then
  BASE="tierwise-debian-base:bookworm"
  step "base image $BASE from Debian packages"
  "$ROOT/scripts/debian-base-image.sh" "$BASE" >/dev/null
fi
if [ -n "$BASE" ]; then base_args=(--build-arg "BASE_IMAGE=$BASE"); fi

revision=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)
step "docker build $TAG"
"$DOCKER" build --network none --file "$ROOT/images/Dockerfile" --tag "$TAG" \
  "${base_args[@]}" \
  --build-arg "EXTRAS=$EXTRAS" \
  --build-arg "VERSION=$VERSION" \
  --build-arg "REVISION=$revision" \
  "$WORK/context" >&2

if [ -n "$SAVE" ]; then
  step "docker save $TAG to $SAVE"
  "$DOCKER" save --output "$SAVE" "$TAG"
fi
step "built $TAG"
echo "$TAG"
