"""``densenet-interp explain IMAGE|FOLDER... --model M --out DIR``: a case figure (and arrays) per radiograph.

Inputs are files and folders; a folder is searched recursively for radiographs (:func:`expand_inputs`), and
its outputs mirror its tree under ``--out`` (``FOLDER/a/b/image1.png`` -> ``OUT/FOLDER/a/b/image1.png``), so
every output of one folder sits at the same depth. A table of every input goes to ``OUT/predictions.csv``
(:data:`PREDICTIONS_COLUMNS`: the probability, the predicted class, the label where the MURA path tells it, the
model and the data it was trained on, or the problem that stopped the image). ``--format png,pdf,svg`` picks
the figure formats; each figure carries the model's data label (footer and file metadata).

For each image: read it (:func:`images.read_radiograph`: 8/16-bit, RGB(A), palette, DICOM named ``.dcm`` or
without suffix...: the format comes from the content, never the name), optionally crop a frame
(:func:`frames.crop_frame`), resize to the model's input size, then explain all good images together,
one forward pass per batch of :data:`BATCH_SIZE` (:func:`~densenet_interp.explain.engine.iter_explanations`).
Writes ``<stem>.png`` (the case figure, no augmentation) and with ``--save-arrays`` ``<stem>.npz``
(:func:`figures.case_arrays`: ``input`` is the model input). ``--method`` picks the map of panel (b) among the
registered saliency methods (:data:`densenet_interp.explain.methods.METHODS`; default ``cam``, the paper's);
for another method the arrays also hold it as ``saliency`` with its name as ``method``.

Nothing the user made is overwritten: an output that would land on an input file is refused for that image
(always, ``--overwrite`` or not), and an output that already exists (an earlier run's) is refused unless
``--overwrite`` is given; names within one run are unique (:func:`unique_stems`). Each refusal is one line
and the other images are still explained.

Robustness contract: a bad image costs one line ``path: problem`` on stderr and the other images are still
explained (exit status 1); a bad model stops everything before any image is read (ModelFileError, exit
status 2, printed by :mod:`densenet_interp.cli`); 0 if every image was explained. Never a traceback for
bad input.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, UserFacingError

log = logging.getLogger(__name__)

BATCH_SIZE = 16  # images per forward pass: bounds memory (stage activations) for long lists of images

_MURA_LABEL = re.compile(r"study\d+_(positive|negative)")


def unique_stems(paths: list[str]) -> list[str]:
    """Output stems for input paths: the file stem, extended by parent folders only where stems collide.

    MURA names every file ``imageN.png``, so ``.../patient11185/study1_positive/image1.png`` and another
    study's ``image1.png`` become ``study1_positive_image1`` and ``study2_negative_image1``. Paths given twice
    get ``-2``, ``-3``... suffixes.
    """
    keys = [
        tuple(p for p in Path(path).parent.parts if p not in ("/", ".", "..")) + (Path(path).stem,)
        for path in paths
    ]
    distinct = list(dict.fromkeys(keys))  # the same path twice is told apart by a suffix, not by folders
    depth = [1] * len(distinct)
    while True:
        names = ["_".join(key[-d:]) for key, d in zip(distinct, depth, strict=True)]
        clashing = {name for name in names if names.count(name) > 1}
        grown = False
        for i, name in enumerate(names):
            if name in clashing and depth[i] < len(distinct[i]):
                depth[i] += 1
                grown = True
        if not grown:
            break
    stem_of = dict(zip(distinct, names, strict=True))
    stems = [stem_of[key] for key in keys]
    seen: dict[str, int] = {}
    result = []
    for stem in stems:
        seen[stem] = seen.get(stem, 0) + 1
        result.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return result


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".bmp", ".tif", ".tiff", ".gif", ".webp")
"""What a folder search picks up by name (any case); files without a suffix are taken when they are DICOM."""

FORMATS = ("png", "pdf", "svg")
PREDICTIONS_FILE = "predictions.csv"
PREDICTIONS_COLUMNS = ("path", "output", "probability", "prediction", "label", "model", "data", "problem")


def _is_radiograph(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    if path.suffix:
        return False
    from ..data.dicom import looks_like_dicom

    try:
        with path.open("rb") as stream:
            return looks_like_dicom(stream.read(132))
    except OSError:
        return False


def expand_inputs(arguments: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """``(path, output stem)`` for every radiograph the arguments name, and one line per folder without any.

    A file argument keeps its name (:func:`unique_stems` tells same-named files apart). A folder is searched
    recursively in sorted order, skipping hidden files and folders and macOS ``._`` files; its images keep their
    place in the tree: ``FOLDER/a/image1.png`` gets the stem ``FOLDER/a/image1``. Stems that still collide
    (a folder given twice, ``x.png`` beside ``x.dcm``) get ``-2``, ``-3``... suffixes.
    """
    files = [a for a in arguments if not Path(a).is_dir()]
    file_stems = iter(unique_stems(files))
    found: list[tuple[str, str]] = []
    empty: list[str] = []
    for argument in arguments:
        folder = Path(argument)
        if not folder.is_dir():
            found.append((argument, next(file_stems)))
            continue
        base = folder.resolve().name or "root"
        images = [
            path
            for path in sorted(folder.rglob("*"))
            if path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            and _is_radiograph(path)
        ]
        if not images:
            empty.append(f"{argument}: no radiographs in this folder (looked for {', '.join(IMAGE_SUFFIXES)} "
                         "and DICOM files without a suffix)")  # fmt: skip
        for path in images:
            relative = path.relative_to(folder)
            found.append((str(path), str(Path(base, *relative.parent.parts, relative.stem))))
    seen: dict[str, int] = {}
    unique = []
    for path, stem in found:
        seen[stem] = seen.get(stem, 0) + 1
        unique.append((path, stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"))
    return unique, empty


def parse_formats(value: str) -> tuple[str, ...]:
    """``"png,pdf"`` -> ``(".png", ".pdf")``; a one-line error for anything else."""
    names = [v.strip().lower().lstrip(".") for v in value.split(",") if v.strip()]
    bad = [n for n in names if n not in FORMATS]
    if not names or bad:
        raise UserFacingError(f"--format takes a comma-separated list of {', '.join(FORMATS)}; got {value!r}")
    return tuple(f".{n}" for n in dict.fromkeys(names))


def model_data_label(model_path: str) -> str:
    """What the model was trained on, from the ``card.json`` this project writes beside every model."""
    import json

    card = Path(model_path).parent / "card.json"
    try:
        info = json.loads(card.read_text())
        return f"model {info['model_set']} trained on {info['data_label']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "model of unknown training data (no readable card.json beside it)"


def label_from_path(path: str) -> int | None:
    """1/0 for MURA-layout paths (``study*_positive`` / ``_negative``), None otherwise."""
    found = _MURA_LABEL.search(str(path))
    return None if found is None else int(found.group(1) == "positive")


def _resolved(path) -> Path:
    """``path`` made absolute with links resolved, so that two spellings of one file compare equal."""
    return Path(path).expanduser().resolve()


def _report(problem: str) -> None:
    print(problem, file=sys.stderr, flush=True)


def _load_explainer(model_path: str):
    """Load the model (safe mode) and build its explainer; ModelFileError naming the file otherwise."""
    from ..explain.engine import Explainer
    from ..models.densenet import load_model

    model = load_model(model_path)
    try:
        return Explainer(model)
    except ModelFileError as exc:
        raise ModelFileError(exc.problem, path=model_path) from None


def _prepare(path: str, size: int, crop: bool) -> np.ndarray:
    """The image as the model will see it, ``uint8 (S, S)`` (DataError for unreadable files)."""
    from ..data.frames import crop_frame
    from ..data.images import read_radiograph, resize_square

    image = read_radiograph(path)
    if crop:
        image, _ = crop_frame(image)
    return resize_square(image, size)


def _write(
    explainer, explanation, batch: list[tuple[str, str, np.ndarray]], args, out: Path, rows: dict
) -> int:
    """Write the files of one explained batch, and its rows of ``predictions.csv`` into ``rows``; returns the
    number of images that failed to write."""
    from ..explain import methods
    from ..explain.figures import case_arrays, case_figure, write_case_files
    from ..models.inference import verdict

    shown = None  # panel (b) shows the CAM unless another method is asked for
    if args.method != methods.DEFAULT_METHOD:
        shown = methods.saliency(args.method, explainer, explanation)
    failed = 0
    for index, (path, stem, gray) in enumerate(batch):
        probability = float(explanation.probability[index])
        label = label_from_path(path)
        title = f"{Path(path).name} · predicted {verdict(probability)} (p = {probability:.3f})"
        if label is not None:
            title += f" · label {'abnormal' if label else 'normal'} (from the MURA path)"
        fig = case_figure(
            explanation,
            index,
            gray,
            title=title,
            label=label,
            top_k=args.top_k,
            rank=args.rank,
            input_caption="input",
            saliency=None if shown is None else shown[index],
            saliency_title=methods.title(args.method),
        )
        arrays = None
        if args.save_arrays:
            extra = {"label": -1 if label is None else label, "source": str(path)}
            if shown is not None:
                extra.update(method=args.method, saliency=shown[index])
            arrays = case_arrays(explanation, index, gray, channels=fig.channels, extra=extra)
        try:
            written = write_case_files(
                fig, arrays, out / stem, formats=args.formats, data_label=args.data_label
            )
        except OSError as exc:
            _report(f"{out / stem}: cannot write the outputs ({exc.strerror or exc})")
            rows[stem].update(problem=f"cannot write the outputs ({exc.strerror or exc})")
            failed += 1
            continue
        rows[stem].update(probability=round(probability, 6), prediction=verdict(probability),
                          label="" if label is None else label, problem="")  # fmt: skip
        log.info(f"{path}: p(abnormal) = {probability:.3f} -> {', '.join(str(p) for p in written.values())}")
    return failed


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from ..explain import methods  # the registry only: no TensorFlow until a map is computed

    p = sub.add_parser(
        "explain",
        help="write the case figure (CAM and layer-wise activations) for one or more radiographs",
        description="For each IMAGE (or each radiograph in a FOLDER), one forward pass gives the prediction, the "
        "CAM and the activations at the initial convolution and the end of dense blocks 1-4; writes <stem>.png "
        "(and <stem>.npz), and predictions.csv with a row per input.",
    )
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="radiograph files (PNG, JPEG, DICOM, ...) or folders (searched recursively; outputs mirror the tree)",
    )
    p.add_argument("--model", required=True, help="a model.keras trained by this project")
    p.add_argument(
        "--out", required=True, help="output folder (also gets predictions.csv, one row per input)"
    )
    p.add_argument(
        "--format",
        default="png",
        metavar="FORMATS",
        help=f"figure formats, comma-separated, of {', '.join(FORMATS)} (default png)",
    )
    p.add_argument("--save-arrays", action="store_true", help="also write <stem>.npz with the arrays")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs an earlier run wrote (an input file is never replaced)",
    )
    p.add_argument("--crop-frame", action="store_true", help="detect a rectangular frame and crop inside it")
    p.add_argument("--top-k", type=int, default=16, help="channels per activation panel (default 16)")
    p.add_argument(
        "--rank",
        choices=("distinct", "mean", "max"),  # explain.maps.RANKS (not imported: it loads TensorFlow)
        default="distinct",
        help="how the shown channels are picked: by mean activation skipping near-duplicate maps (distinct, the "
        "default), by mean alone (the paper's rule) or by maximum",
    )
    p.add_argument(
        "--method",
        choices=list(methods.METHODS),
        default=methods.DEFAULT_METHOD,
        help=f"the saliency map of panel (b) (default {methods.DEFAULT_METHOD}, the paper's CAM)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Explain every image; 0 if all were explained, 1 if some failed (one line each on stderr)."""
    if args.top_k < 1:
        raise UserFacingError(f"--top-k must be at least 1, got {args.top_k}")
    args.formats = parse_formats(args.format)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserFacingError(f"{out}: --out is a file, expected a folder")
    table = out / PREDICTIONS_FILE
    images, empty = expand_inputs(args.images)
    inputs = {_resolved(path) for path, _ in images}
    if _resolved(table) in inputs:
        raise UserFacingError(
            f"{table}: the predictions table would replace an input file; choose another --out"
        )
    if table.exists() and not args.overwrite:
        raise UserFacingError(f"{table} exists (an earlier run's?); pass --overwrite to replace its outputs")
    for line in empty:
        _report(line)
    if not images:
        raise UserFacingError("no radiographs to explain in " + ", ".join(args.images))
    from ..explain.engine import iter_explanations

    explainer = _load_explainer(args.model)
    args.data_label = model_data_label(args.model)
    size = explainer.input_size
    prepared: list[tuple[str, str, np.ndarray]] = []  # (path, stem, image) of the good images, in order
    suffixes = (*args.formats, ".npz") if args.save_arrays else args.formats
    rows = {  # by output stem: unique even where one path is given twice
        stem: dict.fromkeys(PREDICTIONS_COLUMNS, "") | {"path": path, "output": stem, "model": args.model,
                                                        "data": args.data_label}
        for path, stem in images
    }  # fmt: skip

    def good_images():
        """Each readable image at model size, read when the next batch needs it; bad ones reported."""
        for path, stem in images:
            targets = [out / f"{stem}{suffix}" for suffix in suffixes]
            clash = next((t for t in targets if _resolved(t) in inputs), None)
            if clash is not None:
                problem = f"its output {clash} would replace an input file; choose another --out"
            elif (existing := [t for t in targets if t.exists()]) and not args.overwrite:
                problem = f"{existing[0]} exists (an earlier run's?); pass --overwrite to replace it"
            else:
                try:
                    prepared.append((path, stem, _prepare(path, size, args.crop_frame)))
                except UserFacingError as exc:
                    _report(exc.one_line())
                    rows[stem]["problem"] = exc.problem
                    continue
                yield prepared[-1][2]
                continue
            _report(f"{path}: {problem}")
            rows[stem]["problem"] = problem

    unwritten = 0
    for start, explanation in iter_explanations(explainer, good_images(), BATCH_SIZE):
        batch = prepared[start : start + len(explanation)]
        unwritten += _write(explainer, explanation, batch, args, out, rows)
    import pandas as pd

    from ..paths import write_csv_atomic

    try:
        write_csv_atomic(
            pd.DataFrame(list(rows.values()), columns=list(PREDICTIONS_COLUMNS)), table, index=False
        )
    except OSError as exc:
        raise UserFacingError(
            f"{table}: cannot write the predictions table ({exc.strerror or exc})"
        ) from None
    failed = len(images) - len(prepared) + unwritten + len(empty)
    explained = len(prepared) - unwritten
    print(
        f"explained {explained} of {len(images)} image(s) with {args.model}; outputs in {out} ({PREDICTIONS_FILE})"
    )
    return 1 if failed else 0
