"""The paper's training recipe (section 3), with runs that survive being killed and leave a model card.

Recipe: Adam (beta_1 0.9, beta_2 0.999), binary cross-entropy on the sigmoid output, the profile's batch size
and epochs, all layers trainable (end-to-end), the learning rate divided by 10, 50 and 100 once 25 %, 50 % and
75 % of the epochs have passed (:func:`learning_rate_at`), augmentation by random lateral inversion and
rotation up to 30 degrees (:mod:`densenet_interp.data.pipeline`). Training uses the model set's body parts of the
train split, validation the same body parts of the valid split, image by image. The model kept is the epoch
with the least ``|train accuracy - validation accuracy|`` (the paper's rule, :data:`SELECTION_RULE`); the
epoch of least validation loss is recorded beside it.

A run folder (``results/<profile>/models/<model set>/``; its names: :class:`densenet_interp.paths.RunFiles`,
``Layout.run(model_set)``) holds::

    checkpoints/epoch_XXX.weights.h5   weights after epoch XXX (1-based); all epochs for small models, else
                                       only the epochs either selection rule currently prefers and the latest
    checkpoints/resume.npz             everything needed to continue: weights, optimizer state, history
    history.csv                        one row per finished epoch (HISTORY_COLUMNS)
    tensorboard/                       the same scalars for TensorBoard
    card.json, model.keras             written last, only when the run is complete (model.keras last of all)

Every file is written atomically after each epoch, so a run killed at any moment (even ``kill -9``) resumes
from its last finished epoch. The data order and augmentation of an epoch depend only on ``(seed, epoch)``
and the optimizer state is restored exactly, so the resumed run ends as the uninterrupted one would (with op
determinism, bit for bit). A folder with ``model.keras`` and ``card.json`` is finished and is never retrained. While a
process trains a run it holds ``.training.lock`` in its folder (``paths.exclusive``): a second worker
(``make -j``, another machine sharing the results folder) waits for it and then uses the finished model, so two
workers never train the same run.

Switches (``DETERMINISTIC`` on by default, ``STRATEGY``, ``MIXED_PRECISION``, ``XLA``) and what makes a run
reproducible bit for bit: :mod:`densenet_interp.models.runtime`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from ..data import mura, pipeline
from ..errors import ModelFileError, UserFacingError
from ..paths import (
    PROJECT_ROOT,
    Layout,
    RunFiles,
    atomic_path,
    exclusive,
    write_csv_atomic,
    write_text_atomic,
)
from ..profiles import ModelSet, Profile, get_model_set, get_profile
from . import densenet as models
from .runtime import RuntimeOptions, cluster, execution, make_deterministic, precision, strategy_scope
from .schedule import (
    KEEP_ALL_EPOCHS_MAX_PARAMS,
    SELECTION_RULE,
    epochs_to_keep,
    learning_rate_at,
    majority_rate,
    select_epochs,
)
from .weights import initial_weights

HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
# ----------------------------------------------------------------------------------------------------------
# files of a run (their names: paths.RunFiles)


def _save_weights_atomic(model: keras.Model, target: Path) -> None:
    """``model.save_weights`` to ``target`` atomically (the temporary name keeps ``.weights.h5`` for Keras)."""
    with atomic_path(target) as tmp:
        model.save_weights(tmp)


def _write_history(path: Path, rows: list[dict]) -> None:
    write_csv_atomic(pd.DataFrame(rows, columns=HISTORY_COLUMNS), path, index=False)


def _save_resume(path: Path, model: keras.Model, optimizer, meta: dict) -> None:
    """Write weights, optimizer variables and ``meta`` (epochs done, history, identity) as one .npz."""
    arrays = {f"model_{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.weights)}
    arrays |= {f"optimizer_{i:05d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def _load_resume(path: Path, model: keras.Model, optimizer, identity: dict) -> dict:
    """Restore weights and optimizer state saved by :func:`_save_resume`; return its meta.

    Refuses (ModelFileError naming the file) a checkpoint of another configuration (profile, model set, seed,
    data, initialisation), one whose variables do not fit the model, and one that cannot be read (truncated or
    damaged on disk: it is written atomically, so only something outside this program can do that), instead
    of resuming it silently or ending in a traceback.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            return _restore(stored, path, model, optimizer, identity)
    except ModelFileError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, CRC errors...
        raise ModelFileError(
            f"the resume checkpoint cannot be read ({type(exc).__name__}: {str(exc)[:120]}); it is truncated "
            "or damaged: delete it to restart this run from epoch 1",
            path=path,
        ) from None


def _restore(stored, path: Path, model: keras.Model, optimizer, identity: dict) -> dict:
    meta = json.loads(str(stored["meta"]))
    for key, expected in identity.items():
        if meta.get("identity", {}).get(key) != expected:
            raise ModelFileError(
                f"checkpoint was written for {key} = {meta.get('identity', {}).get(key)!r}, this run has "
                f"{expected!r}; delete the checkpoints folder to start over",
                path=path,
            )
    for prefix, variables in (("model", model.weights), ("optimizer", optimizer.variables)):
        names = sorted(n for n in stored.files if n.startswith(prefix + "_"))
        shapes = [tuple(stored[n].shape) for n in names]
        if shapes != [tuple(v.shape) for v in variables]:
            raise ModelFileError(
                f"checkpoint holds {len(names)} {prefix} variables that do not match the {len(variables)} of "
                f"this run (first shapes {shapes[:3]}); delete the checkpoints folder to start over",
                path=path,
            )
        for name, variable in zip(names, variables, strict=True):
            variable.assign(stored[name])
    return meta


def _json_roundtrip(value):
    """``value`` as it reads back from JSON (tuples become lists), so it compares equal to a stored copy."""
    return json.loads(json.dumps(value))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _git_commit() -> tuple[str, bool | None]:
    """``(commit, has uncommitted changes)`` of the project checkout, or ``("unknown", None)``."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10
        ).stdout
        return commit or "unknown", bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def _package_versions() -> dict:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
    }


# ----------------------------------------------------------------------------------------------------------
# one training run


def _data(index, model_set: ModelSet, profile: Profile, cache_dir: Path, log) -> dict:
    """Per split, a model set's images (``uint8 (N, S, S)`` array read from the decode cache) and float32 labels."""
    cache = pipeline.build_cache(index, profile.image_size, cache_dir, log=log)
    data = {}
    for split in mura.SPLITS:
        frame = mura.select_images(index, split, model_set.body_parts)
        if split == "train":
            frame = mura.sample_images(frame, profile.max_train_images)
        data[split] = (cache.arrays_for(frame["path"].tolist()), frame["label"].to_numpy(np.float32))
    return data


def _compile(model: keras.Model, profile: Profile, options: RuntimeOptions):
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate_at(0, profile), beta_1=0.9, beta_2=0.999)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
        jit_compile=options.xla,
    )
    model.optimizer.build(model.trainable_variables)
    return model.optimizer


def _epoch_line(row: dict, epochs: int, eta_seconds: float | None = None) -> str:
    """One console line per epoch; ``eta_seconds``: the estimated time left for the run (omitted at the end)."""
    line = (
        f"epoch {row['epoch']}/{epochs}  loss {row['loss']:.4f}  accuracy {row['accuracy']:.4f}  "
        f"val_loss {row['val_loss']:.4f}  val_accuracy {row['val_accuracy']:.4f}  "
        f"lr {row['learning_rate']:.2e}  {row['seconds']:.1f} s"
    )
    if eta_seconds is not None and row["epoch"] < epochs:
        minutes, seconds = divmod(int(round(eta_seconds)), 60)
        line += f"  ETA {minutes}m{seconds:02d}s"
    return line


@dataclasses.dataclass(frozen=True)
class _Run:
    """What is fixed about one training run: its configuration, files and initialisation."""

    profile: Profile
    model_set: ModelSet
    files: RunFiles
    options: RuntimeOptions
    init: str  # "random", "standin" or "imagenet"
    init_file: Path | None
    seed: int
    data_fingerprint: str

    @property
    def identity(self) -> dict:
        """What a checkpoint must share with this run to be resumed by it (as it reads back from JSON)."""
        return _json_roundtrip(
            {
                "profile": self.profile.recipe(),
                "model_set": self.model_set.name,
                "seed": self.seed,
                "data_fingerprint": self.data_fingerprint,
                "initialisation": self.init,
            }
        )


def train_model_set(
    profile: Profile | str,
    model_set: ModelSet | str,
    mura_dir: str | Path,
    out_dir: str | Path,
    *,
    standin_weights: str | Path | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
    cache_dir: str | Path | None = None,
    strategy: str | None = None,
    mixed_precision: bool | None = None,
    xla: bool | None = None,
    deterministic: bool | None = None,
    verify: bool = False,
) -> dict:
    """Train one model set with the paper's recipe into ``out_dir`` (resuming if interrupted); return its card.

    Args:
        profile, model_set: objects or names (``get_profile`` / ``get_model_set``).
        mura_dir: the MURA-layout folder (or its parent).
        out_dir: the run folder (see the module docstring for its files).
        standin_weights: a weights file to start a pre-trained model set from instead of the one
            :func:`~densenet_interp.models.weights.initial_weights` chooses (default None: the policy decides,
            e.g. ``Layout.for_profile(profile).standin_weights`` for the stand-in pre-training).
        seed: fixes initial weights, data order and augmentation.
        log: called with one line at the start, one per epoch and one at the end.
        cache_dir: decode cache folder (default: ``Layout.for_profile(profile).cache_dir``).
        strategy, mixed_precision, xla, deterministic: the switches of the module docstring (None: environment).
        verify: on a finished run, load ``model.keras`` first; if it is truncated or corrupt, log one line naming
            it, delete it and rebuild it from the run's checkpoints (the selected epoch's weights; no epoch is
            trained again when the run's checkpoints are complete). ``make`` does this before evaluation.
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    model_set = get_model_set(model_set) if isinstance(model_set, str) else model_set
    files = RunFiles(Path(out_dir))
    node = cluster(RuntimeOptions.resolve(profile, strategy=strategy).strategy)
    if verify and files.finished() and node.is_chief:
        _drop_damaged_model(files, log)
    train = functools.partial(_train, profile, model_set, mura_dir, files, standin_weights, seed, log, cache_dir,
                              strategy, mixed_precision, xla, deterministic)  # fmt: skip
    if node.workers > 1:
        return _train_on_workers(files, node, train)
    if files.finished():
        return json.loads(files.card.read_text())
    with exclusive(files.lock, on_wait=log):  # another worker training this run: wait, then use its model
        if files.finished():
            log(f"{model_set.name}: trained meanwhile by another process ({files.model})")
            return json.loads(files.card.read_text())
        return train()


class _LockBusy(Exception):
    pass


def _busy(_line: str) -> None:
    raise _LockBusy


def _train_on_workers(files: RunFiles, node, train: Callable[[], dict]) -> dict:
    """A multi-worker run: the chief takes the run's lock without waiting, then every worker states what it
    sees (lock taken, run finished, epochs done) and all go on only if they agree; else every worker stops with
    the same one line, so none is left waiting for the others. The chief holds the lock while they train."""
    with contextlib.ExitStack() as stack:
        busy = False
        if node.is_chief:
            try:
                stack.enter_context(exclusive(files.lock, on_wait=_busy))
            except _LockBusy:
                busy = True
        seen = [float(busy), float(files.finished()), float(_epochs_done(files))]
        mean, mean_square = _across_workers(seen)
        if mean[0] > 0:
            raise UserFacingError(
                "another process is training this run; wait for it, then run again", files.folder
            )
        if np.any(mean_square != mean**2):
            raise UserFacingError(
                "the workers do not see the same run folder (finished, or resumed after different epochs); "
                "put it on storage all workers share",
                files.folder,
            )
        if files.finished():
            return json.loads(files.card.read_text())
        return train()


def _epochs_done(files: RunFiles) -> int:
    """Epochs a resume checkpoint holds (0 without one; -1 if it cannot be read: loading it will say why)."""
    if not files.resume.is_file():
        return 0
    try:
        with np.load(files.resume, allow_pickle=False) as stored:
            return int(json.loads(str(stored["meta"]))["epochs_done"])
    except Exception:  # noqa: BLE001 - _load_resume names the problem in one line when the run starts
        return -1


def _across_workers(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``values`` and of their squares over every replica of every worker (a collective: every
    worker must call it); they agree exactly where each mean of squares is its mean squared."""
    strategy = strategy_scope("multiworker")
    local = np.asarray(values, dtype=np.float64)
    both = np.concatenate([local, local**2])
    per_replica = tf.function(lambda: strategy.run(lambda: tf.constant(both)))()  # traced: no eager overhead
    reduced = strategy.reduce("MEAN", per_replica, axis=None).numpy()
    return reduced[: len(values)], reduced[len(values) :]


def _drop_damaged_model(files: RunFiles, log) -> None:
    """Delete ``model.keras`` if it does not load (see ``train_model_set(verify=True)``), saying so in one line."""
    try:
        models.load_model(files.model)
    except ModelFileError as exc:
        has_checkpoints = files.resume.is_file()
        log(
            f"{exc}; rebuilding it from "
            + ("its checkpoints" if has_checkpoints else "scratch (no checkpoints)")
        )
        files.model.unlink()


def _train(
    profile, model_set, mura_dir, files, standin_weights, seed, log, cache_dir, strategy, mixed_precision, xla,
    deterministic,
) -> dict:  # fmt: skip
    """:func:`train_model_set` once its run folder's lock is held."""
    started = time.perf_counter()
    options = RuntimeOptions.resolve(
        profile, strategy=strategy, mixed_precision=mixed_precision, xla=xla, deterministic=deterministic
    )
    index = mura.read_mura(mura_dir)
    init, init_file = initial_weights(profile, model_set, override=standin_weights)
    run = _Run(profile, model_set, files, options, init, init_file, seed, mura.fingerprint(index))
    make_deterministic(options.deterministic)  # process-wide; TensorFlow has no public way back
    keras.utils.set_random_seed(seed)
    data = _data(
        index, model_set, profile, Path(cache_dir or Layout.for_profile(profile.name).cache_dir), log
    )
    with precision(options.mixed_precision):
        rows, resumed_from, replicas = _fit(run, data, log)
    node = cluster(options.strategy)
    card = _card(run, index, data, rows, resumed_from, replicas, node.workers)
    card = _json_roundtrip(card | {"seconds_this_process": round(time.perf_counter() - started, 1)})
    if not node.is_chief:
        log(
            f"{model_set.name}: done as {node.task_type} {node.task_index} of {node.workers}; the chief writes the run"
        )
        return card
    _finalise(run, card)
    log(
        f"{model_set.name}: selected epoch {card['selected_epoch']} (val_accuracy "
        f"{card['final_metrics']['val_accuracy']:.4f}); wrote {files.model}"
    )
    return card


def _fit(run: _Run, data: dict, log) -> tuple[list[dict], int | None, int]:
    """Run the remaining epochs, checkpointing each; return ``(history rows, resumed from epoch, replicas)``."""
    profile, files = run.profile, run.files
    # only the chief writes: every process of a single-worker run, one process of several workers
    chief = cluster(run.options.strategy).is_chief
    strategy = strategy_scope(run.options.strategy)
    with strategy.scope():
        model = models.build_model(
            profile, pretrained=run.model_set.pretrained, weights_path=run.init_file, seed=run.seed
        )
        if run.options.strategy == "multiworker":
            _synchronise_batch_norm(model)
        optimizer = _compile(model, profile, run.options)
        rows, done = [], 0
        if files.resume.is_file():
            meta = _load_resume(files.resume, model, optimizer, run.identity)
            rows, done = meta["history"], int(meta["epochs_done"])
            if chief:
                _write_history(files.history, rows)  # the last row may have been lost to the interruption
    (x_train, y_train), (x_valid, y_valid) = data["train"], data["valid"]
    keep_all = model.count_params() < KEEP_ALL_EPOCHS_MAX_PARAMS
    log(
        f"training {run.model_set.name} ({profile.name}): {x_train.shape[0]} train / {x_valid.shape[0]} valid "
        f"images, {profile.epochs} epochs, batch {profile.batch_size}, {strategy.num_replicas_in_sync} replica(s)"
        + (f"; resuming after epoch {done}" if done else "")
    )
    valid = _sharded(
        pipeline.make_dataset(x_valid, y_valid, batch_size=profile.batch_size, training=False, seed=run.seed),
        run.options,
    )
    writer = tf.summary.create_file_writer(str(files.tensorboard)) if chief else None
    for epoch in range(done, profile.epochs):
        rate = learning_rate_at(epoch, profile)
        optimizer.learning_rate.assign(rate)
        train = pipeline.make_dataset(
            x_train,
            y_train,
            batch_size=profile.batch_size,
            training=True,
            seed=run.seed,
            rotation_degrees=profile.rotation_degrees,
            epoch=epoch,
        )
        train = _sharded(train, run.options)
        tick = time.perf_counter()
        logs = model.fit(
            train, validation_data=valid, epochs=epoch + 1, initial_epoch=epoch, shuffle=False, verbose=0
        ).history
        row = {key: float(logs[key][-1]) for key in ("loss", "accuracy", "val_loss", "val_accuracy")}
        row |= {"epoch": epoch + 1, "learning_rate": rate, "seconds": round(time.perf_counter() - tick, 3)}
        rows.append({key: row[key] for key in HISTORY_COLUMNS})
        if chief:
            _save_weights_atomic(model, files.epoch_weights(epoch + 1))
            meta = {
                "identity": run.identity,
                "epochs_done": epoch + 1,
                "history": rows,
                "resumed_from": done or None,
            }
            _save_resume(files.resume, model, optimizer, meta)
            _write_history(files.history, rows)
            _write_scalars(writer, row)
            if not keep_all:
                _prune_epoch_weights(files, rows, majority_rate(data["valid"][1]))
        this_process = [r["seconds"] for r in rows[done:]]  # resumed epochs were timed by another process
        eta = sum(this_process) / len(this_process) * (profile.epochs - epoch - 1)
        log(_epoch_line(row, profile.epochs, eta))
    if writer is not None:
        writer.close()
    return rows, done or None, strategy.num_replicas_in_sync


def _synchronise_batch_norm(model: keras.Model) -> None:
    """Batch normalisation over the global batch (statistics all-reduced over the replicas at every step), as
    one worker computes it, instead of over each replica's share. Training-time only: the saved model is built
    afresh (plain layers) and takes the weights, which are the same."""

    def layers(layer):
        yield layer
        for inner in getattr(layer, "layers", []):
            yield from layers(inner)

    for layer in layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True


def _sharded(dataset: tf.data.Dataset, options: RuntimeOptions) -> tf.data.Dataset:
    """On several workers, each takes its share of every global batch (sharding by data: the pipeline reads
    arrays, not files); elsewhere the dataset as it is."""
    if options.strategy != "multiworker":
        return dataset
    shard = tf.data.Options()
    shard.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(shard)


def _write_scalars(writer, row: dict) -> None:
    """Log an epoch's scalars for TensorBoard.

    ``tf.summary.scalar`` needs the ``tensorboard`` package at training time; ``tf.summary.write`` with the
    scalars plugin's metadata writes the very same event records without it, so a training needs TensorFlow
    alone. TensorBoard (pinned in the environment) only reads them: ``make tensorboard``.
    """
    plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    metadata = summary_pb2.SummaryMetadata(plugin_data=plugin)
    with writer.as_default():
        for key in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"):
            tf.summary.write(key, tf.constant(row[key], tf.float32), step=row["epoch"], metadata=metadata)
    writer.flush()


def _prune_epoch_weights(files: RunFiles, rows: list[dict], val_majority: float) -> None:
    """Delete epoch weights that neither selection rule can still choose, except the latest epoch's (large
    models only): the selected and least-validation-loss epochs and the last one are always kept."""
    keep = epochs_to_keep(pd.DataFrame(rows), val_majority)
    for row in rows:
        if row["epoch"] not in keep:
            files.epoch_weights(row["epoch"]).unlink(missing_ok=True)


def _card(
    run: _Run, index, data: dict, rows: list[dict], resumed_from: int | None, replicas: int, workers: int = 1
) -> dict:
    """The model card: what was trained, on what, how, with which result, by which code."""
    profile, options = run.profile, run.options
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    val_majority = majority_rate(data["valid"][1])
    selected, best_loss = select_epochs(history, val_majority)
    metrics = history.set_index("epoch")[["loss", "accuracy", "val_loss", "val_accuracy"]]
    commit, dirty = _git_commit()
    departures = list(profile.departures)
    if options.strategy == "mirrored":
        departures.append(f"data-parallel over {replicas} replicas (MirroredStrategy), same global batch")
    if options.strategy == "multiworker":
        departures.append(
            f"data-parallel over {replicas} replicas on {workers} workers (MultiWorkerMirroredStrategy), same "
            "global batch; batch normalisation over the global batch (synchronised)"
        )
    if options.mixed_precision:
        departures.append("mixed float16 precision")
    weights_file = str(run.init_file) if run.init_file else None
    if run.init == "imagenet" and weights_file is None:
        weights_file = "keras.applications ImageNet download"
    return {
        "model_set": run.model_set.name,
        "model_set_title": run.model_set.title,
        "body_parts": list(run.model_set.body_parts),
        "profile": profile.to_dict(),
        "data_label": profile.data_label,
        "data_fingerprint": run.data_fingerprint,
        "mura_root": str(index.root),
        "train_images": int(data["train"][0].shape[0]),
        "valid_images": int(data["valid"][0].shape[0]),
        "train_abnormal_fraction": round(float(data["train"][1].mean()), 4),
        "valid_abnormal_fraction": round(float(data["valid"][1].mean()), 4),
        "initialisation": run.init,
        "initial_weights": {
            "file": weights_file,
            "sha256": _sha256(run.init_file) if run.init_file else None,
        },
        "seed": run.seed,
        "epochs": profile.epochs,
        "selected_epoch": selected,
        "selection_rule": SELECTION_RULE,
        "val_majority_rate": val_majority,
        "best_val_loss_epoch": best_loss,
        "final_metrics": {k: float(v) for k, v in metrics.loc[selected].items()},
        "best_val_loss_metrics": {k: float(v) for k, v in metrics.loc[best_loss].items()},
        "last_epoch_metrics": {k: float(v) for k, v in metrics.iloc[-1].items()},
        "learning_rates": [float(r) for r in history["learning_rate"]],
        "seconds": round(float(history["seconds"].sum()), 1),
        "resumed_from_epoch": resumed_from,
        "runtime": dataclasses.asdict(options) | {"replicas": replicas, "workers": workers},
        "execution": execution(),
        "package_versions": _package_versions(),
        "git_commit": commit,
        "git_uncommitted_changes": dirty,
        "departures": departures,
    }


def _finalise(run: _Run, card: dict) -> None:
    """Write the card, then ``model.keras``: a clean float32 model holding the selected epoch's weights."""
    model = models.build_model(run.profile, pretrained=False, seed=run.seed)
    model.load_weights(run.files.epoch_weights(card["selected_epoch"]))
    write_text_atomic(run.files.card, json.dumps(card, indent=2) + "\n")
    with atomic_path(run.files.model) as tmp:
        model.save(tmp)


# ----------------------------------------------------------------------------------------------------------
# notebook helpers


def plot_history(history: pd.DataFrame, card: dict):
    """Loss and accuracy per epoch (train and validation), the selected and least-val-loss epochs marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.plot(history["epoch"], history[key], marker="o", label=f"train {key}")
        ax.plot(history["epoch"], history[f"val_{key}"], marker="o", label=f"validation {key}")
        ax.axvline(
            card["selected_epoch"], color="k", ls="--", lw=1, label="selected (least |train - val| acc.)"
        )
        ax.axvline(card["best_val_loss_epoch"], color="grey", ls=":", lw=1, label="least validation loss")
        ax.set(xlabel="epoch", ylabel=key)
    acc_ax.legend(fontsize=7)
    fig.suptitle(f"{card['model_set']} ({card['profile']['name']}): {card['data_label']}", fontsize=8)
    return fig
