"""The training configuration: YAML in, overrides on top, clear errors, and what --resume may change."""

from pathlib import Path

import pytest
import yaml

from LiverResUNetLib.errors import InputError
from LiverResUNetLib.training.config import (
    TrainConfig,
    apply_overrides,
    load_config,
    parse_assignment,
    resume_differences,
    write_config,
)

DOCUMENTED = Path(__file__).resolve().parents[1] / "LiverResUNetTrainer" / "Resources" / "config.yaml"


def test_a_partial_file_keeps_the_other_defaults_and_overrides_win(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("seed: 7\noptimization:\n  epochs: 3\n  learning_rate: 1\n"
                    "augmentation:\n  flip_probability: 0.5\n")
    config = load_config(path, {"optimization.epochs": 5, "split.folds": 4})
    assert config.seed == 7
    assert config.optimization.epochs == 5
    assert config.optimization.learning_rate == 1.0 and isinstance(config.optimization.learning_rate, float)
    assert config.augmentation.flip_probability == 0.5
    assert config.split.folds == 4
    assert config.optimization.batch_size == TrainConfig().optimization.batch_size


def test_written_config_reads_back_identically(tmp_path):
    config = apply_overrides(TrainConfig(), {"network": {"base_width": 8}, "runtime.max_minutes": 2.5})
    write_config(config, tmp_path / "used.yaml")
    assert load_config(tmp_path / "used.yaml") == config


@pytest.mark.parametrize("text, fragment", [
    ("optimization:\n  epoch: 3\n", "unknown option(s) optimization.epoch"),
    ("optimization:\n  epochs: many\n", "optimization.epochs must be int"),
    ("optimization:\n  epochs: 0\n", "optimization.epochs must be at least 1"),
    ("split:\n  fold: 1\n", "split.fold needs split.folds"),
    ("split:\n  val_fraction: 1.0\n", "split.val_fraction must be at least 0"),
    ("optimization:\n  schedule: step\n", "optimization.schedule must be one of"),
    ("tumor_stage:\n  max_steps: 0\n", "tumor_stage.max_steps must be at least 1"),
    ("tumor_stage:\n  equalization: hist\n", "tumor_stage.equalization must be one of"),
    ("- a list\n", "must be a mapping"),
    ("seed: [unclosed\n", "not valid YAML"),
])
def test_bad_files_name_the_file_and_the_option(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert fragment in str(caught.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_assignments_are_read_as_yaml():
    key, value = parse_assignment("optimization.learning_rate=3e-4")
    assert apply_overrides(TrainConfig(), {key: value}).optimization.learning_rate == 3e-4
    assert parse_assignment("runtime.max_minutes=null") == ("runtime.max_minutes", None)
    assert parse_assignment("preprocessing.window=[-200, 300]") == ("preprocessing.window", [-200, 300])
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_assignment("optimization.epochs")


def test_resume_may_change_only_runtime_length_and_paths():
    saved = apply_overrides(TrainConfig(), {"network": {"base_width": 8}}).to_dict()
    allowed = apply_overrides(TrainConfig(), {
        "network": {"base_width": 8}, "optimization.epochs": 99, "runtime.device": "cpu",
        "runtime.max_minutes": 1.0, "data": "/moved/dataset", "out": "/elsewhere"}).to_dict()
    assert resume_differences(saved, allowed) == []
    changed = apply_overrides(TrainConfig(), {"network": {"base_width": 16}, "optimization.learning_rate": 0.1,
                                              "sampling.tumor_fraction": 0.9}).to_dict()
    assert resume_differences(saved, changed) == [
        "network.base_width", "optimization.learning_rate", "sampling.tumor_fraction"]
    older = {key: value for key, value in saved.items() if key != "synthesis"}  # a run started before it existed
    older["augmentation"] = {key: value for key, value in saved["augmentation"].items() if "phase" not in key}
    older["tumor_stage"] = {key: value for key, value in saved["tumor_stage"].items()
                            if key not in ("augmentation", "beyond_liver_mm")}
    assert resume_differences(older, allowed) == []
    assert resume_differences(older, apply_overrides(TrainConfig(), {"network": {"base_width": 8},
                                                                     "synthesis.copies": 2}).to_dict()) == [
        "synthesis.copies"]
    before_the_cascade = {key: value for key, value in older.items() if key != "tumor_stage"}
    assert resume_differences(before_the_cascade, allowed) == ["tumor_stage"]  # single-stage runs: not resumable


def test_documented_config_lists_every_option_with_its_default():
    from LiverResUNetLib.model.resunet import default_architecture
    from LiverResUNetLib.preprocessing.intensity import PreprocessingParams

    documented = yaml.safe_load(DOCUMENTED.read_text())
    assert documented["network"] == default_architecture()
    assert documented["preprocessing"] == PreprocessingParams().to_dict()
    defaults = TrainConfig().to_dict()
    for section, value in defaults.items():
        assert section in documented, f"config.yaml does not document '{section}'"
        if isinstance(value, dict) and value:
            assert documented[section] == value, f"config.yaml's '{section}' differs from the code's defaults"
    assert load_config(DOCUMENTED).to_dict() == {**defaults, "network": documented["network"],
                                                 "preprocessing": documented["preprocessing"]}


@pytest.mark.parametrize("name", ["phantom_cpu.yaml", "cpu.yaml"])
def test_the_cpu_files_are_valid_configurations(name):
    from LiverResUNetLib.model.resunet import build_network, default_architecture

    config = load_config(DOCUMENTED.with_name(name))
    multiple = build_network(default_architecture()).size_multiple
    patch = config.sampling.patch_size
    size = config.preprocessing.input_size
    assert patch % multiple == 0 and patch <= size, "train cannot cut these patches"
    assert config.optimization.early_stopping_patience == 0, "it trains on the clock (--max-minutes)"
