#!/usr/bin/env bash
# The GPU check of issue 10, one script (<= 8 minutes on a CUDA machine): warm end-to-end inference of a
# 512 x 512 x 129 CT (target <= 1 s), bf16 autocast vs fp32 agreement (Dice >= 0.999), training throughput in
# slices/s, and a 1-process NCCL torchrun run. Figures as JSON on standard output (see benchmarks/gpu_check.py).
#
# Usage: benchmarks/gpu_check.sh [--cpu-dry-run]
#   PYTHON=/path/to/python (default: python3) must have the project's dependencies and a CUDA build of torch
#   (e.g. `pip install torch .`); --cpu-dry-run runs everything tiny on the CPU, as Testing/test_gpu_check.py does.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo/LiverResUNet:$repo/LiverResUNetTrainer${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 "${PYTHON:-python3}" "$repo/benchmarks/gpu_check.py" "$@"
