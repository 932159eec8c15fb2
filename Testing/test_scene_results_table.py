"""The results table node: one row for the liver, one for all tumors, one per lesion, centroids in RAS."""

import csv

import numpy as np

from LiverResUNetLib.measurements import measure_liver
from LiverResUNetLib.scene.files import write_table_csv
from LiverResUNetLib.scene.results_table import COLUMNS, results_table, table_rows
from LiverResUNetLib.volume import Volume


def measurements():
    labels = np.zeros((4, 20, 20), np.uint8)
    labels[:, 2:18, 2:18] = 1
    labels[1:3, 4:8, 4:10] = 2
    labels[2, 14, 14] = 2
    return measure_liver(Volume(labels, (1.0, 1.0, 2.5), (-100.0, 50.0, 10.0)))


def test_table_rows_show_liver_tumors_and_each_lesion():
    result = measurements()
    rows = table_rows(results_table(result))
    assert rows[0] == list(COLUMNS)
    assert [row[0] for row in rows[1:]] == ["Liver", "Liver tumors (all)", "Liver tumor 1", "Liver tumor 2"]
    liver, tumors, first, _ = rows[1:]
    assert liver[1] == f"{result['liver_volume_ml']:.1f}"
    assert tumors[1:4] == [f"{result['tumor_volume_ml']:.2f}", "2", f"{result['tumor_burden_percent']:.2f}"]
    assert first[4] == f"{result['lesions'][0]['longest_axial_diameter_mm']:.1f}"


def test_centroids_are_shown_in_ras():
    result = measurements()
    lesion = result["lesions"][0]
    row = table_rows(results_table(result))[3]
    left, posterior, superior = lesion["centroid_lps"]
    assert [float(value) for value in row[5:8]] == [round(-left, 1), round(-posterior, 1), round(superior, 1)]


def test_table_is_locked_and_named():
    table = results_table(measurements(), "CT liver results")
    assert table.GetName() == "CT liver results"
    assert table.GetLocked()


def test_csv_holds_what_the_table_shows(tmp_path):
    table = results_table(measurements())
    path = write_table_csv(table, tmp_path / "results.csv")
    with open(path, newline="", encoding="utf-8") as stream:
        assert list(csv.reader(stream)) == table_rows(table)
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]
