"""Where every artefact lives, derived from the project root (never from the working directory).

Everything a profile produces sits under ``results/<profile>/`` and ``data/<profile>/`` so that profiles never
overwrite each other and Make can tell what is up to date. ``DENSENET_INTERP_RESULTS`` and
``DENSENET_INTERP_DATA`` override the two roots (the end-to-end test uses them to run in a temporary folder).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def results_root() -> Path:
    return Path(os.environ.get("DENSENET_INTERP_RESULTS", PROJECT_ROOT / "results")).resolve()


def data_root() -> Path:
    return Path(os.environ.get("DENSENET_INTERP_DATA", PROJECT_ROOT / "data")).resolve()


@dataclass(frozen=True)
class Layout:
    """The artefact names of one profile's run, relative to its results and data folders."""

    results: Path
    data: Path

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
    def model_dir(self, model_set: str) -> Path:
        return self.results / "models" / model_set

    def model_file(self, model_set: str) -> Path:
        return self.model_dir(model_set) / "model.keras"

    def card_file(self, model_set: str) -> Path:
        return self.model_dir(model_set) / "card.json"

    def history_file(self, model_set: str) -> Path:
        return self.model_dir(model_set) / "history.csv"

    @property
    def standin_weights(self) -> Path:
        return self.results / "models" / "standin_pretrain" / "backbone.weights.h5"

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


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (temporary file, then rename)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)
