"""The paper's augmentation: "random lateral inversions and rotations up to 30 degrees" (section 3).

One owner for the random flip-and-rotate of training images: :func:`augment_batch` (the training pipeline,
:func:`densenet_interp.data.pipeline.make_dataset`, applies it to whole batches) and :func:`augment_for_display`
(the "(a) augmented input" panel of the case figures, the very same transform on one image). The flip and the
rotation are composed into one bilinear resampling (``ImageProjectiveTransformV3``). All randomness is
stateless: an image's flip and angle depend only on ``(seed, epoch, batch, position in the batch)``.

TensorFlow is imported inside the functions, so that importing the pipeline does not load it.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_ROTATION_DEGREES = 30.0  # paper, section 3
FLIP_PROBABILITY = 0.5  # "random lateral inversions": each image is mirrored with probability 1/2


def epoch_seed(seed: int, epoch: int):
    """The stateless seed ``[seed, epoch]`` of an epoch: its data order and (folded with the batch number) the
    augmentation of each batch."""
    import tensorflow as tf

    return tf.constant([int(seed), int(epoch)], dtype=tf.int64)


def augment_batch(images, seed, rotation_degrees: float = DEFAULT_ROTATION_DEGREES):
    """Randomly flip left-right (p = 0.5) and rotate by up to +-``rotation_degrees`` a float32 ``(B, H, W)``
    batch, in one bilinear resampling; uncovered corners are filled with black (a radiograph's background).

    ``seed`` is a stateless seed (shape ``[2]``); image ``b`` of the batch draws row ``b`` of one
    ``stateless_uniform([B, 2])``, so it gets the same flip and angle whatever the batch size.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images, dtype=tf.float32)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    draws = tf.random.stateless_uniform(tf.stack([batch, 2]), seed=seed)
    flip = tf.cast(draws[:, 0] < FLIP_PROBABILITY, tf.float32)
    angle = (2.0 * draws[:, 1] - 1.0) * (float(rotation_degrees) * math.pi / 180.0)
    transforms = _flip_rotate_transforms(flip, angle, tf.cast(height, tf.float32), tf.cast(width, tf.float32))
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images[..., tf.newaxis],
        transforms=transforms,
        output_shape=tf.stack([height, width]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return out[..., 0]


def _flip_rotate_transforms(flip, angle, height, width):
    """Projective transforms ``(B, 8)`` mapping output pixels to input pixels: rotation by ``angle`` about
    the centre, then (where ``flip`` is 1) mirrored left-right; the rotation matrix is keras' RandomRotation's.
    """
    import tensorflow as tf

    cos, sin = tf.cos(angle), tf.sin(angle)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    sign = 1.0 - 2.0 * flip  # -1 mirrors: x_in = (W - 1) - x_rotated
    zeros = tf.zeros_like(angle)
    return tf.stack(
        [sign * cos, -sign * sin, flip * (width - 1) + sign * x_offset, sin, cos, y_offset, zeros, zeros],
        axis=1,
    )


def augment_for_display(
    image_u8: np.ndarray, seed: int, rotation_degrees: float = DEFAULT_ROTATION_DEGREES
) -> np.ndarray:
    """The training augmentation (:func:`augment_batch`) applied to one ``uint8 (H, W)`` image, as ``uint8``.

    This is the "(a) augmented input" panel of the paper's case figures: the same flip-and-rotate the model
    sees in training, drawn from ``seed`` (the first image of batch 0 of epoch 0 for that seed).
    """
    import tensorflow as tf

    image_u8 = np.asarray(image_u8)
    if image_u8.dtype != np.uint8 or image_u8.ndim != 2 or image_u8.size == 0:
        raise ValueError(
            f"expected a uint8 image (H, W), got {image_u8.dtype} array of shape {image_u8.shape}"
        )
    batch_seed = tf.random.experimental.stateless_fold_in(epoch_seed(seed, 0), 0)
    out = augment_batch(image_u8[np.newaxis].astype(np.float32), batch_seed, rotation_degrees)[0]
    return np.clip(np.rint(out.numpy()), 0, 255).astype(np.uint8)
