"""Inference speed on a 3D-IRCADb-sized CT: end to end, per slice, peak memory, GFLOP/s against the matmul peak.

The CT is a 512 x 512 x 129 phantom patient (the size of 3D-IRCADb-01 patient 1.1) written as a DICOM
series and read back, so "end to end" covers what a user waits for: read the series, preprocess,
run the network slice by slice, post-process, get the label Volume. The networks have random weights:
the network's speed does not depend on them. Post-processing does (it works in the liver's bounding
box), and an untrained network labels nearly every voxel, so these figures are its worst case.

Each network runs in a fresh process, so its peak resident memory is its own; the first end-to-end run
of that process is the cold one (library set-up included) and is reported separately.

Usage (from the repository root):
    .venv/bin/python benchmarks/inference_speed.py [--threads N] [--runs 3] [--slices 129]
Exit status 1 when this project's network misses the CPU target (<= 10 s and <= 1.5 GB end to end).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "benchmarks" / "output" / "inference_speed"
TARGET_SECONDS = 10.0
TARGET_MEMORY_GB = 1.5
NETWORKS = {
    "resunet": "LiverResUNet ResUNet (default architecture)",
    "monai": "MONAI UNet, num_res_units=2, channels 16..256",
}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all)")
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs per network (the first is cold)")
    parser.add_argument("--slices", type=int, default=129, help="slices of the 512 x 512 phantom CT")
    parser.add_argument("--batch-size", type=int, default=None, help="slices per network call (default: predictor's)")
    parser.add_argument("--worker", choices=sorted(NETWORKS), help=argparse.SUPPRESS)
    return parser.parse_args()


def matmul_peak_gflops(size=2048, repeats=8):
    """This machine's float32 matrix-multiply rate (best of ``repeats``), the ceiling for convolutions."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def phantom_series(slices):
    """The phantom CT's DICOM folder and its true label map (.npy), written once and reused."""
    import numpy as np

    from LiverResUNetLib.phantom.anatomy import generate_patient
    from LiverResUNetLib.phantom.ircadb_writer import write_patient_dicom_series

    folder = OUTPUT / f"phantom_512x512x{slices}"
    truth = OUTPUT / f"phantom_512x512x{slices}_labels.npy"
    if not folder.is_dir() or not truth.is_file():
        print(f"writing the phantom CT to {folder} ...", file=sys.stderr, flush=True)
        patient = generate_patient(seed=0, size=512, number=1, slices=slices)
        write_patient_dicom_series(patient.ct, folder, description="benchmark phantom", uid_seed="benchmark")
        np.save(truth, patient.label.array)
    return folder, truth


def postprocess_seconds(truth, spacing):
    """Post-processing of the phantom's true label map: its cost on the output of a well-trained network."""
    import numpy as np

    from LiverResUNetLib.inference.postprocessing import postprocess

    labels = np.load(truth)
    start = time.perf_counter()
    postprocess(labels, spacing)
    return time.perf_counter() - start


def build_model(name):
    """A LoadedModel with random weights: this project's default ResUNet, or the MONAI peer."""
    import torch

    from LiverResUNetLib.model.model_file import LoadedModel, new_card
    from LiverResUNetLib.model.resunet import build_network, default_architecture
    from LiverResUNetLib.preprocessing.intensity import PreprocessingParams

    torch.manual_seed(0)
    params = PreprocessingParams()
    card = new_card(default_architecture(), params)
    if name == "resunet":
        network = build_network(default_architecture())
    else:
        from monai.networks.nets import UNet

        network = UNet(spatial_dims=2, in_channels=params.channels, out_channels=3, channels=(16, 32, 64, 128, 256),
                       strides=(2, 2, 2, 2), num_res_units=2)
    return LoadedModel(network.eval(), card)


def gflop_per_slice(network, params):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        network(torch.zeros(1, params.channels, params.input_size, params.input_size))
    return counter.get_total_flops() / 1e9


def network_seconds(network, params, slices, batch_size):
    """Seconds for the network alone on ``slices`` inputs, batched and channels-last as the predictor runs it."""
    import torch

    inputs = torch.rand(batch_size, params.channels, params.input_size, params.input_size)
    inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        network(inputs)
        start = time.perf_counter()
        for first in range(0, slices, batch_size):
            network(inputs[:min(batch_size, slices - first)])
        return time.perf_counter() - start


def worker(args):
    """One network in this process: end-to-end runs first (for an honest peak RSS), then the network alone."""
    import torch

    from LiverResUNetLib.inference.network_pass import CPU_BATCH_SIZE
    from LiverResUNetLib.inference.predictor import predict_volume
    from LiverResUNetLib.io.dicom_series import read_series

    torch.set_num_threads(args.threads)
    folder, truth = phantom_series(args.slices)
    model = build_model(args.worker)
    runs = []
    for _ in range(args.runs):
        marks = {}
        start = time.perf_counter()
        ct = read_series(folder)
        marks["read"] = time.perf_counter()
        labels = predict_volume(ct, model, device="cpu", batch_size=args.batch_size,
                                progress=lambda fraction, message: marks.setdefault(message, time.perf_counter()))
        end = time.perf_counter()
        runs.append({"total": end - start, "read": marks["read"] - start,
                     "slices": marks["post-processing"] - marks["read"], "post": end - marks["post-processing"]})
        del ct, labels
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    params = model.preprocessing
    batch_size = args.batch_size or CPU_BATCH_SIZE
    print(json.dumps({"runs": runs, "peak_rss_gb": peak_rss_gb,
                      "gflop_per_slice": gflop_per_slice(model.network, params),
                      "network_seconds": network_seconds(model.network, params, args.slices, batch_size),
                      "postprocess_truth_seconds": postprocess_seconds(truth, read_series(folder).spacing)}))


def run_worker(name, args):
    command = [sys.executable, __file__, "--worker", name, "--threads", str(args.threads), "--runs", str(args.runs),
               "--slices", str(args.slices)] + (["--batch-size", str(args.batch_size)] if args.batch_size else [])
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results, peak, load_before, args):
    print(f"machine: {os.cpu_count()} CPUs, torch threads {args.threads}, float32 matmul peak {peak:.0f} GFLOP/s "
          f"(2048^3, best of 8); 1-minute load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
          "(other processes competing for the cores slow every figure)")
    print(f"CT: {args.slices} slices of 512 x 512 (phantom DICOM series, read with read_series), random weights, "
          f"{args.runs} end-to-end runs per network in a fresh process (run 1 cold)\n")
    header = (f"{'network':<46} {'GFLOP/slice':>11} {'net ms/slice':>12} {'GFLOP/s':>8} {'% peak':>6} "
              f"{'e2e cold s':>10} {'e2e warm s':>10} {'e2e ms/slice':>12} {'peak RSS GB':>11}")
    print(header)
    print("-" * len(header))
    for name, result in results.items():
        warm = [run["total"] for run in result["runs"][1:]] or [result["runs"][0]["total"]]
        achieved = result["gflop_per_slice"] * args.slices / result["network_seconds"]
        print(f"{NETWORKS[name]:<46} {result['gflop_per_slice']:>11.2f} "
              f"{1000 * result['network_seconds'] / args.slices:>12.1f} {achieved:>8.1f} "
              f"{100 * achieved / peak:>6.0f} "
              f"{result['runs'][0]['total']:>10.2f} {min(warm):>10.2f} {1000 * min(warm) / args.slices:>12.1f} "
              f"{result['peak_rss_gb']:>11.2f}")
    print("\nend-to-end stages, seconds (read series / preprocess + network + labels at full size / post-process "
          "+ back to the input grid):")
    for name, result in results.items():
        stages = "; ".join(f"run {number}: {run['read']:.2f} / {run['slices']:.2f} / {run['post']:.2f}"
                           for number, run in enumerate(result["runs"], start=1))
        print(f"  {NETWORKS[name]}: {stages}")
    print("  (random weights label most voxels, the worst case for post-processing; on the phantom's true label map "
          f"post-processing takes {results['resunet']['postprocess_truth_seconds']:.2f} s)")
    ours = results["resunet"]
    worst = max(run["total"] for run in ours["runs"])
    met = worst <= TARGET_SECONDS and ours["peak_rss_gb"] <= TARGET_MEMORY_GB
    print(f"\nCPU target for {NETWORKS['resunet']}: <= {TARGET_SECONDS:.0f} s and <= {TARGET_MEMORY_GB} GB "
          "end to end; "
          f"slowest run {worst:.2f} s, peak RSS {ours['peak_rss_gb']:.2f} GB: {'MET' if met else 'NOT MET'}")
    return met


def main():
    args = parse_arguments()
    if args.worker:
        worker(args)
        return 0
    import torch

    phantom_series(args.slices)
    load_before = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    results = {name: run_worker(name, args) for name in NETWORKS}
    return 0 if report(results, peak, load_before, args) else 1


if __name__ == "__main__":
    sys.exit(main())
