"""The ceiling beside the real benchmark: the pretrained pyliverlesionseg 0.3 on the two real test patients.

pyliverlesionseg (KU Leuven, Apache 2.0; a Keras package on PyPI) ships two trained 3D U-Nets: one segments
the liver at 3 mm, the second segments lesions at 1 x 1 x 3 mm inside the dilated predicted liver. Its weights
were trained on far more patients than the two we have (probably LiTS, which contains the 3D-IRCADb-01
patients, these two included): its figures are a ceiling to approach, not a like-for-like comparison with
``train_real.py``'s leave-one-patient-out.

Two halves, two environments, one file:
- run from the project's .venv (the default), it reads each patient with the project's 3D-IRCADb reader, writes
  its CT as NIfTI into benchmarks/output/ceiling/<patient>/, runs the second half there as a subprocess of
  ``benchmarks/.venv-ceiling/bin/python`` (built by ``bash benchmarks/ceiling_env.sh``), puts the package's
  liver and lesion masks back on the CT's voxel grid (axis flips only, exact, checked), scores them with the
  project's own ``case_metrics`` / ``summarise`` (the figures of ``evaluate``), prints a table and writes
  benchmarks/output/ceiling/results.json;
- run with ``--segment CT.nii.gz`` from .venv-ceiling, it applies the shims below and runs the package's own
  pipeline (``cnn_liver_lesion_seg_CT_MR_main``: crop, resample, both U-Nets, its post-processing), which
  writes ``CT.nii.gz_cnn_pred_liver.nii.gz`` and ``CT.nii.gz_cnn_pred_liver_lesions.nii.gz`` beside the CT,
  and ``segment_run.json`` (its seconds and peak memory).
Nothing derived from the real data leaves benchmarks/output/ (git-ignored). The product never imports this file;
the test suite imports only its first half (Testing/test_ceiling_grid.py) and never needs its environment.

Usage (from the repository root; 4-5 CPU minutes and 5 GiB a patient, 8-10 min wall on the 2 shared cores):
    bash benchmarks/ceiling_env.sh          # once
    nice -n 10 .venv/bin/python benchmarks/ceiling_pyliverlesionseg.py
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "3Dircadb1"
OUTPUT = REPO / "benchmarks" / "output" / "ceiling"
CEILING_PYTHON = REPO / "benchmarks" / ".venv-ceiling" / "bin" / "python"
PATIENTS = ("3Dircadb1.1", "3Dircadb1.7")
CT_FILE = "ct.nii.gz"
LIVER_FILE, LESION_FILE = f"{CT_FILE}_cnn_pred_liver.nii.gz", f"{CT_FILE}_cnn_pred_liver_lesions.nii.gz"
LABEL_FILE, SEGMENT_RUN_FILE = "pyliverlesionseg_labels.nii.gz", "segment_run.json"
# The package's NIfTI affines pass through float32 (NIfTI's sform): grids agreeing within this are the same grid.
GRID_TOLERANCE_MM = 1e-3
TRAINING_DATA = ("pyliverlesionseg 0.3's pretrained weights (liver U-Net of 2020-10-11, lesion U-Net of 2022-02-07, CT "
                 "and MR) were trained on far more patients than these two: its training script's defaults name "
                 "196 cases for the liver U-Net (169 training, 27 validation) and 180 for the lesion U-Net (145 / 35); "
                 "the package does not name the datasets, probably LiTS, which contains the 3D-IRCADb-01 patients, "
                 "so these two test patients may have been in its training data. A ceiling, not a like-for-like "
                 "comparison with the leave-one-patient-out benchmark.")


# ---- second half: runs in benchmarks/.venv-ceiling (Python 3.11, tensorflow-cpu 2.15.1) ----

def apply_shims() -> None:
    """Make pyliverlesionseg 0.3 (written for Keras 2.2.4, numpy < 1.20, nibabel < 5, pydicom < 3) import and run
    on Keras 2.15 and today's numpy, nibabel and pydicom, without editing its code."""
    import keras
    import keras.layers
    import nibabel
    import numpy
    import pydicom
    import tensorflow
    from keras.src.engine import node

    for alias, builtin in (("int", int), ("bool", bool), ("float", float)):  # removed in numpy 1.24
        setattr(numpy, alias, builtin)
    for old_module in ("convolutional", "advanced_activations", "normalization"):  # Keras 2.2's module paths
        sys.modules[f"keras.layers.{old_module}"] = keras.layers
    nibabel.spatialimages.SpatialImage.get_data = lambda image, caching="fill": numpy.asanyarray(image.dataobj)
    pydicom.read_file = pydicom.dcmread
    # Keras 2.2's Node.inbound_layers was always a list; Keras 2.15 gives the layer itself when there is one.
    single_or_many = node.Node.inbound_layers
    node.Node.inbound_layers = property(lambda inbound: tensorflow.nest.flatten(single_or_many.fget(inbound)))
    assert keras.__version__.startswith("2.15"), keras.__version__


def segment(ct_path: Path) -> None:
    """Run the package's liver and lesion pipeline on a CT NIfTI; record its time and peak memory beside it."""
    started = time.monotonic()
    apply_shims()
    import pyliverlesionseg

    models = Path(pyliverlesionseg.__file__).parent / "trained_models"
    pyliverlesionseg.cnn_liver_lesion_seg_CT_MR_main(
        str(ct_path), None, str(next(models.glob("*_liv_seg_*.hdf5"))), str(next(models.glob("*_lesion_seg_*.hdf5"))),
        seg_liver=True, seg_lesion=True, save_nifti=True, input_nifti=True, Modality="CT")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    (ct_path.parent / SEGMENT_RUN_FILE).write_text(json.dumps({
        "seconds_in_process": time.monotonic() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "pyliverlesionseg": getattr(pyliverlesionseg, "__version__", "unknown"),
        "tensorflow": __import__("tensorflow").__version__,
        "python": sys.version.split()[0],
    }, indent=2))


# ---- first half: runs in the project's .venv ----

def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA, help="folder holding the two patients")
    parser.add_argument("--patients", nargs="+", default=list(PATIENTS), help="patient folders to run")
    parser.add_argument("--python", type=Path, default=CEILING_PYTHON,
                        help="the python of the ceiling environment (bash benchmarks/ceiling_env.sh builds it)")
    parser.add_argument("--out", type=Path, default=OUTPUT, help="output folder (git-ignored)")
    parser.add_argument("--segment", type=Path, metavar="CT_NIFTI", help=argparse.SUPPRESS)
    return parser.parse_args()


def on_ct_grid(mask, ct):
    """A mask Volume whose grid is the CT's up to axis order and flips (the package writes RAS-canonical NIfTI)
    as a boolean array ``[k, j, i]`` on the CT's exact grid.

    Raises:
        InputError: the mask's grid is not the CT's (the package resampled or shifted it).
    """
    from LiverResUNetLib.errors import input_error
    from LiverResUNetLib.preprocessing.orientation import from_canonical, to_canonical

    ct_view, mask_view = to_canonical(ct), to_canonical(mask)
    if not ct_view.volume().same_grid(mask_view.volume(), tolerance=GRID_TOLERANCE_MM):
        raise input_error(mask.metadata.get("source", "mask"), "is not on the CT's voxel grid up to axis flips")
    return from_canonical(mask_view.array != 0, ct_view)


def predicted_labels(case, folder: Path):
    """The package's liver and lesion masks as one 0/1/2 label Volume on the CT grid (tumor wins), written
    beside them; and the lesion voxels outside its own liver mask (its lesion U-Net sees the dilated liver)."""
    from LiverResUNetLib.io.image_file import read_image, write_image
    from LiverResUNetLib.volume import LIVER, TUMOR

    liver = on_ct_grid(read_image(folder / LIVER_FILE), case.image)
    lesions = on_ct_grid(read_image(folder / LESION_FILE), case.image)
    labels = case.image.with_array((liver * LIVER).astype("uint8"))
    labels.array[lesions] = TUMOR
    write_image(labels, folder / LABEL_FILE)
    return labels, int((lesions & ~liver).sum())


def run_patient(patient: str, args: argparse.Namespace) -> dict:
    """Segment one patient with the ceiling environment's python and score it against the reference labels."""
    from LiverResUNetLib.datasets.ircadb import read_ircadb_patient
    from LiverResUNetLib.evaluation.metrics import case_metrics
    from LiverResUNetLib.io.image_file import write_image

    case = read_ircadb_patient(args.data / patient)
    folder = args.out.resolve() / patient
    folder.mkdir(parents=True, exist_ok=True)
    for stale in (LIVER_FILE, LESION_FILE, LABEL_FILE, SEGMENT_RUN_FILE):
        (folder / stale).unlink(missing_ok=True)
    write_image(case.image, folder / CT_FILE)
    started = time.monotonic()
    subprocess.run([str(args.python), str(Path(__file__).resolve()), "--segment", str(folder / CT_FILE)],
                   cwd=folder, check=True)
    seconds = time.monotonic() - started
    labels, outside_liver = predicted_labels(case, folder)
    scores = case_metrics(labels.array, case.label.array, case.image.spacing)
    return dict(scores, case_id=patient, wall_seconds=seconds, lesion_voxels_outside_its_liver=outside_liver,
                segment_run=json.loads((folder / SEGMENT_RUN_FILE).read_text()), label_map=str(folder / LABEL_FILE))


def _number(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def table(cases: list, summary: dict) -> str:
    """Per patient and pooled: liver and tumor Dice, lesions detected / missed / false positive, wall and CPU time
    and peak memory of the package's process."""
    rows = ["| patient | liver Dice | tumor Dice | lesions detected / missed / false positive | wall time | CPU time "
            "| peak memory |", "|---|---|---|---|---|---|---|"]
    for case in cases:
        lesions = case["lesions"]
        rows.append(f"| {case['case_id']} | {_number(case['liver']['dice'])} | {_number(case['tumor']['dice'])} | "
                    f"{lesions['detected']} / {lesions['missed']} / {lesions['false_positive']} | "
                    f"{case['wall_seconds'] / 60:.1f} min | {case['segment_run']['cpu_seconds'] / 60:.1f} min | "
                    f"{case['segment_run']['peak_rss_mb'] / 1024:.1f} GiB |")
    pooled, lesions = summary["global"], summary["lesions"]
    rows.append(f"| pooled | {_number(pooled['liver']['dice'])} | {_number(pooled['tumor']['dice'])} | "
                f"{lesions['detected']} / {lesions['missed']} / {lesions['false_positive']} | | | |")
    return "\n".join(rows)


def main() -> None:
    args = parse_arguments()
    if args.segment:
        segment(args.segment.resolve())
        return
    from LiverResUNetLib.evaluation.metrics import summarise

    if not args.python.is_file():
        sys.exit(f"{args.python}: no ceiling environment; build it with: bash benchmarks/ceiling_env.sh")
    cases = [run_patient(patient, args) for patient in args.patients]
    summary = summarise(cases)
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "method": "pyliverlesionseg 0.3, pretrained, its own pipeline (cnn_liver_lesion_seg_CT_MR_main)",
        "training_data": TRAINING_DATA,
        "cases": cases,
        "summary": summary,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(table(cases, summary))
    print(f"\n{TRAINING_DATA}\nwrote {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
