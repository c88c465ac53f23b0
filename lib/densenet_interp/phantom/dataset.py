"""Write a whole phantom MURA: images in MURA-v1.1's folder layout, the four index CSVs, annotations, manifest.

The dataset is generated into a hidden temporary sibling folder and renamed to ``MURA-v1.1`` only when
complete, so an interrupted run never leaves a folder that looks like a dataset. Studies are rendered in a
process pool; each study's randomness comes from its own seed sequence (``plan.PlannedStudy.entropy``), and
PNGs carry no timestamps, so the bytes depend on the seed only, never on the number of workers.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from multiprocessing import get_context
from pathlib import Path

from PIL import Image

from .. import __version__
from ..errors import UserFacingError
from ..progress import progress
from .knobs import DEFAULT_LEGEND_CORRELATION, DifficultyKnobs, legend_probabilities
from .lesions import KIND_MIX
from .plan import SPLITS, PlannedStudy, cell_counts, plan_studies
from .radiograph import StudyRequest, render_study

ANNOTATIONS_FILE = "phantom_annotations.json"
MANIFEST_FILE = "phantom_manifest.json"
MAX_LONG_SIDE = 512
MIN_LONG_SIDE = 32
PNG_COMPRESS_LEVEL = 4  # as small as level 6 on these images, a third faster


def check_long_side(long_side: int) -> None:
    if not MIN_LONG_SIDE <= long_side <= MAX_LONG_SIDE:
        raise UserFacingError(
            f"long side must be between {MIN_LONG_SIDE} and {MAX_LONG_SIDE} pixels (MURA's images are at most "
            f"about 512), got {long_side}"
        )


def _check_args(scale: float, long_side: int, workers: int | None) -> None:
    if not scale > 0:
        raise UserFacingError(f"scale must be > 0 (a fraction of the real MURA study counts), got {scale}")
    check_long_side(long_side)
    if workers is not None and workers < 1:
        raise UserFacingError(f"workers must be at least 1, got {workers}")


def _render_and_write(task: tuple) -> list[tuple[str, dict]]:
    """Worker: render one study, write its PNGs under ``root``, return ``[(image path, annotation)]``."""
    study, root, seed, long_side, knobs, legend_correlation = task
    req = StudyRequest(
        part=study.part,
        label=study.label,
        n_images=study.n_images,
        entropy=study.entropy(seed),
        long_side=long_side,
        knobs=knobs,
        legend_correlation=legend_correlation,
    )
    folder = Path(root) / study.directory.removeprefix("MURA-v1.1/")
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (img, ann) in enumerate(render_study(req), start=1):
        Image.fromarray(img).save(folder / f"image{k}.png", format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        path = study.image_path(k)
        info = {
            "split": study.split,
            "patient": f"patient{study.patient:05d}",
            "study": study.study,
            "image": k,
        }
        rows.append((path, {**info, **ann}))
    return rows


def generate_dataset(
    out_dir: str | Path,
    scale: float,
    seed: int = 0,
    long_side: int = 512,
    legend_correlation: float | None = None,
    workers: int | None = None,
    knobs: DifficultyKnobs | None = None,
) -> Path:
    """Write a phantom MURA into ``out_dir/MURA-v1.1`` and return that path.

    ``scale`` multiplies the real study counts (at least 3 studies per body part, split and label);
    ``legend_correlation`` in [0, 1] sets how much more often abnormal images carry a text legend (default
    0.2; see ``knobs.legend_probabilities``); ``workers`` processes render studies (default: all cores);
    ``knobs`` sets the difficulty (default :class:`DifficultyKnobs`). Refuses to overwrite an existing
    ``MURA-v1.1``.
    """
    _check_args(scale, long_side, workers)
    knobs = knobs or DifficultyKnobs()
    correlation = DEFAULT_LEGEND_CORRELATION if legend_correlation is None else float(legend_correlation)
    p_abnormal, p_normal = legend_probabilities(correlation, knobs.legend_base_rate)
    out_dir = Path(out_dir)
    final = out_dir / "MURA-v1.1"
    if final.exists():
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        else:
            raise UserFacingError("already exists; delete it to generate a new phantom dataset", final)
    out_dir.mkdir(parents=True, exist_ok=True)
    studies = plan_studies(scale, seed)
    tmp = Path(tempfile.mkdtemp(prefix=".MURA-v1.1.partial-", dir=out_dir))
    try:
        tasks = [(s, str(tmp), seed, long_side, knobs, correlation) for s in studies]
        rows = _run(tasks, workers or os.cpu_count() or 1)
        _write_indexes(tmp, studies, rows)
        manifest = {
            "generator": "densenet_interp.phantom",
            "version": __version__,
            "scale": scale,
            "seed": seed,
            "long_side": long_side,
            "legend_correlation": correlation,
            "legend_probability": {"abnormal": p_abnormal, "normal": p_normal},
            "knobs": knobs.to_dict(),
            "kind_mix": KIND_MIX,
            "studies": len(studies),
            "images": len(rows),
            "counts": {
                split: {part: {"normal": n0, "abnormal": n1} for part, (n0, n1) in parts.items()}
                for split, parts in cell_counts(scale).items()
            },
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _run(tasks: list[tuple], workers: int) -> list[tuple[str, dict]]:
    """Render all studies (in a pool when ``workers`` > 1), returning rows in study order."""
    rows: list[tuple[str, dict]] = []
    if workers == 1 or len(tasks) < 2:
        for task in progress(tasks, total=len(tasks), what="phantom MURA", unit="study"):
            rows += _render_and_write(task)
        return rows
    with _pool_context().Pool(min(workers, len(tasks))) as pool:
        rendered = pool.imap(_render_and_write, tasks, chunksize=2)
        for got in progress(rendered, total=len(tasks), what="phantom MURA", unit="study"):
            rows += got
    return rows


def _pool_context():
    """Fork (fast start) unless TensorFlow is loaded: forking a process with TF's threads can deadlock."""
    return get_context("spawn" if "tensorflow" in sys.modules else "fork")


def _write_indexes(root: Path, studies: list[PlannedStudy], rows: list[tuple[str, dict]]) -> None:
    """The four headerless index CSVs in the real format, and the annotation file keyed by image path."""
    for split in SPLITS:
        images = [path for path, ann in rows if ann["split"] == split]
        labelled = [f"{s.directory},{s.label}" for s in studies if s.split == split]
        (root / f"{split}_image_paths.csv").write_text("".join(f"{p}\n" for p in images))
        (root / f"{split}_labeled_studies.csv").write_text("".join(f"{line}\n" for line in labelled))
    annotations = {path: ann for path, ann in rows}
    (root / ANNOTATIONS_FILE).write_text(json.dumps(annotations, separators=(",", ":")) + "\n")


def dataset_size_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in Path(root).rglob("*") if f.is_file())
