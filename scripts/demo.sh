#!/usr/bin/env bash
# Command 1 of the README: set up, then analyse the bundled sample evidence headless.
# Writes out/sample_analysis.json (+ .npz sidecars with features and heatmaps), the case file
# out/sample_case.json (evidence hashes, runs, audit log) and the PDF report out/sample_report.pdf.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${VENV:-.venv}"
rm -f out/sample_case.json  # a fresh case per demo run
"$VENV/bin/forensic-analyze" resources/samples --json out/sample_analysis.json \
    --case out/sample_case.json --case-name "Bundled sample evidence" --report out/sample_report.pdf "$@"
