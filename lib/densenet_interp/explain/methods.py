"""Saliency methods: one small unit per method, one registry (:data:`METHODS`) that every caller reads.

A method is a callable ``method(explainer, explanation, *, seed=0) -> maps`` taking the
:class:`~densenet_interp.explain.engine.Explainer` and an
:class:`~densenet_interp.explain.engine.Explanation` of a batch and returning float32 maps ``(N, S, S)`` at
the input size, higher meaning more salient (``seed`` is for methods that draw random numbers). An optional
``title`` attribute names the method in figures (default: its registry name). As in pytorch-grad-cam, the
engine captures (activations, gradients) and a method only turns them into maps:

==============  ======================================================================================
``cam``         the signed CAM of the explanation (Zhou et al. 2016), computed by the engine
``gradcam``     Grad-CAM (Selvaraju et al. 2017) on the logit at the final maps, upsampled as the CAM
``gradcam++``   Grad-CAM++ (Chattopadhyay et al. 2018), likewise
``random``      uniform noise from ``seed``: the baseline order of the deletion/insertion curves
==============  ======================================================================================

Faithfulness (:mod:`densenet_interp.evaluate.faithfulness`) evaluates every registered method, the explorer's
"map" dropdown and ``densenet-interp explain --method`` list them. **Adding a method** is one small unit
(a function with the signature above, or a :class:`GradCAM` subclass overriding :meth:`GradCAM.channel_weights`)
plus one line in :data:`METHODS`.

This module imports TensorFlow only when a map is computed, so the command line can list the methods for
``--help`` without loading it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_METHOD = "cam"
"""The map the case figures and the explorer show unless told otherwise: the paper's."""


def cam(explainer, explanation, *, seed: int = 0) -> np.ndarray:
    """The paper's map: the engine's signed CAM ``(N, S, S)``, bias excluded."""
    return explanation.cam


class GradCAM:
    """Grad-CAM (Selvaraju et al. 2017): channel ``c`` weighed by the spatial mean of ``d target / d A_c``.

    The map is ``ReLU(sum_c weight_c A_c)``, non-negative and unnormalised. ``layer`` (default: the final maps,
    the ones the CAM weighs) and ``target`` (the logit by default, or the probability) are fixed per instance;
    :meth:`lowres` computes the maps at any layer's resolution, ``__call__`` upsamples them as the CAM is.
    For a global-average-pooling head, Grad-CAM on the logit at the final layer is ReLU(CAM) / (h w).
    """

    title = "Grad-CAM"

    def __init__(self, layer: str | None = None, target: str = "logit"):
        self.layer = layer
        self.target = target

    def channel_weights(self, activation, grads):
        """``(N, c)`` channel weights from the activations and gradients ``(N, h, w, c)``: the one hook."""
        import tensorflow as tf

        return tf.reduce_mean(grads, axis=(1, 2))

    def lowres(
        self, explainer, batch: np.ndarray, layer_name: str | None = None, target: str | None = None
    ) -> np.ndarray:
        """Maps ``(N, h, w)`` of ``layer_name`` (default: this method's layer) for model input ``batch``."""
        import tensorflow as tf

        from .engine import FINAL

        layer_name = layer_name or self.layer or explainer.layer_names[FINAL]
        activation, grads = explainer.activations_and_gradients(batch, layer_name, target or self.target)
        heatmap = tf.einsum("nhwc,nc->nhw", activation, self.channel_weights(activation, grads))
        return tf.nn.relu(heatmap).numpy()

    def __call__(self, explainer, explanation, *, seed: int = 0) -> np.ndarray:
        from .maps import upsample

        return upsample(self.lowres(explainer, explanation.inputs), explainer.input_size)


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018) in the closed form of its paper: second and third derivatives as
    powers of the first (exact for an exponential of the target)."""

    title = "Grad-CAM++"

    def channel_weights(self, activation, grads):
        import tensorflow as tf

        grads2, grads3 = grads**2, grads**3
        denominator = 2.0 * grads2 + tf.reduce_sum(activation, axis=(1, 2), keepdims=True) * grads3
        alpha = grads2 / tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
        return tf.reduce_sum(alpha * tf.nn.relu(grads), axis=(1, 2))


def random(explainer, explanation, *, seed: int = 0) -> np.ndarray:
    """Uniform noise from ``seed``, the CAM's shape: a map that knows nothing (the faithfulness baseline)."""
    return np.random.default_rng(seed).uniform(size=explanation.cam.shape).astype(np.float32)


METHODS: dict[str, Callable[..., np.ndarray]] = {
    "cam": cam,
    "gradcam": GradCAM(),
    "gradcam++": GradCAMPlusPlus(),
    "random": random,
}
"""The registry: name -> method, in the order tables and menus list them. One line per method."""


def title(name: str) -> str:
    """How figures name method ``name``: its ``title`` attribute, else the registry name."""
    return getattr(METHODS[name], "title", name)


def saliency(name: str, explainer, explanation, *, seed: int = 0) -> np.ndarray:
    """The maps ``(N, S, S)`` of registered method ``name`` (ValueError listing the registry otherwise)."""
    if name not in METHODS:
        raise ValueError(f"unknown saliency method {name!r}; expected one of {list(METHODS)}")
    return np.asarray(METHODS[name](explainer, explanation, seed=seed))


def gradcam(
    model, batch: np.ndarray, layer_name: str, target: str = "logit", method: str = "gradcam"
) -> np.ndarray:
    """Grad-CAM (or ``method="gradcam++"``) maps ``(N, h, w)`` of any layer ``layer_name`` at its own resolution.

    ``model`` is a Keras model (its shared :func:`~densenet_interp.explain.engine.explainer_for`) or an
    explainer; ``method`` is any registered :class:`GradCAM`; use
    :func:`~densenet_interp.explain.maps.upsample` to overlay the maps.
    """
    from .engine import Explainer, explainer_for

    gradient_methods = {name: unit for name, unit in METHODS.items() if isinstance(unit, GradCAM)}
    if method not in gradient_methods:
        raise ValueError(f"method must be one of {tuple(gradient_methods)}, got {method!r}")
    explainer = model if isinstance(model, Explainer) else explainer_for(model)
    return gradient_methods[method].lowres(explainer, batch, layer_name, target)
