"""benchmarks/gpu_check.sh runs end to end: its CPU dry run (tiny sizes, gloo, fp32 vs CPU bf16) passes its checks."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_cpu_dry_run_reports_every_figure():
    result = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu-dry-run"], capture_output=True,
                            text=True, env={**os.environ, "PYTHON": sys.executable}, timeout=400)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    figures = json.loads(result.stdout)
    assert figures["checks"] == {"torchrun": True}
    assert figures["inference"]["warm_s"] > 0 and figures["training"]["slices_per_s"] > 0
    assert figures["inference_cascade"]["warm_s"] > 0
    assert figures["torchrun"]["backend"] == "gloo" and figures["torchrun"]["model_written"]
    agreement = figures["autocast"]["dice_mixed_vs_fp32"]
    assert set(agreement) == {"liver", "tumor"} and all(0.0 <= dice <= 1.0 for dice in agreement.values())


def test_gpu_check_refuses_to_run_without_cuda_unless_dry():
    result = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                            env={**os.environ, "PYTHON": sys.executable}, timeout=120)
    assert result.returncode == 2
    assert "no CUDA device here" in result.stderr
