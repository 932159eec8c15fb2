"""A cascade's model file: the liver stage's network and card, with the tumor stage's network and card beside them.

The liver stage is the single-stage model as it always was (whole slices, labels 0/1/2); the card's
``tumor_stage`` section says how the second network is fed (its architecture, preprocessing and the margin of
the liver's box), and how it was trained. One file, loaded without running code like any model file.
"""

from pathlib import Path

from LiverResUNetLib.model.model_file import TUMOR_STAGE, load_model, save_model


def tumor_stage_section(tumor_card: dict, box_margin_mm: float, tumors_beyond_liver: bool = False,
                        adds_liver: bool = False, beyond_liver_mm: float | None = None) -> dict:
    """The ``tumor_stage`` section of a cascade's card, from the card of the tumor network trained alone;
    ``tumors_beyond_liver`` (a stage trained with tumors left out of its liver channel; ``beyond_liver_mm``: how far
    beyond the liver stage's liver it follows them, None: as far as they reach) and ``adds_liver`` (its own liver
    joins the liver stage's) only when set, so that files without them keep their meaning."""
    section = {"architecture": tumor_card["architecture"], "preprocessing": tumor_card["preprocessing"],
               "box_margin_mm": float(box_margin_mm), "training": tumor_card.get("training", {}),
               "metrics": tumor_card.get("metrics", {})}
    if tumors_beyond_liver:
        section["tumors_beyond_liver"] = True
        if beyond_liver_mm is not None:
            section["beyond_liver_mm"] = float(beyond_liver_mm)
    if adds_liver:
        section["adds_liver"] = True
    return section


def write_cascade(liver_path: Path, tumor_path: Path, box_margin_mm: float, out: Path | None = None,
                  tumors_beyond_liver: bool = False, adds_liver: bool = False,
                  beyond_liver_mm: float | None = None) -> Path:
    """Join the liver stage's model file and the tumor stage's into one cascade file at ``out`` (default: over
    ``liver_path``); the liver stage's card (its post-processing included) is the cascade's. Returns its path."""
    liver, tumor = load_model(liver_path), load_model(tumor_path)
    card = {key: value for key, value in liver.card.items() if key != TUMOR_STAGE}
    card[TUMOR_STAGE] = tumor_stage_section(tumor.card, box_margin_mm, tumors_beyond_liver, adds_liver,
                                             beyond_liver_mm)
    return save_model(out or liver_path, liver.network, card, tumor.network)
