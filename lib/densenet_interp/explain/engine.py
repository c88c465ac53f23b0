"""The explanation engine: ONE activation capture, ONE class activation map (CAM), ONE result type.

Built the way the keras.io Grad-CAM example builds its ``grad_model`` and pytorch-grad-cam its ``BaseCAM``: an
:class:`Explainer` wraps a trained model in a multi-output ``keras.Model`` over the model's own layers, so a
single forward pass returns the prediction beside the activations of a chosen layer set (:data:`LAYER_SETS`):

- ``stages`` (the default): the paper's case figures (section 3, Figure 3): the end of each stage, i.e. the
  initial convolution (``conv1_relu``) and the end of dense blocks 1-4 (the last ``conv{2..5}_block*_concat``),
  found by name with :func:`densenet_interp.models.densenet.stage_layer_names`, and the final maps (``relu``);
- ``all``: every layer with a 4-D output, for the explorer's layer slider (a superset of ``stages``).

Every pass gives an :class:`Explanation`: the sigmoid probability of "abnormal", its logit, the captured
activations by layer name, and the CAM of Zhou et al. (2016), computed in one place (the traced
``Explainer._graph``): ``cam[y, x] = sum_c w_c * final[y, x, c]`` (``tf.tensordot``) with ``w`` the kernel of
the ``predictions`` Dense layer, upsampled bilinearly (``tf.image.resize``) to the input size.

The CAM is **signed** and **excludes the bias**. Because the head is ``sigmoid(w . GAP(final) + b)``, the
logit is exactly ``mean(cam_lowres) + b``: the bias is a constant offset spread evenly over the image, so it
changes no map's shape; add ``b`` to every pixel to get a map whose spatial mean is the logit. The engine
computes the logit independently (from the head's own pooled input) so that tests can check this identity.

For gradient methods the engine also captures gradients: :meth:`Explainer.activations_and_gradients` gives a
layer's activations and the gradient of the target (logit or probability) with respect to them, from one
``tf.GradientTape`` pass. Saliency methods themselves (CAM, Grad-CAM, Grad-CAM++, random) are small units in
:mod:`densenet_interp.explain.methods`, registered there; metrics live in :mod:`densenet_interp.evaluate`.

Around the engine: :func:`explainer_for` (one explainer per model and layer set, built once),
:func:`iter_explanations` (explain many images a batch at a time: the one loop of the tables and the CLI) and
:class:`ActivationCache` (every-layer explanations of single images, cached per model and image content: one
forward pass per pair, for the explorer).
"""

from __future__ import annotations

import hashlib
import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ..errors import ModelFileError
from .maps import class_activation_map

STAGES = ("initial_conv", "block1", "block2", "block3", "block4")
"""The activation panels (c)-(g) of the paper's case figures, in order."""

FINAL = "final"
"""The last feature maps (``relu``), the ones the CAM weighs."""

LAYER_SETS = ("stages", "all")
"""What an :class:`Explainer` captures: the five :data:`STAGES` and the final maps, or every 4-D layer."""

HEAD = "predictions"
TARGETS = ("logit", "probability")
"""What gradients are taken of: the logit of "abnormal" (the default) or its probability."""


# ----------------------------------------------------------------------------------------------------------
# What the engine needs from a model
# ----------------------------------------------------------------------------------------------------------
def explained_layers(model: keras.Model) -> dict[str, str]:
    """``{stage: layer name}`` for the five stages and ``final``; ModelFileError naming what is missing."""
    from ..models.densenet import stage_layer_names

    found = stage_layer_names(model)
    missing = [stage for stage in (*STAGES, FINAL) if stage not in found]
    if missing:
        raise ModelFileError(
            f"model {model.name!r} has no layer for stage(s) {missing} (found {found}); expected Keras DenseNet "
            "layer names: conv1_relu, conv2..conv5_block*_concat and relu"
        )
    return {stage: found[stage] for stage in (*STAGES, FINAL)}


def captured_layers(model: keras.Model, layers: str = "stages") -> tuple[str, ...]:
    """The names of the layers an explainer of ``model`` captures for the layer set ``layers``, in model order.

    ``stages``: the five stages and the final maps; ``all``: every layer with a single 4-D output (the input
    layer excepted; a layer used more than once has no single output and is left out, the models of this
    project have none), which includes the stages.
    """
    if layers not in LAYER_SETS:
        raise ValueError(f"layers must be one of {LAYER_SETS}, got {layers!r}")
    stage_names = set(explained_layers(model).values())
    return tuple(
        layer.name
        for layer in model.layers
        if layer.name in stage_names
        or (layers == "all" and not isinstance(layer, keras.layers.InputLayer) and _single_4d_output(layer))
    )


def _single_4d_output(layer: keras.layers.Layer) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):  # a layer called several times has no single output
        return False


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


# ----------------------------------------------------------------------------------------------------------
# The one result type
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Explanation:
    """Everything one forward pass yields for a batch of N images (all arrays float32, batch first).

    ``inputs`` is the model input ``(N, S, S, 3)`` (pixels 0..255; the model normalises internally).
    ``activations`` maps each captured layer's name (model order) to its activations ``(N, h, w, c)``;
    ``layer_names`` is ``{stage: layer name}`` for :data:`STAGES` and :data:`FINAL`, and :attr:`stages` and
    :attr:`final` read those layers. ``cam_lowres`` ``(N, h, w)`` and ``cam`` ``(N, S, S)`` are signed and
    exclude ``cam_bias`` (see module docstring): ``logit == cam_lowres.mean(axis=(1, 2)) + cam_bias``.
    """

    inputs: np.ndarray
    probability: np.ndarray
    logit: np.ndarray
    activations: dict[str, np.ndarray]
    cam_lowres: np.ndarray
    cam: np.ndarray
    cam_weights: np.ndarray
    cam_bias: float
    layer_names: dict[str, str]

    def __len__(self) -> int:
        return len(self.probability)

    @property
    def stages(self) -> dict[str, np.ndarray]:
        """``{stage: activations (N, h, w, c)}`` for the five :data:`STAGES`, in order."""
        return {stage: self.activations[self.layer_names[stage]] for stage in STAGES}

    @property
    def final(self) -> np.ndarray:
        """The final maps ``(N, h, w, C)``, the ones the CAM weighs."""
        return self.activations[self.layer_names[FINAL]]

    @property
    def captured(self) -> list[str]:
        """The names of the captured layers, in model order."""
        return list(self.activations)


# ----------------------------------------------------------------------------------------------------------
# The one capture
# ----------------------------------------------------------------------------------------------------------
class Explainer:
    """Explains a trained model: build once (the multi-output model is traced once), call :meth:`explain`.

    ``multi_model`` returns, in one forward pass, the probability, the head's pooled input and the activations
    of the captured layers (``layers``, one of :data:`LAYER_SETS`); :meth:`explain` adds the CAM inside the same
    traced function, so an explanation of the stages costs about one ``model.predict_on_batch``
    (``benchmarks/explain_ratio.py`` measures it). :meth:`activations_and_gradients` is the gradient capture
    that Grad-CAM-like methods (:mod:`densenet_interp.explain.methods`) build on.
    """

    def __init__(self, model: keras.Model, layers: str = "stages"):
        # No reference to ``model`` itself is kept (the layers are shared), so the per-model caches below can
        # hold explainers without keeping models alive.
        self.model_name = model.name
        self.layers = layers
        self.captured = captured_layers(model, layers)
        self.layer_names = explained_layers(model)
        self.head = cam_head(model, self.layer_names[FINAL])
        self.input_size = _input_size(model)
        outputs = {
            "probability": model.outputs[0],
            "pooled": self.head.input,
            "activations": {name: model.get_layer(name).output for name in self.captured},
        }
        suffix = "explained" if layers == "stages" else f"{layers}_layers"
        self.multi_model = keras.Model(model.inputs, outputs, name=f"{model.name}_{suffix}")
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

    def _graph(self, batch: tf.Tensor) -> dict:
        """The traced explanation: one call of ``multi_model``, then CAM and logit from its outputs.

        The CAM itself is :func:`densenet_interp.explain.maps.class_activation_map` of the final maps and the
        head's kernel.
        """
        out = self.multi_model(batch, training=False)
        final = out["activations"][self.layer_names[FINAL]]
        cam_lowres, cam = class_activation_map(
            final, tf.convert_to_tensor(self.head.kernel)[:, 0], self.input_size
        )
        return {**out, "logit": self._logit(out["pooled"]), "cam_lowres": cam_lowres, "cam": cam}

    def explain(self, batch: np.ndarray) -> Explanation:
        """One forward pass over ``batch`` (float32 ``(N, S, S, 3)``, pixels 0..255) -> :class:`Explanation`."""
        batch = _check_batch(batch, self.input_size)
        out = tf.nest.map_structure(lambda value: value.numpy(), self._forward(tf.constant(batch)))
        weights, bias = self.cam_weights
        return Explanation(
            inputs=batch,
            probability=out["probability"].reshape(len(batch)),
            logit=out["logit"],
            activations={name: out["activations"][name] for name in self.captured},
            cam_lowres=out["cam_lowres"],
            cam=out["cam"],
            cam_weights=weights,
            cam_bias=bias,
            layer_names=dict(self.layer_names),
        )

    # ------------------------------------------------------------------------------------------------------
    # The gradient capture (Grad-CAM and its kin, beyond the paper)
    # ------------------------------------------------------------------------------------------------------
    def _grad_model(self, layer_name: str) -> keras.Model:
        """A model returning ``layer_name``'s output and the pooled head input; captured layers reuse
        ``multi_model``, any other layer before the head gets a sub-model (built once)."""
        if layer_name in self.captured:
            return self.multi_model
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
            outputs = {"activations": {layer_name: layer.output}, "pooled": self.head.input}
            self._grad_models[layer_name] = keras.Model(self.multi_model.inputs, outputs)
        return self._grad_models[layer_name]

    def activations_and_gradients(
        self, batch: np.ndarray, layer_name: str, target: str = "logit"
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """``layer_name``'s activations ``A`` ``(N, h, w, c)`` and ``d target / d A``, from one taped pass.

        ``target`` is the logit (default) or the probability of "abnormal", per image: examples are independent
        (inference mode), so ``d sum(score) / d A_n = d score_n / d A_n``.
        """
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        grad_model = self._grad_model(layer_name)
        batch = tf.constant(_check_batch(batch, self.input_size))
        with tf.GradientTape() as tape:
            tape.watch(batch)  # record the graph even if the model's weights are frozen
            out = grad_model(batch, training=False)
            activation = out["activations"][layer_name]
            logit = self._logit(out["pooled"])
            score = logit if target == "logit" else tf.sigmoid(logit)
        return activation, tape.gradient(score, activation)


_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def explainer_for(model: keras.Model, layers: str = "stages") -> Explainer:
    """The :class:`Explainer` of ``model`` for ``layers``, built on first use and kept as long as the model
    lives (building one costs a graph trace; an ``all`` explainer costs a few times more)."""
    if layers not in LAYER_SETS:
        raise ValueError(f"layers must be one of {LAYER_SETS}, got {layers!r}")
    explainers = _EXPLAINERS.setdefault(model, {})
    if layers not in explainers:
        explainers[layers] = Explainer(model, layers)
    return explainers[layers]


def iter_explanations(
    explainer: Explainer, images_u8: Iterable[np.ndarray], batch_size: int = 16
) -> Iterator[tuple[int, Explanation]]:
    """Explain images ``batch_size`` at a time: yields ``(start, explanation)``, one forward pass per batch.

    ``images_u8`` is a ``uint8 (N, S, S)`` array or any iterable of ``uint8 (S, S)`` model-size images; it is
    read lazily (a batch is explained as soon as it is full), so a caller may prepare images on the fly.
    ``explanation`` covers images ``start`` to ``start + len(explanation)`` (the last batch may be smaller).
    """
    from ..data.images import to_model_input

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    images = iter(images_u8)
    start = 0
    while chunk := list(itertools.islice(images, batch_size)):
        yield start, explainer.explain(to_model_input(np.stack(chunk)))
        start += len(chunk)


# ----------------------------------------------------------------------------------------------------------
# Every layer of single images, for the explorer: one forward pass per (model, image), cached
# ----------------------------------------------------------------------------------------------------------
def image_key(image: np.ndarray) -> str:
    """A content hash of an array (shape, dtype and bytes), so equal images share a cache entry."""
    array = np.ascontiguousarray(image)
    digest = hashlib.sha1(f"{array.shape}{array.dtype}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


@dataclass
class _Entry:
    model: keras.Model  # held so that its id is not reused while the entry lives
    explanation: Explanation
    derived: dict[str, np.ndarray]


class ActivationCache:
    """Every-layer explanations keyed by (model, image content): one forward pass per pair, then only lookups.

    :meth:`get` returns the :class:`Explanation` of one image by the model's ``all`` explainer;
    :meth:`derived` keeps what is computed from it (e.g. a saliency method's map) in the same entry. Least
    recently used entries beyond ``max_entries`` are dropped (every-layer activations of one image take a few
    MB for the compact models, up to a few hundred MB for DenseNet-169 at 320 px). ``forward_passes`` counts
    the explain passes actually run, which the explorer's tests use to prove that a slider only redraws;
    ``derived_computations`` counts the derived values computed.
    """

    def __init__(self, max_entries: int = 8):
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self.forward_passes = 0
        self.derived_computations = 0
        self._entries: OrderedDict[tuple[int, str], _Entry] = OrderedDict()

    def _entry(self, model: keras.Model, image_batch: np.ndarray) -> _Entry:
        explainer = explainer_for(model, "all")
        batch = np.asarray(image_batch, dtype=np.float32)
        batch = _check_batch(batch[np.newaxis] if batch.ndim == 3 else batch, explainer.input_size)
        if len(batch) != 1:
            raise ValueError(f"expected one image (batch of 1), got a batch of {len(batch)}")
        key = (id(model), image_key(batch))  # the entry holds the model, so its id is not reused meanwhile
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        entry = _Entry(model, explainer.explain(batch), {})
        self.forward_passes += 1
        self._entries[key] = entry
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return entry

    def get(self, model: keras.Model, image_batch: np.ndarray) -> Explanation:
        """The explanation of ``model`` (every 4-D layer) for one image given as model input ``(1, S, S, 3)``
        (or ``(S, S, 3)``)."""
        return self._entry(model, image_batch).explanation

    def derived(
        self,
        model: keras.Model,
        image_batch: np.ndarray,
        name: str,
        compute: Callable[[Explainer, Explanation], np.ndarray],
    ) -> np.ndarray:
        """``compute(explainer, explanation)`` for one image, computed once per (model, image, ``name``)."""
        entry = self._entry(model, image_batch)
        if name not in entry.derived:
            entry.derived[name] = compute(explainer_for(model, "all"), entry.explanation)
            self.derived_computations += 1
        return entry.derived[name]

    def __len__(self) -> int:
        return len(self._entries)
