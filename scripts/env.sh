#!/usr/bin/env bash
# Create (or reuse) the project's environment: .venv at the repo root with the pinned requirements.
# Sourced by scripts/demo.sh and scripts/test.sh; a second run only checks a stamp and is instant.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
stamp="$venv/.requirements.sha256"
wanted="$(cat "$repo/requirements.txt" "$repo/pyproject.toml" "$repo/scripts/env.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "Setting up $venv (first run: a few minutes)..." >&2
  python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "error: Python 3.11 is required (python3 is $(python3 --version 2>&1))" >&2; exit 1; }
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # torch first and pinned: a plain 'torch' requirement would pull a multi-GB CUDA build.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch==2.13.0
  # The project itself, editable, with its test, benchmark and DICOM extras; requirements.txt pins every version.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$repo/requirements.txt" \
    -e "$repo[test,bench,dicom]"
  # The trainer module's folder on sys.path too, as in Slicer, where both module folders are.
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  rm -f "$site/liverresunet.pth"
  echo "$repo/LiverResUNetTrainer" > "$site/liverresunet-trainer.pth"
  echo "$wanted" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
