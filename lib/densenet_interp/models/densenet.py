"""The models: a compact DenseNet-BC with Keras' layer names, the paper's DenseNet-169, heads, loading.

Every model built here is ONE flat functional graph (no nested sub-models) with the same contract:

- input: float32 ``(N, S, S, 3)`` with pixel values 0..255 (grey radiographs replicated to three channels);
- ``preprocess``: a :class:`keras.layers.Rescaling` doing exactly what
  ``keras.applications.densenet.preprocess_input`` does ("torch" mode: x / 255, minus the ImageNet mean,
  divided by the ImageNet std), so a saved model needs no preprocessing code outside itself;
- the layer names of ``keras.applications.densenet``: ``conv1_relu`` (initial convolution),
  ``conv{2..5}_block{i}_concat`` (the last one ends a dense block), ``pool{2,3,4}_*`` (transitions),
  ``bn`` and ``relu`` (end of the backbone), so the explanation engine finds the paper's stages by name
  (:func:`stage_layer_names`) whatever the depth;
- the head: ``avg_pool`` (global average pooling) then ``predictions`` = ``Dense(1, sigmoid)`` (paper
  section 3: "a sigmoid function was used in the last layer for binary classification").

:func:`build_model` builds a profile's model and starts it from the weights
:func:`densenet_interp.models.weights.initial_weights` decides (random, the stand-in backbone or ImageNet);
the backbone weights files are read and written there too. :func:`load_model` loads a trained model.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np
from keras import layers

from ..errors import ModelFileError
from ..profiles import Profile
from .weights import WEIGHTS_ENV, initial_weights, load_backbone_weights

# ImageNet statistics used by keras.applications.densenet.preprocess_input ("torch" mode).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BN_EPSILON = 1.001e-5  # as keras.applications.densenet
COMPRESSION = 0.5  # DenseNet-BC transition layers halve the number of feature maps
DENSENET169_BLOCKS = (6, 12, 32, 32)
DENSENET169_NOTOP_FILE = "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5"

_CONCAT_RE = re.compile(r"^conv(\d+)_block(\d+)_concat$")


# --------------------------------------------------------------------------------------------------------
# Building blocks (keras.applications.densenet structure, growth rate as a parameter)
# --------------------------------------------------------------------------------------------------------
def preprocess_layer(name: str = "preprocess") -> layers.Rescaling:
    """The model's own input normalisation, identical to ``densenet.preprocess_input`` on 0..255 pixels.

    ``(x / 255 - mean) / std`` is written as ``x * scale + offset`` per channel. Rescaling has no weights,
    so weights files made for keras.applications' DenseNet load unchanged.
    """
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64)
    std = np.asarray(IMAGENET_STD, dtype=np.float64)
    return layers.Rescaling(scale=(1.0 / (255.0 * std)).tolist(), offset=(-mean / std).tolist(), name=name)


def conv_block(x, growth_rate: int, name: str):
    """One bottleneck layer of a dense block: BN-ReLU-1x1 conv (4k) then BN-ReLU-3x3 conv (k), concat.

    The concatenation with the input is what makes the network dense: every layer sees all earlier maps.
    """
    x1 = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=f"{name}_0_bn")(x)
    x1 = layers.Activation("relu", name=f"{name}_0_relu")(x1)
    x1 = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(x1)
    x1 = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=f"{name}_1_bn")(x1)
    x1 = layers.Activation("relu", name=f"{name}_1_relu")(x1)
    x1 = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x1)
    return layers.Concatenate(axis=3, name=f"{name}_concat")([x, x1])


def dense_block(x, blocks: int, growth_rate: int, name: str):
    """A dense block of ``blocks`` conv_blocks; its output is the last ``{name}_block{blocks}_concat``."""
    for i in range(blocks):
        x = conv_block(x, growth_rate, name=f"{name}_block{i + 1}")
    return x


def transition_block(x, reduction: float, name: str):
    """A transition layer: BN-ReLU-1x1 conv keeping ``reduction`` of the maps, then 2x2 average pooling."""
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.Conv2D(int(x.shape[3] * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def stem(x, filters: int):
    """The initial convolution (7x7/2, named ``conv1_*``) and 3x3/2 max pooling ``pool1``."""
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(x)
    x = layers.Conv2D(filters, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1")(x)


def classification_head(x, num_outputs: int = 1, activation: str = "sigmoid", name: str = "predictions"):
    """Global average pooling ``avg_pool`` then one dense layer: the head CAM is computed from."""
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Dense(num_outputs, activation=activation, name=name)(x)


def _image_input(image_size: int) -> keras.KerasTensor:
    if not isinstance(image_size, int) or image_size < 32:
        raise ValueError(f"image_size must be an integer >= 32 (five 2x down-samplings), got {image_size!r}")
    return keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="image")


# --------------------------------------------------------------------------------------------------------
# The two architectures
# --------------------------------------------------------------------------------------------------------
def build_compact_densenet(
    blocks: Sequence[int],
    growth_rate: int,
    image_size: int,
    *,
    include_top: bool = True,
    num_outputs: int = 1,
    activation: str = "sigmoid",
    name: str = "densenet_bc",
    seed: int | None = None,
) -> keras.Model:
    """DenseNet-BC with keras.applications' structure and layer names, at any depth and growth rate.

    With ``blocks=(6, 12, 32, 32)`` and ``growth_rate=32`` this is layer for layer DenseNet-169 (the stem has
    ``2 * growth_rate`` filters, 64 there). Smaller settings give the compact models of the ``tiny`` and
    ``mini`` profiles, which keep every name the explanation engine looks up.

    Args:
        blocks: layers per dense block; exactly four (stages conv2..conv5, as in Keras).
        growth_rate: feature maps added by each bottleneck layer.
        image_size: input is ``image_size x image_size x 3``, pixels 0..255.
        include_top: add ``avg_pool`` + ``predictions``; False returns the backbone ending at ``relu``.
        num_outputs, activation: size and activation of ``predictions``.
        name: model name.
        seed: if given, ``keras.utils.set_random_seed(seed)`` first, so initial weights are reproducible.
    """
    blocks = tuple(blocks)
    if len(blocks) != 4 or not all(isinstance(b, int) and b >= 1 for b in blocks):
        raise ValueError(f"blocks must be four positive integers (dense blocks conv2..conv5), got {blocks!r}")
    if not isinstance(growth_rate, int) or growth_rate < 1:
        raise ValueError(f"growth_rate must be a positive integer, got {growth_rate!r}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    image = _image_input(image_size)
    x = preprocess_layer()(image)
    x = stem(x, 2 * growth_rate)
    for stage, n_layers in enumerate(blocks, start=2):
        x = dense_block(x, n_layers, growth_rate, name=f"conv{stage}")
        if stage < 5:
            x = transition_block(x, COMPRESSION, name=f"pool{stage}")
    x = layers.BatchNormalization(axis=3, epsilon=BN_EPSILON, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    if include_top:
        x = classification_head(x, num_outputs, activation)
    return keras.Model(image, x, name=name)


def build_densenet169(image_size: int = 320, *, weights: str | os.PathLike | None = None) -> keras.Model:
    """The paper's model: ``keras.applications.DenseNet169`` (no top) behind ``preprocess``, plus our head.

    The backbone is built on the output of the preprocess layer (``input_tensor``), so the whole model is
    one flat graph whose layer names are Keras' own.

    Args:
        image_size: the paper uses 320. The ImageNet weights were trained at 224; convolutional weights
            do not depend on the input size, which is how Keras loads them at 320 with include_top=False.
        weights: None (random), ``"imagenet"`` (Keras downloads the no-top file; needs the internet) or
            the path of a local HDF5 copy of the no-top DenseNet-169 weights (``DENSENET169_NOTOP_FILE``),
            or of a backbone file written by :func:`~densenet_interp.models.weights.save_backbone_weights`.
    """
    image = _image_input(image_size)
    x = preprocess_layer()(image)
    keras_weights = "imagenet" if weights == "imagenet" else None
    try:
        base = keras.applications.DenseNet169(include_top=False, weights=keras_weights, input_tensor=x)
    except Exception as exc:  # the download is the only thing that can fail here
        if keras_weights is None:
            raise
        raise ModelFileError(
            f"could not obtain the ImageNet DenseNet-169 weights ({type(exc).__name__}: {exc}); offline, "
            f"download {DENSENET169_NOTOP_FILE} elsewhere and set {WEIGHTS_ENV} to its path",
            path=DENSENET169_NOTOP_FILE,
        ) from None
    model = keras.Model(image, classification_head(base.output), name="densenet169")
    if weights is not None and weights != "imagenet":
        load_backbone_weights(
            model, weights, expected=f"the no-top DenseNet-169 weights ({DENSENET169_NOTOP_FILE})"
        )
    return model


def build_model(
    profile: Profile, *, pretrained: bool, weights_path: str | os.PathLike | None = None, seed: int = 0
) -> keras.Model:
    """The (uncompiled) model of a profile, randomly initialised or with pre-trained backbone weights.

    What a pre-trained model starts from is :func:`~densenet_interp.models.weights.initial_weights`'s decision
    (``weights_path`` overrides its file): the stand-in backbone (``compact`` profiles; the head stays random)
    or ImageNet (``densenet169``: the local file if any, else Keras' download).

    ``seed`` fixes the random initial weights (including the head of a pre-trained model).
    """
    kind, path = initial_weights(profile, pretrained, override=weights_path)
    keras.utils.set_random_seed(seed)
    if profile.architecture == "compact":
        blocks_label = "-".join(str(b) for b in profile.blocks)
        model = build_compact_densenet(
            profile.blocks,
            profile.growth_rate,
            profile.image_size,
            name=f"densenet_bc_{blocks_label}_k{profile.growth_rate}",
        )
        if kind != "random":
            if path is None:
                raise ValueError(
                    f"profile {profile.name!r} builds a compact DenseNet, which has no {kind} weights to "
                    "download; pass the backbone weights file"
                )
            load_backbone_weights(model, path, expected=f"backbone weights of profile '{profile.name}'")
        return model
    if profile.architecture == "densenet169":
        weights = None if kind == "random" else (path or "imagenet")
        return build_densenet169(profile.image_size, weights=weights)
    raise ValueError(
        f"profile {profile.name!r} has architecture {profile.architecture!r}; expected 'compact' or 'densenet169'"
    )


# --------------------------------------------------------------------------------------------------------
# Loading trained models and finding the paper's stages
# --------------------------------------------------------------------------------------------------------
def stage_layer_names(model: keras.Model) -> dict[str, str]:
    """The layers whose outputs the paper visualises, found by Keras' DenseNet names (any depth).

    Returns ``{"initial_conv": "conv1_relu", "block1": <last conv2_block*_concat>, ..., "block4": <last
    conv5_block*_concat>, "final": "relu"}`` in that order; stages the model lacks are left out.
    """
    names = {layer.name for layer in model.layers}
    last_concat: dict[int, tuple[int, str]] = {}
    for name in names:
        match = _CONCAT_RE.match(name)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            if block > last_concat.get(stage, (0, ""))[0]:
                last_concat[stage] = (block, name)
    stages: dict[str, str] = {}
    if "conv1_relu" in names:
        stages["initial_conv"] = "conv1_relu"
    for stage in sorted(last_concat):
        stages[f"block{stage - 1}"] = last_concat[stage][1]
    if "relu" in names:
        stages["final"] = "relu"
    return stages


def _check_explainable(model: keras.Model, path: Path) -> None:
    """Raise ModelFileError unless ``model`` has the layers the explanation engine needs."""
    names = {layer.name for layer in model.layers}
    missing = [n for n in ("preprocess", "conv1_relu", "relu", "predictions") if n not in names]
    if not any(_CONCAT_RE.match(n) for n in names):
        missing.append("conv*_block*_concat")
    if missing:
        raise ModelFileError(
            f"model {model.name!r} lacks the layers {missing}; expected a DenseNet built by densenet-interp "
            "(Keras DenseNet layer names, a 'preprocess' input layer and a 'predictions' head)",
            path=path,
        )
    head = model.get_layer("predictions")
    units = getattr(head, "units", None)
    if not isinstance(head, layers.Dense) or units != 1:
        raise ModelFileError(
            f"layer 'predictions' is a {type(head).__name__} with {units} units; expected Dense with 1 unit "
            "(the sigmoid abnormality probability)",
            path=path,
        )


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` model trained by this project (safe mode, uncompiled) and check it is explainable.

    Raises ModelFileError (one line, naming the file) if the file is missing, not a ``.keras`` archive,
    corrupt, or a model without the layers the explanation engine needs.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            "model file not found; expected a .keras file written by densenet-interp train", path=path
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError("not a .keras model (not a zip archive); expected a .keras file", path=path)
    try:
        model = keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for corrupt archives; all mean the same to the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"could not load the model ({type(exc).__name__}: {reason[:200]})", path=path
        ) from None
    _check_explainable(model, path)
    return model
