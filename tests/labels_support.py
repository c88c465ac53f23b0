"""The rule that every results file names its data, as one checker for the e2e run and the committed results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from densenet_interp.paths import DATA_COLUMN
from densenet_interp.profiles import PROFILES


def unlabelled_files(results: Path, profile: str) -> list[str]:
    """Every PNG/PDF under ``figures/`` and CSV under ``tables/`` that does not carry the profile's data label
    (PNG ``Description``, PDF ``Subject``, CSV :data:`DATA_COLUMN` on every row); one line per problem."""
    label = PROFILES[profile].data_label
    problems = []
    for png in sorted((results / "figures").glob("*.png")):
        with Image.open(png) as image:
            description = image.text.get("Description", "")
        if label not in description:
            problems.append(f"{png.name}: no data label in its metadata ({description!r})")
    for pdf in sorted((results / "figures").glob("*.pdf")):
        if b"/Subject (Data: " not in pdf.read_bytes():
            problems.append(f"{pdf.name}: no data label in its metadata")
    for csv in sorted((results / "tables").glob("*.csv")):
        frame = pd.read_csv(csv)
        if DATA_COLUMN not in frame.columns:
            problems.append(f"{csv.name}: no {DATA_COLUMN!r} column")
        elif not frame[DATA_COLUMN].astype(str).str.contains(label, regex=False).all():
            problems.append(f"{csv.name}: a row without the data label")
    return problems
