"""The explanation engine: prediction, stage activations and class activation map (CAM) from ONE forward pass.

Built the way the keras.io Grad-CAM example builds its ``grad_model``: a multi-output ``keras.Model`` over the
trained model's own layers returns intermediate activations beside the prediction, so a single forward pass
gives everything the paper's case figures show (section 3, Figure 3):

- the sigmoid probability of "abnormal" and its logit;
- the activations at the end of each stage: the initial convolution (``conv1_relu``) and the end of dense
  blocks 1-4 (the last ``conv{2..5}_block*_concat``), found by name with
  :func:`densenet_interp.models.stage_layer_names`;
- the final feature maps (``relu``) and the CAM of Zhou et al. (2016):
  ``cam[y, x] = sum_c w_c * final[y, x, c]`` with ``w`` the kernel of the ``predictions`` Dense layer,
  upsampled bilinearly (``tf.image.resize``) to the input size.

The CAM is **signed** and **excludes the bias**. Because the head is ``sigmoid(w . GAP(final) + b)``, the
logit is exactly ``mean(cam_lowres) + b``: the bias is a constant offset spread evenly over the image, so it
changes no map's shape; add ``b`` to every pixel to get a map whose spatial mean is the logit. The engine
computes the logit independently (from the head's own pooled input) so that tests can check this identity.

Beyond the paper: :func:`gradcam` (Grad-CAM and Grad-CAM++ on any layer, via ``tf.GradientTape``) and
:class:`ActivationCache` / :func:`layer_activations` (every layer with a 4-D output from one forward pass,
cached per model and image, for the explorer's layer slider).
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from .errors import ModelFileError

STAGES = ("initial_conv", "block1", "block2", "block3", "block4")
"""The activation panels (c)-(g) of the paper's case figures, in order."""

FINAL = "final"
"""The last feature maps (``relu``), the ones the CAM weighs."""

RANKS = ("mean", "max")
"""How :func:`top_channels` ranks channels: by mean activation over space (the default) or by maximum."""

HEAD = "predictions"
TARGETS = ("logit", "probability")
GRADCAM_METHODS = ("gradcam", "gradcam++")


# ----------------------------------------------------------------------------------------------------------
# What the engine needs from a model
# ----------------------------------------------------------------------------------------------------------
def explained_layers(model: keras.Model) -> dict[str, str]:
    """``{stage: layer name}`` for the five stages and ``final``; ModelFileError naming what is missing."""
    from .models import stage_layer_names

    found = stage_layer_names(model)
    missing = [stage for stage in (*STAGES, FINAL) if stage not in found]
    if missing:
        raise ModelFileError(
            f"model {model.name!r} has no layer for stage(s) {missing} (found {found}); expected Keras DenseNet "
            "layer names: conv1_relu, conv2..conv5_block*_concat and relu"
        )
    return {stage: found[stage] for stage in (*STAGES, FINAL)}


def _producer(tensor) -> keras.layers.Layer:
    """The layer whose output ``tensor`` (a symbolic KerasTensor) is."""
    return tensor._keras_history.operation


def cam_head(model: keras.Model, final_layer: str = "relu") -> keras.layers.Dense:
    """The ``predictions`` layer, checked to be ``sigmoid(Dense(1)(GlobalAveragePooling2D(final)))``.

    That structure is what makes the CAM exact (Zhou et al. 2016); any other head raises ModelFileError.
    """
    try:
        head = model.get_layer(HEAD)
    except ValueError:
        raise ModelFileError(
            f"model {model.name!r} has no layer {HEAD!r}; expected the head Dense(1, sigmoid) named {HEAD!r}"
        ) from None
    kernel_shape = tuple(head.kernel.shape) if isinstance(head, keras.layers.Dense) else None
    activation = getattr(getattr(head, "activation", None), "__name__", None)
    if kernel_shape is None or kernel_shape[1] != 1 or not head.use_bias or activation != "sigmoid":
        raise ModelFileError(
            f"layer {HEAD!r} is {type(head).__name__} (kernel {kernel_shape}, activation {activation}); "
            "expected Dense(1, activation='sigmoid') with a bias, whose kernel weighs the CAM"
        )
    pool = _producer(head.input)
    source = _producer(pool.input) if isinstance(pool, keras.layers.GlobalAveragePooling2D) else None
    if source is None or source.name != final_layer:
        raise ModelFileError(
            f"layer {HEAD!r} is fed by {pool.name!r} ({type(pool).__name__}); expected "
            f"GlobalAveragePooling2D over {final_layer!r}, the structure the CAM requires"
        )
    return head


def _input_size(model: keras.Model) -> int:
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] is None or shape[1] != shape[2]:
        raise ModelFileError(
            f"model {model.name!r} takes input of shape {shape}; expected (None, S, S, 3) square RGB images"
        )
    return int(shape[1])


def _check_batch(batch, size: int) -> np.ndarray:
    """The batch as float32 ``(N, S, S, 3)``; ValueError saying what was received otherwise."""
    array = np.asarray(batch, dtype=np.float32)
    if array.ndim != 4 or array.shape[1:] != (size, size, 3) or array.shape[0] == 0:
        raise ValueError(
            f"expected a batch of shape (N, {size}, {size}, 3) with pixel values 0..255 (images.to_model_input), "
            f"got shape {array.shape}"
        )
    return array


def upsample(maps: np.ndarray | tf.Tensor, size: int) -> np.ndarray:
    """Bilinear upsampling of ``(N, h, w)`` maps to ``(N, size, size)`` (``tf.image.resize``, half-pixel)."""
    resized = tf.image.resize(
        tf.convert_to_tensor(maps, tf.float32)[..., tf.newaxis], (size, size), "bilinear"
    )
    return resized[..., 0].numpy()


# ----------------------------------------------------------------------------------------------------------
# The one-pass explanation
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Explanation:
    """Everything one forward pass yields for a batch of N images (all arrays float32, batch first).

    ``inputs`` is the model input ``(N, S, S, 3)`` (pixels 0..255; the model normalises internally).
    ``stages`` maps each of :data:`STAGES` to its activations ``(N, h, w, c)``; ``final`` is ``(N, h, w, C)``.
    ``cam_lowres`` ``(N, h, w)`` and ``cam`` ``(N, S, S)`` are signed and exclude ``cam_bias`` (see module
    docstring): ``logit == cam_lowres.mean(axis=(1, 2)) + cam_bias``.
    """

    inputs: np.ndarray
    probability: np.ndarray
    logit: np.ndarray
    stages: dict[str, np.ndarray]
    final: np.ndarray
    cam_lowres: np.ndarray
    cam: np.ndarray
    cam_weights: np.ndarray
    cam_bias: float
    layer_names: dict[str, str]

    def __len__(self) -> int:
        return len(self.probability)


class Explainer:
    """Explains a trained model: build once (the multi-output model is traced once), call :meth:`explain`.

    ``multi_model`` returns, in one forward pass, the probability, the head's pooled input, the five stage
    activations and the final maps; :meth:`explain` adds the CAM inside the same traced function, so the whole
    explanation costs about one ``model.predict_on_batch`` (``benchmarks/explain_ratio.py`` measures it).
    """

    def __init__(self, model: keras.Model):
        # No reference to ``model`` itself is kept (the layers are shared), so the per-model caches below can
        # hold explainers without keeping models alive.
        self.model_name = model.name
        self.layer_names = explained_layers(model)
        self.head = cam_head(model, self.layer_names[FINAL])
        self.input_size = _input_size(model)
        outputs = {"probability": model.outputs[0], "pooled": self.head.input}
        outputs.update({stage: model.get_layer(name).output for stage, name in self.layer_names.items()})
        self.multi_model = keras.Model(model.inputs, outputs, name=f"{model.name}_explained")
        spec = tf.TensorSpec((None, self.input_size, self.input_size, 3), tf.float32)
        self._forward = tf.function(self._graph, input_signature=[spec])
        self._grad_models: dict[str, keras.Model] = {}

    @property
    def cam_weights(self) -> tuple[np.ndarray, float]:
        """The head's current ``(w (C,), b)``: the CAM weights and the bias it leaves out."""
        kernel, bias = (keras.ops.convert_to_numpy(v) for v in (self.head.kernel, self.head.bias))
        return kernel[:, 0].astype(np.float32), float(bias[0])

    def _logit(self, pooled: tf.Tensor) -> tf.Tensor:
        """The head's pre-sigmoid output from its own pooled input (independent of the CAM, see module doc)."""
        kernel = tf.convert_to_tensor(self.head.kernel)
        bias = tf.convert_to_tensor(self.head.bias)
        return tf.linalg.matvec(pooled, kernel[:, 0]) + bias[0]

    def _graph(self, batch: tf.Tensor) -> dict[str, tf.Tensor]:
        """The traced explanation: one call of ``multi_model``, then CAM and logit from its outputs."""
        out = self.multi_model(batch, training=False)
        kernel = tf.convert_to_tensor(self.head.kernel)
        cam_lowres = tf.tensordot(out[FINAL], kernel[:, 0], axes=[[3], [0]])
        size = (self.input_size, self.input_size)
        cam = tf.image.resize(cam_lowres[..., tf.newaxis], size, method="bilinear")[..., 0]
        return {**out, "logit": self._logit(out["pooled"]), "cam_lowres": cam_lowres, "cam": cam}

    def explain(self, batch: np.ndarray) -> Explanation:
        """One forward pass over ``batch`` (float32 ``(N, S, S, 3)``, pixels 0..255) -> :class:`Explanation`."""
        batch = _check_batch(batch, self.input_size)
        out = {key: value.numpy() for key, value in self._forward(tf.constant(batch)).items()}
        weights, bias = self.cam_weights
        return Explanation(
            inputs=batch,
            probability=out["probability"].reshape(len(batch)),
            logit=out["logit"],
            stages={stage: out[stage] for stage in STAGES},
            final=out[FINAL],
            cam_lowres=out["cam_lowres"],
            cam=out["cam"],
            cam_weights=weights,
            cam_bias=bias,
            layer_names=dict(self.layer_names),
        )

    # ------------------------------------------------------------------------------------------------------
    # Grad-CAM / Grad-CAM++ (beyond the paper)
    # ------------------------------------------------------------------------------------------------------
    def _grad_model(self, layer_name: str) -> tuple[keras.Model, str]:
        """A model returning ``layer_name``'s output and the pooled head input; stages reuse ``multi_model``."""
        for stage, name in self.layer_names.items():
            if name == layer_name:
                return self.multi_model, stage
        if layer_name not in self._grad_models:
            try:
                layer = self.multi_model.get_layer(layer_name)  # every layer up to the head is in multi_model
            except ValueError:
                raise ValueError(
                    f"model {self.model_name!r} has no layer {layer_name!r} before its head"
                ) from None
            if len(layer.output.shape) != 4:
                raise ValueError(
                    f"layer {layer_name!r} has output shape {layer.output.shape}; Grad-CAM needs (N, h, w, c) maps"
                )
            outputs = {"layer": layer.output, "pooled": self.head.input}
            self._grad_models[layer_name] = keras.Model(self.multi_model.inputs, outputs)
        return self._grad_models[layer_name], "layer"

    def gradcam(
        self, batch: np.ndarray, layer_name: str, target: str = "logit", method: str = "gradcam"
    ) -> np.ndarray:
        """Grad-CAM (Selvaraju et al. 2017) or Grad-CAM++ (Chattopadhyay et al. 2018) maps ``(N, h, w)``.

        ``target`` is the logit (default) or the probability of "abnormal"; the maps are at the layer's
        resolution, non-negative and unnormalised (use :func:`upsample` to overlay them). Grad-CAM weighs
        channel ``c`` by the spatial mean of ``d target / d A_c``; Grad-CAM++ uses the closed form of its
        paper (second and third derivatives as powers of the first, exact for an exponential of the target).
        """
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if method not in GRADCAM_METHODS:
            raise ValueError(f"method must be one of {GRADCAM_METHODS}, got {method!r}")
        grad_model, key = self._grad_model(layer_name)
        batch = tf.constant(_check_batch(batch, self.input_size))
        with tf.GradientTape() as tape:
            tape.watch(batch)  # record the graph even if the model's weights are frozen
            out = grad_model(batch, training=False)
            activation = out[key]
            logit = self._logit(out["pooled"])
            score = logit if target == "logit" else tf.sigmoid(logit)
        # Examples are independent (inference mode), so d sum(score) / d A_n = d score_n / d A_n.
        grads = tape.gradient(score, activation)
        if method == "gradcam":
            channel_weights = tf.reduce_mean(grads, axis=(1, 2))
        else:
            grads2, grads3 = grads**2, grads**3
            denominator = 2.0 * grads2 + tf.reduce_sum(activation, axis=(1, 2), keepdims=True) * grads3
            alpha = grads2 / tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
            channel_weights = tf.reduce_sum(alpha * tf.nn.relu(grads), axis=(1, 2))
        heatmap = tf.einsum("nhwc,nc->nhw", activation, channel_weights)
        return tf.nn.relu(heatmap).numpy()


_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def explainer_for(model: keras.Model) -> Explainer:
    """The :class:`Explainer` of ``model``, built on first use and kept as long as the model lives."""
    if model not in _EXPLAINERS:
        _EXPLAINERS[model] = Explainer(model)
    return _EXPLAINERS[model]


def gradcam(
    model: keras.Model | Explainer,
    batch: np.ndarray,
    layer_name: str,
    target: str = "logit",
    method: str = "gradcam",
) -> np.ndarray:
    """Grad-CAM maps ``(N, h, w)`` of ``layer_name``; see :meth:`Explainer.gradcam`. Shares the explainer."""
    explainer = model if isinstance(model, Explainer) else explainer_for(model)
    return explainer.gradcam(batch, layer_name, target=target, method=method)


def gradcam_plus_plus(
    model: keras.Model | Explainer, batch: np.ndarray, layer_name: str, target: str = "logit"
) -> np.ndarray:
    """Grad-CAM++ maps ``(N, h, w)`` of ``layer_name``; see :meth:`Explainer.gradcam`."""
    return gradcam(model, batch, layer_name, target=target, method="gradcam++")


# ----------------------------------------------------------------------------------------------------------
# Channel selection (the paper's "top 16 most activated feature maps")
# ----------------------------------------------------------------------------------------------------------
def top_channels(activation: np.ndarray, k: int = 16, rank: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most activated channels of one image's activation ``(h, w, c)``.

    Channels are ranked by their mean over space (``rank="mean"``, the default: a channel that is strong over
    a region beats one with a single hot pixel) or by their maximum (``rank="max"``); ties keep channel order.
    Returns ``(indices (k,), maps (k, h, w))``, most activated first; ``k`` is capped at ``c``.
    """
    activation = np.asarray(activation)
    if activation.ndim != 3:
        raise ValueError(f"expected one image's activation of shape (h, w, c), got shape {activation.shape}")
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {RANKS}, got {rank!r}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    scores = activation.mean(axis=(0, 1)) if rank == "mean" else activation.max(axis=(0, 1))
    indices = np.argsort(-scores, kind="stable")[: min(int(k), activation.shape[-1])]
    return indices, np.moveaxis(activation[..., indices], -1, 0)


# ----------------------------------------------------------------------------------------------------------
# Every layer, for the explorer: one forward pass per (model, image), cached
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageActivations:
    """One image's activations at every layer with a 4-D output, and its prediction and CAM.

    ``activations`` maps layer names (in model order) to ``(h, w, c)``; ``cam`` is ``(S, S)`` and
    ``cam_lowres`` ``(h, w)``, as in :class:`Explanation`; ``stage_layers`` is ``{stage: layer name}``.
    """

    activations: dict[str, np.ndarray]
    probability: float
    logit: float
    cam_lowres: np.ndarray
    cam: np.ndarray
    stage_layers: dict[str, str]

    @property
    def layer_names(self) -> list[str]:
        return list(self.activations)


class LayerActivations:
    """A multi-output model over every layer with a 4-D output (the input layer excepted), plus the head.

    Calling it runs one forward pass of one image and returns :class:`ImageActivations`. Layers used more than
    once (no single output) are left out; the models of this project have none.
    """

    def __init__(self, model: keras.Model):
        self.explainer = explainer_for(model)
        self.layer_names: tuple[str, ...] = tuple(
            layer.name
            for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and _single_4d_output(layer)
        )
        outputs = {"probability": model.outputs[0], "pooled": self.explainer.head.input}
        outputs.update({name: model.get_layer(name).output for name in self.layer_names})
        self.multi_model = keras.Model(model.inputs, outputs, name=f"{model.name}_all_layers")
        size = self.explainer.input_size
        self._forward = tf.function(
            lambda x: self.multi_model(x, training=False),
            input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)],
        )

    def __call__(self, image_batch: np.ndarray) -> ImageActivations:
        batch = _check_batch(image_batch, self.explainer.input_size)
        if len(batch) != 1:
            raise ValueError(f"expected one image (batch of 1), got a batch of {len(batch)}")
        out = {key: value.numpy()[0] for key, value in self._forward(tf.constant(batch)).items()}
        weights, bias = self.explainer.cam_weights
        final = out[self.explainer.layer_names[FINAL]]
        cam_lowres = final @ weights
        return ImageActivations(
            activations={name: out[name] for name in self.layer_names},
            probability=float(out["probability"].reshape(-1)[0]),
            logit=float(out["pooled"] @ weights + bias),
            cam_lowres=cam_lowres,
            cam=upsample(cam_lowres[np.newaxis], self.explainer.input_size)[0],
            stage_layers=dict(self.explainer.layer_names),
        )


def _single_4d_output(layer: keras.layers.Layer) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):  # a layer called several times has no single output
        return False


_LAYER_ACTIVATIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def layer_activations(model: keras.Model) -> LayerActivations:
    """The every-layer multi-output model of ``model``, built once per model (it costs a graph trace)."""
    if model not in _LAYER_ACTIVATIONS:
        _LAYER_ACTIVATIONS[model] = LayerActivations(model)
    return _LAYER_ACTIVATIONS[model]


def image_key(image: np.ndarray) -> str:
    """A content hash of an array (shape, dtype and bytes), so equal images share a cache entry."""
    array = np.ascontiguousarray(image)
    digest = hashlib.sha1(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


class ActivationCache:
    """Activations keyed by (model, image content): one forward pass per pair, then only lookups.

    Least recently used entries beyond ``max_entries`` are dropped (every-layer activations of one image take
    a few MB for the compact models, up to a few hundred MB for DenseNet-169 at 320 px). ``forward_passes``
    counts the passes actually run, which the explorer's tests use to prove that a slider only redraws.
    """

    def __init__(self, max_entries: int = 8):
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self.forward_passes = 0
        self._entries: OrderedDict[tuple[int, str], tuple[keras.Model, ImageActivations]] = OrderedDict()

    def get(self, model: keras.Model, image_batch: np.ndarray) -> ImageActivations:
        """Activations of ``model`` for one image given as model input ``(1, S, S, 3)`` (or ``(S, S, 3)``)."""
        batch = np.asarray(image_batch, dtype=np.float32)
        batch = batch[np.newaxis] if batch.ndim == 3 else batch
        key = (id(model), image_key(batch))  # the entry holds the model, so its id is not reused meanwhile
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key][1]
        activations = layer_activations(model)(batch)
        self.forward_passes += 1
        self._entries[key] = (model, activations)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return activations

    def __len__(self) -> int:
        return len(self._entries)


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------
def explain_command(args) -> int:
    """``densenet-interp explain``: see :func:`densenet_interp.explain_cli.run` (kept there, one job each)."""
    from .explain_cli import run

    return run(args)
