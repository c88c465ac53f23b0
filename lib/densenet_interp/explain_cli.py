"""``densenet-interp explain IMAGE... --model M --out DIR``: a case figure (and arrays) per radiograph file.

For each image: read it (:func:`images.read_radiograph`: 8/16-bit, RGB(A), palette...), optionally crop a
frame (:func:`frames.crop_frame`), resize to the model's input size, then explain all good images together,
one forward pass per batch of :data:`BATCH_SIZE`. Writes ``<stem>.png`` (the case figure, no augmentation)
and with ``--save-arrays`` ``<stem>.npz`` (:func:`figures.case_arrays`: ``input`` is the model input).

Robustness contract: a bad image costs one line ``path: problem`` on stderr and the other images are still
explained (exit status 1); a bad model stops everything before any image is read (ModelFileError, exit
status 2, printed by :mod:`densenet_interp.cli`); 0 if every image was explained. Never a traceback for
bad input.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

from .errors import ModelFileError, UserFacingError

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


def label_from_path(path: str) -> int | None:
    """1/0 for MURA-layout paths (``study*_positive`` / ``_negative``), None otherwise."""
    found = _MURA_LABEL.search(str(path))
    return None if found is None else int(found.group(1) == "positive")


def _report(problem: str) -> None:
    print(problem, file=sys.stderr, flush=True)


def _load_explainer(model_path: str):
    """Load the model (safe mode) and build its explainer; ModelFileError naming the file otherwise."""
    from .explain import Explainer
    from .models import load_model

    model = load_model(model_path)
    try:
        return Explainer(model)
    except ModelFileError as exc:
        raise ModelFileError(exc.problem, path=model_path) from None


def _prepare(path: str, size: int, crop: bool) -> np.ndarray:
    """The image as the model will see it, ``uint8 (S, S)`` (DataError for unreadable files)."""
    from .frames import crop_frame
    from .images import read_radiograph, resize_square

    image = read_radiograph(path)
    if crop:
        image, _ = crop_frame(image)
    return resize_square(image, size)


def _write(explainer, batch: list[tuple[str, str, np.ndarray]], args, out: Path) -> int:
    """Explain one batch and write its files; returns the number of images that failed to write."""
    from .figures import case_arrays, case_figure, write_case_files
    from .images import to_model_input

    explanation = explainer.explain(to_model_input(np.stack([gray for _, _, gray in batch])))
    failed = 0
    for index, (path, stem, gray) in enumerate(batch):
        probability = float(explanation.probability[index])
        label = label_from_path(path)
        title = f"{Path(path).name} · predicted {'abnormal' if probability > 0.5 else 'normal'} (p = {probability:.3f})"
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
        )
        arrays = None
        if args.save_arrays:
            extra = {"label": -1 if label is None else label, "source": str(path)}
            arrays = case_arrays(explanation, index, gray, channels=fig.channels, extra=extra)
        try:
            written = write_case_files(fig, arrays, out / stem, formats=(".png",))
        except OSError as exc:
            _report(f"{out / stem}: cannot write the outputs ({exc.strerror or exc})")
            failed += 1
            continue
        print(f"{path}: p(abnormal) = {probability:.3f} -> {', '.join(str(p) for p in written.values())}")
    return failed


def run(args) -> int:
    """Handler of ``densenet-interp explain`` (arguments: see :mod:`densenet_interp.cli`)."""
    if args.top_k < 1:
        raise UserFacingError(f"--top-k must be at least 1, got {args.top_k}")
    explainer = _load_explainer(args.model)
    out = Path(args.out)
    size = explainer.input_size
    failed, batch = 0, []
    for path, stem in zip(args.images, unique_stems(args.images), strict=True):
        try:
            batch.append((path, stem, _prepare(path, size, args.crop_frame)))
        except UserFacingError as exc:
            _report(exc.one_line())
            failed += 1
            continue
        if len(batch) == BATCH_SIZE:
            failed += _write(explainer, batch, args, out)
            batch = []
    if batch:
        failed += _write(explainer, batch, args, out)
    explained = len(args.images) - failed
    print(f"explained {explained} of {len(args.images)} image(s) with {args.model}; outputs in {out}")
    return 1 if failed else 0
