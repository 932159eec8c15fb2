#!/usr/bin/env bash
# Build benchmarks/.venv-ceiling: the environment of the pretrained pyliverlesionseg 0.3 ceiling
# (benchmarks/ceiling_pyliverlesionseg.py). Its own environment, built on request: never a runtime dependency
# of LiverResUNet and never needed by the test suite. About 1.5 GB, a few minutes.
#
# pyliverlesionseg 0.3 declares Python 3.6, tensorflow 1.12 and keras 2.2.4; it runs on Python 3.11 with
# tensorflow-cpu 2.15.1 (Keras 2.15), installed with --no-deps --ignore-requires-python, given the shims in
# ceiling_pyliverlesionseg.py. The other packages are what it imports (pymirc with its own imports: numba,
# scikit-image, matplotlib; pynetdicom, nibabel, pydicom, h5py, scipy), pinned to the set it was run with.
#
# Usage (from anywhere):  bash benchmarks/ceiling_env.sh        (PYTHON=python3.11 by default)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-ceiling"
PYTHON="${PYTHON:-python3.11}"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "ceiling_env.sh: $PYTHON is not Python 3.11 (tensorflow-cpu 2.15.1 needs 3.9-3.11)" >&2; exit 1; }
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet \
    tensorflow-cpu==2.15.1 keras==2.15.0 numpy==1.26.4 h5py==3.16.0 scipy==1.17.1 \
    nibabel==5.4.2 pydicom==3.0.2 pynetdicom==3.0.4 \
    pymirc==0.30.2 numba==0.68.1 llvmlite==0.50.0 scikit-image==0.26.0 matplotlib==3.11.2 \
    setuptools==65.5.0
"$VENV/bin/pip" install --quiet --no-deps --ignore-requires-python pyliverlesionseg==0.3
"$VENV/bin/python" -c 'import importlib.metadata as m; print("built", __import__("sys").prefix, \
"with pyliverlesionseg", m.version("pyliverlesionseg"), "tensorflow-cpu", m.version("tensorflow-cpu"))'
