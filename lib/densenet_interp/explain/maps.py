"""What the maps are: the class activation map (CAM) and the choice of the activation maps a figure shows.

- :func:`class_activation_map`: the CAM of Zhou et al. (2016), ``cam[y, x] = sum_c w_c * final[y, x, c]`` with
  ``w`` the kernel of the ``predictions`` Dense layer, upsampled bilinearly to the input size. It is signed and
  leaves out the bias (see :mod:`densenet_interp.explain.engine`, which calls it inside its one traced pass).
- :func:`top_channels`: the paper's "top 16 most activated feature maps" of a layer, by mean (the paper's
  rule), by maximum, or by mean among maps that are not near-copies of a higher one (``"distinct"``, what the
  figures show); :func:`distinct_count` counts the distinct maps of a panel with the same near-copy rule.
- :func:`upsample`: maps to the input size, the same bilinear resampling as the CAM's.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

RANKS = ("distinct", "mean", "max")
"""How :func:`top_channels` picks channels: by mean activation over space, skipping near-duplicates of a map
already picked (``"distinct"``, what the figures show); by mean alone (``"mean"``, the paper's rule); by maximum."""

DISTINCT_R = 0.9
"""For ``rank="distinct"``: a map whose spatial correlation with a higher-ranked picked map exceeds this is a
near-duplicate and is skipped. At ``conv1_relu`` the paper's rule picks maps with a median correlation of about
0.94 with each other (many copies of the same edge map); this threshold lets 16 different filters through."""


def class_activation_map(final, weights, size: int):
    """``(cam_lowres (N, h, w), cam (N, size, size))`` of final maps ``(N, h, w, C)`` weighed by the head's
    kernel ``weights`` ``(C,)``: ``cam_lowres = sum_c weights[c] * final[..., c]`` and its bilinear
    (half-pixel) upsampling to ``size``. Works on tensors, so it runs inside a traced function."""
    cam_lowres = tf.tensordot(final, weights, axes=[[3], [0]])
    cam = tf.image.resize(cam_lowres[..., tf.newaxis], (size, size), method="bilinear")[..., 0]
    return cam_lowres, cam


def upsample(maps: np.ndarray | tf.Tensor, size: int) -> np.ndarray:
    """Bilinear upsampling of ``(N, h, w)`` maps to ``(N, size, size)`` (``tf.image.resize``, half-pixel), as
    :func:`class_activation_map` upsamples the CAM."""
    resized = tf.image.resize(
        tf.convert_to_tensor(maps, tf.float32)[..., tf.newaxis], (size, size), "bilinear"
    )
    return resized[..., 0].numpy()


def top_channels(activation: np.ndarray, k: int = 16, rank: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most activated channels of one image's activation ``(h, w, c)``.

    Channels are ranked by their mean over space (``rank="mean"``, the default and the paper's rule: a channel
    that is strong over a region beats one with a single hot pixel) or by their maximum (``rank="max"``); ties
    keep channel order. ``rank="distinct"`` walks the ``"mean"`` order and skips a channel whose map correlates
    above :data:`DISTINCT_R` with one already picked (two constant maps count as duplicates); if fewer than ``k``
    distinct maps exist, the best skipped ones fill the rest, so ``k`` maps always come back.
    Returns ``(indices (k,), maps (k, h, w))``, most activated first; ``k`` is capped at ``c``.
    """
    activation = np.asarray(activation)
    if activation.ndim != 3:
        raise ValueError(f"expected one image's activation of shape (h, w, c), got shape {activation.shape}")
    if rank not in RANKS:
        raise ValueError(f"rank must be one of {RANKS}, got {rank!r}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = min(int(k), activation.shape[-1])
    scores = activation.max(axis=(0, 1)) if rank == "max" else activation.mean(axis=(0, 1))
    order = np.argsort(-scores, kind="stable")
    indices = order[:k] if rank != "distinct" else _distinct(activation, order, k)
    return indices, np.moveaxis(activation[..., indices], -1, 0)


def _unit_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unit, constant)`` of maps ``(k, h, w)``: each map centred and scaled to unit length, flattened
    ``(k, h*w)`` (so that a dot product is the spatial correlation), and which maps are constant."""
    flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    centred = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(centred, axis=1)
    constant = norms <= 1e-12 * np.maximum(np.abs(flat).max(axis=1, initial=0.0), 1.0)
    unit = np.divide(centred, norms[:, None], out=np.zeros_like(centred), where=~constant[:, None])
    return unit, constant


def _near_copy(unit: np.ndarray, constant: np.ndarray, earlier, i: int) -> bool:
    """Is map ``i`` a near-copy (r > DISTINCT_R, or both constant) of any of the maps ``earlier``?"""
    earlier = list(earlier)
    if not earlier:
        return False
    return bool(((unit[earlier] @ unit[i] > DISTINCT_R) | (constant[earlier] & constant[i])).any())


def _distinct(activation: np.ndarray, order: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` channels of ``order`` that are not near-duplicates of an earlier pick (see
    :func:`top_channels`), topped up in ``order`` with skipped ones when too few are distinct."""
    unit, constant = _unit_maps(np.moveaxis(activation, -1, 0))
    picked: list[int] = []
    for channel in order:
        if _near_copy(unit, constant, picked, int(channel)):
            continue
        picked.append(int(channel))
        if len(picked) == k:
            break
    if len(picked) < k:
        taken = set(picked)
        picked += [int(c) for c in order if c not in taken][: k - len(picked)]
    return np.asarray(picked, dtype=order.dtype)


def distinct_count(maps: np.ndarray) -> int:
    """How many of ``maps`` ``(k, h, w)``, in order, are not near-copies (as :func:`top_channels` judges them)
    of an earlier one. The case figures print it under each activation panel, so that 16 near-copies do not
    pass for 16 filters."""
    unit, constant = _unit_maps(maps)
    return sum(not _near_copy(unit, constant, range(i), i) for i in range(len(unit)))
