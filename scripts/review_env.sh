#!/usr/bin/env bash
# Create (or reuse) .venv-review: the browser review's environment (liverresunet review, its browser tests and
# benchmark). trame-slicer 2.0.0 (standalone) needs slicer-core < 5.12, so it cannot share .venv (slicer-core 5.12.4.0, Slicer 5.12's):
#   - requirements-review.txt: every package pinned (trame, trame-slicer, slicer-core 5.11.0.6, vtk 9.6.0,
#     playwright, pytest, the project's own dependencies at the versions of requirements.txt);
#   - torch==2.13.0 first (the CPU build on this machine's disk; a plain 'torch' pulls a multi-GB CUDA build);
#   - the project itself through a .pth (both module folders on sys.path, as in Slicer), so the checkout is used;
#   - `pip check` must be clean.
# Playwright drives the system's Chromium (Debian package chromium, /usr/bin/chromium): no browser download.
# Sourced by scripts/test.sh; a second run only checks a stamp and is instant. Exports REVIEW_ENV_PYTHON.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
review_venv="$repo/.venv-review"
review_stamp="$review_venv/.requirements.sha256"
review_wanted="$(cat "$repo/requirements-review.txt" "$repo/scripts/review_env.sh" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$review_stamp" ] || [ "$(cat "$review_stamp")" != "$review_wanted" ]; then
  echo "Setting up $review_venv, the browser review's environment (first run: a few minutes)..." >&2
  python3 -m venv --clear "$review_venv"
  pip=("$review_venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" torch==2.13.0
  "${pip[@]}" -r "$repo/requirements-review.txt"
  "$review_venv/bin/python" -m pip check
  site="$("$review_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  printf '%s\n%s\n' "$repo/LiverResUNet" "$repo/LiverResUNetTrainer" > "$site/liverresunet.pth"
  echo "$review_wanted" > "$review_stamp"
fi
export REVIEW_ENV_PYTHON="$review_venv/bin/python"
