"""The input pipeline: the decode cache (built once, reused, never stale) and the augmented tf.data batches."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from densenet_interp.data import augment, images, mura, pipeline
from densenet_interp.errors import DataError


@pytest.fixture
def index(tmp_path, write_mura_folder):
    return mura.read_mura(write_mura_folder(tmp_path / "data"))


@pytest.fixture
def decode_counter(monkeypatch):
    """Count calls of images.read_radiograph (the pipeline's only way to decode a file)."""
    calls = []
    original = images.read_radiograph

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(images, "read_radiograph", counting)
    return calls


# ---------------------------------------------------------------------------------------------------- cache
def test_cache_decodes_once_and_is_reused(index, tmp_path, decode_counter):
    cache = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    assert len(decode_counter) == len(index.images) == len(cache)
    paths = index.images["path"].tolist()
    arrays = cache.arrays_for(paths)
    assert arrays.dtype == np.uint8 and arrays.shape == (len(paths), 24, 24)
    for row in (0, 1, len(paths) - 1):  # gray and RGB files
        expected = images.resize_square(images.read_radiograph(index.images["abs_path"][row]), 24)
        np.testing.assert_array_equal(arrays[row], expected)
    decode_counter.clear()

    again = pipeline.build_cache(mura.read_mura(index.root), 24, tmp_path / "cache")
    assert decode_counter == []
    assert again.array_file == cache.array_file
    np.testing.assert_array_equal(again.arrays_for(paths[::-1]), arrays[::-1])


def test_rows_are_read_in_any_order_and_runs_without_the_memory_map(index, tmp_path, monkeypatch):
    """Host memory (issue 12): rows come from plain file reads, run by run; indexing the map is never used."""
    cache = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    every = np.load(cache.array_file)  # the reference, read independently
    paths = cache.table["path"].tolist()
    n = len(paths)
    orders = [[0, 1, 2, n - 1, 3, 4, 0], [n - 1], list(range(n))[::-1], [2, 3, 4, 5] + [1] * 3]

    class NoFancyIndexing(np.ndarray):
        def __getitem__(self, item):
            raise AssertionError("arrays_for indexed the memory map")

    monkeypatch.setattr(cache, "_array", np.lib.format.open_memmap(cache.array_file, mode="r"))
    offset = cache._array.offset
    monkeypatch.setattr(cache, "_array", cache._array.view(NoFancyIndexing))
    monkeypatch.setattr(type(cache._array), "offset", offset, raising=False)
    for order in orders:
        np.testing.assert_array_equal(cache.arrays_for([paths[i] for i in order]), every[order])


def test_a_cache_array_cut_short_is_named_not_misread(index, tmp_path):
    cache = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    with open(cache.array_file, "r+b") as handle:
        handle.truncate(cache.array_file.stat().st_size - 10)
    short = pipeline.ImageCache.__new__(pipeline.ImageCache)
    short.__dict__.update(cache.__dict__)
    with pytest.raises(DataError, match="ends early") as error:
        short.arrays_for([cache.table["path"].iloc[-1]])
    assert str(cache.array_file) in str(error.value)


def test_parallel_builds_decode_once(index, tmp_path, decode_counter):
    with ThreadPoolExecutor(max_workers=3) as pool:
        caches = list(
            pool.map(lambda _: pipeline.build_cache(index, 24, tmp_path / "cache", workers=1), range(3))
        )
    assert len(decode_counter) == len(index.images)
    assert len({cache.array_file for cache in caches}) == 1


def test_cache_per_size(index, tmp_path, decode_counter):
    small = pipeline.build_cache(index, 16, tmp_path / "cache", workers=1)
    large = pipeline.build_cache(index, 32, tmp_path / "cache", workers=1)
    assert small.array_file != large.array_file and (small.size, large.size) == (16, 32)
    assert len(decode_counter) == 2 * len(index.images)


def test_subset_is_served_from_the_full_cache(index, tmp_path, decode_counter):
    full = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    decode_counter.clear()
    wrist = index.images[index.images["body_part"] == "XR_WRIST"].reset_index(drop=True)
    subset = mura.MuraIndex(index.root, wrist, index.studies)
    assert mura.fingerprint(subset) != mura.fingerprint(index)
    served = pipeline.build_cache(subset, 24, tmp_path / "cache")
    assert decode_counter == [] and served.array_file == full.array_file
    np.testing.assert_array_equal(served.arrays_for(wrist["path"]), full.arrays_for(wrist["path"]))


def test_rewritten_image_invalidates_the_cache(index, tmp_path, decode_counter):
    pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    target = index.images["abs_path"][0]
    Image.fromarray(np.full((30, 30), 200, np.uint8)).save(target)
    stat = os.stat(target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    decode_counter.clear()
    fresh = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    assert len(decode_counter) == len(index.images)
    assert (fresh.arrays_for([index.images["path"][0]]) == 200).all()


def test_threaded_decode_equals_serial(index, tmp_path):
    serial = pipeline.build_cache(index, 24, tmp_path / "one", workers=1)
    threaded = pipeline.build_cache(index, 24, tmp_path / "two", workers=2)
    paths = index.images["path"]
    np.testing.assert_array_equal(serial.arrays_for(paths), threaded.arrays_for(paths))


def test_unknown_path_is_refused(index, tmp_path):
    cache = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    with pytest.raises(
        ValueError, match=r"1 of 2 requested images are not in the cache .*'MURA-v1.1/nope.png'"
    ):
        cache.arrays_for([index.images["path"][0], "MURA-v1.1/nope.png"])


def test_undecodable_image_names_the_file_and_leaves_no_cache(index, tmp_path):
    bad = index.images["abs_path"][3]
    Path(bad).write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="cannot decode|not an image") as info:
        pipeline.build_cache(index, 24, tmp_path / "cache", workers=2)
    assert bad in str(info.value)
    assert not any(p.suffix in (".npy", ".csv") for p in (tmp_path / "cache").iterdir())


def test_inconsistent_cache_files_are_rebuilt(index, tmp_path, decode_counter):
    cache = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    np.save(cache.array_file, np.zeros((3, 24, 24), np.uint8))  # e.g. a foreign or truncated array
    decode_counter.clear()
    rebuilt = pipeline.build_cache(index, 24, tmp_path / "cache", workers=1)
    assert len(decode_counter) == len(index.images) and len(rebuilt) == len(index.images)


# -------------------------------------------------------------------------------------------------- batches
def _numbered_images(n: int, size: int = 16) -> np.ndarray:
    """Constant images whose value is their row number: recognisable after a flip or a 0-degree rotation."""
    return np.repeat(np.arange(n, dtype=np.uint8), size * size).reshape(n, size, size)


def _epoch(images_u8, labels, **kwargs):
    batches = list(pipeline.make_dataset(images_u8, labels, **kwargs))
    return [x.numpy() for x, _ in batches], [y.numpy() for _, y in batches]


def test_batches_have_the_model_contract():
    n, batch = 21, 8
    xs, ys = _epoch(_numbered_images(n), np.arange(n) % 2, batch_size=batch, training=True, seed=0)
    assert [len(x) for x in xs] == [8, 8, 5]
    for x, y in zip(xs, ys, strict=True):
        assert x.dtype == np.float32 and x.shape[1:] == (16, 16, 3) and 0 <= x.min() and x.max() <= 255
        assert y.dtype == np.float32 and y.shape == (len(x), 1)
        np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_evaluation_batches_are_the_images_in_order_unaugmented():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (10, 16, 16)).astype(np.uint8)
    xs, ys = _epoch(pixels, np.arange(10) % 2, batch_size=4, training=False, seed=5)
    np.testing.assert_array_equal(np.concatenate(xs)[..., 1], pixels.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate(ys)[:, 0], np.arange(10) % 2)


def test_batches_are_gathered_from_the_callers_array_in_place():
    """Host memory (issue 12): make_dataset keeps no copy of the pixels; a copy would hold them twice."""
    pixels = np.zeros((12, 16, 16), np.uint8)
    dataset = pipeline.make_dataset(pixels, np.zeros(12), batch_size=4, training=False, seed=0)
    pixels[5] = 77  # written after the dataset was made
    batches = [x for x, _ in dataset]
    np.testing.assert_array_equal(np.concatenate(batches)[5], np.full((16, 16, 3), 77, np.float32))
    assert np.concatenate(batches)[4].max() == 0


def test_epoch_order_is_a_permutation_that_depends_only_on_seed_and_epoch():
    n = 30
    labels = (np.arange(n) * 7 % 5 == 0).astype(np.float32)
    kwargs = dict(batch_size=8, training=True, rotation_degrees=0.0)

    def order(seed, epoch):
        xs, ys = _epoch(_numbered_images(n), labels, seed=seed, epoch=epoch, **kwargs)
        ids = np.concatenate([x[:, 0, 0, 0] for x in xs]).astype(int)
        np.testing.assert_array_equal(np.concatenate(ys)[:, 0], labels[ids])  # labels travel with images
        return ids

    first = order(seed=3, epoch=0)
    assert sorted(first) == list(range(n))
    np.testing.assert_array_equal(order(seed=3, epoch=0), first)
    assert not np.array_equal(order(seed=3, epoch=1), first)
    assert not np.array_equal(order(seed=4, epoch=0), first)


def test_augmentation_is_deterministic_per_seed_and_epoch():
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (12, 20, 20)).astype(np.uint8)
    labels = np.zeros(12)
    a, _ = _epoch(pixels, labels, batch_size=4, training=True, seed=7, epoch=2)
    b, _ = _epoch(pixels, labels, batch_size=4, training=True, seed=7, epoch=2)
    c, _ = _epoch(pixels, labels, batch_size=4, training=True, seed=7, epoch=3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_flip_and_rotation_geometry():
    import tensorflow as tf

    pixels = np.random.default_rng(3).integers(0, 256, (3, 16, 16)).astype(np.float32)
    transforms = augment._flip_rotate_transforms(
        tf.constant([1.0, 0.0, 1.0]), tf.constant([0.0, math.pi / 2, math.pi / 2]), 16.0, 16.0
    )
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=pixels[..., None],
        transforms=transforms,
        output_shape=[16, 16],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[..., 0].numpy()
    np.testing.assert_array_equal(out[0], pixels[0][:, ::-1])  # lateral inversion, exact
    np.testing.assert_allclose(out[1], np.rot90(pixels[1]), atol=1e-2)  # a quarter turn
    np.testing.assert_allclose(out[2], np.rot90(pixels[2][:, ::-1]), atol=1e-2)  # mirrored, then turned


def test_augmentation_flips_about_half_and_keeps_rotations_within_bounds():
    import tensorflow as tf

    n = 400
    draws = tf.random.stateless_uniform([n, 2], seed=[0, 0]).numpy()  # the draws augment_batch makes
    flipped = (draws[:, 0] < 0.5).mean()
    assert 0.4 < flipped < 0.6
    # A bright dot one pixel off the centre row: after a rotation of at most 30 degrees it stays in the
    # cone |dy| <= tan(30 deg) * |dx| around the horizontal axis through the centre.
    size = 41
    dot = np.zeros((n, size, size), np.float32)
    dot[:, 20, 35] = 255.0
    out = augment.augment_batch(dot, tf.constant([0, 0], tf.int64), 30.0).numpy()
    for image in out:
        y, x = np.unravel_index(np.argmax(image), image.shape)
        assert abs(y - 20) <= math.tan(math.radians(30)) * abs(x - 20) + 1.5


def test_augment_for_display_is_the_training_augmentation():
    import tensorflow as tf

    image = np.random.default_rng(4).integers(0, 256, (24, 32)).astype(np.uint8)
    shown = augment.augment_for_display(image, seed=9)
    assert shown.dtype == np.uint8 and shown.shape == image.shape
    np.testing.assert_array_equal(shown, augment.augment_for_display(image, seed=9))
    assert not np.array_equal(shown, augment.augment_for_display(image, seed=10))
    batch_seed = tf.random.experimental.stateless_fold_in(tf.constant([9, 0], tf.int64), 0)
    expected = augment.augment_batch(image[None].astype(np.float32), batch_seed, 30.0)[0].numpy()
    np.testing.assert_array_equal(shown, np.clip(np.rint(expected), 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("pixels", "labels", "message"),
    [
        (np.zeros((4, 8, 8), np.float32), np.zeros(4), r"images must be uint8 \(N, S, S\), got float32"),
        (np.zeros((4, 8, 6), np.uint8), np.zeros(4), r"got uint8 array of shape \(4, 8, 6\)"),
        (np.zeros((4, 8, 8), np.uint8), np.zeros(3), "got 3 labels for 4 images"),
    ],
)
def test_make_dataset_refuses_bad_input(pixels, labels, message):
    with pytest.raises(ValueError, match=message):
        pipeline.make_dataset(pixels, labels, batch_size=2, training=True, seed=0)


def _mirrored_share(images: np.ndarray, out: np.ndarray) -> float:
    """Share of outputs equal to their input mirrored left-right (the rest must equal the input itself)."""
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for i, o in zip(images, out, strict=True)])
    unchanged = np.array([np.array_equal(o, i) for i, o in zip(images, out, strict=True)])
    assert (mirrored | unchanged).all(), "with rotation 0, an output is either the input or its mirror image"
    return float(mirrored.mean())


def test_the_flip_on_its_own_mirrors_about_half_of_the_images():
    """The paper's 'random lateral inversions', asserted on the images (not on the draws): with rotation off,
    an asymmetric image comes back mirrored in about half of the draws, and unchanged otherwise."""
    import tensorflow as tf

    n = 300
    pattern = np.zeros((24, 24), np.float32)
    pattern[4:20, 2:6] = 255.0  # a bar near the left edge: its mirror image is at the right edge
    images = np.repeat(pattern[np.newaxis], n, axis=0)
    out = np.rint(augment.augment_batch(images, tf.constant([3, 1], tf.int64), 0.0).numpy())
    assert 0.4 < _mirrored_share(images, out) < 0.6


def test_the_rotation_on_its_own_turns_within_the_bound_and_uses_it():
    """'Rotations up to 30 degrees': the angle of a dot about the centre (mirroring undone) spreads over about
    -30..+30 degrees, never beyond, and not only near 0."""
    import tensorflow as tf

    n, size = 400, 81
    dot = np.zeros((n, size, size), np.float32)
    dot[:, 40, 75] = 255.0  # on the horizontal axis through the centre, 35 px to the right
    out = augment.augment_batch(dot, tf.constant([5, 9], tf.int64), 30.0).numpy()
    angles, mirrored = [], []
    for image in out:
        y, x = np.unravel_index(np.argmax(image), image.shape)
        angles.append(math.degrees(math.atan2(y - 40, abs(x - 40))))
        mirrored.append(x < 40)
    angles, mirrored = np.array(angles), np.array(mirrored)
    assert np.abs(angles).max() <= 30 + 2.0
    for group in (angles[mirrored], angles[~mirrored]):  # each way round, both senses of rotation occur
        assert len(group) > n / 4
        assert np.abs(group).max() > 25 and (group > 10).mean() > 0.2 and (group < -10).mean() > 0.2


def test_augment_for_display_passes_the_rotation_on_and_refuses_what_is_not_one_grey_image():
    """With rotation off, the panel shows the input or its mirror image, exactly: the bound is passed on."""
    image = np.random.default_rng(6).integers(0, 256, (12, 10)).astype(np.uint8)
    shown = [augment.augment_for_display(image, seed=s, rotation_degrees=0.0) for s in range(12)]
    assert all(np.array_equal(s, image) or np.array_equal(s, image[:, ::-1]) for s in shown)
    assert any(np.array_equal(s, image[:, ::-1]) for s in shown) and any(
        np.array_equal(s, image) for s in shown
    )
    assert augment.augment_for_display(np.full((1, 1), 7, np.uint8), seed=0, rotation_degrees=0.0).item() == 7
    for bad in (image.astype(np.float32), np.zeros((4, 4, 3), np.uint8), np.zeros((0, 5), np.uint8)):
        with pytest.raises(ValueError, match="expected a uint8 image"):
            augment.augment_for_display(bad, seed=0)


def test_each_image_turns_by_its_drawn_angle_and_uncovered_corners_are_black():
    """Image b of a batch draws row b of one stateless_uniform([B, 2]): mirrored if u0 < 0.5, then turned by
    (2 u1 - 1) * 30 degrees (counter-clockwise as shown, as np.rot90). Checked on the sub-pixel centroid of a dot
    190 px from the centre, so a bound off by half a percent shows. A uint8 batch gives the same floats."""
    import tensorflow as tf

    n, size, centre, radius = 8, 401, 200, 190
    dots = np.zeros((n, size, size), np.float32)
    dots[:, centre, centre + radius] = 255.0
    seed = tf.constant([11, 4], tf.int64)
    out = augment.augment_batch(dots, seed, 30.0).numpy()
    draws = tf.random.stateless_uniform([n, 2], seed=seed).numpy()
    for image, (u0, u1) in zip(out, draws, strict=True):
        dx = -radius if u0 < 0.5 else radius
        theta = math.radians((2 * u1 - 1) * 30.0)
        expected = (centre - dx * math.sin(theta), centre + dx * math.cos(theta))  # (row, column)
        rows, cols = np.nonzero(image)
        weights = image[rows, cols]
        found = (np.sum(rows * weights) / weights.sum(), np.sum(cols * weights) / weights.sum())
        assert found == pytest.approx(expected, abs=0.15)
    assert np.abs((2 * draws[:, 1] - 1) * 30).max() > 15  # the check covers large angles
    grey = np.full((n, 32, 32), 200.0, np.float32)
    turned = augment.augment_batch(grey, seed, 30.0).numpy()
    big = np.abs((2 * draws[:, 1] - 1) * 30) > 10
    assert (turned[big][:, 0, 0] == 0.0).all()  # corners no image covers: black, a radiograph's background
    as_uint8 = augment.augment_batch(grey.astype(np.uint8), seed, 30.0)
    assert as_uint8.dtype == tf.float32
    np.testing.assert_array_equal(as_uint8.numpy(), turned)
