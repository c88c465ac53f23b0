"""How a run executes (not what it computes): the switches of a training run, and what makes it reproducible.

Switches (environment variables, or the keyword arguments of ``training.train_model_set``):

* ``DETERMINISTIC=1|0``: ``tf.config.experimental.enable_op_determinism()``. **On by default for every
  profile**: the same commit, profile and data then give the same weights, bit for bit, run after run
  (``tests/test_training.py`` trains a mini-sized model twice in separate processes and compares the bytes).
* ``STRATEGY=mirrored``: train under ``tf.distribute.MirroredStrategy`` over all visible GPUs (over the
  logical CPUs when there is no GPU); the profile's batch size stays the global batch.
* ``STRATEGY=multiworker``: train under ``tf.distribute.MultiWorkerMirroredStrategy`` on the machines that the
  standard ``TF_CONFIG`` variable names (every worker runs the same training command with its own
  ``TF_CONFIG``); the profile's batch size stays the global batch, split over all replicas of all workers.
  Only the chief (``task.type`` ``chief``, else worker 0) writes the run folder; every worker reads a resume
  checkpoint from it, so resuming needs that folder on storage all workers share. :func:`cluster` reads
  ``TF_CONFIG``; :func:`keras_multiworker_fixes` works around two bugs of Keras 3's ``fit`` under this strategy.
* ``MIXED_PRECISION=1``: the ``mixed_float16`` Keras policy (GPU runs; Keras adds loss scaling).
* ``XLA=1``: ``jit_compile=True`` in ``compile`` (GPU runs). Off by default: Keras would otherwise turn XLA
  on by itself on a GPU, and a run's numerics should not depend on that.

What else bit-identity takes, and who sets it (``benchmarks/determinism.py`` measures each point):

* **oneDNN held to one instruction set** (``ONEDNN_MAX_CPU_ISA=AVX2``): oneDNN picks its kernels at run time by
  the processor's instruction set, and AVX-512 kernels give other weights than AVX2 ones; every x86-64
  processor of the last decade has AVX2. ``densenet_interp/__init__.py`` sets the default before TensorFlow
  starts (turning oneDNN off, ``TF_ENABLE_ONEDNN_OPTS=0``, is deterministic too, but slower).
* **Fixed thread pools**: ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` (the Makefile's ``THREADS``,
  default 2), read by TensorFlow when it starts: a reduction split over another number of threads adds in
  another order (1 thread and 2 threads give other weights).
* **Seeds**: ``keras.utils.set_random_seed(seed)`` before the model is built; the data order and the
  augmentation of an epoch are stateless functions of ``(seed, epoch)`` (:mod:`densenet_interp.data.pipeline`).

What cannot be promised: oneDNN and Eigen size their blocks by the processor's cache sizes, so a processor
with other caches may still add in another order; only one machine type could be tested here.

:func:`execution` reports all of it for the model card.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf

from ..errors import UserFacingError
from ..profiles import Profile

STRATEGIES = ("default", "mirrored", "multiworker")
ONEDNN_ENV = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")
THREAD_ENV = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@dataclasses.dataclass(frozen=True)
class RuntimeOptions:
    """How a run executes (not what it computes); see the module docstring for each switch."""

    strategy: str = "default"
    mixed_precision: bool = False
    xla: bool = False
    deterministic: bool = True

    @classmethod
    def resolve(cls, profile: Profile, **given) -> RuntimeOptions:
        """Options from keyword arguments, else the environment, else the defaults (determinism on)."""
        strategy = given.get("strategy") or os.environ.get("STRATEGY") or "default"
        if strategy not in STRATEGIES:
            raise UserFacingError(f"STRATEGY={strategy!r}; expected one of {', '.join(STRATEGIES)}")
        return cls(
            strategy=strategy,
            mixed_precision=_switch(given.get("mixed_precision"), "MIXED_PRECISION", False),
            xla=_switch(given.get("xla"), "XLA", False),
            deterministic=_switch(given.get("deterministic"), "DETERMINISTIC", True),
        )


def _switch(value: bool | None, variable: str, default: bool) -> bool:
    if value is not None:
        return bool(value)
    text = os.environ.get(variable, "").strip().lower()
    if text in ("", "default"):
        return default
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UserFacingError(f"{variable}={text!r}; expected 1 or 0")


def deterministic_switch(default: bool = True) -> bool:
    """``DETERMINISTIC`` from the environment (runs that take no keyword, e.g. the stand-in pre-training)."""
    return _switch(None, "DETERMINISTIC", default)


def make_deterministic(on: bool = True) -> None:
    """Turn on op determinism for this process (TensorFlow has no public way back, so ``False`` does nothing)."""
    if on:
        tf.config.experimental.enable_op_determinism()


def strategy_scope(name: str) -> tf.distribute.Strategy:
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":
        return _multiworker_strategy()
    devices = [d.name for d in tf.config.list_logical_devices("GPU")]
    devices = devices or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


@functools.cache
def _multiworker_strategy() -> tf.distribute.Strategy:
    """The process's one ``MultiWorkerMirroredStrategy`` (TensorFlow sets collective ops up once per process;
    ``train all`` trains four runs with it)."""
    cluster()  # a missing or malformed TF_CONFIG is one line, before TensorFlow tries to connect
    keras_multiworker_fixes()
    return tf.distribute.MultiWorkerMirroredStrategy()


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker run, from ``TF_CONFIG``."""

    workers: int  # processes that train (the chief counts as one)
    task_type: str
    task_index: int
    has_chief: bool  # whether the cluster names a chief apart from its workers

    @property
    def is_chief(self) -> bool:
        """The process that writes: the ``chief`` task, else worker 0 (TensorFlow's own rule)."""
        if self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.task_index == 0 and not self.has_chief


def cluster(strategy: str = "multiworker") -> Cluster:
    """``TF_CONFIG`` read and checked (one process, the chief, when ``strategy`` is not ``multiworker``).

    TF_CONFIG is JSON: ``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker",
    "index": 0}}`` (a ``chief`` list may name the chief apart). A missing or malformed one is a
    :class:`~densenet_interp.errors.UserFacingError` in one line.
    """
    if strategy != "multiworker":
        return Cluster(1, "chief", 0, True)
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        raise UserFacingError(
            "STRATEGY=multiworker needs TF_CONFIG, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(text)
        nodes = config["cluster"]
        task_type, task_index = str(config["task"]["type"]), int(config["task"]["index"])
        chiefs, workers = nodes.get("chief", []), nodes.get("worker", [])
        if not all(
            isinstance(hosts, list) and all(isinstance(h, str) for h in hosts) for hosts in (chiefs, workers)
        ):
            raise TypeError('cluster entries must be lists of "host:port" strings')
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserFacingError(
            f"TF_CONFIG is not the JSON TensorFlow expects ({type(exc).__name__}: {exc})"
        ) from None
    if task_type not in ("chief", "worker") or not 0 <= task_index < len(nodes.get(task_type, [])):
        raise UserFacingError(
            f"TF_CONFIG's task {task_type} {task_index} is not in its cluster "
            f"({len(chiefs)} chief, {len(workers)} workers); expected type chief or worker and an index in its list"
        )
    return Cluster(len(chiefs) + len(workers), task_type, task_index, bool(chiefs))


def keras_multiworker_fixes() -> None:
    """Make ``keras.Model.fit`` work under ``MultiWorkerMirroredStrategy`` (Keras 3.15; idempotent).

    Two bugs of Keras' TensorFlow trainer stop ``fit`` with this strategy (keras-team/keras#20585 is the first):

    * ``_maybe_symbolic_build`` builds the model from the first batch by reducing it over the replicas
      ("MEAN"), which fails for the batch of a multi-worker dataset; it is replaced by building from the first
      replica's part of that batch (only its shapes matter).
    * ``reduce_per_replica(..., "mean")`` on several workers reduces along axis 0, which fails for the scalar
      loss and metrics; they are averaged over the replicas instead (they are equal: metrics are synchronised).

    Nothing else in Keras changes, and single-worker runs never call this.
    """
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_densenet_interp_fixed", False):
        return
    needed = ("reduce_per_replica", "_collective_all_reduce_multi_worker", "TensorFlowTrainer")
    if not all(hasattr(trainer, name) for name in needed) or not hasattr(
        trainer.TensorFlowTrainer, "_symbolic_build"
    ):
        raise UserFacingError(
            f"STRATEGY=multiworker is made for Keras 3.15 (the pinned version); this Keras {keras.__version__} "
            "changed the internals it fixes"
        )
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda v: (
                    strategy.reduce("MEAN", v, axis=None)
                    if isinstance(v, (tf.Tensor, tf.distribute.DistributedValues))
                    else v
                ),
                values,
            )
        return original(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tf.nest.map_structure(
                    lambda x: (
                        self.distribute_strategy.experimental_local_results(x)[0]
                        if isinstance(x, tf.distribute.DistributedValues)
                        else x
                    ),
                    batch,
                )
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer._densenet_interp_fixed = True


@contextmanager
def precision(mixed: bool) -> Iterator[None]:
    """Use the ``mixed_float16`` policy inside the block if ``mixed``; always restore the previous one."""
    previous = keras.config.dtype_policy()
    if mixed:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def execution() -> dict:
    """What the bits of a run depend on besides code and data: for the model card."""
    return {
        "op_determinism": _op_determinism(),
        "onednn": {name: os.environ.get(name, "unset (TensorFlow's default)") for name in ONEDNN_ENV},
        "threads": {
            name: os.environ.get(name) or f"TensorFlow default ({os.cpu_count()} cores)"
            for name in THREAD_ENV
        },
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }


def _op_determinism() -> bool | None:
    try:
        from tensorflow.python.framework import config as tf_config

        return bool(tf_config.is_op_determinism_enabled())
    except (ImportError, AttributeError):
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
