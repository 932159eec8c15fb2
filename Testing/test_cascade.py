"""The liver-then-tumor cascade: one `train` trains both stages into one model file, which segments through the
one predictor; a tumor never lies outside the final liver; single-stage files keep working."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

from LiverResUNetLib.datasets.discovery import discover_cases
from LiverResUNetLib.errors import InputError
from LiverResUNetLib.inference.cascade import add_tumors, touching, within
from LiverResUNetLib.inference.postprocessing import PostprocessOptions
from LiverResUNetLib.inference.predictor import predict_volume
from LiverResUNetLib.model.cascade import tumor_stage_section
from LiverResUNetLib.model.model_file import LoadedModel, load_model, new_card, read_card, save_model
from LiverResUNetLib.model.resunet import build_network, default_architecture
from LiverResUNetLib.preprocessing.intensity import PreprocessingParams
from LiverResUNetLib.preprocessing.liver_box import liver_box, sized_params
from LiverResUNetLib.training.config import TrainConfig, apply_overrides
from LiverResUNetLib.training.loop import train_model
from LiverResUNetLib.training.loss import DiceCrossEntropyLoss
from LiverResUNetLib.training.slices import jittered_livers
from LiverResUNetLib.training.tumor_stage import tumor_stage_config

# Both stages small enough to train in seconds: the liver stage as test_train_command's, the tumor stage at 3 mm
# pixels (the phantom's 8.6 mm pixels resampled finer), 32-pixel patches, a 3-level network of width 8.
TINY_CASCADE = ["--set", "preprocessing.input_size=32", "--set", "preprocessing.pixel_size_mm=12",
                "--set", "network.base_width=8", "--set", "network.depth=3",
                "--set", "optimization.warmup_steps=5", "--lr", "0.01", "--batch-size", "8", "--threads", "1",
                "--set", "tumor_stage.pixel_size_mm=3", "--set", "tumor_stage.patch_size=32",
                "--set", "tumor_stage.network={base_width: 8, depth: 3}", "--set", "tumor_stage.synthetic_copies=2"]


@pytest.fixture(scope="module")
def cascade_run(tiny_phantom_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cascade") / "run"
    result = subprocess.run([sys.executable, "-m", "LiverResUNetLib", "train", "--data", str(tiny_phantom_dataset),
                             "--out", str(out), "--epochs", "4", "--steps-per-epoch", "10", *TINY_CASCADE,
                             "--tumor-shapes", str(tiny_phantom_dataset.parent / "raw" / "3Dircadb1")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result, out


def test_one_train_writes_one_file_holding_both_stages(cascade_run):
    result, out = cascade_run
    path = result.stdout.strip().splitlines()[-1]
    assert path == str(out / "model.pth")
    card = read_card(path)  # the JSON record: no torch, nothing unpickled
    stage = card["tumor_stage"]
    assert stage["preprocessing"]["pixel_size_mm"] == 3.0 and stage["preprocessing"]["liver_channel"] is True
    assert stage["architecture"]["in_channels"] == 6 and stage["architecture"]["base_width"] == 8  # 5 slices, liver
    assert card["preprocessing"]["pixel_size_mm"] == 12.0 and "liver_channel" not in card["preprocessing"]
    assert stage["training"]["history"][-1]["steps"] == 10 and len(stage["training"]["history"]) == 4
    trained = stage["training"]["split"]["train"]  # each patient's liver box and two copies with pasted tumors
    assert "3Dircadb1.1" in trained and "3Dircadb1.1+synthetic2" in trained and len(trained) == 12
    model = load_model(path)
    assert model.tumor_network is not None and model.tumor_network.stem.in_channels == 6
    assert "tumor stage: epoch 4/4" in result.stderr
    assert card["postprocessing"] == {"min_tumor_mm3": 200.0}  # the cascade's minimum lesion size


def test_four_patients_train_on_every_patient_and_say_so(cascade_run):
    result, out = cascade_run
    assert "4 patients (fewer than 5): training on every patient" in result.stderr
    assert json.loads((out / "history.json").read_text())["best"]["val_liver_dice"] is None


def test_the_cascade_segments_and_its_tumor_stage_never_takes_liver_away(
        cascade_run, tiny_phantom_dataset):
    _, out = cascade_run
    cascade = load_model(out / "model.pth")
    assert cascade.card["tumor_stage"]["tumors_beyond_liver"] is True  # trained with tumor_dropout (default 0.5)
    assert cascade.card["tumor_stage"]["adds_liver"] is True
    assert cascade.card["tumor_stage"]["beyond_liver_mm"] == 20.0  # config tumor_stage.beyond_liver_mm
    liver_only = LoadedModel(cascade.network, {key: value for key, value in cascade.card.items()
                                               if key != "tumor_stage"})
    for source in discover_cases(tiny_phantom_dataset)[:2]:
        case = source.load()
        both = predict_volume(case.image, cascade, device="cpu").array
        alone = predict_volume(case.image, liver_only, device="cpu").array
        assert np.count_nonzero(alone) > 0
        assert (both[alone > 0] > 0).all()  # the tumor stage never takes liver away
        assert np.count_nonzero(both) <= 1.5 * np.count_nonzero(alone)  # it may add tumor that touches it
        assert set(np.unique(both)) <= {0, 1, 2}


def _everything_is_tumor(tumors_beyond_liver: bool, found: int = 2, adds_liver: bool = False,
                         beyond_liver_mm: float | None = None) -> LoadedModel:
    """A cascade whose tumor network calls every pixel ``found`` (2: tumor)."""
    params = PreprocessingParams(input_size=16, pixel_size_mm=2.0, liver_channel=True)
    architecture = {**default_architecture(), "in_channels": params.channels, "base_width": 4, "depth": 2}
    network = build_network(architecture)
    with torch.no_grad():
        network.head.bias.copy_(torch.tensor([-50.0, -50.0, -50.0]).index_fill_(0, torch.tensor(found), 50.0))
    card = {**new_card(default_architecture(), PreprocessingParams()),
            "tumor_stage": tumor_stage_section(new_card(architecture, params), 5.0, tumors_beyond_liver, adds_liver,
                                                beyond_liver_mm)}
    return LoadedModel(build_network(default_architecture()), card, None, network.eval())


def _liver_and_hu() -> tuple[np.ndarray, np.ndarray]:
    liver = np.zeros((12, 40, 40), dtype=np.uint8)
    liver[3:9, 10:25, 12:30] = 1
    liver[5, 15, 20] = 2
    return liver, np.random.default_rng(0).normal(60, 20, liver.shape).astype(np.float32)


def test_a_tumor_is_impossible_outside_the_liver():
    """A tumor network that calls everything tumor labels exactly the given liver as tumor, nothing beyond it."""
    liver, hu = _liver_and_hu()
    labels = add_tumors(hu, liver, _everything_is_tumor(False), (1.0, 1.0, 2.0), device="cpu")
    assert np.array_equal(labels, np.where(liver > 0, 2, 0))


def test_a_stage_trained_beyond_the_liver_grows_it_by_touching_tumors_within_the_box_only():
    liver, hu = _liver_and_hu()
    labels = add_tumors(hu, liver, _everything_is_tumor(True), (1.0, 1.0, 2.0), device="cpu")
    box = liver_box(liver > 0, (1.0, 1.0, 2.0), 5.0)
    inside = np.zeros(liver.shape, dtype=bool)
    inside[box] = True
    assert np.array_equal(labels, np.where(inside, 2, 0))  # the whole box: one tumor touching the liver
    assert set(np.unique(labels)) == {0, 2} and (labels[liver > 0] == 2).all()  # none outside the final liver


def test_a_tumor_is_followed_beyond_the_liver_only_as_far_as_the_card_says():
    liver, hu = _liver_and_hu()
    spacing = (1.0, 1.0, 2.0)
    labels = add_tumors(hu, liver, _everything_is_tumor(True, beyond_liver_mm=3.0), spacing, device="cpu")
    assert (labels[liver > 0] == 2).all() and set(np.unique(labels)) == {0, 2}
    assert labels[2, 10:25, 12:30].all() and not labels[1].any()  # 2 mm above the liver followed, 4 mm not
    assert labels[3:9, 10:25, 9].all() and not labels[3:9, 10:25, 8].any()  # 3 mm to the side, not 4 mm
    assert not labels[3:9, 6, 8].any()  # nor the box's corners, that the stage without a reach would keep
    reachless = add_tumors(hu, liver, _everything_is_tumor(True), spacing, device="cpu")
    assert np.count_nonzero(reachless) > np.count_nonzero(labels)


def test_the_reach_is_measured_exactly_though_only_around_the_candidates():
    rng = np.random.default_rng(0)
    mask = ndimage.binary_dilation(rng.random((12, 40, 50)) > 0.995, iterations=2)
    candidates = rng.random(mask.shape) > 0.7
    candidates[:, :, 25:] = False  # the candidates' box is half the volume
    spacing = (0.8, 0.7, 2.0)
    distance = ndimage.distance_transform_edt(~mask, sampling=(2.0, 0.7, 0.8))
    assert np.array_equal(within(mask, candidates, spacing, 5.0), candidates & (distance <= 5.0))
    assert not within(np.zeros_like(mask), candidates, spacing, 5.0).any()


@pytest.mark.parametrize("adds_liver", [True, False])
def test_a_stage_that_adds_liver_adds_what_it_finds_within_the_box_and_takes_none_away(adds_liver):
    liver, hu = _liver_and_hu()
    labels = add_tumors(hu, liver, _everything_is_tumor(False, found=1, adds_liver=adds_liver), (1.0, 1.0, 2.0),
                        device="cpu")
    inside = np.zeros(liver.shape, dtype=bool)
    inside[liver_box(liver > 0, (1.0, 1.0, 2.0), 5.0)] = True
    assert np.array_equal(labels, np.where(inside if adds_liver else liver > 0, 1, 0))


def test_only_tumors_that_touch_the_given_liver_are_kept_and_kept_whole():
    liver = np.zeros((5, 20, 20), dtype=bool)
    liver[1:4, 2:8, 2:8] = True
    tumor = np.zeros_like(liver)
    tumor[2, 6:12, 6:12] = True  # reaches beyond the liver
    tumor[2, 15:18, 15:18] = True  # apart from it
    kept = touching(tumor, liver)
    assert kept[2, 6:12, 6:12].all() and not kept[2, 15:18, 15:18].any()


def test_a_cascade_file_needs_its_tumor_weights_and_a_tumor_stage_alone_does_not_segment(tmp_path, cascade_run,
                                                                                          tiny_phantom_dataset):
    _, out = cascade_run
    cascade = load_model(out / "model.pth")
    with pytest.raises(ValueError, match="go together"):
        save_model(tmp_path / "bad.pth", cascade.network, cascade.card)
    alone = load_model(out / "tumor_stage" / "model.pth")
    case = discover_cases(tiny_phantom_dataset)[0].load()
    with pytest.raises(InputError, match="tumor stage alone"):
        predict_volume(case.image, alone, device="cpu")
    broken = {**cascade.card, "tumor_stage": {**cascade.card["tumor_stage"], "box_margin_mm": -1}}
    save_model(tmp_path / "broken.pth", cascade.network, broken, cascade.tumor_network)
    with pytest.raises(InputError, match="box_margin_mm"):
        load_model(tmp_path / "broken.pth")
    broken = {**cascade.card, "tumor_stage": {**cascade.card["tumor_stage"], "beyond_liver_mm": -5}}
    save_model(tmp_path / "broken.pth", cascade.network, broken, cascade.tumor_network)
    with pytest.raises(InputError, match="beyond_liver_mm must be > 0, got -5"):
        load_model(tmp_path / "broken.pth")


def test_the_liver_box_is_widened_by_the_margin_in_mm_and_clipped():
    liver = np.zeros((10, 50, 60), dtype=bool)
    assert liver_box(liver, (1.0, 1.0, 2.0), 5.0) is None
    liver[4:6, 20:30, 2:40] = True
    assert liver_box(liver, (0.5, 1.0, 2.0), 5.0) == (slice(1, 9), slice(15, 35), slice(0, 50))


def test_the_box_is_fed_whole_on_a_square_that_the_network_takes():
    params = PreprocessingParams(input_size=32, pixel_size_mm=0.75, liver_channel=True)
    sized = sized_params(params, (100, 150), (0.6, 0.6), 16)
    assert sized.input_size == 128 and sized.pixel_size_mm == 0.75  # 150 * 0.6 / 0.75 = 120 -> 128


def test_the_training_liver_channel_grows_or_shrinks_within_the_jitter():
    labels = np.zeros((40, 32, 32), dtype=np.uint8)
    labels[:, 8:24, 8:24] = 1
    masks = jittered_livers(labels, 2, np.random.default_rng(0))
    areas = masks.reshape(40, -1).sum(axis=1)
    assert areas.min() >= 12 * 12 and areas.max() <= 20 * 20 - 4 * 2  # within 2 pixels either way
    assert len(set(areas.tolist())) > 2  # grown and shrunk by different amounts
    assert np.array_equal(jittered_livers(labels, 0, np.random.default_rng(0)), (labels > 0).astype(np.float32))


def test_tumor_dropout_leaves_the_tumors_out_of_that_share_of_liver_channels():
    labels = np.zeros((200, 16, 16), dtype=np.uint8)
    labels[:, 2:14, 2:14] = 1
    labels[:, 6:10, 6:10] = 2
    always = jittered_livers(labels, 0, np.random.default_rng(0), tumor_dropout=1.0)
    assert np.array_equal(always, (labels == 1).astype(np.float32))
    half = jittered_livers(labels, 0, np.random.default_rng(0), tumor_dropout=0.5)
    without = half[:, 8, 8] == 0
    assert 0.35 < without.mean() < 0.65 and (half[:, 3, 3] == 1).all()


def test_the_predictor_applies_the_model_cards_post_processing_unless_told_otherwise(tiny_model_path,
                                                                                   tiny_phantom_dataset):
    model = load_model(tiny_model_path)
    case = discover_cases(tiny_phantom_dataset)[0].load()
    plain = predict_volume(case.image, model, device="cpu", postprocess=PostprocessOptions(min_tumor_mm3=0.0)).array
    assert (plain == 2).any()
    strict = LoadedModel(model.network, {**model.card, "postprocessing": {"min_tumor_mm3": 1e12}})
    assert not (predict_volume(case.image, strict, device="cpu").array == 2).any()
    explicit = predict_volume(case.image, strict, device="cpu", postprocess=PostprocessOptions(min_tumor_mm3=0.0))
    assert np.array_equal(explicit.array, plain)


def test_the_tumor_stage_takes_its_own_equalisation_and_step_cap_and_the_rest_from_the_run(tmp_path):
    config = TrainConfig.from_dict({"optimization": {"learning_rate": 0.02, "batch_size": 4, "epochs": 40,
                                                     "steps_per_epoch": 50}})
    stage, architecture, params = tumor_stage_config(config, config.preprocessing, tmp_path)
    assert params.equalization == "none" and config.preprocessing.equalization == "interior"
    assert (stage.optimization.epochs, stage.optimization.steps_per_epoch) == (16, 50)  # 800 steps at most
    assert (stage.optimization.learning_rate, stage.optimization.batch_size) == (0.02, 4)
    short = TrainConfig.from_dict({"optimization": {"epochs": 2, "steps_per_epoch": 3}})
    assert tumor_stage_config(short, short.preprocessing, tmp_path)[0].optimization.epochs == 2  # under the cap
    uncut = TrainConfig.from_dict({"tumor_stage": {"max_steps": None}})
    assert tumor_stage_config(uncut, uncut.preprocessing, tmp_path)[0].optimization.epochs == 40
    inherited = TrainConfig.from_dict({"preprocessing": {"equalization": "clahe"},
                                       "tumor_stage": {"equalization": None}})
    assert tumor_stage_config(inherited, inherited.preprocessing, tmp_path)[2].equalization == "clahe"
    noisy = TrainConfig.from_dict({"augmentation": {"noise_std": 0.08, "contrast": 0.3},
                                   "tumor_stage": {"augmentation": {"noise_std": 0.02}}})
    augmentation = tumor_stage_config(noisy, noisy.preprocessing, tmp_path)[0].augmentation
    assert (augmentation.noise_std, augmentation.contrast) == (0.02, 0.3)  # its own noise, the run's contrast
    for bad, reason in (({"noise": 0.1}, "unknown option.*augmentation.noise;"),
                        ({"scale_min": 0}, "augmentation.scale_min must be > 0")):
        with pytest.raises(InputError, match=f"tumor_stage: {reason}"):
            tumor_stage_config(TrainConfig.from_dict({"tumor_stage": {"augmentation": bad}}), noisy.preprocessing,
                               tmp_path)


@pytest.mark.parametrize("merges", [True, False])
def test_the_liver_stage_learns_tumors_as_liver_unless_told_otherwise(tiny_phantom_dataset, tmp_path, monkeypatch,
                                                                       merges):
    """What each stage's loss is given: the liver stage liver and background only (liver_stage_merges_tumors), the
    tumor stage the tumors too."""
    seen = []
    original = DiceCrossEntropyLoss.forward

    def recording(self, logits, labels):
        seen.append(int(labels.max()))
        return original(self, logits, labels)

    monkeypatch.setattr(DiceCrossEntropyLoss, "forward", recording)
    config = apply_overrides(TrainConfig(), {
        "data": str(tiny_phantom_dataset), "out": str(tmp_path / "run"), "seed": 1,
        "preprocessing": {"input_size": 32, "pixel_size_mm": 12.0}, "network": {"base_width": 8, "depth": 3},
        "sampling.tumor_fraction": 1.0, "optimization.batch_size": 4, "optimization.epochs": 1,
        "optimization.steps_per_epoch": 3, "runtime.threads": 1, "runtime.workers": 0,
        "tumor_stage.pixel_size_mm": 3.0, "tumor_stage.patch_size": 32,
        "tumor_stage.network": {"base_width": 8, "depth": 3}, "tumor_stage.liver_stage_merges_tumors": merges})
    train_model(config)
    liver_stage, tumor_stage = seen[:3], seen[3:]
    assert len(tumor_stage) == 3
    assert max(liver_stage) == (1 if merges else 2)  # tumor slices only: a 2 in every batch without merging
    assert max(tumor_stage) == 2
