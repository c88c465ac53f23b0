"""The offline stand-in for ImageNet pre-training: a source task of shapes and textures, nothing like X-rays.

The paper initialises three of its four models with ImageNet weights and cites Huh et al. (2016): knowledge
from a source of *unrelated* images still helps the target task. ImageNet cannot be downloaded offline, so
the ``tiny`` and ``mini`` profiles pre-train the compact backbone on a generated source task instead:

- each class is one (shape family, texture) pair, e.g. "star filled with a checkerboard": shapes and
  textures are the low- and mid-level features (edges, corners, periodic patterns) that make ImageNet
  features transfer;
- every image has a random position, scale and rotation, a textured background with clutter, and is grey
  or coloured, so the class is only recoverable from the shape and texture themselves.

Rendering is vectorised numpy over a chunk of images (thousands of 128x128 images in seconds) and
deterministic for a seed. Only the backbone weights (include_top=False) are kept: the source task's head
``standin_predictions`` is thrown away, as the ImageNet classifier is for the paper's models.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..paths import write_text_atomic
from ..profiles import Profile

SHAPES = (
    "disc",
    "ring",
    "square",
    "triangle",
    "star",
    "cross",
    "bars",
    "grid",
    "spiral",
    "trefoil",
    "crescent",
)
# Textures are drawn in image coordinates, so the stripe angle is part of the class. No flip augmentation:
# a mirror image would turn 60-degree stripes into 120-degree ones.
TEXTURES = ("stripes_0", "stripes_60", "stripes_120", "checker", "dots", "noise", "gradient")
MAX_CLASSES = len(SHAPES) * len(TEXTURES)
VALIDATION_FRACTION = 0.1
BATCH_SIZE = 32
_CHUNK = 256  # images rendered at once; bounds memory to a few (chunk, S, S) float32 arrays


# --------------------------------------------------------------------------------------------------------
# The source task
# --------------------------------------------------------------------------------------------------------
def class_pairs(n_classes: int) -> list[tuple[str, str]]:
    """The (shape, texture) of each class; consecutive classes differ in shape first, then texture.

    Class k has shape ``k mod 11`` and texture ``(k + k // 11) mod 7``: the first eleven classes are eleven
    shapes, later ones reuse the shapes with other textures, and all 77 pairs are distinct.
    """
    if not isinstance(n_classes, int) or not 2 <= n_classes <= MAX_CLASSES:
        raise ValueError(f"n_classes must be an integer from 2 to {MAX_CLASSES}, got {n_classes!r}")
    n_s, n_t = len(SHAPES), len(TEXTURES)
    return [(SHAPES[k % n_s], TEXTURES[(k + k // n_s) % n_t]) for k in range(n_classes)]


def class_names(n_classes: int) -> list[str]:
    """Readable class names such as ``"star/checker"``."""
    return [f"{shape}/{texture}" for shape, texture in class_pairs(n_classes)]


def _uniform(rng: np.random.Generator, low: float, high: float, shape: tuple) -> np.ndarray:
    """Uniform float32 samples (float64 parameters would promote every (n, S, S) array to float64)."""
    return rng.uniform(low, high, shape).astype(np.float32)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of a shape in its own frame (unit radius, centred, already rotated and scaled)."""
    rho = np.sqrt(u * u + v * v)
    inside = rho < 1.0
    if shape == "disc":
        return inside
    if shape == "ring":
        return inside & (rho > 0.6)
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) < 0.8
    if shape == "triangle":
        return (v > -0.5) & (np.sqrt(3.0) * np.abs(u) + v < 1.0)
    if shape == "star":
        return rho < 0.55 + 0.4 * np.cos(5.0 * np.arctan2(v, u))
    if shape == "cross":
        return ((np.abs(u) < 0.3) & (np.abs(v) < 1.0)) | ((np.abs(v) < 0.3) & (np.abs(u) < 1.0))
    if shape == "bars":
        return inside & (np.sin(3.0 * np.pi * u) > 0.2)
    if shape == "grid":
        lines = (np.abs(np.sin(2.0 * np.pi * u)) < 0.45) | (np.abs(np.sin(2.0 * np.pi * v)) < 0.45)
        return (np.maximum(np.abs(u), np.abs(v)) < 0.9) & lines
    if shape == "spiral":
        turns = np.arctan2(v, u) / (2.0 * np.pi) + 2.0 * rho
        return inside & ((turns - np.floor(turns)) < 0.45)
    if shape == "trefoil":
        angles = np.deg2rad([90.0, 210.0, 330.0]).astype(np.float32)
        lobes = [(u - 0.5 * np.cos(a)) ** 2 + (v - 0.5 * np.sin(a)) ** 2 < 0.45**2 for a in angles]
        return lobes[0] | lobes[1] | lobes[2]
    if shape == "crescent":
        return inside & ((u - 0.45) ** 2 + v * v > 0.8**2)
    raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")


def _texture(texture: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Texture values in [0, 1] for ``n`` images on image coordinates ``x, y`` (shape (n, S, S)).

    Frequency and phase are random per image; the kind (and the stripe angle) is fixed by the class.
    """
    n = x.shape[0]
    freq = _uniform(rng, 3.5, 5.0, (n, 1, 1))  # cycles per half image
    phase = _uniform(rng, 0.0, 2.0 * np.pi, (n, 1, 1))
    if texture.startswith("stripes_"):
        angle = np.deg2rad(float(texture.split("_")[1]))
        t = np.cos(angle) * x + np.sin(angle) * y
        return (np.sin(2.0 * np.pi * freq * t + phase) > 0).astype(np.float32)
    if texture == "checker":
        return ((np.sin(2.0 * np.pi * freq * x + phase) * np.sin(2.0 * np.pi * freq * y)) > 0).astype(
            np.float32
        )
    if texture == "dots":
        fx, fy = freq * x + phase, freq * y
        return ((fx - np.round(fx)) ** 2 + (fy - np.round(fy)) ** 2 < 0.3**2).astype(np.float32)
    if texture == "noise":
        return rng.random(x.shape, dtype=np.float32).round()
    if texture == "gradient":
        angle = _uniform(rng, 0.0, 2.0 * np.pi, (n, 1, 1))
        return np.clip(0.5 + 0.5 * (np.cos(angle) * x + np.sin(angle) * y), 0.0, 1.0)
    raise ValueError(f"unknown texture {texture!r}; expected one of {', '.join(TEXTURES)}")


def _colours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per-image RGB colours in [0, 1], shape (n, 1, 1, 3); half the images are grey (R = G = B)."""
    colour = _uniform(rng, 0.0, 1.0, (n, 1, 1, 3))
    grey = rng.random(n) < 0.5
    colour[grey] = colour[grey, :, :, :1]
    return colour


def _render_chunk(labels: np.ndarray, size: int, rng: np.random.Generator, pairs: list) -> np.ndarray:
    """Render one image per label: textured background with clutter, then the class's shape on top."""
    n = len(labels)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0  # pixel centres in [-1, 1]
    x = np.broadcast_to(coords[None, None, :], (n, size, size))
    y = np.broadcast_to(coords[None, :, None], (n, size, size))

    # background: a base colour with a random gradient and faint stripes at a random angle, plus clutter
    # (small discs and squares) that the class never depends on
    shade = _texture("gradient", x, y, rng) - 0.5
    angle = _uniform(rng, 0.0, np.pi, (n, 1, 1))
    ripple = np.sin(
        2.0 * np.pi * _uniform(rng, 2.0, 8.0, (n, 1, 1)) * (np.cos(angle) * x + np.sin(angle) * y)
    )
    image = _colours(rng, n) * 0.6 + 0.2 + (0.25 * shade + 0.06 * ripple)[..., None]
    for clutter in range(4):
        cx, cy = _uniform(rng, -1.0, 1.0, (2, n, 1, 1))
        radius = _uniform(rng, 0.03, 0.12, (n, 1, 1))
        if clutter % 2:
            blob = np.maximum(np.abs(x - cx), np.abs(y - cy)) < radius
        else:
            blob = (x - cx) ** 2 + (y - cy) ** 2 < radius**2
        image = np.where(blob[..., None], _colours(rng, n), image)

    # the object: random pose, class texture blended between two contrasting colours
    cx, cy = _uniform(rng, -0.4, 0.4, (2, n, 1, 1))
    scale = _uniform(rng, 0.35, 0.6, (n, 1, 1))
    theta = _uniform(rng, 0.0, 2.0 * np.pi, (n, 1, 1))
    u = (np.cos(theta) * (x - cx) + np.sin(theta) * (y - cy)) / scale
    v = (-np.sin(theta) * (x - cx) + np.cos(theta) * (y - cy)) / scale
    dark, light = _colours(rng, n) * np.float32(0.35), np.float32(0.65) + _colours(rng, n) * np.float32(0.35)
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        shape, texture = pairs[k]
        mask = _shape_mask(shape, u[idx], v[idx])[..., None]
        t = _texture(texture, x[idx], y[idx], rng)[..., None]
        fill = dark[idx] + (light[idx] - dark[idx]) * t
        image[idx] = np.where(mask, fill, image[idx])
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def generate_source_task(
    n_classes: int, images_per_class: int, image_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Render the source task: ``x`` uint8 (N, S, S, 3) and labels ``y`` int64 (N,), class-major order.

    Images ``k * images_per_class`` to ``(k + 1) * images_per_class - 1`` belong to class k
    (:func:`class_names` gives their names). The same arguments give the same bytes.
    """
    if not isinstance(images_per_class, int) or images_per_class < 1:
        raise ValueError(f"images_per_class must be a positive integer, got {images_per_class!r}")
    if not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
    pairs = class_pairs(n_classes)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes, dtype=np.int64), images_per_class)
    x = np.empty((len(y), image_size, image_size, 3), dtype=np.uint8)
    for start in range(0, len(y), _CHUNK):
        stop = min(start + _CHUNK, len(y))
        x[start:stop] = _render_chunk(y[start:stop], image_size, rng, pairs)
    return x, y


def split_validation(y: np.ndarray, fraction: float = VALIDATION_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): the last ``fraction`` (at least one) of every class's images held out."""
    train, val = [], []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        n_val = max(1, int(round(fraction * len(idx))))
        if n_val >= len(idx):
            raise ValueError(
                f"class {k} has {len(idx)} images; need at least 2 to hold one out for validation"
            )
        train.append(idx[:-n_val])
        val.append(idx[-n_val:])
    return np.concatenate(train), np.concatenate(val)


# --------------------------------------------------------------------------------------------------------
# Pre-training
# --------------------------------------------------------------------------------------------------------
def _dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle_seed: int | None):
    """A tf.data pipeline that keeps the images uint8 in memory and casts each batch to float32 0..255."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(
        lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def _versions() -> dict[str, str]:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }


def card_path(weights_path: str | Path) -> Path:
    """The JSON card written beside a stand-in weights file."""
    return Path(weights_path).parent / "card.json"


def pretrain(
    profile: Profile, out_path: str | Path, *, seed: int = 0, log: Callable[[str], None] = print
) -> dict:
    """Pre-train the profile's compact backbone on the source task; save its weights and a card.

    Trains ``profile.standin_epochs`` epochs with Adam (``profile.learning_rate``) on 90 % of the source
    task and reports accuracy on the held-out 10 % each epoch. Writes only the backbone's weights
    (``include_top=False``, by layer name; see :func:`densenet_interp.models.weights.save_backbone_weights`) to
    ``out_path`` and the card (returned) to ``card.json`` beside it, both atomically.
    """
    import keras

    from .densenet import build_compact_densenet, classification_head
    from .runtime import deterministic_switch, execution, make_deterministic
    from .weights import save_backbone_weights

    if profile.architecture != "compact":
        raise ValueError(
            f"profile {profile.name!r} has architecture {profile.architecture!r}; the stand-in source task "
            "pre-trains the 'compact' backbone only (DenseNet-169 uses ImageNet weights)"
        )
    start = time.perf_counter()
    n_classes = profile.standin_classes
    x, y = generate_source_task(n_classes, profile.standin_images_per_class, profile.image_size, seed=seed)
    train_idx, val_idx = split_validation(y)
    log(
        f"stand-in source task: {n_classes} classes, {len(train_idx)} training + {len(val_idx)} validation "
        f"images at {profile.image_size}px ({time.perf_counter() - start:.1f}s to render)"
    )

    make_deterministic(deterministic_switch())  # as the trainings: the same bits on every rerun
    keras.utils.set_random_seed(seed)
    backbone = build_compact_densenet(
        profile.blocks, profile.growth_rate, profile.image_size, include_top=False, name="standin_backbone"
    )
    outputs = classification_head(backbone.output, n_classes, "softmax", name="standin_predictions")
    classifier = keras.Model(backbone.input, outputs, name="standin_classifier")
    classifier.compile(
        optimizer=keras.optimizers.Adam(profile.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    epoch_log = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: log(
            f"epoch {epoch + 1}/{profile.standin_epochs}: loss {logs['loss']:.3f}, accuracy "
            f"{logs['accuracy']:.3f}, validation accuracy {logs['val_accuracy']:.3f} "
            f"({time.perf_counter() - start:.0f}s)"
        )
    )
    history = classifier.fit(
        _dataset(x[train_idx], y[train_idx], BATCH_SIZE, shuffle_seed=seed),
        validation_data=_dataset(x[val_idx], y[val_idx], BATCH_SIZE, shuffle_seed=None),
        epochs=profile.standin_epochs,
        callbacks=[epoch_log],
        shuffle=False,  # the dataset shuffles itself (seeded)
        verbose=0,
    )
    save_backbone_weights(backbone, out_path)

    card = {
        "profile": profile.name,
        "weights": str(out_path),
        "architecture": {"blocks": list(profile.blocks), "growth_rate": profile.growth_rate},
        "image_size": profile.image_size,
        "classes": class_names(n_classes),
        "chance_accuracy": 1.0 / n_classes,
        "images": {"train": int(len(train_idx)), "validation": int(len(val_idx))},
        "epochs": profile.standin_epochs,
        "batch_size": BATCH_SIZE,
        "learning_rate": profile.learning_rate,
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "final_validation_accuracy": float(history.history["val_accuracy"][-1]),
        "backbone_parameters": int(backbone.count_params()),
        "seconds": round(time.perf_counter() - start, 1),
        "seed": seed,
        "versions": _versions(),
        "execution": execution(),
    }
    write_text_atomic(card_path(out_path), json.dumps(card, indent=2) + "\n")
    log(
        f"wrote {out_path} (validation accuracy {card['final_validation_accuracy']:.3f}, chance "
        f"{card['chance_accuracy']:.3f}, {card['seconds']:.0f}s)"
    )
    return card
