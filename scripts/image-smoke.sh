#!/usr/bin/env bash
# CI's image step: build the Tierwise image on a private Docker engine and smoke-test it.
#
#   scripts/image-smoke.sh            (root; .ci/run calls it)
#
# 1. Installs Debian's docker.io and debootstrap when missing, starts its own dockerd
#    (--bridge=none --iptables=false: containers and builds use the host network or none,
#    only loopback traffic) with its socket, state and data under one temporary folder, a
#    tmpfs (TIERWISE_IMAGE_TMPFS_SIZE, default 4g; 0 keeps it on disk).
# 2. Builds the image from Debian packages and host-built wheels (scripts/build-image.sh
#    --debian-base): no container registry is needed.
# 3. Smoke tests: `tierwise --version`; the image's contents (user, labels, no compilers,
#    no pip, no test libraries, no bytecode written at run time); the router container
#    (read-only root, uid 65532, files mounted read-only) serving an OpenAI chat request
#    against a simulator on the host; the operator container reconciling a ModelDeployment
#    on the embedded cluster (kubeconfig mounted, kopf's liveness endpoint answering).
# 4. Always (trap): removes the containers and images, stops the host processes and the
#    dockerd it started, unmounts and deletes the folder (data root and every other file).
#
# Fails loudly when dockerd cannot run here. TIERWISE_SKIP_IMAGE=1 skips the whole step,
# explicitly. TIERWISE_IMAGE_SAVE=FILE.tar keeps a `docker save` of the tested image (for
# `kind load image-archive`). PYTHON must import tierwise (CI: the project's .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
say() { echo "== image: $* (${SECONDS}s)"; }
fail() { echo "== image: FAILED: $*" >&2; exit 1; }

if [ "${TIERWISE_SKIP_IMAGE:-}" = 1 ]; then
  say "skipped: TIERWISE_SKIP_IMAGE=1"
  exit 0
fi
PY=${PYTHON:-python3}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)
IMAGE=${TIERWISE_IMAGE:-ghcr.io/tierwise/tierwise:$VERSION}
WORK=$(mktemp -d /tmp/tierwise-image.XXXXXX)
# Everything this step writes (Debian root filesystem, build context, Docker's data root,
# logs) goes to a tmpfs: dpkg's and Docker's fsyncs cost nothing there, and cleaning up is
# an unmount instead of deleting ~1 GB of small files from a busy disk. The size is a cap;
# about 0.85 GB of memory is used at the peak.
TMPFS_SIZE=${TIERWISE_IMAGE_TMPFS_SIZE:-4g}
if [ "$TMPFS_SIZE" != 0 ] && [ "$(id -u)" = 0 ]; then
  mount -t tmpfs -o "size=$TMPFS_SIZE,mode=755" tierwise-image "$WORK"
fi
chmod 755 "$WORK"
mkdir -p "$WORK/logs" "$WORK/tmp"
DOCKERD_PID=""
DOCKER=docker  # the client; start_dockerd picks the engine's own
docker() { "$DOCKER" "$@"; }
HOST_PIDS=()
CONTAINERS=(tierwise-smoke-pyc tierwise-smoke-router tierwise-smoke-operator
            tierwise-smoke-vllm tierwise-smoke-sglang)

# ---- cleanup: runs on every exit --------------------------------------------------------------
dump_logs() {
  local log lines
  for log in "$WORK"/logs/*.log; do
    [ -s "$log" ] || continue
    lines=40
    [ "$(basename "$log")" != dockerd.log ] || lines=15  # chatty; its end says why it stopped
    echo "---- $(basename "$log") (last $lines lines)" >&2
    tail -n "$lines" "$log" >&2
  done
}

stop_dockerd() {
  [ -n "$DOCKERD_PID" ] || return 0
  kill -TERM "$DOCKERD_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  wait "$DOCKERD_PID" 2>/dev/null || true
  DOCKERD_PID=""
}

cleanup() {
  local rc=$?
  set +e
  if [ "$rc" != 0 ]; then
    if [ -n "$DOCKERD_PID" ]; then
      for name in tierwise-smoke-router tierwise-smoke-operator tierwise-smoke-vllm \
                  tierwise-smoke-sglang; do
        docker logs "$name" >"$WORK/logs/container-$name.log" 2>&1
      done
    fi
    dump_logs
  fi
  if [ -n "$DOCKERD_PID" ]; then
    say "cleanup: containers and images"
    docker rm --force "${CONTAINERS[@]}" >/dev/null 2>&1
    docker image ls --quiet | sort -u | xargs -r "$DOCKER" rmi --force >/dev/null 2>&1
  fi
  say "cleanup: host processes and dockerd"
  for pid in "${HOST_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${HOST_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  stop_dockerd
  say "cleanup: removing $WORK"
  # overlay and netns mounts a killed daemon may have left under the work folder
  awk -v root="$WORK" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/mounts |
    sort -r |
    while read -r mount; do umount -l "$mount"; done
  rm -rf "$WORK"
  if [ "$rc" = 0 ]; then say "done, cleaned up"; else echo "== image: cleaned up after failure" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. engine ---------------------------------------------------------------------------------
install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || fail "needs root to install ${missing[*]} (or set TIERWISE_SKIP_IMAGE=1)"
  say "apt-get install ${missing[*]}"
  # Never let the package start a system dockerd: this script runs its own.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends)
  "${apt[@]}" "${missing[@]}" >"$WORK/logs/apt.log" 2>&1 ||
    { apt-get update -q >>"$WORK/logs/apt.log" 2>&1 && "${apt[@]}" "${missing[@]}" \
        >>"$WORK/logs/apt.log" 2>&1; } ||
    { [ -z "$policy" ] || rm -f "$policy"; fail "apt-get install ${missing[*]}"; }
  [ -z "$policy" ] || rm -f "$policy"
}

start_dockerd() {
  [ "$(id -u)" = 0 ] || fail "dockerd needs root here (or set TIERWISE_SKIP_IMAGE=1)"
  # The Debian client matches the engine (another docker client may come first on PATH).
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=$(command -v docker); fi
  export DOCKER DOCKER_HOST="unix://$WORK/docker.sock" DOCKER_BUILDKIT=1
  dockerd --bridge=none --iptables=false --ip-masq=false \
    --data-root "$WORK/data" --exec-root "$WORK/run" --pidfile "$WORK/dockerd.pid" \
    --host "$DOCKER_HOST" >"$WORK/logs/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 150); do
    docker version >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null ||
      { DOCKERD_PID=""; fail "dockerd exited (its log follows; no privileges here?" \
          "set TIERWISE_SKIP_IMAGE=1 to skip this step explicitly)"; }
    sleep 0.2
  done
  fail "dockerd did not answer within 30s"
}

install_packages
say "starting dockerd (data root $WORK/data)"
start_dockerd

# ---- 2. build ----------------------------------------------------------------------------------
say "building $IMAGE (Debian base, host wheels)"
TMPDIR="$WORK/tmp" PYTHON=$PY scripts/build-image.sh --debian-base --tag "$IMAGE" \
  >"$WORK/logs/build.log" 2>&1 || fail "image build"
grep '^build-image:' "$WORK/logs/build.log" | sed 's/^/   /'
size_mb() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f", $1 / 1e6 }'; }
say "built: $IMAGE $(size_mb "$IMAGE") MB, base tierwise-debian-base:bookworm" \
    "$(size_mb tierwise-debian-base:bookworm) MB"

# ---- 3. smoke tests ----------------------------------------------------------------------------
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() {  # URL SECONDS CONTAINER-OR-PID
  local url=$1 deadline=$((SECONDS + $2)) watched=$3
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [[ "$watched" =~ ^[0-9]+$ ]]; then
      kill -0 "$watched" 2>/dev/null || fail "process $watched exited before $url answered"
    elif [ "$(docker inspect --format '{{.State.Running}}' "$watched")" != true ]; then
      fail "container $watched exited before $url answered"
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "$url did not answer within $2s"
    sleep 0.2
  done
}
# The hardening a chart sets: read-only root, uid/gid 65532, no capabilities, no new privileges.
RESTRICTED=(--network host --read-only --user 65532:65532 --cap-drop ALL
            --security-opt no-new-privileges)

say "smoke: --version and contents"
version=$(docker run --rm --network host "$IMAGE" --version)
[ "$version" = "tierwise $VERSION" ] || fail "--version printed '$version'"
user=$(docker image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = 65532:65532 ] || fail "image user is '$user', not 65532:65532"
source=$(docker image inspect \
  --format '{{index .Config.Labels "org.opencontainers.image.source"}}' "$IMAGE")
[ -n "$source" ] || fail "no org.opencontainers.image.source label"
docker run --rm --network none --entrypoint /bin/sh "$IMAGE" -c '
  for tool in gcc cc c++ make pip pip3; do
    if command -v "$tool" >/dev/null; then echo "found $tool"; exit 1; fi
  done
  for module in pip setuptools pytest hypothesis mypy; do
    if python3 -c "import $module" 2>/dev/null; then echo "found module $module"; exit 1; fi
  done' || fail "the final image holds build or test tools"
# Bytecode is precompiled: with writes allowed (root, PYTHONDONTWRITEBYTECODE unset),
# importing every command's modules writes no .pyc anywhere.
docker run --name tierwise-smoke-pyc --network none --user 0 -e PYTHONDONTWRITEBYTECODE= \
  --entrypoint /bin/sh "$IMAGE" -c 'tierwise router --help && tierwise operator --help' \
  >/dev/null
written=$(docker diff tierwise-smoke-pyc | grep -c '\.pyc$' || true)
[ "$written" = 0 ] || fail "$written .pyc files written at run time: $(docker diff tierwise-smoke-pyc | head)"
docker rm tierwise-smoke-pyc >/dev/null

say "smoke: router container against a simulator on the host"
sim_port=$(free_port)
router_port=$(free_port)
"$PY" -m tierwise.cli sim engine --model small-md --port "$sim_port" \
  >"$WORK/logs/sim.log" 2>&1 &
HOST_PIDS+=($!)
wait_http "http://127.0.0.1:$sim_port/health" 30 "$!"
mkdir -m 755 "$WORK/router"
cat >"$WORK/router/policy.yaml" <<'EOF'
apiVersion: tierwise.dev/v1alpha1
kind: RoutingPolicy
metadata: {name: smoke}
spec:
  models: [auto]
  tiers:
    - name: small
      backends: [{modelDeployment: small-md}]
      price: {inputPerMillionTokens: 0.1, outputPerMillionTokens: 0.2}
EOF
echo "small-md: [http://127.0.0.1:$sim_port]" >"$WORK/router/endpoints.yaml"
chmod 644 "$WORK"/router/*.yaml
docker run --detach --name tierwise-smoke-router "${RESTRICTED[@]}" \
  --volume "$WORK/router:/config:ro" "$IMAGE" \
  router --policy /config/policy.yaml --endpoints /config/endpoints.yaml \
  --host 127.0.0.1 --port "$router_port" >/dev/null
wait_http "http://127.0.0.1:$router_port/healthz" 60 tierwise-smoke-router
status=$(curl -sS -o "$WORK/router/answer.json" -D "$WORK/router/headers.txt" -w '%{http_code}' \
  -H 'content-type: application/json' \
  -d '{"model": "auto", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello"}]}' \
  "http://127.0.0.1:$router_port/v1/chat/completions")
[ "$status" = 200 ] || fail "router answered HTTP $status: $(head -c 400 "$WORK/router/answer.json")"
tier=$(tr -d '\r' <"$WORK/router/headers.txt" | awk -F': ' 'tolower($1) == "x-tierwise-tier" { print $2 }')
[ "$tier" = small ] || fail "x-tierwise-tier is '$tier', not 'small'"
"$PY" - "$WORK/router/answer.json" <<'EOF' || fail "the router's answer is not a chat completion"
import json, sys
answer = json.load(open(sys.argv[1]))
assert answer["object"] == "chat.completion", answer
assert answer["choices"][0]["message"]["content"], answer
EOF
say "smoke: router served a chat completion (tier $tier)"

say "smoke: operator container against the embedded cluster"
live_port=$(free_port)
mkdir -m 755 "$WORK/kube"
"$PY" tests/image/operator_smoke_cluster.py --kubeconfig "$WORK/kube/config" \
  --manifest examples/01-small-vllm/modeldeployment.yaml --timeout 120 \
  >"$WORK/logs/cluster.log" 2>&1 &
cluster_pid=$!
HOST_PIDS+=("$cluster_pid")
for _ in $(seq 150); do
  [ -f "$WORK/kube/config" ] && break
  kill -0 "$cluster_pid" 2>/dev/null || fail "the embedded cluster exited"
  sleep 0.2
done
[ -f "$WORK/kube/config" ] || fail "the embedded cluster wrote no kubeconfig within 30s"
docker run --detach --name tierwise-smoke-operator "${RESTRICTED[@]}" \
  --volume "$WORK/kube:/kube:ro" "$IMAGE" \
  operator --kubeconfig /kube/config --liveness "http://127.0.0.1:$live_port/healthz" >/dev/null
wait_http "http://127.0.0.1:$live_port/healthz" 60 tierwise-smoke-operator
cluster_rc=0
wait "$cluster_pid" || cluster_rc=$?
HOST_PIDS=("${HOST_PIDS[@]:0:${#HOST_PIDS[@]}-1}")  # reaped: its id may be reused
[ "$cluster_rc" = 0 ] || fail "the operator container did not reconcile the ModelDeployment"
[ "$(docker inspect --format '{{.State.Running}}' tierwise-smoke-operator)" = true ] ||
  fail "the operator container stopped"
say "smoke: operator $(grep '^reconciled' "$WORK/logs/cluster.log" | cut -c1-60)..."

say "smoke: the CPU-only engine stand-in (images/engine-sim, for e2e on kind)"
SIM_IMAGE=tierwise-engine-sim:smoke
DOCKER_BUILDKIT=1 docker build --network none --quiet --build-arg "TIERWISE_IMAGE=$IMAGE" \
  -f images/engine-sim/Dockerfile -t "$SIM_IMAGE" images/engine-sim \
  >"$WORK/logs/engine-sim-build.log" 2>&1 || fail "engine stand-in build"
for engine in vllm sglang; do
  port=$(free_port)
  if [ "$engine" = vllm ]; then
    command=(vllm serve /models/m --served-model-name "sim-$engine" --port "$port")
  else
    command=(python3 -m sglang.launch_server --model-path /models/m --served-model-name "sim-$engine"
             --port "$port" --host 0.0.0.0 --tp-size 1)
  fi
  # engine pods have a writable root (the upstream images need one); the simulator only
  # needs /tmp for the model folder it describes
  docker run --detach --name "tierwise-smoke-$engine" "${RESTRICTED[@]}" \
    --tmpfs /tmp:rw,mode=1777 "$SIM_IMAGE" "${command[@]}" >/dev/null
  wait_http "http://127.0.0.1:$port/health" 60 "tierwise-smoke-$engine"
  models=$(curl -fsS "http://127.0.0.1:$port/v1/models")
  [[ "$models" == *"\"sim-$engine\""* ]] || fail "the $engine stand-in serves $models"
done
say "smoke: engine stand-in served both engines' command lines"

if [ -n "${TIERWISE_IMAGE_SAVE:-}" ]; then
  docker save --output "$TIERWISE_IMAGE_SAVE" "$IMAGE"
  say "saved $IMAGE to $TIERWISE_IMAGE_SAVE"
fi
say "all smoke tests passed"
