"""Initial weights: the one policy that says what a model starts from, and the backbone weights files.

Policy (:func:`initial_weights`, as keras.applications' single ``weights=`` argument): a model set that is
not pre-trained starts ``random``; a pre-trained one starts from its profile's pre-training, the offline
``standin`` backbone (``Layout.standin_weights``, written by ``densenet-interp pretrain``; an error if it is
missing) or ``imagenet`` (the file named by ``$DENSENET_WEIGHTS`` if set, else Keras' download; for
``imagenet_or_random``, the smoke profile's, that file if set, else ``random``: never a download). ``override``
names another file. The model builder, the training runs, the notebooks and the shortcut experiment all ask
this one function, and pass nothing of their own unless they mean to override it.

Weights files. Keras 3 ``.weights.h5`` files key each layer by its class and position ("conv2d_17"), not by
its name, so they cannot be matched layer by layer against another model. Backbone weights are therefore
written and read in the layout of Keras' HDF5 weights files (the layout of the published ImageNet files:
a ``layer_names`` attribute, one group per layer named after it, ``weight_names`` inside), which records the
layer names. :func:`load_backbone_weights` copies weights by layer name and refuses silent partial loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import h5py
import keras
import numpy as np

from ..errors import ModelFileError
from ..paths import Layout, atomic_path
from ..profiles import ModelSet, Profile

WEIGHTS_ENV = "DENSENET_WEIGHTS"  # a local copy of the no-top ImageNet weights, for machines offline
HEAD_LAYERS = ("predictions", "standin_predictions")  # layers that stay random when a backbone is loaded
KINDS = ("random", "standin", "imagenet")


# --------------------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------------------
def initial_weights(
    profile: Profile, model_set: ModelSet | bool, override: str | os.PathLike | None = None
) -> tuple[str, Path | None]:
    """``(kind, file)``: what a model of ``profile`` starts from; ``kind`` is one of :data:`KINDS`.

    Args:
        profile: the run profile; its ``pretraining`` (``standin`` or ``imagenet``) says where pre-trained
            weights come from.
        model_set: a model set, or whether the model is pre-trained.
        override: a weights file to use instead of the default one (ignored for a random start).

    Returns ``("random", None)``; ``("standin", backbone file)``, the file being ``override`` or the profile's
    ``Layout.standin_weights``; or ``("imagenet", file or None)``, the file being ``override`` or
    ``$DENSENET_WEIGHTS``, None meaning Keras' ImageNet download. Raises ModelFileError (one line, naming the
    file) when the stand-in backbone is missing.
    """
    pretrained = model_set if isinstance(model_set, bool) else model_set.pretrained
    if not pretrained:
        return "random", None
    if profile.pretraining == "standin":
        path = Path(override) if override else Layout.for_profile(profile.name).standin_weights
        if not path.is_file():
            starts = "" if isinstance(model_set, bool) else f"; model set {model_set.name} starts from it"
            raise ModelFileError(
                f"stand-in pre-trained weights not found; run `densenet-interp pretrain --profile {profile.name}` "
                f"first (or pass the backbone .weights.h5 it wrote){starts}",
                path=path,
            )
        return "standin", path
    if profile.pretraining in ("imagenet", "imagenet_or_random"):
        local = override or os.environ.get(WEIGHTS_ENV)
        if not local and profile.pretraining == "imagenet_or_random":
            return "random", None  # never a download: the data label and the card say "random"
        return "imagenet", Path(local) if local else None
    raise ValueError(
        f"profile {profile.name!r} has pretraining {profile.pretraining!r}; expected 'standin', 'imagenet' or "
        "'imagenet_or_random'"
    )


# --------------------------------------------------------------------------------------------------------
# Weights files (Keras HDF5 weights layout, matched by layer name)
# --------------------------------------------------------------------------------------------------------
def _layer_variables(layer: keras.layers.Layer) -> list:
    """A layer's variables in the order of Keras' HDF5 weights files (trainable first)."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _read_name_list(group: h5py.Group, name: str) -> list[str] | None:
    """Read a list attribute that Keras may have split into ``name0``, ``name1``... (64 kB HDF5 limit)."""
    if name in group.attrs:
        values = list(group.attrs[name])
    elif f"{name}0" in group.attrs:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    else:
        return None
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_layer_weights(path: str | os.PathLike, expected: str = "a Keras HDF5 weights file") -> dict:
    """Read ``{layer name: [arrays]}`` from a Keras HDF5 weights file (or full-model ``.h5``) by name.

    Keras 2 layer names are translated to Keras 3 ones ("/" becomes "_": the published DenseNet files name
    the stem ``conv1/conv`` and ``conv1/bn``, keras.applications now ``conv1_conv`` and ``conv1_bn``).

    Raises ModelFileError, naming the file and ``expected``, if it is missing, not HDF5, or a Keras 3
    ``.weights.h5`` (whose layers are keyed by class and position, so they cannot be matched by name).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"weights file not found; expected {expected}", path=path)
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            layer_names = _read_name_list(group, "layer_names")
            if layer_names is None:
                kind = (
                    "a Keras 3 .weights.h5 (layers keyed by class, not name)"
                    if "layers" in f
                    else "no layers"
                )
                raise ModelFileError(f"HDF5 file has {kind}; expected {expected} with layer names", path=path)
            weights = {}
            for name in layer_names:
                weight_names = _read_name_list(group[name], "weight_names") or []
                if weight_names:
                    # Keras 2 names such as "conv1/conv" (the ImageNet files) are "conv1_conv" in Keras 3
                    weights[name.replace("/", "_")] = [np.asarray(group[name][w]) for w in weight_names]
            return weights
    except ModelFileError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"not a readable HDF5 weights file ({reason}); expected {expected}", path=path
        ) from None


def save_backbone_weights(model: keras.Model, path: str | os.PathLike) -> Path:
    """Write every layer's weights to ``path`` atomically, in Keras' HDF5 weights layout (names kept).

    Only layers with weights are written. The file reads back with :func:`load_backbone_weights` (and with
    Keras 2 style ``load_weights(..., by_name=True)`` readers of the same layout).
    """
    weighted = [layer for layer in model.layers if layer.weights]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["layer_names"] = np.array([layer.name.encode("utf8") for layer in weighted])
        f.attrs["backend"] = keras.backend.backend().encode("utf8")
        f.attrs["keras_version"] = keras.__version__.encode("utf8")
        f.attrs["model_name"] = model.name.encode("utf8")
        for layer in sorted(weighted, key=lambda layer: layer.name):
            group = f.create_group(layer.name)
            variables = _layer_variables(layer)
            names = [f"{layer.name}/{v.name}" for v in variables]
            group.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
            for name, variable in zip(names, variables, strict=True):
                group.create_dataset(name, data=keras.ops.convert_to_numpy(variable))
    return Path(path)


def load_backbone_weights(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    expected: str = "backbone weights saved by densenet-interp",
    keep_random: Iterable[str] = HEAD_LAYERS,
) -> list[str]:
    """Copy weights into ``model`` layer by layer, matching names; return the names of the loaded layers.

    Every layer of ``model`` that has weights must be found in the file with the same shapes, except the
    layers in ``keep_random`` (the heads), which keep their initial weights. Layers of the file that the
    model lacks (e.g. the ImageNet classifier) are ignored. Nothing is assigned unless all checks pass.
    """
    stored = read_layer_weights(path, expected)
    keep_random = set(keep_random)
    assignments, missing = [], []
    for layer in model.layers:
        variables = _layer_variables(layer)
        if not variables or layer.name in keep_random:
            continue
        if layer.name not in stored:
            missing.append(layer.name)
            continue
        arrays = stored[layer.name]
        want = [tuple(v.shape) for v in variables]
        got = [tuple(a.shape) for a in arrays]
        if want != got:
            raise ModelFileError(
                f"layer {layer.name!r} has weight shapes {got} in the file but {want} in model "
                f"{model.name!r}; expected {expected}",
                path=path,
            )
        assignments.append((layer.name, variables, arrays))
    if not assignments:
        raise ModelFileError(
            f"no layer of model {model.name!r} found in the file (it holds {len(stored)} layers with weights, "
            f"e.g. {sorted(stored)[:3]}); expected {expected}",
            path=path,
        )
    if missing:
        raise ModelFileError(
            f"{len(missing)} layers of model {model.name!r} are not in the file (first: {missing[:3]}); "
            f"expected {expected}",
            path=path,
        )
    for _, variables, arrays in assignments:
        for variable, array in zip(variables, arrays, strict=True):
            variable.assign(array)
    return [name for name, _, _ in assignments]
