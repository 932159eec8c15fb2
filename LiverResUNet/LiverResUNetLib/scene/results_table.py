"""The results table a radiologist reads beside the segmentation: one row for the liver, one for all tumors,
one per lesion (largest first). Values come from :func:`LiverResUNetLib.measurements.measure_liver`; centroids
are shown in RAS, the coordinates Slicer's views and markups use.
"""

from __future__ import annotations

from typing import Any

import slicer
import vtk

from LiverResUNetLib.scene.volume_nodes import lps_to_ras

LIVER_ROW, TUMORS_ROW = "Liver", "Liver tumors (all)"
LESION_ROW = "Liver tumor {}"  # one per lesion, numbered as LiverResUNetLib.lesion_review numbers them
COLUMNS = ("Structure", "Volume (mL)", "Tumor count", "Tumor burden (% of liver)", "Longest axial diameter (mm)",
           "Centroid R (mm)", "Centroid A (mm)", "Centroid S (mm)")


def _number(value: float | None, decimals: int) -> str:
    return "" if value is None else f"{value:.{decimals}f}"


def results_rows(measurements: dict[str, Any]) -> list[list[str]]:
    """The table's rows as lists of strings, in COLUMNS order (empty where a measure does not apply)."""
    rows = [[LIVER_ROW, _number(measurements["liver_volume_ml"], 1), "", "", "", "", "", ""],
            [TUMORS_ROW, _number(measurements["tumor_volume_ml"], 2), str(measurements["tumor_count"]),
             _number(measurements["tumor_burden_percent"], 2), "", "", "", ""]]
    for lesion in measurements["lesions"]:
        rows.append([LESION_ROW.format(lesion["lesion"]), _number(lesion["volume_ml"], 2), "", "",
                     _number(lesion["longest_axial_diameter_mm"], 1),
                     *(_number(c, 1) for c in lps_to_ras(lesion["centroid_lps"]))])
    return rows


def results_table(measurements: dict[str, Any], name: str = "Liver results") -> slicer.vtkMRMLTableNode:
    """A new table node (outside any scene) showing ``measurements``."""
    table_node = slicer.vtkMRMLTableNode()
    table_node.SetName(name)
    table = table_node.GetTable()
    rows = results_rows(measurements)
    for index, title in enumerate(COLUMNS):
        column = vtk.vtkStringArray()
        column.SetName(title)
        for row in rows:
            column.InsertNextValue(row[index])
        table.AddColumn(column)
    table_node.SetLocked(True)  # computed values: editing them would break their link to the segmentation
    return table_node


def table_rows(table_node: slicer.vtkMRMLTableNode) -> list[list[str]]:
    """Header and rows of a table node as strings, e.g. to write it as CSV exactly as Slicer shows it."""
    table = table_node.GetTable()
    header = [table.GetColumnName(column) for column in range(table.GetNumberOfColumns())]
    return [header] + [[table.GetValue(row, column).ToString() for column in range(table.GetNumberOfColumns())]
                       for row in range(table.GetNumberOfRows())]


def lesion_of_row(table_node: slicer.vtkMRMLTableNode, row: int) -> tuple[int, tuple[float, float, float]] | None:
    """The lesion shown in ``row`` of a results table: (its number, its centroid in the table's RAS mm), or
    None for the liver and all-tumors rows (and rows out of range)."""
    table = table_node.GetTable()
    if not 0 <= row < table.GetNumberOfRows():
        return None
    prefix = LESION_ROW.format("")
    name = table.GetValueByName(row, COLUMNS[0]).ToString()
    if not name.startswith(prefix) or not name[len(prefix):].isdigit():
        return None
    r, a, s = (float(table.GetValueByName(row, title).ToString()) for title in COLUMNS[-3:])
    return int(name[len(prefix):]), (r, a, s)
