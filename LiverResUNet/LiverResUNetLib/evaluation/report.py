"""The evaluation report: report.json, cases.csv, lesions.csv, figures/*.png and one self-contained report.html.

The HTML embeds its PNG figures as base64, so the single file can be mailed or opened anywhere. It states
how the model's data were split and warns in bold when an evaluated case was one of its training cases.
"""

import base64
import csv
import html
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from LiverResUNetLib.components import CONNECTIVITY
from LiverResUNetLib.evaluation.figures import (
    plot_confusion_matrix,
    plot_slice_overlay,
    plot_training_curves,
    select_slices,
)
from LiverResUNetLib.evaluation.lesions import DETECTION_RULE
from LiverResUNetLib.evaluation.metrics import HD_PERCENTILE, OVERLAP_METRICS, STRUCTURES
from LiverResUNetLib.volume import LABEL_NAMES

REPORT_HTML = "report.html"
FIGURES = "figures"
DIGITS = {"hd95_mm": 1}  # millimetres to a tenth; ratios to three decimals
TABLE_METRICS = (("dice", "Dice"), ("iou", "IoU"), ("sensitivity", "sensitivity"), ("precision", "precision"),
                 ("hd95_mm", "HD95 (mm)"), ("accuracy", "accuracy"), ("specificity", "specificity"))
LESION_COLUMNS = ("case_id", "kind", "lesion", "volume_ml", "centroid_k", "centroid_j", "centroid_i", "detected",
                  "dice", "false_positive")
STRUCTURE_TITLES = {"liver": "Liver (labels 1 + 2)", "tumor": "Tumor (label 2)"}
DEFINITIONS = {
    "liver": "the organ: every voxel labelled liver (1) or tumor (2)",
    "tumor": "voxels labelled tumor (2)",
    "undefined metrics": "a metric whose denominator is empty is reported as undefined (null in JSON, blank in CSV, "
                         "a dash in tables), never as 0 or 1",
    "tumor-free case": "a case whose reference has no tumor voxel; it has no tumor Dice, IoU, sensitivity, "
                        "precision or HD95 and is scored by its false-positive tumor voxels and lesions",
    "HD95 (mm)": f"symmetric {HD_PERCENTILE}th-percentile Hausdorff distance between the mask surfaces (voxels "
                 "with a face neighbour outside the mask), in mm on the voxel grid's own spacing: the larger of the "
                 "two directed percentiles",
    "mean ± sd (n)": "mean and sample standard deviation over the n cases where the metric is defined",
    "global": "all voxels of all evaluated cases pooled into one set of counts",
    "lesions": f"3D connected components of the tumor mask with {CONNECTIVITY}-connectivity; {DETECTION_RULE}; "
               "a predicted lesion overlapping no reference lesion is a false positive; the Dice of a reference "
               "lesion compares it with the union of the predicted lesions overlapping it (0 when missed); "
               "centroids are voxel indices [k, j, i] of the image as stored",
    "confusion matrix": "voxel counts, rows = reference label, columns = predicted label (background, liver, tumor)",
    "best and worst slices": "per-slice score = mean of the liver Dice and, where tumor is present or predicted, "
                             "the tumor Dice on that slice; slices are axial, counted from the feet end (k = 0), "
                             "shown with the patient's right on the left of the image and the front at the top",
}
STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1280px;
       color: #222; line-height: 1.4; padding: 0 16px; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f3f7; } td.name, th.name { text-align: left; }
td.note { text-align: center; color: #555; font-style: italic; }
.warning { background: #fdecea; border: 2px solid #c62828; color: #b71c1c; padding: 10px 14px; font-size: 1.1em; }
.notice { background: #fff8e1; border: 1px solid #f0c36d; padding: 8px 12px; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #444; text-align: center; }
img { max-width: 100%; } .muted { color: #666; font-size: 0.9em; } dt { font-weight: bold; }
"""


def file_stem(case_id: object) -> str:
    """A case id made safe as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(case_id))


def split_overlap(split: dict[str, Any] | None, case_ids: Sequence[str]) -> dict[str, Any]:
    """Which evaluated case ids the model trained on, validated on, or never saw."""
    recorded = split or {}
    train, validation = set(recorded.get("train") or ()), set(recorded.get("val") or ())
    return {
        "training": [case_id for case_id in case_ids if case_id in train],
        "validation": [case_id for case_id in case_ids if case_id in validation and case_id not in train],
        "held_out": [case_id for case_id in case_ids if case_id not in train | validation],
        "split_known": bool(recorded),
    }


def write_case_figures(figures_folder: str | Path, case_id: str, ct: np.ndarray, reference: np.ndarray,
                       prediction: np.ndarray, window: Sequence[float], pixel_spacing: Sequence[float]
                       ) -> dict[str, dict[str, Any]]:
    """Draw the best and the worst slice of one case; returns ``{"best"|"worst": {slice, slices, score, file}}``.

    The arrays are ``[k, row, column]`` in canonical axial orientation (k from the feet, rows from the front,
    columns from the patient's right); ``file`` is relative to the report folder.
    """
    folder = Path(figures_folder)
    folder.mkdir(parents=True, exist_ok=True)
    drawn = {}
    for which, (k, score) in select_slices(prediction, reference).items():
        name = f"{file_stem(case_id)}_{which}_slice.png"
        plot_slice_overlay(ct[k], reference[k], prediction[k], folder / name, window, pixel_spacing,
                           title=f"{case_id}: {which} slice (axial k={k}, score {score:.3f})")
        drawn[which] = {"slice": k, "slices": int(ct.shape[0]), "score": score, "file": f"{FIGURES}/{name}"}
    return drawn


def case_rows(cases: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per case for cases.csv (blank = undefined)."""
    rows = []
    for case in cases:
        row = {"case_id": case["case_id"], "source": case.get("source", ""), "tumor_free": case["tumor_free"],
               "in_training_set": case.get("in_training_set", False)}
        for structure in STRUCTURES:
            for metric, _ in TABLE_METRICS:
                row[f"{structure}_{metric}"] = case[structure][metric]
            for key in ("reference_ml", "prediction_ml", "tp", "fp", "fn", "tn"):
                row[f"{structure}_{key}"] = case[structure][key]
        for key in ("reference_lesions", "predicted_lesions", "detected", "missed", "false_positive"):
            row[f"lesions_{key}"] = case["lesions"][key]
        rows.append(row)
    return rows


def lesion_rows(cases: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per reference and per predicted lesion of every case, for lesions.csv."""
    rows = []
    for case in cases:
        for kind in ("reference", "predicted"):
            for lesion in case["lesions"][kind]:
                k, j, i = lesion["centroid_kji"]
                rows.append({"case_id": case["case_id"], "kind": kind, "lesion": lesion["lesion"],
                             "volume_ml": lesion["volume_ml"], "centroid_k": k, "centroid_j": j, "centroid_i": i,
                             "detected": lesion.get("detected", ""), "dice": lesion.get("dice", ""),
                             "false_positive": lesion.get("false_positive", "")})
    return rows


def _write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: "" if value is None else value for key, value in row.items()})


def write_report(folder: str | Path, report: dict[str, Any]) -> dict[str, Any]:
    """Write report.json, cases.csv, lesions.csv, the summary figures and report.html into ``folder``.

    ``report`` holds ``cases`` (:func:`case_metrics` results with ``case_id``, ``source`` and ``figures``),
    ``summary`` (:func:`summarise`), ``model`` (``path`` and ``card``), ``data`` and ``split_overlap``.
    ``folder`` is meant to be the temporary folder of ``atomic_directory``. Returns the report as written to
    report.json (with the figure paths and the definitions added).
    """
    out = Path(folder)
    (out / FIGURES).mkdir(parents=True, exist_ok=True)
    training = report["model"]["card"].get("training") or {}
    written = dict(report, definitions=DEFINITIONS)
    written["figures"] = {
        "training_curves": _relative(out, plot_training_curves(training.get("history"),
                                                               out / FIGURES / "training_curves.png")),
        "confusion_matrix": _relative(out, plot_confusion_matrix(
            written["summary"]["confusion_matrix"], out / FIGURES / "confusion_matrix.png",
            f"All {written['summary']['n_cases']} cases, voxels")),
    }
    (out / "report.json").write_text(json.dumps(written, indent=2, allow_nan=False), encoding="utf-8")
    rows = case_rows(written["cases"])
    _write_csv(out / "cases.csv", rows, list(rows[0]) if rows else ["case_id"])
    _write_csv(out / "lesions.csv", lesion_rows(written["cases"]), LESION_COLUMNS)
    (out / REPORT_HTML).write_text(render_html(written, out), encoding="utf-8")
    return written


def _relative(folder: Path, path: Path | None) -> str | None:
    return None if path is None else Path(path).relative_to(folder).as_posix()


def _number(value: object, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _format_mean_sd(statistic: dict[str, Any], digits: int = 3) -> str:
    if statistic["mean"] is None:
        return "— (n=0)"
    sd = "" if statistic["sd"] is None else f" ± {statistic['sd']:.{digits}f}"
    return f"{statistic['mean']:.{digits}f}{sd} (n={statistic['n']})"


def _image(folder: str | Path, relative: str, caption: str) -> str:
    data = base64.b64encode((Path(folder) / relative).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _ids(case_ids: Sequence[str] | None) -> str:
    return html.escape(", ".join(case_ids)) if case_ids else "none"


def _split_section(report: dict[str, Any]) -> str:
    split = (report["model"]["card"].get("training") or {}).get("split") or {}
    overlap = report["split_overlap"]
    parts = ["<h2>How the data were split</h2>"]
    if overlap["training"]:
        parts.append(f'<p class="warning"><strong>WARNING: {len(overlap["training"])} evaluated case(s) were in '
                     f"this model's TRAINING set ({_ids(overlap['training'])}). Their scores measure memorisation, "
                     "not performance on new patients.</strong></p>")
    if not overlap["split_known"]:
        parts.append('<p class="warning"><strong>The model card does not record how its data were split: '
                     "whether the evaluated cases were held out cannot be checked.</strong></p>")
        return "\n".join(parts)
    fold = f"; fold {split.get('fold')} of {split['folds']}" if split.get("folds") else ""
    parts.append(
        f"<p>Split recorded in the model card: <b>{html.escape(str(split.get('method', 'not named')))}</b> "
        f"(seed {html.escape(str(split.get('seed')))}{html.escape(fold)}). "
        f"Training cases ({len(split.get('train') or [])}): {_ids(split.get('train'))}. "
        f"Validation cases ({len(split.get('val') or [])}, used to choose the best checkpoint): "
        f"{_ids(split.get('val'))}.</p>")
    parts.append(f"<p>Evaluated here: {len(overlap['held_out'])} held-out case(s) never seen in training "
                 f"({_ids(overlap['held_out'])}); {len(overlap['validation'])} validation case(s) "
                 f"({_ids(overlap['validation'])}); {len(overlap['training'])} training case(s).</p>")
    if overlap["validation"]:
        parts.append('<p class="notice">Validation cases picked the checkpoint: their scores are slightly '
                     "optimistic.</p>")
    return "\n".join(parts)


def _summary_rows(summary: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(structure, metric title, "mean ± sd (n)" over cases, pooled value text) for every summary metric."""
    for structure in STRUCTURES:
        for metric, title in TABLE_METRICS:
            digits = DIGITS.get(metric, 3)
            pooled = _number(summary["global"][structure][metric], digits) if metric in OVERLAP_METRICS \
                else "per case only"
            yield structure, title, _format_mean_sd(summary["per_case"][structure][metric], digits), pooled


def _summary_section(summary: dict[str, Any]) -> str:
    rows = []
    for index, (structure, title, over_cases, pooled) in enumerate(_summary_rows(summary)):
        heading = (f'<th class="name" rowspan="{len(TABLE_METRICS)}">{STRUCTURE_TITLES[structure]}</th>'
                   if index % len(TABLE_METRICS) == 0 else "")
        rows.append(f'<tr>{heading}<td class="name">{title}</td><td>{over_cases}</td><td>{pooled}</td></tr>')
    lesions, tumor_free = summary["lesions"], summary["tumor_free_cases"]
    return f"""<h2>Summary over {summary['n_cases']} case(s)</h2>
<table><tr><th class="name">structure</th><th class="name">metric</th><th>mean ± sd over cases (n)</th>
<th>global (all voxels pooled)</th></tr>
{''.join(rows)}</table>
<p><b>Lesion detection:</b> {lesions['detected']} of {lesions['reference_lesions']} reference lesions detected
(rate {_number(lesions['detection_rate'])}), {lesions['missed']} missed, {lesions['false_positive']} false-positive
lesions ({_number(lesions['false_positives_per_case'], 2)} per case); lesion precision
{_number(lesions['precision'])}, recall {_number(lesions['recall'])}; per-lesion Dice
{_format_mean_sd(lesions['lesion_dice'])}.</p>
<p>{_tumor_free_sentence(tumor_free)}</p>"""


def _tumor_free_sentence(tumor_free: dict[str, Any]) -> str:
    if not tumor_free["case_ids"]:
        return "No evaluated case is tumor-free."
    return (f"<b>Tumor-free cases</b> ({len(tumor_free['case_ids'])}: {_ids(tumor_free['case_ids'])}) have no "
            f"tumor Dice; {tumor_free['with_false_positive_lesions']} of them got false-positive tumor lesions; "
            f"false-positive tumor volume {_format_mean_sd(tumor_free['false_positive_ml'], 2)} mL.")


def _case_table(cases: Iterable[dict[str, Any]]) -> str:
    header = "".join(f"<th>{title}</th>" for _, title in TABLE_METRICS)
    rows = []
    for case in cases:
        cells = [f'<td class="name">{html.escape(case["case_id"])}'
                 f'{" <b>(TRAINING CASE)</b>" if case.get("in_training_set") else ""}</td>']
        cells += [f"<td>{_number(case['liver'][metric], DIGITS.get(metric, 3))}</td>" for metric, _ in TABLE_METRICS]
        tumor = case["tumor"]
        if case["tumor_free"]:
            cells.append(f'<td class="note" colspan="5">tumor-free: {tumor["fp"]:,} false-positive voxels '
                         f'({tumor["false_positive_ml"]:.2f} mL)</td>')
            cells += [f"<td>{_number(tumor[metric])}</td>" for metric in ("accuracy", "specificity")]
        else:
            cells += [f"<td>{_number(tumor[metric], DIGITS.get(metric, 3))}</td>" for metric, _ in TABLE_METRICS]
        lesions = case["lesions"]
        cells.append(f"<td>{lesions['detected']} / {lesions['reference_lesions']}</td>"
                     f"<td>{lesions['false_positive']}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"""<h2>Per case</h2>
<table><tr><th rowspan="2" class="name">case</th><th colspan="7">{STRUCTURE_TITLES['liver']}</th>
<th colspan="7">{STRUCTURE_TITLES['tumor']}</th><th colspan="2">lesions</th></tr>
<tr>{header}{header}<th>detected / reference</th><th>false positive</th></tr>
{''.join(rows)}</table>"""


def _confusion_table(matrix: Sequence[Sequence[int]]) -> str:
    header = "".join(f"<th>{name}</th>" for name in LABEL_NAMES)
    rows = "".join(f'<tr><th class="name">{name}</th>' + "".join(f"<td>{count:,}</td>" for count in row) + "</tr>"
                   for name, row in zip(LABEL_NAMES, matrix))
    return f'<table><tr><th class="name">reference \\ prediction</th>{header}</tr>{rows}</table>'


def _lesion_table(lesions: dict[str, Any]) -> str:
    if not lesions["reference"] and not lesions["predicted"]:
        return "<p>No tumor lesion in the reference or the prediction.</p>"
    rows = "".join(f"<tr><td>{row['lesion']}</td><td>{row['volume_ml']:.2f}</td>"
                   f"<td>{'detected' if row['detected'] else '<b>missed</b>'}</td><td>{row['dice']:.3f}</td></tr>"
                   for row in lesions["reference"])
    false_positive = [row["volume_ml"] for row in lesions["predicted"] if row["false_positive"]]
    volumes = ", ".join(f"{volume:.2f}" for volume in false_positive) or "none"
    return (f'<table><tr><th>reference lesion</th><th>volume (mL)</th><th>result</th><th>lesion Dice</th></tr>'
            f"{rows}</table><p>False-positive lesions: {len(false_positive)} (volumes in mL: {volumes}).</p>")


def _case_section(case: dict[str, Any], folder: str | Path) -> str:
    figures = "".join(_image(folder, drawn["file"], f"{which} slice: axial k={drawn['slice']} of {drawn['slices']} "
                                                    f"counted from the feet, score {drawn['score']:.3f}")
                      for which, drawn in case.get("figures", {}).items())
    warning = ('<p class="warning"><strong>WARNING: this case was in the model\'s training set.</strong></p>'
               if case.get("in_training_set") else "")
    return f"""<h3 id="case-{html.escape(file_stem(case['case_id']))}">{html.escape(case['case_id'])}</h3>
{warning}<p class="muted">{html.escape(str(case.get('source', '')))}</p>
{f'<p class="notice">{html.escape(case["note"])}</p>' if case.get("note") else ""}
<div class="figures">{figures or '<p>No liver in the reference or the prediction: no slice to show.</p>'}</div>
<div class="figures"><div><b>Confusion matrix (voxels)</b>{_confusion_table(case['confusion_matrix'])}</div>
<div><b>Lesions</b>{_lesion_table(case['lesions'])}</div></div>"""


def render_html(report: dict[str, Any], folder: str | Path) -> str:
    """The whole report as one HTML page with the PNG figures of ``folder`` embedded."""
    model = report["model"]
    figures = [_image(folder, report["figures"]["confusion_matrix"], "Confusion matrix, all cases")]
    if report["figures"]["training_curves"]:
        figures.insert(0, _image(folder, report["figures"]["training_curves"], "Training curves (model card)"))
    else:
        figures.insert(0, "<p>The model card has no training history: no training curves.</p>")
    definitions = "".join(f"<dt>{html.escape(key.replace('_', ' '))}</dt><dd>{html.escape(text)}</dd>"
                          for key, text in report["definitions"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>LiverResUNet evaluation</title><style>{STYLE}</style></head>
<body>
<h1>LiverResUNet evaluation report</h1>
<p class="muted">Model: {html.escape(str(model['path']))}<br>Data: {html.escape(str(report['data']))}<br>
Created {html.escape(report.get('created', ''))} with {html.escape(report.get('software', ''))}</p>
{_split_section(report)}
{_summary_section(report['summary'])}
<h2>Figures</h2><div class="figures">{''.join(figures)}</div>
{_case_table(report['cases'])}
<h2>Cases: best and worst slices</h2>
<p class="muted">Reference contours solid, prediction dashed; CT shown in the model's HU window.</p>
{''.join(_case_section(case, folder) for case in report['cases'])}
<h2>Definitions</h2><dl>{definitions}</dl>
</body></html>
"""


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as plain-text lines for a terminal: mean ± sd (n) over cases and the pooled global value."""
    lines = [f"{'structure':<10} {'metric':<12} {'mean ± sd over cases (n)':<28} global"]
    lines += [f"{structure:<10} {title:<12} {over_cases:<28} {pooled}"
              for structure, title, over_cases, pooled in _summary_rows(summary)]
    lesions, tumor_free = summary["lesions"], summary["tumor_free_cases"]
    lines.append(f"lesions: {lesions['detected']}/{lesions['reference_lesions']} detected, "
                 f"{lesions['missed']} missed, {lesions['false_positive']} false positive "
                 f"({CONNECTIVITY}-connected components)")
    lines.append(f"tumor-free cases: {', '.join(map(str, tumor_free['case_ids'])) or 'none'}")
    return lines
