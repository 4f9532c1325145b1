"""Tiling: Bayer-phase tile plans, the blending window, and tiled == untiled inference."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgb2raw import bayer, tiling


def mosaic_runner(batch: np.ndarray) -> np.ndarray:
    """A per-pixel model: the naive RGGB mosaic of each tile (exactly shift-equivariant)."""
    return np.stack([bayer.mosaic_rgb(tile.transpose(1, 2, 0)).transpose(2, 0, 1) for tile in batch])


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 400).map(lambda n: 2 * n), tile=st.integers(8, 300),
       overlap=st.integers(0, 80), size_multiple=st.sampled_from([1, 2, 4, 8, 16]))
def test_axis_plan_keeps_phase_and_covers_the_padded_axis(length: int, tile: int, overlap: int,
                                                          size_multiple: int) -> None:
    multiple = tiling.tile_multiple(size_multiple)
    axis = tiling.plan_axis(length, tile, overlap, multiple)
    assert axis.padded % multiple == 0 and axis.padded >= length > axis.padded - multiple
    assert axis.tile % multiple == 0 and axis.tile % 2 == 0
    # Even offsets keep red at (0, 0) of every tile; multiples keep pooling grids aligned.
    assert all(start % multiple == 0 and start % 2 == 0 for start in axis.starts)
    assert axis.starts[0] == 0 and axis.starts[-1] + axis.tile == axis.padded
    assert list(axis.starts) == sorted(set(axis.starts))
    # Consecutive tiles overlap by at least the requested overlap (rounded to the multiple).
    for before, after in zip(axis.starts, axis.starts[1:], strict=False):
        assert before + axis.tile - after >= min(overlap, axis.tile)


@settings(max_examples=40, deadline=None)
@given(length=st.integers(20, 300).map(lambda n: 2 * n), tile=st.integers(16, 200),
       overlap=st.integers(0, 64))
def test_window_weights_are_positive_everywhere_and_one_at_the_border(length: int, tile: int,
                                                                      overlap: int) -> None:
    axis = tiling.plan_axis(length, tile, overlap, 2)
    total = np.zeros(axis.padded // 2)
    for index, start in enumerate(axis.starts):
        window = tiling.axis_window(axis, index)
        assert window.shape == (axis.tile // 2,) and window.min() >= 0 and window.max() <= 1
        total[start // 2: start // 2 + window.size] += window
    assert total.min() > 0.2  # never a pixel without a (substantial) contribution
    assert tiling.axis_window(axis, 0)[0] == 1
    assert tiling.axis_window(axis, len(axis.starts) - 1)[-1] == 1


@pytest.mark.parametrize(("height", "width", "tile", "multiple"),
                         [(2, 2, 64, 16), (64, 64, 64, 1), (130, 94, 32, 4), (46, 250, 48, 16)])
def test_pointwise_model_tiled_equals_the_exact_mosaic(height: int, width: int, tile: int,
                                                       multiple: int) -> None:
    rgb = np.random.default_rng(1).random((height, width, 3), dtype=np.float32)
    plan = tiling.plan_tiles(height, width, tile=tile, overlap=16, size_multiple=multiple)
    out = tiling.infer_tiled(rgb, mosaic_runner, plan, batch_size=3)
    np.testing.assert_allclose(out, bayer.mosaic_rgb(rgb), atol=1e-6)


def test_tiles_are_sent_in_batches_and_counted() -> None:
    rgb = np.zeros((100, 140, 3), dtype=np.float32)
    plan = tiling.plan_tiles(100, 140, tile=40, overlap=8, size_multiple=2)
    sizes: list[int] = []
    done: list[int] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        sizes.append(batch.shape[0])
        return mosaic_runner(batch)

    tiling.infer_tiled(rgb, runner, plan, batch_size=4, on_tiles=done.append)
    assert sum(sizes) == plan.count == sum(done) and max(sizes) <= 4 and plan.count > 4


def test_wrong_model_output_shape_is_reported() -> None:
    plan = tiling.plan_tiles(8, 8, tile=0)
    with pytest.raises(ValueError, match="shape"):
        tiling.infer_tiled(np.zeros((8, 8, 3), np.float32), lambda b: b[:, :, ::2, ::2], plan)


def test_auto_tile_size_is_bounded_and_a_multiple() -> None:
    for memory in (1, 1 << 30, 1 << 36):
        side = tiling.auto_tile_size(16, memory=memory)
        assert tiling.MIN_AUTO_TILE <= side <= tiling.MAX_AUTO_TILE and side % 16 == 0
    assert tiling.auto_tile_size(2, memory=1 << 28) < tiling.auto_tile_size(2, memory=1 << 34)
    assert tiling.available_memory() > 0


# ------------------------------------------------------------------ a CNN with a receptive field

def small_cnn(seed: int, pooled: bool) -> Any:
    """Random 3x3 convs (+ an avg-pool/upsample stage when `pooled`) and a 2x2 stride-2 head."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    layers: list[Any] = [torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                     torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU()]
    if pooled:  # size multiple 4: tiles must keep the pooling grid
        layers += [torch.nn.AvgPool2d(2), torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
                   torch.nn.Upsample(scale_factor=2, mode="nearest")]
    layers += [torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
               torch.nn.Conv2d(8, 4, 2, stride=2), torch.nn.Sigmoid()]
    return torch.nn.Sequential(*layers).eval()


def torch_runner(net: Any) -> tiling.BatchRunner:
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.from_numpy(batch)).numpy()

    return run


@pytest.mark.parametrize("pooled", [False, True])
def test_tiled_cnn_matches_untiled_without_a_seam_pattern(pooled: bool) -> None:
    multiple = 4 if pooled else 2
    rng = np.random.default_rng(7)
    # Smooth-ish content plus texture, an odd multiple of nothing in particular.
    rgb = np.clip(rng.random((222, 306, 3)) * 0.5 + np.linspace(0, 0.5, 306)[None, :, None],
                  0, 1).astype(np.float32)
    run = torch_runner(small_cnn(3, pooled))
    whole = tiling.infer_tiled(rgb, run, tiling.plan_tiles(222, 306, tile=0, size_multiple=multiple))
    plan = tiling.plan_tiles(222, 306, tile=64, overlap=32, size_multiple=multiple)
    assert plan.count > 12
    tiled = tiling.infer_tiled(rgb, run, plan, batch_size=5)
    error_dn = np.abs(tiled - whole).mean(axis=2) * 1024
    assert error_dn.mean() < 0.5

    # Error on the tile seams (the overlap bands) vs everywhere else: no grid pattern.
    seam = np.zeros(error_dn.shape, dtype=bool)
    for starts, axis in ((plan.rows.starts, 0), (plan.cols.starts, 1)):
        for start in starts[1:]:
            band = slice(start // 2, start // 2 + plan.rows.overlap // 2)
            if axis == 0:
                seam[band, :] = True
            else:
                seam[:, band] = True
    assert seam.any() and (~seam).any()
    assert error_dn[seam].mean() <= 2 * error_dn[~seam].mean() + 1e-3
    assert error_dn.max() < 0.01  # the margin exceeds the receptive field: all but rounding


def test_small_overlap_shows_why_the_margin_matters() -> None:
    """Sanity check of the test above: with no overlap the seams DO differ from the whole run."""
    rgb = np.random.default_rng(2).random((128, 128, 3), dtype=np.float32)
    run = torch_runner(small_cnn(5, pooled=False))
    whole = tiling.infer_tiled(rgb, run, tiling.plan_tiles(128, 128, tile=0))
    tiled = tiling.infer_tiled(rgb, run, tiling.plan_tiles(128, 128, tile=32, overlap=0))
    assert np.abs(tiled - whole).max() * 1024 > 0.5


# ------------------------------------------------------------------ known context: exact stitching

def max_filter_runner(context: int) -> tiling.BatchRunner:
    """A model with receptive-field radius `context`: a max filter over (2c+1)^2 pixels with
    bright padding at the tile's edges (like a CNN's zero padding, it corrupts the border), then
    the RGGB mosaic. Max is exact in any order, so stitched tiles can equal the whole run bit for
    bit."""
    from scipy import ndimage

    def run(batch: np.ndarray) -> np.ndarray:
        size = (1, 1, 2 * context + 1, 2 * context + 1)
        filtered = ndimage.maximum_filter(batch, size=size, mode="constant", cval=2.0)
        return mosaic_runner(filtered)

    return run


@pytest.mark.parametrize(("height", "width", "tile", "multiple", "context"),
                         [(222, 306, 64, 2, 5), (130, 94, 32, 4, 3), (46, 66, 16, 8, 0),
                          (100, 140, 40, 2, 0), (90, 62, 48, 16, 7)])
def test_known_context_stitches_tiles_exactly(height: int, width: int, tile: int, multiple: int,
                                              context: int) -> None:
    rgb = np.random.default_rng(height).random((height, width, 3), dtype=np.float32)
    run = max_filter_runner(context)
    whole = tiling.infer_tiled(rgb, run, tiling.plan_tiles(height, width, tile=0,
                                                           size_multiple=multiple))
    plan = tiling.plan_tiles(height, width, tile=tile, size_multiple=multiple, context=context)
    assert plan.exact and plan.count > 2
    assert plan.rows.overlap == (0 if context == 0 else tiling.context_overlap(context, multiple))
    tiled = tiling.infer_tiled(rgb, run, plan, batch_size=3)
    assert tiled.shape == whole.shape == (height // 2, width // 2, 4)
    np.testing.assert_array_equal(tiled, whole)


def test_too_small_an_overlap_for_the_context_blends_and_is_not_exact() -> None:
    """Sanity check of the test above: the filter's border corruption is visible when tiles do
    not overlap by the context (the plan then falls back to blending)."""
    rgb = np.random.default_rng(3).random((128, 128, 3), dtype=np.float32)
    run = max_filter_runner(5)
    whole = tiling.infer_tiled(rgb, run, tiling.plan_tiles(128, 128, tile=0))
    plan = tiling.plan_tiles(128, 128, tile=32, overlap=4, context=5)
    assert not plan.exact
    assert np.abs(tiling.infer_tiled(rgb, run, plan) - whole).max() > 0.5


@pytest.mark.parametrize(("height", "width", "multiple"), [(46, 66, 8), (30, 50, 16), (6, 10, 4)])
def test_sides_off_the_size_multiple_are_padded_then_cropped(height: int, width: int,
                                                              multiple: int) -> None:
    """Reflect-padding to the multiple and cropping gives the exact mosaic, tiled or not."""
    rgb = np.random.default_rng(width).random((height, width, 3), dtype=np.float32)
    expected = bayer.mosaic_rgb(rgb)
    for tile in (0, 16, 2 * multiple):
        for context in (None, 0):
            plan = tiling.plan_tiles(height, width, tile=tile, size_multiple=multiple,
                                     context=context)
            assert plan.rows.padded % multiple == 0 and plan.cols.padded % multiple == 0
            out = tiling.infer_tiled(rgb, mosaic_runner, plan, batch_size=2)
            assert out.shape == (height // 2, width // 2, 4)
            np.testing.assert_allclose(out, expected, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 300).map(lambda n: 2 * n), tile=st.integers(8, 200),
       context=st.integers(0, 20), size_multiple=st.sampled_from([1, 2, 4, 8, 16]))
def test_owned_parts_partition_the_axis_away_from_inner_edges(length: int, tile: int,
                                                              context: int,
                                                              size_multiple: int) -> None:
    multiple = tiling.tile_multiple(size_multiple)
    axis = tiling.plan_axis(length, tile, tiling.context_overlap(context, multiple), multiple)
    owner = np.full(axis.padded // 2, -1)
    for index, start in enumerate(axis.starts):
        owned = tiling.axis_owned(axis, index)
        assert 0 <= owned.start < owned.stop <= axis.tile // 2
        assert (owner[start // 2 + owned.start: start // 2 + owned.stop] == -1).all()
        owner[start // 2 + owned.start: start // 2 + owned.stop] = index
        # In RGB pixels, an owned 2x2 block is at least `context` from the tile's inner edges.
        if index > 0:
            assert 2 * owned.start >= context
        if index < len(axis.starts) - 1:
            assert axis.tile - 2 * owned.stop >= context
    assert (owner >= 0).all()


@pytest.mark.parametrize("context", [None, 3])
def test_tiles_in_parallel_give_the_same_output(context: int | None) -> None:
    rgb = np.random.default_rng(9).random((150, 206, 3), dtype=np.float32)
    run = max_filter_runner(3)
    plan = tiling.plan_tiles(150, 206, tile=40, size_multiple=2, context=context)
    assert plan.exact == (context is not None)
    done: list[int] = []
    serial = tiling.infer_tiled(rgb, run, plan, batch_size=2)
    parallel = tiling.infer_tiled(rgb, run, plan, batch_size=2, workers=3, on_tiles=done.append)
    np.testing.assert_array_equal(parallel, serial)
    assert sum(done) == plan.count


def test_light_models_get_parallel_cache_sized_tiles() -> None:
    assert tiling.tile_workers(None) == 1 and tiling.tile_workers(4096, threads=4) == 1
    assert tiling.tile_workers(48, threads=3) == 3 and tiling.tile_workers(48) >= 1
    memory = 1 << 34
    light = tiling.auto_tile_size(2, bytes_per_pixel=48, workers=2, memory=memory)
    assert tiling.MIN_AUTO_TILE <= light < tiling.auto_tile_size(2, bytes_per_pixel=48,
                                                                  memory=memory)
    assert light * light * 48 * 2 <= tiling.CACHE_BUDGET
    # A CNN's tiles are sized by memory alone (2 GiB at most, 4 KiB per pixel).
    assert tiling.auto_tile_size(2, memory=memory) == 724
