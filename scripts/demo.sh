#!/usr/bin/env bash
# Command 1 of the README: set up, then analyse the bundled sample evidence headless.
# Writes out/sample_analysis.json (+ .npz sidecars with features and heatmaps).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${VENV:-.venv}"
"$VENV/bin/forensic-analyze" resources/samples --json out/sample_analysis.json "$@"
