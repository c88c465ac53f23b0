"""Fixtures shared by the test modules: pytest finds them here, so no test module imports another.

Each fixture gives a function (a builder or a writer), so that a test calls it with the arguments it needs;
all are session-scoped, so module-scoped fixtures can use them too. Heavy imports (Keras) happen on first
call, so test modules that need no model do not pay for them.

======================  ===================================================================================
``tiny_model``          ``(image_size=128, blocks=(1, 1, 1, 1), seed=0)``: a DenseNet-BC (growth 4) with the
                        project's layer names, small enough for tests (final maps ``image_size / 32``)
``tiny_profile_model``  ``(seed=0, **kwargs)``: the ``tiny`` profile's compact DenseNet-BC
``random_batch``        ``(n, size, seed=0)``: ``(n, size, size, 3)`` float32 model inputs, uniform in 0..255
``four_d_layers``       ``(model)``: the names of its layers with a 4-D output, in order
``fake_explanation``    ``(n=2, size=64, seed=0)``: an :class:`Explanation` of known random arrays
``write_mura_folder``   ``(parent, parts, studies_per_cell, images_per_study, shape, seed)``: a MURA-layout
                        folder of noise studies per split, body part and label (abnormal: a bright square)
``write_small_mura``    ``(parent, studies, images=True)``: a MURA-layout folder from an explicit study list
``constant_png``        ``(path, width, height)``: an all-black 8-bit PNG of any size, in milliseconds
======================  ===================================================================================
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


# ----------------------------------------------------------------------------------------------------- models
def _tiny_model(image_size: int = 128, blocks=(1, 1, 1, 1), seed: int = 0):
    """A DenseNet-BC with the project's layer names, small enough for tests (final maps image_size / 32)."""
    from densenet_interp.models.densenet import build_compact_densenet

    return build_compact_densenet(blocks, 4, image_size, seed=seed)


def _tiny_profile_model(seed: int = 0, **kwargs):
    """The ``tiny`` profile's compact DenseNet-BC (``kwargs``: include_top, num_outputs, activation...)."""
    from densenet_interp.models.densenet import build_compact_densenet
    from densenet_interp.profiles import PROFILES

    tiny = PROFILES["tiny"]
    return build_compact_densenet(tiny.blocks, tiny.growth_rate, tiny.image_size, seed=seed, **kwargs)


def _random_batch(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_model():
    return _tiny_model


@pytest.fixture(scope="session")
def tiny_profile_model():
    return _tiny_profile_model


@pytest.fixture(scope="session")
def random_batch():
    return _random_batch


def _four_d_layers(model) -> list[str]:
    """The names of a model's layers with a 4-D output (every layer the explorer and the cache show)."""
    import keras

    return [
        layer.name
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4
    ]


@pytest.fixture(scope="session")
def four_d_layers():
    return _four_d_layers


# ------------------------------------------------------------------------------------------------ explanations
FAKE_SHAPES = {
    "initial_conv": (32, 32, 20),
    "block1": (16, 16, 24),
    "block2": (8, 8, 28),
    "block3": (4, 4, 30),
}
FAKE_SHAPES["block4"] = (2, 2, 32)


def _fake_explanation(n: int = 2, size: int = 64, seed: int = 0):
    """An Explanation with known random arrays (the figure code must not care where they came from)."""
    from densenet_interp.explain.engine import STAGES, Explanation

    rng = np.random.default_rng(seed)
    stages = {stage: rng.normal(size=(n, *shape)).astype(np.float32) for stage, shape in FAKE_SHAPES.items()}
    final = np.maximum(rng.normal(size=(n, 2, 2, 32)), 0).astype(np.float32)
    weights = rng.normal(size=32).astype(np.float32)
    cam_lowres = final @ weights
    cam = np.repeat(np.repeat(cam_lowres, size // 2, axis=1), size // 2, axis=2)
    logit = cam_lowres.mean(axis=(1, 2)) + 0.1
    return Explanation(
        inputs=rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32),
        probability=(1 / (1 + np.exp(-logit))).astype(np.float32),
        logit=logit.astype(np.float32),
        activations={**{f"layer_{s}": stages[s] for s in STAGES}, "relu": final},
        cam_lowres=cam_lowres,
        cam=cam.astype(np.float32),
        cam_weights=weights,
        cam_bias=0.1,
        layer_names={**{s: f"layer_{s}" for s in STAGES}, "final": "relu"},
    )


@pytest.fixture(scope="session")
def fake_explanation():
    return _fake_explanation


# ------------------------------------------------------------------------------------------------ MURA folders
def _write_mura_folder(
    parent: Path,
    parts: tuple[str, ...] = ("XR_WRIST", "XR_FINGER"),
    studies_per_cell: int = 2,
    images_per_study: int = 2,
    shape: tuple[int, int] = (40, 48),
    seed: int = 0,
) -> Path:
    """A small MURA-layout folder: per split, body part and label ``studies_per_cell`` studies of noise images
    (abnormal ones with a bright square, so a model can learn); every second image is saved as RGB."""
    rng = np.random.default_rng(seed)
    root = Path(parent) / "MURA-v1.1"
    patient = 0
    for split in ("train", "valid"):
        image_rows, study_rows = [], []
        for part in parts:
            for label in (0, 1):
                for _ in range(studies_per_cell):
                    patient += 1
                    study = f"MURA-v1.1/{split}/{part}/patient{patient:05d}/study1_{'positive' if label else 'negative'}/"
                    study_rows.append(f"{study},{label}")
                    for number in range(1, images_per_study + 1):
                        pixels = rng.integers(0, 120, shape).astype(np.uint8)
                        if label:
                            pixels[shape[0] // 4 : shape[0] // 2, shape[1] // 4 : shape[1] // 2] = 250
                        path = Path(parent) / study / f"image{number}.png"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        picture = Image.fromarray(pixels)
                        (picture.convert("RGB") if number % 2 == 0 else picture).save(path)
                        image_rows.append(f"{study}image{number}.png")
        (root / f"{split}_image_paths.csv").write_text("\n".join(image_rows) + "\n")
        (root / f"{split}_labeled_studies.csv").write_text("\n".join(study_rows) + "\n")
    return root


def _write_small_mura(parent: Path, studies, images: bool = True) -> Path:
    """Write a MURA folder with ``studies`` = [(split, part, patient, 'study1_positive', n_images)] and PNGs."""
    from densenet_interp.data import mura

    root = parent / "MURA-v1.1"
    rows = {name: [] for name in mura.CSV_NAMES}
    for n, (split, part, patient, folder, n_images) in enumerate(studies):
        study_path = f"MURA-v1.1/{split}/{part}/{patient}/{folder}/"
        rows[mura.study_csv_name(split)].append(f"{study_path},{int(folder.endswith('positive'))}")
        for view in range(1, n_images + 1):
            rows[mura.image_csv_name(split)].append(f"{study_path}image{view}.png")
            if images:
                png = root / study_path.removeprefix("MURA-v1.1/") / f"image{view}.png"
                png.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((6 + n, 5 + view), 40 * view, np.uint8)).save(png)
    root.mkdir(parents=True, exist_ok=True)
    for name, lines in rows.items():
        (root / name).write_text("".join(line + "\n" for line in lines))
    return root


@pytest.fixture(scope="session")
def write_mura_folder():
    return _write_mura_folder


@pytest.fixture(scope="session")
def write_small_mura():
    return _write_small_mura


# -------------------------------------------------------------------------------------------------------- PNGs
def _constant_png(path, width: int, height: int) -> bytes:
    """Write a valid all-black 8-bit PNG of any size in milliseconds, without its pixels in memory.

    Each row (filter byte + zero pixels) is deflated once after a full flush, which resets the compressor, so
    every row compresses to the same bytes; the stream is those bytes repeated, closed with the Adler-32 of
    all-zero data (a = 1, b = length mod 65521). Returns the zlib stream.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(width + 1)
    packer = zlib.compressobj(9)
    first = packer.compress(row) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(row) + packer.flush(zlib.Z_FULL_FLUSH)
    assert first[2:] == again  # zlib header, then identical self-contained row blocks
    final_block = packer.flush(zlib.Z_FINISH)[:-4]
    adler = struct.pack(">I", ((height * (width + 1)) % 65521) << 16 | 1)
    stream = first + again * (height - 1) + final_block + adler
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    )
    return stream


@pytest.fixture(scope="session")
def constant_png():
    return _constant_png
