#!/usr/bin/env bash
# On a machine with the package registry: the wheels the GPU check installs offline, in batches of
# at most 56 MiB under benchmarks/wheels/ (git-ignored), Ray's wheel split into 45 MiB parts.
# Carry one batch per device call (BENCHMARKS.md, "GPU check").
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" benchmarks/gpu_wheels.py prepare --out benchmarks/wheels "$@"
