"""benchmarks/train_real.py sets each figure beside its target and the pretrained ceiling's figure on the same
test patient, and says when the ceiling has not been run."""

import json
from pathlib import Path

import pytest
from benchmark_script import load_benchmark


@pytest.fixture(scope="module")
def train_real():
    return load_benchmark("train_real")


def directions() -> list[dict]:
    return [{"train": "3Dircadb1.1", "test": "3Dircadb1.7", "liver": {"dice": 0.841}},
            {"train": "3Dircadb1.7", "test": "3Dircadb1.1", "liver": {"dice": 0.935}}]


def test_each_figure_is_set_beside_its_target_and_the_ceiling_on_the_same_patient(train_real, tmp_path: Path) -> None:
    ceiling = tmp_path / "results.json"
    ceiling.write_text(json.dumps({
        "created": "2026-12-07T08:27:45Z", "training_data": "far more patients",
        "cases": [{"case_id": "3Dircadb1.1", "liver": {"dice": 0.966}},
                  {"case_id": "3Dircadb1.7", "liver": {"dice": 0.902}}],
        "summary": {"global": {"tumor": {"dice": 0.847}}}}))
    comparison = train_real.against_targets(directions(), 0.48, ceiling)
    rows = {row["figure"]: row for row in comparison["rows"]}
    to_17, to_11, tumor = (rows["liver Dice 3Dircadb1.1 -> 3Dircadb1.7"], rows["liver Dice 3Dircadb1.7 -> 3Dircadb1.1"],
                           rows["tumor Dice pooled"])
    assert to_17["missed_by"] == pytest.approx(0.089) and to_17["ceiling"] == 0.902
    assert to_11["missed_by"] == 0 and to_11["ceiling"] == 0.966
    assert tumor["missed_by"] == pytest.approx(0.02) and tumor["ceiling"] == 0.847
    assert comparison["ceiling"]["training_data"] == "far more patients"
    table = train_real.comparison_table(comparison).splitlines()
    assert table[0] == ("liver Dice 3Dircadb1.1 -> 3Dircadb1.7: 0.841 (target 0.93: missed by 0.089; pretrained "
                        "ceiling 0.902)")
    assert "target 0.93: met" in table[1]


def test_without_the_ceiling_the_rows_say_so(train_real, tmp_path: Path) -> None:
    comparison = train_real.against_targets(directions(), None, tmp_path / "missing.json")
    assert [row["ceiling"] for row in comparison["rows"]] == [None, None, None]
    assert comparison["rows"][2]["missed_by"] == 0.5
    assert "ceiling_pyliverlesionseg.py" in comparison["ceiling"]
    assert "pretrained ceiling not run" in train_real.comparison_table(comparison)
