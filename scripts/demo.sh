#!/usr/bin/env bash
# The main job end to end on a synthetic cohort, from a fresh clone (sets up .venv if needed):
# phantom CT cohort (3D-IRCADb-01 layout) -> prepare -> train (a few CPU minutes) -> evaluate on held-out
# patients -> segment one held-out DICOM series into a .seg.nrrd and a results table.
# Everything goes to demo-output/ (or the folder given as the first argument).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/scripts/env.sh"
out="$(realpath -m "${1:-$repo/demo-output}")"
minutes="${DEMO_TRAIN_MINUTES:-4}"
lib=("$repo/.venv/bin/python" -m LiverResUNetLib)
mkdir -p "$out"

echo "== 1/6 phantom cohorts: patients 1-8 for training, 9-11 held out for testing (256 x 256 px)"
"${lib[@]}" phantom --out "$out/train-raw" --patients 8 --size 256 --seed 0
"${lib[@]}" phantom --out "$out/test-raw" --patients 3 --first 9 --size 256 --seed 0

echo "== 2/6 prepare: DICOM -> one image/label folder per case"
"${lib[@]}" prepare --data "$out/train-raw/3Dircadb1" --out "$out/train-dataset"
"${lib[@]}" prepare --data "$out/test-raw/3Dircadb1" --out "$out/test-dataset"

echo "== 3/6 train for $minutes CPU minutes (LiverResUNetTrainer/Resources/phantom_cpu.yaml: a quick CPU set-up)"
rm -rf "$out/run"
model="$("${lib[@]}" train --data "$out/train-dataset" --out "$out/run" --max-minutes "$minutes" \
  --config "$repo/LiverResUNetTrainer/Resources/phantom_cpu.yaml" | tail -n 1)"
echo "model: $model"

echo "== 4/6 evaluate on the held-out patients"
"${lib[@]}" evaluate --model "$model" --data "$out/test-dataset" --out "$out/report" | tee "$out/evaluate.txt"
report="$(tail -n 1 "$out/evaluate.txt")"

echo "== 5/6 segment one held-out DICOM series (patient 11: three tumors; its series is also stored unzipped)"
series="$out/test-raw/3Dircadb1/3Dircadb1.11/PATIENT_DICOM"
"${lib[@]}" segment --model "$model" --input "$series" --output "$out/segmentation.seg.nrrd" \
  --table "$out/results.csv"

echo "== 6/6 results"
cat "$out/results.csv"
echo
echo "segmentation: $out/segmentation.seg.nrrd"
echo "report:       $report"
