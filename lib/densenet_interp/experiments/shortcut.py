"""A controlled shortcut: does the framework catch a model that reads the text legend instead of the wrist?

The paper suspects that its wrist model reads the text legend (Figure 5) but cannot prove it on real MURA. The
phantom can: two datasets are generated that differ ONLY in how strongly the text legend goes with the label
(``control``: legend_correlation 0, legends independent of the label; ``shortcut``: 0.9, legends almost give
the label away), with the same seed and everything else equal. ``wrist_pretrained`` is trained on each with
the paper's recipe (same seed, same initial weights). Both models are then evaluated on both validation sets,
each at two checkpoints of its run: the epoch the paper's selection rule keeps (``model.keras``) and the last
epoch (on a short schedule the rule tends to keep an early epoch that has not learned much, shortcut or not):

* on the correlated set the shortcut model's accuracy looks fine, because the shortcut works there;
* on the neutral set (legend_correlation 0) the shortcut no longer pays;
* on both, the share of the CAM's positive mass inside the legend, against the legend's area share (chance)
  and against the control model on the very same images, shows what the model uses.

:func:`flag_shortcut` turns that into a rule a user could run without knowing the answer: a model is flagged
when its legend share is significantly above chance AND significantly above the control's (95 % patient
bootstrap intervals of the per-image excess and of the paired difference both exclude 0).

Run by ``densenet-interp shortcut --profile P`` (``make shortcut``); writes
``results/<profile>/tables/shortcut.csv`` (last), ``shortcut.md``, ``shortcut_per_image.csv`` and
``results/<profile>/figures/shortcut.png``; datasets go to ``data/<profile>/shortcut/``, models to
``results/<profile>/models/shortcut_<variant>/``. Everything is resumable: finished datasets and models are
reused, never regenerated or retrained.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..evaluate.localisation import summary_row
from ..evaluate.measures import share_column
from ..evaluate.stats import (
    MIN_PATIENTS,
    bootstrap_mean,
    format_interval,
    paired_difference,
    paired_values,
    percentile_interval,
    pool_seeds,
    resampled_means,
)
from ..paths import Layout, RunFiles, exclusive, write_csv_atomic, write_text_atomic
from ..profiles import Profile, get_model_set, get_profile

MODEL_SET = "wrist_pretrained"
BODY_PARTS = ("XR_WRIST",)
MAX_SCALE = 0.05  # see experiment_scale
MANIFEST = "phantom_manifest.json"  # written by the generator into every dataset it finishes


@dataclass(frozen=True)
class Variant:
    """One phantom dataset of the experiment: a name and the legend-label correlation it is generated with."""

    name: str
    legend_correlation: float


CONTROL = Variant("control", 0.0)
SHORTCUT = Variant("shortcut", 0.9)
NEUTRAL = CONTROL.name  # the control's validation split is the neutral evaluation set
CHECKPOINTS = ("selected", "last")  # model.keras (the paper's epoch rule) and the last epoch of the run


# ----------------------------------------------------------------------------------------------------------
# data and models


def variant_mura_dir(work_dir: Path, variant: Variant) -> Path:
    return Path(work_dir) / variant.name / "MURA-v1.1"


def experiment_scale(profile: Profile) -> float:
    """The phantom scale of the experiment: the profile's, capped at :data:`MAX_SCALE`.

    The generator renders every body part, but only the wrist is used here, and it is rendered twice; the cap
    bounds that cost (about 2 x 2,000 images at the cap) while keeping hundreds of wrist training images.
    """
    return min(profile.phantom_scale, MAX_SCALE)


def make_variant_data(
    profile: Profile, variant: Variant, work_dir: Path, seed: int, scale: float, log: Callable[[str], None]
) -> Path:
    """Generate (once) the phantom of ``variant``; return its ``MURA-v1.1`` folder.

    The generator renames a finished dataset into place, so an existing folder is complete; it is reused if
    its manifest records the same scale, seed, image size and legend correlation, and regenerated otherwise.
    """
    mura_dir = variant_mura_dir(work_dir, variant)
    with exclusive(Path(work_dir) / f".{variant.name}.lock", on_wait=log):  # parallel seeds generate it once
        return _make_variant_data(profile, variant, mura_dir, seed, scale, log)


def _make_variant_data(
    profile: Profile, variant: Variant, mura_dir: Path, seed: int, scale: float, log: Callable[[str], None]
) -> Path:
    from ..phantom import generate_dataset

    wanted = {
        "scale": scale,
        "seed": seed,
        "long_side": profile.phantom_long_side,
        "legend_correlation": variant.legend_correlation,
    }
    manifest = mura_dir / MANIFEST
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        differ = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
        if not differ:
            return mura_dir
        log(f"{variant.name}: existing phantom differs (found, wanted): {differ}; generating it again")
    shutil.rmtree(mura_dir, ignore_errors=True)
    started = time.perf_counter()
    generate_dataset(mura_dir.parent, **wanted)
    log(
        f"{variant.name}: generated phantom (legend_correlation {variant.legend_correlation}, scale {scale}) in "
        f"{time.perf_counter() - started:.0f} s: {mura_dir}"
    )
    return mura_dir


def _drop_stale_model(out_dir: Path, mura_dir: Path, profile: Profile, log: Callable[[str], None]) -> None:
    """Delete a finished run whose card names other data or another profile (it would never be retrained)."""
    from ..data.mura import fingerprint, read_mura

    card_file = RunFiles(out_dir).card
    if not card_file.is_file():
        return
    card = json.loads(card_file.read_text())
    current = fingerprint(read_mura(mura_dir))
    recipe = {key: value for key, value in (card.get("profile") or {}).items() if key != "departures"}
    if card.get("data_fingerprint") != current or recipe != json.loads(json.dumps(profile.recipe())):
        log(f"{out_dir.name}: trained on other data or another profile; training again")
        shutil.rmtree(out_dir)


def train_variant(
    profile: Profile,
    variant: Variant,
    mura_dir: Path,
    results_dir: Path,
    standin_weights: str | Path | None,
    seed: int,
    cache_dir: Path,
    log: Callable[[str], None],
) -> Path:
    """Train ``wrist_pretrained`` on a variant's data (resumes; a finished run is reused); return its folder."""
    from ..models.training import train_model_set

    out_dir = Layout(Path(results_dir)).model_dir(f"shortcut_{variant.name}")
    _drop_stale_model(out_dir, mura_dir, profile, log)
    train_model_set(
        profile,
        get_model_set(MODEL_SET),
        mura_dir,
        out_dir,
        standin_weights=standin_weights,
        seed=seed,
        log=log,
        cache_dir=cache_dir,
    )
    return out_dir


def checkpoint_models(run_dir: Path, profile: Profile, log: Callable[[str], None]) -> dict:
    """The models of one run to evaluate: ``selected`` (model.keras, the paper's epoch rule) and ``last`` epoch.

    The paper's rule keeps the epoch where training and validation accuracy differ least, which on a short
    schedule is often an early epoch that has not learned much yet, shortcut or not; the last epoch shows what
    the same training run learns by its end. ``last`` is left out (with a log line) when its weights were not
    kept (large models keep only the epochs a selection rule prefers).
    """
    from ..models.densenet import build_model, load_model

    files = RunFiles(Path(run_dir))
    chosen = {"selected": load_model(files.model)}
    last_weights = files.epoch_weights(profile.epochs)
    if last_weights.is_file():
        last = build_model(profile, pretrained=False)
        last.load_weights(last_weights)
        chosen["last"] = last
    else:
        log(
            f"{files.folder.name}: no weights of the last epoch ({last_weights.name}); evaluating model.keras only"
        )
    return chosen


# ----------------------------------------------------------------------------------------------------------
# evaluation


def evaluate(
    model, model_name: str, checkpoint: str, mura_dirs: dict[str, Path], cache_dir: Path, image_size: int
):
    """Per-image localisation rows of one model on the wrist validation images of every dataset.

    Adds ``model`` (variant the model was trained on), ``checkpoint`` (``selected`` or ``last``) and
    ``eval_set`` (variant of the validation images).
    """
    from ..data import mura, pipeline
    from ..evaluate.localisation import localisation_table
    from ..explain.engine import Explainer
    from ..phantom import load_annotations

    explainer = Explainer(model)
    tables = []
    for eval_set, mura_dir in mura_dirs.items():
        index = mura.read_mura(mura_dir)
        images = mura.select_images(index, "valid", BODY_PARTS)
        cache = pipeline.build_cache(index, image_size, cache_dir)
        table = localisation_table(
            explainer,
            cache.arrays_for(images["path"].tolist()),
            load_annotations(index.root),
            images,
            model_set=MODEL_SET,
        )
        tables.append(table.assign(checkpoint=checkpoint, model=model_name, eval_set=eval_set))
    return pd.concat(tables, ignore_index=True)


SUMMARY_COLUMNS = (
    "checkpoint",
    "model",
    "eval_set",
    "own_data",
    "mass",
    "n_images",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "kappa",
    "n_legend_images",
    "n_legend_patients",
    "legend_share",
    "legend_share_low",
    "legend_share_high",
    "legend_chance",
    "legend_excess",
    "legend_excess_low",
    "legend_excess_high",
    "legend_vs_control",
    "legend_vs_control_low",
    "legend_vs_control_high",
)


def summarise(
    per_image: pd.DataFrame, n_boot: int = 1000, seed: int = 0, mass: str = "relative"
) -> pd.DataFrame:
    """One row per (checkpoint, model, evaluation set): accuracy, kappa, legend share vs chance and vs control.

    Legend measures (share of the CAM's ``mass`` reading, see :mod:`densenet_interp.evaluate.localisation`) are
    averaged over images that show a legend. ``legend_vs_control`` is the paired mean
    difference in legend share against the control model (same checkpoint) on the same images (0 for the
    control itself).
    Intervals are 95 % percentile bootstraps resampling patients.
    """
    from ..evaluate.metrics import cohen_kappa

    column = share_column("legend", mass)
    rows = []
    for (checkpoint, model, eval_set), frame in per_image.groupby(
        ["checkpoint", "model", "eval_set"], sort=False
    ):
        correct = frame["correct"].astype(float).to_numpy()
        accuracy = bootstrap_mean(correct, frame["patient"].to_numpy(), n_boot, seed)
        legend = summary_row(frame[frame["legend_chance"] > 0], column, "legend_chance", n_boot, seed)
        same = (per_image["checkpoint"] == checkpoint) & (per_image["eval_set"] == eval_set)
        pairs = per_image[same & per_image["model"].isin([model, CONTROL.name])]
        with_legend = frame.loc[frame["legend_chance"] > 0, "path"]
        versus = paired_difference(
            pairs.assign(model_set=pairs["model"]),
            column,
            model,
            CONTROL.name,
            with_legend,
            n_boot,
            seed,
        )
        rows.append(
            {
                "checkpoint": checkpoint,
                "model": model,
                "eval_set": eval_set,
                "own_data": model == eval_set,
                "mass": mass,
                "n_images": len(frame),
                "accuracy": accuracy[0],
                "accuracy_low": accuracy[1],
                "accuracy_high": accuracy[2],
                "kappa": cohen_kappa(frame["label"].to_numpy(), frame["probability"].to_numpy()),
                "n_legend_images": legend["n_images"],
                "n_legend_patients": legend["n_patients"],
                "legend_share": legend["share"],
                "legend_share_low": legend["share_low"],
                "legend_share_high": legend["share_high"],
                "legend_chance": legend["chance"],
                "legend_excess": legend["excess"],
                "legend_excess_low": legend["excess_low"],
                "legend_excess_high": legend["excess_high"],
                "legend_vs_control": versus["diff"],
                "legend_vs_control_low": versus["diff_low"],
                "legend_vs_control_high": versus["diff_high"],
            }
        )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    order = {name: i for i, name in enumerate(CHECKPOINTS)}
    summary = summary.sort_values("checkpoint", key=lambda c: c.map(order), kind="stable").reset_index(
        drop=True
    )
    summary["shortcut_flag"] = flag_shortcut(summary)
    return summary


def flag_shortcut(summary: pd.DataFrame) -> pd.Series:
    """The rule: legend share significantly above chance AND significantly above the control model's.

    Significant means the lower end of the 95 % interval is above 0, for the per-image excess over chance and
    for the paired difference to the control, on at least :data:`~densenet_interp.evaluate.stats.MIN_PATIENTS`
    patients whose images show a legend. The control model is never flagged (its difference is 0).
    """
    needed = ("legend_excess_low", "legend_vs_control_low", "n_legend_patients")
    missing = [c for c in needed if c not in summary.columns]
    if missing:
        raise ValueError(f"summary lacks column(s) {missing}; expected the output of shortcut.summarise")
    above_chance = summary["legend_excess_low"].fillna(-np.inf) > 0
    above_control = summary["legend_vs_control_low"].fillna(-np.inf) > 0
    enough = summary["n_legend_patients"] >= MIN_PATIENTS
    return (above_chance & above_control & enough).rename("shortcut_flag")


def flags_across_seeds(
    per_image: Mapping[int, pd.DataFrame],
    summaries: Mapping[int, pd.DataFrame],
    n_boot: int = 1000,
    seed: int = 0,
    mass: str = "relative",
) -> pd.DataFrame:
    """The shortcut flag of the shortcut model, per training seed and pooled over seeds and patients.

    ``per_image[k]`` / ``summaries[k]``: seed ``k``'s ``shortcut_per_image.csv`` and ``shortcut.csv``. One row per
    checkpoint and evaluation set: the seeds' own flags (:func:`flag_shortcut`), and the mean over seeds of the
    legend share's excess over chance and of its difference to the control model, each with a crossed
    seeds x patients 95 % interval (:func:`~densenet_interp.evaluate.stats.pool_seeds`); flagged when both
    intervals lie above 0 on at least :data:`MIN_PATIENTS` patients, the rule of one run.
    """
    seeds = sorted(per_image)
    column = share_column("legend", mass)
    rows = []
    for checkpoint in CHECKPOINTS:
        for eval_set in (SHORTCUT.name, NEUTRAL):
            excess, versus, flags = [], [], []
            for k in seeds:
                frame = per_image[k]
                frame = frame[(frame["checkpoint"] == checkpoint) & (frame["eval_set"] == eval_set)]
                ours = frame[(frame["model"] == SHORTCUT.name) & (frame["legend_chance"] > 0)]
                ours = ours[np.isfinite(ours[column].to_numpy(float))]
                excess.append(
                    ((ours[column] - ours["legend_chance"]).to_numpy(float), ours["patient"].to_numpy())
                )
                pairs = paired_values(frame.assign(model_set=frame["model"]), column, SHORTCUT.name, CONTROL.name,
                                      ours["path"])  # fmt: skip
                versus.append(((pairs["a"] - pairs["b"]).to_numpy(float), pairs["patient"].to_numpy()))
                summary = summaries[k]
                row = summary[(summary["checkpoint"] == checkpoint) & (summary["model"] == SHORTCUT.name)
                              & (summary["eval_set"] == eval_set)]  # fmt: skip
                flags.append(bool(row["shortcut_flag"].iloc[0]) if len(row) else None)
            if not any(len(values) for values, _ in excess):
                continue
            stats = {}
            for name, samples in (("legend_excess", excess), ("legend_vs_control", versus)):
                means = [float(v.mean()) for v, _ in samples if len(v)]
                low, high = percentile_interval(pool_seeds(resampled_means(samples, n_boot, seed), seed))
                stats |= {name: float(np.mean(means)), f"{name}_low": low, f"{name}_high": high}
            n_patients = min(int(pd.unique(p).size) for _, p in excess)
            flagged = (
                stats["legend_excess_low"] > 0
                and stats["legend_vs_control_low"] > 0
                and n_patients >= MIN_PATIENTS
            )
            rows.append(
                {
                    "checkpoint": checkpoint,
                    "model": SHORTCUT.name,
                    "eval_set": eval_set,
                    "seeds": len(seeds),
                    "per_seed_flags": " ".join("flagged" if f else "-" for f in flags),
                    "seeds_flagged": sum(bool(f) for f in flags),
                    **stats,
                    "n_patients": n_patients,
                    "pooled_flag": bool(flagged),
                }
            )
    return pd.DataFrame(rows)


def seeds_findings(pooled: pd.DataFrame) -> list[str]:
    """One sentence per row of :func:`flags_across_seeds`."""
    lines = []
    for r in pooled.itertuples():
        where = (
            "its own validation set" if r.eval_set == SHORTCUT.name else f"the {r.eval_set} validation set"
        )
        lines.append(
            f"- Shortcut model ({r.checkpoint} epoch) on {where}: flagged by {r.seeds_flagged} of {r.seeds} seed(s) "
            f"alone; pooled over seeds and patients, legend excess over chance "
            f"{format_interval(r.legend_excess, r.legend_excess_low, r.legend_excess_high, signed=True)}, vs "
            f"control {format_interval(r.legend_vs_control, r.legend_vs_control_low, r.legend_vs_control_high, signed=True)}"
            f" -> {'FLAGGED as a shortcut' if r.pooled_flag else 'not flagged'}"
        )
    return lines


def findings(summary: pd.DataFrame) -> list[str]:
    """Sentences computed from the summary: what accuracy alone says, and what the legend share says."""
    lines = []
    for _, r in summary.iterrows():
        where = "its own validation set" if r["own_data"] else f"the {r['eval_set']} validation set"
        lines.append(
            f"- `{r['model']}` model ({r['checkpoint']} epoch) on {where}: accuracy "
            f"{format_interval(r['accuracy'], r['accuracy_low'], r['accuracy_high'])}, legend share "
            f"{format_interval(r['legend_share'])} vs chance {format_interval(r['legend_chance'])} (excess "
            f"{format_interval(r['legend_excess'], r['legend_excess_low'], r['legend_excess_high'], signed=True)}"
            f"), vs control {_versus(r)} over {int(r['n_legend_images'])} images with a legend -> "
            f"{'FLAGGED as a shortcut' if r['shortcut_flag'] else 'not flagged'}"
        )
    for checkpoint in pd.unique(summary["checkpoint"]):
        rows = summary[(summary["checkpoint"] == checkpoint) & (summary["model"] == SHORTCUT.name)]
        own, neutral = rows[rows["own_data"]], rows[rows["eval_set"] == NEUTRAL]
        if len(own) and len(neutral):
            caught = bool(own["shortcut_flag"].iloc[0])
            lines.append(
                f"- {checkpoint.capitalize()} epoch: the shortcut model's accuracy is "
                f"{format_interval(own['accuracy'].iloc[0])} on its own validation set and "
                f"{format_interval(neutral['accuracy'].iloc[0])} on the neutral one; on its own set, where only "
                f"accuracy would be looked at, the framework {'flags' if caught else 'does not flag'} it."
            )
    return lines


def _versus(row: pd.Series) -> str:
    return format_interval(
        row["legend_vs_control"], row["legend_vs_control_low"], row["legend_vs_control_high"], signed=True
    )


def shortcut_markdown(summary: pd.DataFrame, data_label: str, variants: tuple[Variant, ...]) -> str:
    """The summary as Markdown with the computed findings and the data label."""
    corr = ", ".join(f"{v.name} = legend_correlation {v.legend_correlation}" for v in variants)
    header = [
        "epoch",
        "model",
        "eval set",
        "images",
        "accuracy",
        "kappa",
        "legend share",
        "chance",
        "vs control",
    ]
    lines = [
        f"Shortcut experiment: `{MODEL_SET}` trained on two phantom variants that differ only in the legend-label "
        f"correlation ({corr}); each model (the epoch the paper's rule selects, and the last epoch of the same run) "
        "evaluated on both wrist validation sets. Legend measures over images showing a legend (share of the "
        f"CAM's {summary['mass'].iloc[0]} mass); 95 % patient-bootstrap intervals.",
        "",
        "| " + " | ".join([*header, "flag"]) + " |",
        "| --- | --- | --- |" + " ---: |" * (len(header) - 3) + " --- |",
    ]
    for _, r in summary.iterrows():
        cells = [
            r["checkpoint"],
            r["model"],
            r["eval_set"],
            str(int(r["n_images"])),
            format_interval(r["accuracy"], r["accuracy_low"], r["accuracy_high"]),
            format_interval(r["kappa"]),
            format_interval(r["legend_share"], r["legend_share_low"], r["legend_share_high"]),
            format_interval(r["legend_chance"]),
            _versus(r),
            "**shortcut**" if r["shortcut_flag"] else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    rule = (
        "Rule: flagged when the legend share is above chance AND above the control model's (both 95 % intervals "
        f"exclude 0), on at least {MIN_PATIENTS} patients with a legend."
    )
    lines += ["", rule, "", *findings(summary), "", f"Data: {data_label}.", ""]
    return "\n".join(lines)


def plot_shortcut(summary: pd.DataFrame) -> Figure:
    """Two panels: accuracy and legend share (with chance) per checkpoint, model and evaluation set, 95 % CIs."""
    fig = Figure(figsize=(max(8.0, 1.1 * len(summary)), 3.6), layout="constrained")
    ax_acc, ax_legend = fig.subplots(1, 2)
    labels = [f"{r.model} ({r.checkpoint})\non {r.eval_set}" for r in summary.itertuples()]
    x = np.arange(len(summary))
    colors = ["tab:red" if flag else "tab:blue" for flag in summary["shortcut_flag"]]

    def bars(ax, column, title, top):
        value = summary[column].to_numpy(float)
        err = np.abs(
            np.vstack([value - summary[f"{column}_low"], summary[f"{column}_high"] - value]).astype(float)
        )
        ax.bar(x, np.nan_to_num(value), yerr=np.nan_to_num(err), capsize=3, color=colors)
        ax.set_xticks(x, labels, fontsize=6, rotation=90)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, top)

    bars(ax_acc, "accuracy", "accuracy", 1.0)
    highest = np.nanmax(np.r_[summary["legend_share_high"].to_numpy(float), summary["legend_chance"], 0.05])
    bars(ax_legend, "legend_share", "legend share of CAM mass (red: flagged)", min(1.0, 1.2 * highest))
    ax_legend.scatter(x, summary["legend_chance"], marker="_", s=300, color="k", label="chance (legend area)")
    ax_legend.legend(fontsize=7)
    return fig


# ----------------------------------------------------------------------------------------------------------
# the whole experiment


def run_shortcut_experiment(
    profile: Profile | str,
    work_dir: str | Path,
    results_dir: str | Path,
    standin_weights: str | Path | None,
    seed: int = 0,
    log: Callable[[str], None] = print,
    n_boot: int = 1000,
    variants: tuple[Variant, Variant] = (CONTROL, SHORTCUT),
    data_seed: int = 0,
) -> pd.DataFrame:
    """Generate both variants, train on each, evaluate both models (selected and last epoch) on both validation
    sets, write the outputs.

    Args:
        profile: the run profile (image size, epochs; the same for both variants); the phantom scale is
            :func:`experiment_scale` of it.
        work_dir: where the two phantom datasets and their decode cache go (``data/<profile>/shortcut``).
        results_dir: ``results/<profile>``: models under ``models/shortcut_<variant>/``, tables and figure.
        standin_weights: a backbone weights file to start both models from instead of the one
            :func:`~densenet_interp.models.weights.initial_weights` chooses (None: the policy decides).
        seed: the training seed (initial weights, data order, augmentation); the same for both variants.
        data_seed: the seed of the two phantom variants (``make seeds`` varies ``seed`` only).
        variants: ``(control, shortcut)``; the first must have legend_correlation 0 (the neutral set).

    Returns the summary (also written to ``tables/shortcut.csv``, last).
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    control, _ = variants
    if control.legend_correlation != 0.0:
        raise ValueError(
            f"the first variant is the neutral control; expected legend_correlation 0, got {control}"
        )
    work_dir, results_dir = Path(work_dir), Path(results_dir)
    cache_dir = work_dir / "cache"
    from ..models.weights import initial_weights

    initial_weights(profile, get_model_set(MODEL_SET), override=standin_weights)  # fail before generating
    scale = experiment_scale(profile)
    mura_dirs = {v.name: make_variant_data(profile, v, work_dir, data_seed, scale, log) for v in variants}
    tables = []
    for variant in variants:
        run_dir = train_variant(
            profile, variant, mura_dirs[variant.name], results_dir, standin_weights, seed, cache_dir, log
        )
        for checkpoint, model in checkpoint_models(run_dir, profile, log).items():
            tables.append(evaluate(model, variant.name, checkpoint, mura_dirs, cache_dir, profile.image_size))
    per_image = pd.concat(tables, ignore_index=True)
    summary = summarise(
        per_image, n_boot=n_boot, seed=0
    )  # the same patient resamples for every training seed
    data_label = f"{profile.data_label}; shortcut variants at phantom scale {scale}"
    write_outputs(summary, per_image, results_dir, data_label, variants)
    return summary


def write_outputs(
    summary: pd.DataFrame, per_image: pd.DataFrame, results_dir: Path, data_label: str, variants
) -> None:
    """Per-image CSV, Markdown and figure first; ``tables/shortcut.csv`` (the Make target) last, all atomic."""
    from ..evaluate.plots import save

    layout = Layout(Path(results_dir))
    tables = layout.tables_dir
    write_csv_atomic(per_image, tables / "shortcut_per_image.csv", index=False, float_format="%.6g",
                     data_label=data_label)  # fmt: skip
    write_text_atomic(tables / "shortcut.md", shortcut_markdown(summary, data_label, tuple(variants)))
    save(plot_shortcut(summary), layout.figures_dir / "shortcut.png", data_label=data_label)
    write_csv_atomic(
        summary, tables / "shortcut.csv", index=False, float_format="%.6g", data_label=data_label
    )
