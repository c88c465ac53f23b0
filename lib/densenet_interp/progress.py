"""Progress of the long CPU steps outside training (the phantom, the decode cache, localisation): a tqdm bar.

The bar goes to standard error and is redrawn at most every :data:`INTERVAL` seconds:

* in a terminal, tqdm draws it in place;
* under Make, ``densenet-interp step`` (commands/step.py) reads the updates, draws the latest one in place on
  the console when that is a terminal, and keeps them in the step's log; a console that is not a terminal (CI,
  a pipe) gets no progress lines, so it stays short;
* in a notebook it is a standard-error output, which JupyterLab draws in place (its final state is kept in the
  executed notebook).

``DENSENET_INTERP_PROGRESS=0`` turns every bar off. A bar never changes what is computed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 2.0  # seconds between two redraws of a bar (and two lines of a step's log)
PATTERN = r"\d+%\|.*\|\s*\d+/\d+ \["
"""A regular expression that matches a line tqdm draws (``what:  40%|####  | 120/300 [00:35<00:52, ...]``);
``densenet-interp step`` uses it to recognise progress in a step's output."""


def enabled() -> bool:
    """Whether bars are drawn: unless ``DENSENET_INTERP_PROGRESS`` is ``0``."""
    return os.environ.get("DENSENET_INTERP_PROGRESS", "1").strip() != "0"


def progress(iterable: Iterable[T], *, total: int | None, what: str, unit: str = "image") -> Iterator[T]:
    """Yield the items of ``iterable`` while a bar named ``what`` counts them (``total`` of them, in ``unit``)."""
    if not enabled():
        yield from iterable
        return
    from tqdm import tqdm

    bar = tqdm(
        iterable, total=total, desc=what, unit=unit, file=sys.stderr, mininterval=INTERVAL, maxinterval=INTERVAL * 5,
        smoothing=0.1, dynamic_ncols=True, ascii=True,
    )  # fmt: skip
    with bar:
        yield from bar
