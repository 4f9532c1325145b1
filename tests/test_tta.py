"""Test-time augmentation: flips and transposes that keep every Bayer site's colour."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from rgb2raw import bayer, tta
from rgb2raw.errors import Rgb2RawError
from rgb2raw.loading import LoadedModel
from rgb2raw.pipeline import RunSettings, predict


def naive_mosaic(rgb: np.ndarray) -> np.ndarray:
    """An exactly equivariant 'network': keep each site's own colour."""
    return bayer.mosaic_rgb(rgb)


def test_eight_distinct_transforms() -> None:
    assert len(set(tta.transforms(8))) == 8 and tta.transforms(1) == (tta.IDENTITY,)
    assert set(tta.transforms(8)) == set(tta.DIHEDRAL)
    with pytest.raises(ValueError):
        tta.transforms(3)


@pytest.mark.parametrize("transform", tta.DIHEDRAL, ids=lambda t: t.name)
def test_every_site_keeps_its_colour_and_position(transform: tta.Transform) -> None:
    # Each pixel encodes its own (row, column) in R and G and a constant in B, so a wrong site
    # (a shifted or mirrored pixel, or a red read from a green site) shows up as a wrong value.
    height, width = 6, 10
    rows, cols = np.mgrid[0:height, 0:width]
    rgb = np.stack([rows * 100 + cols, rows * 100 + cols + 0.5, -(rows * 100 + cols)],
                   axis=-1).astype(np.float32)
    seen = tta.inverse_output(naive_mosaic(tta.forward_image(rgb, transform)), transform)
    assert seen.shape == (height // 2, width // 2, 4)
    np.testing.assert_array_equal(seen, naive_mosaic(rgb))


def test_a_plain_flip_without_the_phase_pad_would_be_wrong() -> None:
    """Why the pad exists: unflipping a flipped image's mosaic reads green at red sites."""
    rgb = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    flipped_out = naive_mosaic(np.ascontiguousarray(rgb[:, ::-1]))
    unflipped = bayer.pack(np.ascontiguousarray(bayer.unpack(flipped_out)[:, ::-1]))
    assert not np.allclose(unflipped, naive_mosaic(rgb))


@pytest.mark.parametrize("passes", [2, 4, 8])
def test_tta_of_an_equivariant_model_equals_its_plain_output(passes: int) -> None:
    rgb = np.random.default_rng(3).random((40, 58, 3), dtype=np.float32)
    plain = naive_mosaic(rgb)
    np.testing.assert_array_equal(tta.predict_tta(rgb, naive_mosaic, passes), plain)


def _batch_mosaic(batch: np.ndarray) -> np.ndarray:
    return np.stack([naive_mosaic(t.transpose(1, 2, 0)).transpose(2, 0, 1) for t in batch])


def test_tta_through_the_pipeline_with_tiles_matches_plain(make_model: Callable[..., LoadedModel]) -> None:
    model = make_model(_batch_mosaic, "naive", size_multiple=4)
    rgb = np.random.default_rng(4).random((70, 90, 3), dtype=np.float32)
    plain = predict(rgb, model, RunSettings(tile=-1))
    augmented = predict(rgb, model, RunSettings(tile=32, overlap=8, tta=8))
    np.testing.assert_allclose(augmented, plain, atol=1e-6)


def test_tta_averages_a_non_equivariant_model() -> None:
    """A model that is not flip-equivariant gets a different (averaged) answer."""
    def ramp(rgb: np.ndarray) -> np.ndarray:  # output depends on the absolute column
        packed = naive_mosaic(rgb)
        return packed + np.arange(packed.shape[1], dtype=np.float32)[None, :, None]

    rgb = np.zeros((8, 8, 3), dtype=np.float32)
    out = tta.predict_tta(rgb, ramp, 2)
    assert np.allclose(out[0, :, 0], out[0, ::-1, 0])  # mirrored ramps average to flat


def test_tta_is_refused_for_full_frame_models(make_model: Callable[..., LoadedModel]) -> None:
    model = make_model(_batch_mosaic, "frame", full_frame=True)
    with pytest.raises(Rgb2RawError, match="test-time augmentation"):
        predict(np.zeros((8, 8, 3), np.float32), model, RunSettings(tta=8))
