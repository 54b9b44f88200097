#!/usr/bin/env bash
# The device check (benchmarks/gpu_check.py; BENCHMARKS.md, "GPU check"): run from the repository root.
#   benchmarks/gpu_check.sh                      # on the GPU machine; wheels from benchmarks/wheels/batch-*
#   benchmarks/gpu_check.sh --cpu --out /tmp/gc  # the dry run on CPU at toy sizes
# PYTHON picks the interpreter (default: python3, which on the device machine holds PyTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
