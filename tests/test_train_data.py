"""rgb2raw.train data side: Bayer-correct augmentation, scene split, pairs, simulation, losses."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rgb2raw import bayer
from rgb2raw.cameras import P20, S7
from rgb2raw.errors import Rgb2RawError
from rgb2raw.train import augment, data
from rgb2raw.train.simulate import SimulationRanges, draw_settings, simulate_pair


def _pair(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image and the RAW that samples it exactly (naive mosaic), so they must agree."""
    rgb = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)
    return rgb, bayer.mosaic_rgb(rgb)


@pytest.mark.parametrize("op", range(augment.N_TRANSFORMS))
def test_transform_pair_keeps_rggb_alignment(op: int) -> None:
    rgb, raw = _pair(12, 16)
    rgb_t, raw_t = augment.transform_pair(rgb, raw, op)
    # The transformed RAW is exactly the RGGB sampling of the transformed RGB.
    np.testing.assert_array_equal(raw_t, bayer.mosaic_rgb(rgb_t))
    # And it really moved the content (not just a crop of the original) for non-identity ops.
    expected = augment.transform_image(rgb, op)
    dy, dx = augment.red_phase(op)
    np.testing.assert_array_equal(rgb_t, expected[dy : dy + rgb_t.shape[0], dx : dx + rgb_t.shape[1]])


def test_transforms_are_the_eight_distinct_symmetries() -> None:
    image = np.arange(16).reshape(4, 4)
    results = {augment.transform_image(image, op).tobytes() for op in range(8)}
    assert len(results) == 8
    np.testing.assert_array_equal(augment.transform_image(image, 5), np.rot90(image, -1))


def test_flip_without_phase_shift_would_break_the_pattern() -> None:
    """The reason for the re-crop: a plain horizontal flip of the mosaic is GRBG, not RGGB."""
    rgb, raw = _pair(8, 8)
    flipped = augment.transform_image(bayer.unpack(raw), 1)
    assert not np.array_equal(bayer.pack(flipped, "RGGB"),
                              bayer.mosaic_rgb(augment.transform_image(rgb, 1)))
    # Red now sits on odd columns: the flipped mosaic is GRBG.
    flipped_rgb = augment.transform_image(rgb, 1)
    np.testing.assert_array_equal(bayer.pack(flipped, "GRBG")[..., 0], flipped_rgb[0::2, 1::2, 0])


@pytest.mark.parametrize("augmented", [False, True])
def test_random_crops_are_aligned_even_and_sized(augmented: bool) -> None:
    rgb, raw = _pair(40, 52, seed=3)
    rng = np.random.default_rng(0)
    for _ in range(30):
        rgb_c, raw_c = augment.random_pair_crop(rgb, raw, 16, rng, augment=augmented)
        assert rgb_c.shape == (16, 16, 3) and raw_c.shape == (8, 8, 4)
        np.testing.assert_array_equal(raw_c, bayer.mosaic_rgb(rgb_c))
    if not augmented:  # the crop comes from an even offset of the original
        rgb_c, _ = augment.random_pair_crop(rgb, raw, 16, np.random.default_rng(5), augment=False)
        found = [(y, x) for y in range(0, 25) for x in range(0, 37)
                 if np.array_equal(rgb[y : y + 16, x : x + 16], rgb_c)]
        assert found and all(y % 2 == 0 and x % 2 == 0 for y, x in found)


def test_crop_errors() -> None:
    rgb, raw = _pair(16, 16)
    with pytest.raises(ValueError, match="even"):
        augment.random_pair_crop(rgb, raw, 15, np.random.default_rng(0), augment=False)
    with pytest.raises(ValueError, match="smaller"):
        augment.random_pair_crop(rgb, raw, 16, np.random.default_rng(0), augment=True)


def test_center_crop_to_multiple() -> None:
    rgb, raw = _pair(36, 52)
    rgb_c, raw_c = augment.center_crop_pair(rgb, raw, 16)
    assert rgb_c.shape == (32, 48, 3)
    np.testing.assert_array_equal(raw_c, bayer.mosaic_rgb(rgb_c))


def test_scene_of_and_disjoint_split() -> None:
    assert data.scene_of("10_47") == "10" and data.scene_of("a_b_3") == "a_b"
    assert data.scene_of("photo") == "photo"
    pairs = [data.Pair(str(s), Path(f"{s}_{k}.jpg"), Path(f"{s}_{k}.npy"))
             for s in range(10) for k in range(5)]
    train, val = data.split_by_scene(pairs, 0.2, seed=1)
    train_scenes, val_scenes = {p.scene for p in train}, {p.scene for p in val}
    assert not train_scenes & val_scenes
    assert len(val_scenes) == 2 and len(train) + len(val) == len(pairs)
    assert data.split_by_scene(pairs, 0.2, seed=1) == (train, val)  # seeded
    # Tiny sets keep at least one scene on each side.
    train, val = data.split_by_scene(pairs[:10], 0.01, seed=0)
    assert {p.scene for p in val} and {p.scene for p in train}


def test_find_and_scan_pairs_report_bad_files(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    for stem in ("1_0", "1_1", "2_0"):
        cv2.imwrite(str(folder / f"{stem}.png"), rgb)
        np.save(folder / f"{stem}.npy", np.zeros((8, 8, 4), np.uint16))
    (folder / "2_0.png").write_bytes(b"not an image")  # corrupt image
    np.save(folder / "1_1.npy", np.zeros((4, 4, 4), np.uint16))  # wrong size
    cv2.imwrite(str(folder / "3_0.png"), rgb)  # no .npy
    pairs, bad = data.find_pairs(tmp_path)
    assert [p.rgb_path.name for p in pairs] == ["1_0.png", "1_1.png", "2_0.png"]
    assert [b.path.name for b in bad] == ["3_0.png"]
    good, bad = data.scan_pairs(pairs)
    assert good == [0]
    assert {b.path.name for b in bad} == {"1_1.npy", "2_0.png"}
    assert all(b.problem for b in bad)
    with pytest.raises(Rgb2RawError):
        data.find_pairs(tmp_path / "missing")


def test_challenge_dataset_items(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).random((20, 24, 3)).astype(np.float32)
    raw_dn = np.rint(bayer.mosaic_rgb(rgb) * 1000).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "5_0.png"), cv2.cvtColor(np.rint(rgb * 255).astype(np.uint8),
                                                         cv2.COLOR_RGB2BGR))
    np.save(tmp_path / "5_0.npy", raw_dn)
    pairs, _ = data.find_pairs(tmp_path)
    levels = data.Levels(0.0, 1024.0)
    dataset = data.ChallengeDataset(pairs, levels, crop=8, seed=0)
    first = dataset[0]
    assert first[0].shape == (3, 8, 8) and first[1].shape == (4, 4, 4)
    np.testing.assert_array_equal(dataset[0][0], first[0])  # same epoch: same item
    dataset.set_epoch(1)
    assert any(not np.array_equal(dataset[0][0], first[0]) for _ in range(1))
    whole = data.ChallengeDataset(pairs, levels, crop=None, seed=0, size_multiple=16)
    rgb_full, target_full = whole[0]
    assert rgb_full.shape == (3, 16, 16) and target_full.max() <= 1000 / 1024


def test_simulated_pairs_are_plausible() -> None:
    y, x = np.mgrid[0:64, 0:64] / 64.0
    photo = np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 * np.ones_like(x)], -1).astype(np.float32)
    for camera in (S7, P20):
        jpeg, raw, settings = simulate_pair(photo, camera, np.random.default_rng(0))
        assert jpeg.dtype == np.uint8 and jpeg.shape == (64, 64, 3)
        assert raw.shape == (32, 32, 4)
        assert raw.min() >= 0 and raw.max() <= camera.white_level
        np.testing.assert_array_equal(raw, np.rint(raw))  # whole DN
        # The forward ISP brings the picture back close to the photo (no wild colour casts).
        assert np.abs(jpeg / 255.0 - photo).mean() < 0.08
        assert 50 <= settings.iso <= 800
    # Seeded: the same generator state gives the same pair.
    a = simulate_pair(photo, S7, np.random.default_rng(7))
    b = simulate_pair(photo, S7, np.random.default_rng(7))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_settings_respect_ranges() -> None:
    ranges = SimulationRanges(exposure_ev=(1.0, 1.0), iso=(100.0, 100.0), jpeg_quality=(90, 90))
    settings = draw_settings(S7, np.random.default_rng(0), ranges)
    assert settings.exposure_ev == 1.0 and settings.jpeg_quality == 90
    assert settings.iso == pytest.approx(100.0)


def test_synthetic_dataset_is_seeded_by_epoch_and_index() -> None:
    photo = (np.random.default_rng(0).random((48, 40, 3)) * 255).astype(np.uint8)
    dataset = data.SyntheticDataset([photo], S7, data.Levels(0.0, 1024.0), crop=16, length=4,
                                    seed=3)
    rgb, target = dataset[2]
    assert rgb.shape == (3, 16, 16) and target.shape == (4, 8, 8)
    np.testing.assert_array_equal(dataset[2][1], target)
    dataset.set_epoch(1)
    assert not np.array_equal(dataset[2][1], target)


def test_losses() -> None:
    torch = pytest.importorskip("torch")
    from rgb2raw.train.losses import combined_loss, parse_loss_spec, ssim

    assert parse_loss_spec("l1:1,ssim:0.5") == {"l1": 1.0, "ssim": 0.5}
    assert parse_loss_spec("mse") == {"mse": 1.0}
    for bad in ("l2", "l1:x", "ssim:0", "l1:-1"):
        with pytest.raises(ValueError):
            parse_loss_spec(bad)
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(2, 4, 20, 20, generator=generator)
    assert float(ssim(a, a)) == pytest.approx(1.0, abs=1e-5)
    b = (a + 0.1 * torch.randn(a.shape, generator=generator)).requires_grad_(True)
    loss = combined_loss(b, a, {"l1": 1.0, "ssim": 0.5})
    loss.backward()
    assert b.grad is not None and float(b.grad.abs().sum()) > 0
    small = torch.rand(1, 4, 6, 6, generator=generator)  # below the window: global statistics
    assert float(ssim(small, small)) == pytest.approx(1.0, abs=1e-5)


def test_tiny_network_contract(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from rgb2raw.nets.export import export_onnx
    from rgb2raw.nets.tiny import TinyReverseISP, count_parameters

    model = TinyReverseISP().eval()
    assert count_parameters(model) < 1_000_000
    rgb = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(rgb)
    assert out.shape == (2, 4, 10, 14)
    # At initialisation it is x**2 followed by plain RGGB sampling.
    expected = bayer.mosaic_rgb((rgb[0].numpy().transpose(1, 2, 0)) ** 2).transpose(2, 0, 1)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-6)
    # Perturb the weights so the export test covers every branch, then compare with ONNX.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(1)))
        out = model(rgb)
    path = export_onnx(model, tmp_path / "tiny.onnx", example_hw=(16, 16))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {"rgb": rgb.numpy()})[0]
    np.testing.assert_allclose(onnx_out, out.numpy(), atol=1e-4)
