"""The input pipeline: decode and resize every radiograph once, cache it on disk, feed tf.data batches.

Two halves with one job each:

* **The decode cache** (:func:`build_cache`, :class:`ImageCache`). Decoding a PNG and resizing it costs far more
  than a training step's share of the CPU, and it gives the same result every epoch, so it happens once per
  (dataset, image size): every image of a MURA index is read with :func:`~densenet_interp.data.images.read_radiograph`,
  scaled with :func:`~densenet_interp.data.images.resize_square` and stored in one ``uint8 (N, S, S)`` ``.npy`` file
  beside a CSV naming each row's image (path, size in bytes, modification time). Both are written atomically,
  the CSV last, so a cache whose CSV exists is complete. The cache is keyed by
  :func:`~densenet_interp.data.mura.fingerprint` with ``files=True`` (index rows *and* file sizes/times), so
  regenerated images never hit a stale cache. A request for a subset of a cached dataset (e.g. an index
  filtered to one body part) is served by the cache of the full dataset when every requested file is in it
  unchanged. Decoding runs in a thread pool (see :func:`_decode_into` for why threads), under a file lock so
  that parallel trainings (``make -j``) decode a dataset once.

* **The batches** (:func:`make_dataset`). A model set's cached rows are read into one NumPy array with plain
  file reads (:meth:`ImageCache.arrays_for`: no memory-mapped page counts against the process) and gathered
  batch by batch from it, so no file is touched while training and the pixels are held in host memory once:
  the peak is about 1.1x the training array at MURA's full size (``benchmarks/host_memory.py``), where
  copying them into a TensorFlow constant held them twice, three times at peak. Augmentation (the paper: "random lateral inversions and rotations up to
  30 degrees") is applied to whole batches at once with one ``ImageProjectiveTransformV3`` op (flip and
  rotation composed into a single bilinear resampling). On 2 CPU cores a batch of 16 images of 128 px costs
  about 5 ms of CPU (3.5 ms of it augmentation) against about 140 ms for a training step of the ``mini``
  model, so the pipeline does not starve the model (``benchmarks/pipeline_ratio.py`` measures the epoch-time
  ratio against ``fit`` on in-memory tensors). All randomness is stateless: the order of
  epoch ``e`` and the augmentation of its batch ``i`` depend only on ``(seed, e, i)``, so a resumed run sees
  exactly the batches an uninterrupted one would.

TensorFlow is imported inside the functions that need it, so that building or reading a cache (e.g. for the
evaluation tables) does not load it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..paths import atomic_path, exclusive, write_csv_atomic
from ..progress import progress
from . import images as image_io
from .augment import DEFAULT_ROTATION_DEGREES, augment_batch, epoch_seed
from .mura import fingerprint

CACHE_COLUMNS = ["path", "abs_path", "bytes", "mtime_ns"]


# ----------------------------------------------------------------------------------------------------------
# the decode cache


class ImageCache:
    """A decoded, resized dataset on disk: ``uint8 (N, S, S)`` rows addressed by the index's relative paths.

    The array file is opened memory-mapped only to check its header; :meth:`arrays_for` reads the requested
    rows with plain file reads into one new array.
    """

    def __init__(self, array_file: str | Path, index_file: str | Path):
        self.array_file = Path(array_file)
        self.index_file = Path(index_file)
        self.table = pd.read_csv(self.index_file, dtype={"path": str, "abs_path": str})
        self._array = np.load(self.array_file, mmap_mode="r")
        shape = self._array.shape
        if (
            self._array.dtype != np.uint8
            or len(shape) != 3
            or shape[1] != shape[2]
            or shape[0] != len(self.table)
        ):
            raise DataError(
                f"cache array is {self._array.dtype} {shape}, expected uint8 ({len(self.table)}, S, S) "
                f"to match {self.index_file.name}; delete both files to rebuild",
                self.array_file,
            )
        self._rows = {path: row for row, path in enumerate(self.table["path"])}

    @property
    def size(self) -> int:
        """The side S of the cached square images."""
        return int(self._array.shape[1])

    def __len__(self) -> int:
        return len(self.table)

    def arrays_for(self, paths: Sequence[str]) -> np.ndarray:
        """The cached ``uint8 (N, S, S)`` images of ``paths`` (relative paths as in the index CSVs), in order."""
        paths = list(paths)
        missing = [p for p in paths if p not in self._rows]
        if missing:
            raise ValueError(
                f"{len(missing)} of {len(paths)} requested images are not in the cache {self.index_file} "
                f"(first: {missing[0]!r}); expected relative paths of the index the cache was built from"
            )
        rows = np.fromiter((self._rows[p] for p in paths), dtype=np.int64, count=len(paths))
        return self._read_rows(rows)

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of the array file, read run by run of consecutive rows into one new array.

        Plain reads, not the memory map: pages of a mapped file count in the process's resident memory while
        mapped, so gathering a model set through the map held its pixels twice (the map's pages and the copy).
        """
        size = self.size
        out = np.empty((len(rows), size, size), dtype=np.uint8)
        row_bytes = size * size
        flat = out.reshape(len(rows), row_bytes)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        with open(self.array_file, "rb", buffering=0) as handle:
            for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
                handle.seek(self._array.offset + int(rows[start]) * row_bytes)
                view = memoryview(flat[start:stop]).cast("B")
                done = 0
                while done < len(view):
                    got = handle.readinto(view[done:])
                    if not got:
                        raise DataError(
                            "cache array ends early; delete it (and its .csv) to rebuild", self.array_file
                        )
                    done += got
        return out


def cache_files(cache_dir: str | Path, key: str, size: int) -> tuple[Path, Path]:
    """The ``(array .npy, index .csv)`` file names of the cache of dataset ``key`` at ``size`` pixels."""
    stem = Path(cache_dir) / f"{key}-{size}px"
    return stem.with_suffix(".npy"), stem.with_suffix(".csv")


def build_cache(
    index,
    size: int,
    cache_dir: str | Path,
    *,
    workers: int | None = None,
    log: Callable[[str], None] | None = None,
) -> ImageCache:
    """Return the decode cache of every image of ``index`` (a :class:`~densenet_interp.data.mura.MuraIndex`) at
    ``size`` x ``size``, decoding only if no cache holds these files yet.

    Args:
        index: the dataset; all its images are cached (train and valid, all body parts), so every model set
            and the evaluation are served from one decode.
        size: side of the square model input (the profile's ``image_size``).
        cache_dir: folder of the caches (``Layout.cache_dir``).
        workers: decode threads; ``None`` uses one per available core, ``1`` decodes in the calling thread.
        log: called with one line when images are decoded (e.g. ``print``).
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    cache_dir = Path(cache_dir)
    array_file, index_file = cache_files(cache_dir, fingerprint(index, files=True), int(size))
    existing = _open_if_complete(array_file, index_file)
    if existing is not None:
        return existing
    with exclusive(array_file.with_suffix(".lock")):
        existing = _open_if_complete(array_file, index_file)  # built by a parallel run while we waited
        if existing is not None:
            return existing
        wanted = _file_table(index)
        superset = _find_superset(cache_dir, int(size), wanted, exclude=index_file)
        if superset is not None:
            return superset
        started = time.perf_counter()
        _decode_into(array_file, wanted["abs_path"].tolist(), int(size), workers)
        write_csv_atomic(wanted, index_file, index=False)
    if log is not None:
        seconds = time.perf_counter() - started
        log(f"decoded {len(wanted)} images at {size}x{size} into {array_file} ({seconds:.1f} s)")
    return ImageCache(array_file, index_file)


def _open_if_complete(array_file: Path, index_file: Path) -> ImageCache | None:
    """The cache in these files, or None if they are absent or do not agree (a rebuild then replaces them)."""
    if not (array_file.is_file() and index_file.is_file()):
        return None
    try:
        return ImageCache(array_file, index_file)
    except (DataError, ValueError, OSError, pd.errors.ParserError):
        return None


def _file_table(index) -> pd.DataFrame:
    """One row per image of ``index``: relative path, absolute path, and the file's size and mtime."""
    stats = []
    for abs_path in index.images["abs_path"]:
        try:
            stat = os.stat(abs_path)
        except OSError as exc:
            raise DataError(f"cannot read image ({exc.strerror or exc})", abs_path) from None
        stats.append((stat.st_size, stat.st_mtime_ns))
    table = index.images[["path", "abs_path"]].reset_index(drop=True).copy()
    table["bytes"] = [s for s, _ in stats]
    table["mtime_ns"] = [m for _, m in stats]
    return table[CACHE_COLUMNS]


def _find_superset(cache_dir: Path, size: int, wanted: pd.DataFrame, exclude: Path) -> ImageCache | None:
    """A complete cache at ``size`` holding every file of ``wanted`` unchanged (same path, bytes, mtime)."""
    if not cache_dir.is_dir():
        return None
    keys = set(wanted.itertuples(index=False, name=None))
    for index_file in sorted(cache_dir.glob(f"*-{size}px.csv")):
        if index_file == exclude:
            continue
        cache = _open_if_complete(index_file.with_suffix(".npy"), index_file)
        if cache is not None and keys <= set(cache.table[CACHE_COLUMNS].itertuples(index=False, name=None)):
            return cache
    return None


def _decode_into(array_file: Path, abs_paths: list[str], size: int, workers: int | None) -> None:
    """Decode and resize ``abs_paths`` into a new ``uint8 (N, size, size)`` .npy written atomically.

    Rows are written into the memory-mapped file as they are decoded, so the dataset never has to fit in
    memory twice. Threads, not processes: PIL releases the GIL while it decodes and resamples, and threads
    avoid both a spawned process's start-up and forking a process that has TensorFlow loaded. Measured on
    2 cores, 400 PNGs of 256x320 to 128x128: 0.34 s serial, 0.23 s with 2 threads, 0.19 s with 2 forked and
    0.38 s with 2 spawned processes.
    """
    n = len(abs_paths)
    if n == 0:
        raise DataError("the index lists no images; nothing to cache", array_file.parent)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    with atomic_path(array_file) as tmp:
        _fill(
            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size)),
            abs_paths,
            workers,
        )


def _fill(array: np.memmap, abs_paths: list[str], workers: int) -> None:
    """Decode ``abs_paths[i]``, resize it to the array's side and store it in ``array[i]``; then flush."""
    size = array.shape[1]

    def store(row: int) -> None:
        array[row] = image_io.resize_square(image_io.read_radiograph(abs_paths[row]), size)

    what, n = f"decode cache ({size} px)", len(abs_paths)
    if workers == 1:
        for row in progress(range(n), total=n, what=what):
            store(row)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            # pool.map re-raises the first DataError naming a bad file
            for _ in progress(pool.map(store, range(n)), total=n, what=what):
                pass
    array.flush()


# ----------------------------------------------------------------------------------------------------------
# batches and augmentation


def _check_images(pixels: np.ndarray, labels) -> np.ndarray:
    """Validate a ``uint8 (N, S, S)`` array and its labels; return the labels as float32 ``(N, 1)``."""
    shape = tuple(pixels.shape)
    if pixels.dtype != np.uint8 or len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"images must be uint8 (N, S, S), got {pixels.dtype.name} array of shape {shape}")
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
    if len(labels) != shape[0]:
        raise ValueError(f"got {len(labels)} labels for {shape[0]} images; expected one label per image")
    if shape[0] == 0:
        raise ValueError("got no images; expected at least one")
    return labels


def make_dataset(
    images_u8,
    labels,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    rotation_degrees: float = DEFAULT_ROTATION_DEGREES,
    epoch: int = 0,
):
    """One epoch of ``(float32 (B, S, S, 3) pixels 0..255, float32 (B, 1) labels)`` batches, prefetched.

    ``images_u8``: ``uint8 (N, S, S)`` NumPy array (e.g. :meth:`ImageCache.arrays_for`'s), read in place: each
    batch's rows are gathered from it (``np.take`` in a ``tf.numpy_function``), so no epoch copies the pixels.
    Training (``training=True``): the images come in a random order that depends only on ``(seed, epoch)``
    (pass each epoch's number to reshuffle; a resumed run passes the same numbers and gets the same order),
    and each batch is augmented by :func:`~densenet_interp.data.augment.augment_batch` with a seed derived from ``(seed, epoch, batch)``.
    Evaluation (``training=False``): index order, no augmentation. The last batch may be smaller than
    ``batch_size``. The grey image is repeated into three channels, as the models expect.
    """
    import tensorflow as tf

    pixels = images_u8 if isinstance(images_u8, np.ndarray) else np.asarray(images_u8)
    labels = _check_images(pixels, labels)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = int(pixels.shape[0])
    targets = tf.constant(labels)
    if training:
        order = tf.argsort(tf.random.stateless_uniform([n], seed=epoch_seed(seed, epoch)))
    else:
        order = tf.range(n)
    batches = tf.data.Dataset.from_tensor_slices(tf.cast(order, tf.int64)).batch(int(batch_size)).enumerate()
    batch_seeds = epoch_seed(seed, epoch)
    degrees = float(rotation_degrees)

    side = int(pixels.shape[1])

    def gather(rows: np.ndarray) -> np.ndarray:
        return np.take(pixels, rows, axis=0)

    def load(batch_number, rows):
        x = tf.numpy_function(gather, [rows], tf.uint8, stateful=False)
        x = tf.cast(tf.ensure_shape(x, [None, side, side]), tf.float32)
        if training:
            x = augment_batch(x, tf.random.experimental.stateless_fold_in(batch_seeds, batch_number), degrees)
        return tf.repeat(x[..., tf.newaxis], 3, axis=-1), tf.gather(targets, rows)

    dataset = batches.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)
