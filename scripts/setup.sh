#!/usr/bin/env bash
# Create (or reuse) the virtualenv and install Forensic Workbench with its test extras.
# Usage: scripts/setup.sh            (VENV=path to choose the virtualenv folder; default .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch/torchvision/torchaudio are pinned in pyproject.toml (PyPI CUDA build; runs on CPU too).
"$VENV/bin/python" -m pip install -q -e ".[dev]"
echo "environment ready: $VENV"
