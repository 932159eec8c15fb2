#!/usr/bin/env bash
# Create (or reuse) .venv-slicer: a Python environment holding only what the modules get inside Slicer 5.12.3.
#   - the Python packages Slicer 5.12.3 bundles, at its versions (Testing/SlicerSources/BUNDLED_PYTHON_PACKAGES.txt;
#     all of them exist on PyPI for Python 3.11; Slicer itself runs Python 3.12.10, not installable here),
#   - slicer-core for MRML (Slicer's own MRML classes, as a wheel),
#   - torch==2.13.0 (what the PyTorch extension installs in Slicer; the CPU build on this machine's disk),
#   - LiverResUNet/Resources/requirements.txt (what the modules install on first use), resolved with the
#     versions of the repo's requirements.txt,
#   - pytest, to run the DICOM tests in it.
# And .pydicom-2.4.4: pydicom 2.4.4 alone (Slicer 5.10's version), put first on PYTHONPATH to turn .venv-slicer
# into Slicer 5.10's DICOM stack.
# Sourced by scripts/test.sh; a second run only checks a stamp and is instant. Exports SLICER_ENV_PYTHON and
# PYDICOM_2_4_4_PATH.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
slicer_venv="$repo/.venv-slicer"
pydicom_overlay="$repo/.pydicom-2.4.4"
bundled="$repo/Testing/SlicerSources/BUNDLED_PYTHON_PACKAGES.txt"
module_requirements="$repo/LiverResUNet/Resources/requirements.txt"
slicer_stamp="$slicer_venv/.requirements.sha256"
slicer_wanted="$(cat "$bundled" "$module_requirements" "$repo/requirements.txt" "$repo/scripts/slicer_env.sh" \
  | sha256sum | cut -d' ' -f1)"
if [ ! -f "$slicer_stamp" ] || [ "$(cat "$slicer_stamp")" != "$slicer_wanted" ]; then
  echo "Setting up $slicer_venv, Slicer 5.12.3's Python packages (first run: a few minutes)..." >&2
  python3 -m venv --clear "$slicer_venv"
  # Slicer's versions are fixed; packages Slicer lacks get the repo's pinned versions.
  constraints="$slicer_venv/constraints.txt"
  bundled_names="$(sed -E 's/[=<>!~ ].*//' "$bundled" | tr 'A-Z_.' 'a-z--')"
  {
    cat "$bundled"
    while read -r line; do
      name="$(printf '%s' "$line" | sed -E 's/[=<>!~ ].*//' | tr 'A-Z_.' 'a-z--')"
      case "$line" in ''|'#'*) continue ;; esac
      grep -qxF "$name" <<<"$bundled_names" || printf '%s\n' "$line"
    done < "$repo/requirements.txt"
  } > "$constraints"
  pip=("$slicer_venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" -c "$constraints" torch==2.13.0 slicer-core pytest -r "$bundled" -r "$module_requirements"
  site="$("$slicer_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  printf '%s\n%s\n' "$repo/LiverResUNet" "$repo/LiverResUNetTrainer" > "$site/liverresunet.pth"
  echo "$slicer_wanted" > "$slicer_stamp"
fi
if [ ! -f "$pydicom_overlay/pydicom/__init__.py" ]; then
  rm -rf "$pydicom_overlay"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$pydicom_overlay" pydicom==2.4.4
fi
export SLICER_ENV_PYTHON="$slicer_venv/bin/python"
export PYDICOM_2_4_4_PATH="$pydicom_overlay"
