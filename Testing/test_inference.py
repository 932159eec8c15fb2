"""Slice-wise inference: labels on the input grid, the same input as training, batching, progress and cancel."""

import numpy as np
import pytest
import torch
from recording_network import RecordingNetwork
from torch.nn import functional

from LiverResUNetLib.devices import pick_device
from LiverResUNetLib.errors import Cancelled, InputError
from LiverResUNetLib.inference.network_pass import labels_on_grid
from LiverResUNetLib.inference.postprocessing import PostprocessOptions
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.model_file import LoadedModel, new_card
from LiverResUNetLib.model.resunet import build_network
from LiverResUNetLib.preprocessing.geometry import slice_grid
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams, preprocess_slices
from LiverResUNetLib.preprocessing.orientation import to_canonical
from LiverResUNetLib.volume import Volume

ARCHITECTURE = {"name": "ResUNet", "in_channels": 3, "num_classes": 3, "base_width": 4, "depth": 3,
                "max_width": 16, "stem_stride": 2}
PARAMS = PreprocessingParams(input_size=32, context_slices=1)  # the 3 slices ARCHITECTURE takes


def tiny_model():
    torch.manual_seed(0)
    return LoadedModel(build_network(ARCHITECTURE).eval(), new_card(ARCHITECTURE, PARAMS))


def small_ct(slices=9, rows=48, columns=40, feet_first=True):
    """A small CT whose slices are stored feet-first (k reversed), with a bright 'liver' block."""
    rng = np.random.default_rng(5)
    hu = rng.normal(-50, 40, size=(slices, rows, columns))
    hu[:, 10:30, 8:28] += 400
    hu[:, 0:4, :] = -1000
    direction = np.diag([1.0, 1.0, -1.0]) if feet_first else np.eye(3)
    return Volume(np.round(hu).astype(np.int16), (0.7, 0.7, 2.0), (10.0, -20.0, 300.0), direction)


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert pick_device("auto") == torch.device("cpu") or pick_device("auto").type == "mps"
        with pytest.raises(InputError, match="CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(InputError, match="unknown device"):
        pick_device("tpu")


def test_labels_come_back_on_the_input_grid_as_uint8():
    ct = small_ct()
    labels = predict_volume(ct, tiny_model(), device="cpu")
    assert labels.same_grid(ct)
    assert labels.array.dtype == np.uint8 and labels.array.flags.c_contiguous
    assert set(np.unique(labels.array)) <= {0, 1, 2}


def test_the_network_sees_exactly_what_training_feeds_it():
    """Canonical slices, THE preprocessing, neighbours as channels, clamped at both ends of the volume."""
    ct = small_ct(slices=7)
    network = RecordingNetwork()
    predict_volume(ct, LoadedModel(network, {"preprocessing": PARAMS.to_dict()}), device="cpu", batch_size=3)
    fed = torch.cat(network.inputs).numpy()
    canonical = to_canonical(ct)
    slices = preprocess_slices(canonical.array, PARAMS, canonical.pixel_spacing)
    neighbours = np.clip(np.arange(7)[:, None] + np.array([-1, 0, 1])[None, :], 0, 6)
    np.testing.assert_array_equal(fed, slices[neighbours])
    assert [len(batch) for batch in network.inputs] == [3, 3, 1]


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_batch_size_does_not_change_the_labels(batch_size):
    ct = small_ct()
    model = tiny_model()
    np.testing.assert_array_equal(predict_volume(ct, model, device="cpu", batch_size=batch_size).array,
                                  predict_volume(ct, model, device="cpu").array)


def test_labels_are_the_argmax_of_bilinearly_upsampled_logits():
    torch.manual_seed(3)
    logits = torch.randn(4, 3, 16, 16) * 3
    expected = functional.interpolate(logits, size=(40, 56), mode="bilinear", align_corners=False).argmax(1)
    labels = labels_on_grid(logits, slice_grid((40, 56), None, 16, None))
    assert labels.dtype == torch.uint8
    assert torch.equal(labels.long(), expected)
    assert torch.equal(labels_on_grid(logits, slice_grid((16, 16), None, 16, None)).long(), logits.argmax(1))


def test_progress_increases_and_ends_at_one():
    calls = []
    predict_volume(small_ct(slices=10), tiny_model(), device="cpu", batch_size=3,
                   progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [fraction for fraction, _ in calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(later > earlier for earlier, later in zip(fractions, fractions[1:]))
    assert len(calls) >= 4 + 2  # every batch, then post-processing and done
    assert all(isinstance(message, str) and message for _, message in calls)


def test_cancel_midway_raises_cancelled_and_stops_the_network():
    network = RecordingNetwork()
    asked = []

    def cancel():
        asked.append(True)
        return len(asked) >= 3

    with pytest.raises(Cancelled):
        predict_volume(small_ct(slices=10), LoadedModel(network, {"preprocessing": PARAMS.to_dict()}),
                       device="cpu", batch_size=2, cancel=cancel)
    assert len(network.inputs) == 2, "the network ran after cancel said stop"


def test_cancel_before_the_first_batch_runs_nothing():
    network = RecordingNetwork()
    with pytest.raises(Cancelled):
        predict_volume(small_ct(), LoadedModel(network, {"preprocessing": PARAMS.to_dict()}), device="cpu",
                       cancel=lambda: True)
    assert network.inputs == []


def test_a_training_network_is_put_back_in_training_mode():
    model = tiny_model()
    model.network.train()
    before = model.network.head_norm.running_mean.clone()
    predict_volume(small_ct(), model, device="cpu")
    assert model.network.training
    assert torch.equal(model.network.head_norm.running_mean, before), "inference updated batch-norm statistics"


def test_post_processing_runs_by_default_and_can_be_turned_off():
    """The recording network labels every bright voxel: a separate bright speck survives only without clean-up."""
    ct = small_ct(feet_first=False)
    array = ct.array.copy()
    array[4, 40:44, 34:38] = 400
    ct = ct.with_array(array)
    params = PreprocessingParams(input_size=48, equalization="none", pixel_size_mm=0.7)  # the CT's own pixels
    model = LoadedModel(RecordingNetwork(), {"preprocessing": params.to_dict()})
    off = PostprocessOptions(keep_largest_liver=False, fill_liver_holes=False, tumor_inside_liver=False,
                             min_tumor_mm3=0.0)
    raw = predict_volume(ct, model, device="cpu", postprocess=off).array
    cleaned = predict_volume(ct, model, device="cpu").array
    assert raw[4, 40:44, 34:38].all() and not cleaned[4, 40:44, 34:38].any()
    assert cleaned[:, 12:28, 10:26].all()


def test_a_single_slice_volume_is_its_own_neighbour():
    network = RecordingNetwork()
    ct = small_ct(slices=1)
    predict_volume(ct, LoadedModel(network, {"preprocessing": PARAMS.to_dict()}), device="cpu")
    fed = network.inputs[0]
    assert fed.shape == (1, 3, 32, 32)
    assert torch.equal(fed[:, 0], fed[:, 1]) and torch.equal(fed[:, 1], fed[:, 2])


class DtypeNetwork(torch.nn.Module):
    """A 1x1 convolution that records the dtype its arithmetic ran in."""

    def __init__(self):
        super().__init__()
        self.convolution = torch.nn.Conv2d(3, 3, 1)
        self.dtypes = []

    def forward(self, inputs):
        output = self.convolution(inputs)
        self.dtypes.append(output.dtype)
        return output


def test_precision_chooses_the_networks_arithmetic():
    ct = small_ct(slices=3)
    network = DtypeNetwork()
    model = LoadedModel(network, {"preprocessing": PARAMS.to_dict()})
    auto = predict_volume(ct, model, device="cpu").array
    fp32 = predict_volume(ct, model, device="cpu", precision="fp32").array
    bf16 = predict_volume(ct, model, device="cpu", precision="bf16").array
    assert network.dtypes == [torch.float32, torch.float32, torch.bfloat16], "auto is fp32 on the CPU"
    np.testing.assert_array_equal(auto, fp32)
    assert bf16.shape == fp32.shape and np.mean(bf16 == fp32) > 0.9
    with pytest.raises(InputError, match="unknown precision"):
        predict_volume(ct, model, device="cpu", precision="fp16")
