"""Where every artefact lives, derived from the project root (never from the working directory).

Everything a profile produces sits under ``results/<profile>/`` and ``data/<profile>/`` so that profiles never
overwrite each other and Make can tell what is up to date. ``DENSENET_INTERP_RESULTS`` and
``DENSENET_INTERP_DATA`` override the two roots (the end-to-end test uses them to run in a temporary folder).

Every artefact name is defined here, once: :class:`Layout` names a profile's folders and files and hands out
:class:`RunFiles`, the files of one training run. Writers go through :func:`atomic_path` (or
:func:`write_text_atomic`, :func:`write_csv_atomic`), so a reader never sees a half-written file.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def anchored(path: str | os.PathLike) -> Path:
    """``path`` as given if absolute, else under the project root (not the working folder, which is
    ``notebooks/`` for a JupyterLab kernel and the project root under Make)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def results_root() -> Path:
    return Path(os.environ.get("DENSENET_INTERP_RESULTS", PROJECT_ROOT / "results")).resolve()


def data_root() -> Path:
    return Path(os.environ.get("DENSENET_INTERP_DATA", PROJECT_ROOT / "data")).resolve()


@dataclass(frozen=True)
class RunFiles:
    """The files of one training run folder (``results/<profile>/models/<model set>/``).

    What each file holds, and when it is written, is described in :mod:`densenet_interp.models.training`.
    """

    folder: Path

    @property
    def model(self) -> Path:
        return self.folder / "model.keras"

    @property
    def card(self) -> Path:
        return self.folder / "card.json"

    @property
    def history(self) -> Path:
        return self.folder / "history.csv"

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def resume(self) -> Path:
        return self.checkpoints / "resume.npz"

    @property
    def tensorboard(self) -> Path:
        return self.folder / "tensorboard"

    @property
    def lock(self) -> Path:
        """Held (:func:`exclusive`) by the one process training this run; other workers wait for it."""
        return self.folder / ".training.lock"

    def epoch_weights(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:03d}.weights.h5"

    def finished(self) -> bool:
        """A run is finished when its model and its card are both written (the model last)."""
        return self.model.is_file() and self.card.is_file()


@dataclass(frozen=True)
class Layout:
    """The artefact names of one profile's run, relative to its results and data folders."""

    results: Path
    data: Path | None = None  # None where only results are needed (the explorer, the shortcut's outputs)

    @classmethod
    def for_profile(cls, profile: str) -> Layout:
        return cls(results_root() / profile, data_root() / profile)

    # --- data ---
    @property
    def phantom_dir(self) -> Path:
        """Parent folder of the phantom ``MURA-v1.1`` folder."""
        return self.data / "phantom"

    @property
    def cache_dir(self) -> Path:
        """Decoded-and-resized image caches, one per (dataset fingerprint, size)."""
        return self.data / "cache"

    @property
    def standin_dir(self) -> Path:
        return self.data / "standin"

    # --- models ---
    @property
    def models_dir(self) -> Path:
        return self.results / "models"

    def model_dir(self, model_set: str) -> Path:
        """A training run's folder: a model set's, ``standin_pretrain`` or ``shortcut_<variant>``."""
        return self.models_dir / model_set

    def run(self, model_set: str) -> RunFiles:
        """The files of ``model_set``'s training run (``model.keras``, ``card.json``, ``history.csv``...)."""
        return RunFiles(self.model_dir(model_set))

    @property
    def standin_weights(self) -> Path:
        return self.model_dir("standin_pretrain") / "backbone.weights.h5"

    # --- seeds (``make seeds``): the same run again with other training seeds ---
    @property
    def seeds_dir(self) -> Path:
        return self.results / "seeds"

    def seed(self, seed: int) -> Layout:
        """The layout of training seed ``seed``: this one for seed 0 (the main run), else ``seeds/seed<k>/``.

        A seed's folder has the main run's shape (``models/``, ``predictions/``, ``tables/``) and shares its data
        (phantom, decode cache, stand-in pre-training: only the training seed changes).
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        return self if seed == 0 else Layout(self.seeds_dir / f"seed{seed}", self.data)

    # --- outputs ---
    @property
    def tables_dir(self) -> Path:
        return self.results / "tables"

    @property
    def figures_dir(self) -> Path:
        return self.results / "figures"

    @property
    def predictions_dir(self) -> Path:
        return self.results / "predictions"

    def predictions_file(self, model_set: str) -> Path:
        return self.predictions_dir / f"{model_set}.csv"

    @property
    def notebooks_dir(self) -> Path:
        return self.results / "notebooks"


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    Readers never see a half-written file, and an interrupted write leaves the old file untouched.
    The temporary name keeps the target's suffixes (``.weights.h5`` too) so that writers choosing a format by
    suffix, such as Keras, still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes[-2:]) if target.name.endswith(".weights.h5") else target.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def exclusive(lock_file: str | Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` for the block; wait while another process holds it.

    Parallel workers (``make -j``, or several machines sharing the results folder over a file system with
    locks, such as NFS) thereby never build the same thing twice. ``on_wait`` is called with one line if the
    lock is busy. The operating system releases the lock when the holder ends, even by ``kill -9``, so a lock
    is never stale; the file itself is left in place (deleting it would race with a waiting process).
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"waiting: another process holds {lock_file}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (temporary file, then rename)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


DATA_COLUMN = "data"
"""The column that names a table's data (:attr:`Profile.data_label`), so that a CSV copied alone still says
whether its numbers come from the phantom or from MURA. Readers of our own tables drop it (:func:`read_table`)."""


def write_csv_atomic(
    frame: pd.DataFrame, target: str | Path, *, data_label: str | None = None, **to_csv_kwargs
) -> Path:
    """Write ``frame.to_csv(..., **to_csv_kwargs)`` to ``target`` atomically (temporary file, then rename).

    With ``data_label``, every row gets it in a last column :data:`DATA_COLUMN` (a column, not a comment line,
    so that any CSV reader keeps it and no reader trips on it). Results tables are always written with it.
    """
    if data_label is not None:
        if DATA_COLUMN in frame.columns:
            raise ValueError(f"the table already has a {DATA_COLUMN!r} column")
        frame = frame.assign(**{DATA_COLUMN: data_label})
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, **to_csv_kwargs)
    return Path(target)


def read_table(path: str | Path, **read_csv_kwargs) -> pd.DataFrame:
    """Read a results table written by :func:`write_csv_atomic`, without its :data:`DATA_COLUMN`."""
    import pandas as pd

    frame = pd.read_csv(path, **read_csv_kwargs)
    return frame.drop(columns=[DATA_COLUMN], errors="ignore")


def figure_metadata(fmt: str, data_label: str | None) -> dict | None:
    """Metadata for ``Figure.savefig``: the data label in the file itself (PNG ``Description``, PDF
    ``Subject``) and no creation date, so that the same figure gives the same bytes."""
    if fmt == "png":
        return {"Description": f"Data: {data_label}"} if data_label else None
    if fmt == "pdf":
        return {"CreationDate": None, **({"Subject": f"Data: {data_label}"} if data_label else {})}
    if fmt == "svg":
        return {"Date": None, **({"Description": f"Data: {data_label}"} if data_label else {})}
    return None


def save_figure_atomic(fig, target: str | Path, *, data_label: str | None, dpi: int = 120) -> Path:
    """Write a matplotlib figure atomically (format from the suffix), labelled with its data.

    With ``data_label`` the figure gets a footer "Data: ..." (unless it already shows that text, as case
    figures do) and the label goes into the file's metadata (:func:`figure_metadata`), so that a PNG copied
    alone still says what it shows.
    """
    target = Path(target)
    fmt = target.suffix.lstrip(".").lower()
    if data_label:
        footer = f"Data: {data_label}"
        shown = [t.get_text() for t in fig.texts]
        current = fig.get_supxlabel() if hasattr(fig, "get_supxlabel") else ""
        if footer not in shown and footer not in current:
            if current:
                fig.supxlabel(f"{current}\n{footer}", fontsize=7, color="0.3")
            else:
                fig.supxlabel(footer, fontsize=7, color="0.3")
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=figure_metadata(fmt, data_label))
    return target
