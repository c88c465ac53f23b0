"""``make seeds``: evaluate each training seed like the main run, then pool all seeds into tables.

Seed 0 is the main run (``results/<profile>/``, evaluated by notebooks 30 and 50 and ``make shortcut``); seed
``k`` > 0 lives in ``results/<profile>/seeds/seed<k>/`` (``Layout.seed(k)``) with the main run's shape. Per
seed, :func:`evaluate_seed` writes what the pooled tables need, computed by the same functions the notebooks
call: ``predictions/<model set>.csv`` (:func:`~densenet_interp.models.inference.predictions_table`) and, on the
phantom, ``tables/localisation_per_image.csv`` and ``tables/frame_crop_per_image.csv``
(:func:`~densenet_interp.evaluate.localisation.model_set_tables`); ``evaluation.json`` (the Make target) last.
The shortcut experiment of a seed is ``densenet-interp shortcut --seed k``.

:func:`summarise_seeds` reads every seed and writes ``tables/table1_seeds.{csv,md}``,
``tables/table1_comparisons_seeds.csv``, ``tables/claims_seeds.{csv,md}`` and (phantom)
``tables/shortcut_seeds.csv``, ``table1_seeds.csv`` last; the statistics are
:mod:`densenet_interp.evaluate.seeds`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..paths import Layout, read_table, write_csv_atomic, write_text_atomic
from ..profiles import MODEL_SETS, Profile

FLOAT_FORMAT = "%.6g"


def evaluate_seed(
    profile: Profile, layout: Layout, mura_dir: str | Path, log: Callable[[str], None] = print
) -> dict:
    """Predictions (and on the phantom the localisation tables) of one seed's four models; returns the record
    written to ``evaluation.json``. ``layout``: the seed's (``Layout.seed(k)``), its ``data`` the profile's."""
    from ..data import mura, pipeline
    from ..evaluate.localisation import model_set_tables
    from ..evaluate.metrics import accuracy, cohen_kappa
    from ..explain.engine import explainer_for
    from ..models import inference
    from ..models.densenet import load_model

    index = mura.read_mura(mura_dir)
    cache = pipeline.build_cache(index, profile.image_size, layout.cache_dir)
    models = {name: load_model(layout.run(name).model) for name in MODEL_SETS}
    record: dict = {"profile": profile.name, "data_label": profile.data_label, "model_sets": {}}
    for name, spec in MODEL_SETS.items():
        table = inference.predictions_table(models[name], index, spec, cache)
        inference.write_predictions(table, layout.predictions_file(name))
        written = pd.read_csv(layout.predictions_file(name))
        y, p = written["label"].to_numpy(), written["probability"].to_numpy()
        record["model_sets"][name] = {
            "n_images": len(written),
            "accuracy": accuracy(y, p),
            "kappa": cohen_kappa(y, p),
        }
        log(f"{name:18s} accuracy {accuracy(y, p):.3f}  kappa {cohen_kappa(y, p):.3f}")
    if profile.phantom:
        from ..phantom import load_annotations

        explainers = {name: explainer_for(model) for name, model in models.items()}
        per_image, frame_crop = model_set_tables(
            explainers, index, load_annotations(index.root), cache, profile.image_size, log=log
        )
        write_csv_atomic(per_image, layout.tables_dir / "localisation_per_image.csv", index=False,
                         float_format=FLOAT_FORMAT, data_label=profile.data_label)  # fmt: skip
        if frame_crop is not None:
            write_csv_atomic(frame_crop, layout.tables_dir / "frame_crop_per_image.csv", index=False,
                             float_format=FLOAT_FORMAT, data_label=profile.data_label)  # fmt: skip
    write_text_atomic(layout.results / "evaluation.json", json.dumps(record, indent=2) + "\n")
    return record


def _read(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{what} is missing; run `make seeds` (it trains and evaluates every seed)", path)
    return read_table(path)


def summarise_seeds(
    profile: Profile, layout: Layout, n_seeds: int, n_boot: int = 1000, log: Callable[[str], None] = print
) -> dict[str, pd.DataFrame]:
    """Read seeds ``0..n_seeds-1`` (seed 0: the main run) and write the pooled tables (see the module)."""
    from ..evaluate import seeds as pooled
    from ..evaluate.metrics import check_predictions

    if n_seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {n_seeds}")
    layouts = {k: layout.seed(k) for k in range(n_seeds)}
    predictions = {
        k: {name: check_predictions(_read(lay.predictions_file(name), f"seed {k}'s {name} predictions"),
                                    lay.predictions_file(name))
            for name in MODEL_SETS}
        for k, lay in layouts.items()
    }  # fmt: skip
    label = f"{profile.data_label}; {n_seeds} training seeds"
    out = {
        "table1_seeds": pooled.table1_seeds(predictions, n_boot=n_boot),
        "table1_comparisons_seeds": pooled.comparisons_seeds(predictions, n_boot=n_boot),
    }
    tables = layout.tables_dir
    extra: list[str] = []
    if profile.phantom:
        from ..experiments import shortcut

        per_image = {k: _read(lay.tables_dir / "localisation_per_image.csv", f"seed {k}'s localisation table")
                     for k, lay in layouts.items()}  # fmt: skip
        frame_crop = {
            k: read_table(lay.tables_dir / "frame_crop_per_image.csv")
            if (lay.tables_dir / "frame_crop_per_image.csv").is_file()
            else None
            for k, lay in layouts.items()
        }
        out["claims_seeds"] = pooled.claims_seeds(per_image, frame_crop, n_boot=n_boot)
        shortcut_images = {k: _read(lay.tables_dir / "shortcut_per_image.csv", f"seed {k}'s shortcut experiment")
                           for k, lay in layouts.items()}  # fmt: skip
        summaries = {
            k: _read(lay.tables_dir / "shortcut.csv", f"seed {k}'s shortcut summary")
            for k, lay in layouts.items()
        }
        out["shortcut_seeds"] = shortcut.flags_across_seeds(shortcut_images, summaries, n_boot=n_boot)
        extra = [
            "## The shortcut flag over seeds (the shortcut experiment, `make shortcut`)",
            "",
            *shortcut.seeds_findings(out["shortcut_seeds"]),
        ]
        write_csv_atomic(out["shortcut_seeds"], tables / "shortcut_seeds.csv", index=False,
                         float_format=FLOAT_FORMAT, data_label=label)  # fmt: skip
        write_csv_atomic(out["claims_seeds"], tables / "claims_seeds.csv", index=False,
                         float_format=FLOAT_FORMAT, data_label=label)  # fmt: skip
        write_text_atomic(
            tables / "claims_seeds.md", pooled.claims_seeds_markdown(out["claims_seeds"], extra, label)
        )
    write_csv_atomic(out["table1_comparisons_seeds"], tables / "table1_comparisons_seeds.csv", index=False,
                     float_format=FLOAT_FORMAT, data_label=label)  # fmt: skip
    write_text_atomic(
        tables / "table1_seeds.md",
        pooled.table1_seeds_markdown(out["table1_seeds"], out["table1_comparisons_seeds"], label),
    )
    write_csv_atomic(out["table1_seeds"], tables / "table1_seeds.csv", index=False,
                     float_format=FLOAT_FORMAT, data_label=label)  # fmt: skip
    log(f"wrote {tables / 'table1_seeds.csv'} ({n_seeds} seeds)")
    return out
