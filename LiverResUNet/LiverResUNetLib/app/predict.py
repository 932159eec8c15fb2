"""Label one CT image file with a model: the network's part of the Slicer module's Apply, in a process of its own.

Reads an image file (.nrrd, .nii.gz, .mha), predicts and post-processes its labels and writes them as a label
map on the image's grid (0 background, 1 liver, 2 liver tumor), atomically. No MRML: it runs in any Python
holding the core's packages (Slicer's PythonSlicer included). Progress lines go to standard error. The Slicer
module runs it as a child process so that its window stays live and Cancel ends the prediction at once.

example:
  python -m LiverResUNetLib predict --model liver.pth --input ct.nrrd --output labels.nrrd
"""

import argparse
import json
from pathlib import Path

from LiverResUNetLib.devices import DEVICES
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.progress import ProgressReporter

SUMMARY = "label one CT image file (no MRML): the network's part of the Slicer module's Apply"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="model file (from the train command)")
    parser.add_argument("--input", required=True, type=Path, metavar="IMAGE", help="CT image file in HU")
    parser.add_argument("--output", required=True, type=Path, metavar="LABELS",
                        help="label map to write (.nrrd, .nii.gz, .nii or .mha)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where the network runs (default: auto = CUDA, then MPS, then CPU)")
    parser.add_argument("--batch-size", type=int, help="slices per network batch (default: chosen for the device)")
    parser.add_argument("--postprocessing", type=json.loads, metavar="JSON",
                        help='post-processing options as JSON, e.g. \'{"min_tumor_mm3": 20}\' (default: defaults)')


def run(args: argparse.Namespace) -> int:
    from LiverResUNetLib.inference.postprocessing import PostprocessOptions
    from LiverResUNetLib.inference.predictor import predict_volume
    from LiverResUNetLib.io.image_file import read_image, write_image
    from LiverResUNetLib.model.model_file import load_model

    try:
        postprocess = None if args.postprocessing is None else PostprocessOptions.from_dict(args.postprocessing)
    except (TypeError, ValueError) as error:
        raise input_error("--postprocessing", str(error)) from error
    with ProgressReporter() as progress:
        progress(0.0, "reading the image and the model")
        volume = read_image(args.input)
        model = load_model(args.model)
        labels = predict_volume(volume, model, device=args.device, batch_size=args.batch_size,
                                postprocess=postprocess, progress=progress)
    write_image(labels, args.output)
    return 0
