"""Crop grids <-> frames, scene grouping, sharding, and stitched inference."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest

from rgb2raw import bayer, stitch
from rgb2raw import jobs as planning
from rgb2raw.batch import OutputSettings, infer_paths
from rgb2raw.cameras import S7
from rgb2raw.errors import Rgb2RawError
from rgb2raw.loading import LoadedModel
from rgb2raw.pipeline import RunSettings

GRID = (6, 8)


def test_parse_crop_stem() -> None:
    assert stitch.parse_crop_stem("101_47") == ("101", 47)
    assert stitch.parse_crop_stem("a_b_3") == ("a_b", 3)
    for stem in ("photo", "12_", "_3", "12_07", "12-3"):
        assert stitch.parse_crop_stem(stem) is None


def test_crop_slices_are_row_major() -> None:
    assert stitch.crop_slices(0, GRID, (4, 5)) == (slice(0, 4), slice(0, 5))
    assert stitch.crop_slices(9, GRID, (4, 5)) == (slice(4, 8), slice(5, 10))  # row 1, col 1
    assert stitch.crop_slices(47, GRID, (4, 5)) == (slice(20, 24), slice(35, 40))
    with pytest.raises(ValueError):
        stitch.crop_slices(48, GRID, (4, 5))


def test_stitch_and_split_round_trip() -> None:
    frame = np.random.default_rng(0).random((24, 40, 3))
    crops = stitch.split_frame(frame, GRID)
    assert len(crops) == 48 and crops[9].shape == (4, 5, 3)
    np.testing.assert_array_equal(crops[9], frame[4:8, 5:10])
    np.testing.assert_array_equal(stitch.stitch_crops(crops, GRID), frame)
    with pytest.raises(ValueError):
        stitch.stitch_crops(crops[:47], GRID)
    with pytest.raises(ValueError):
        stitch.split_frame(frame[:23], GRID)


def entries(names: list[str]) -> list[planning.InputFile]:
    return [planning.InputFile(Path("/in") / n, PurePosixPath(n)) for n in names]


def test_plan_jobs_groups_complete_scenes_only() -> None:
    names = [f"a/7_{k}.jpg" for k in range(48)] + [f"b/7_{k}.jpg" for k in range(47)] + ["x.jpg"]
    files = entries(names)
    jobs = planning.plan_jobs(files, crops_per_frame=48, stitch=True, require_frames=False)
    scenes = [job for job in jobs if job.scene is not None]
    assert len(scenes) == 1 and [f.rel.stem for f in scenes[0].files] == [f"7_{k}" for k in range(48)]
    assert sum(len(job.files) for job in jobs) == len(files)
    assert all(job.problem is None for job in jobs)
    strict = planning.plan_jobs(files, crops_per_frame=48, stitch=True, require_frames=True)
    problems = [job for job in strict if job.problem is not None]
    assert len(problems) == 47 and "47 of 48" in (problems[0].problem or "")
    assert "missing 47" in (problems[0].problem or "")
    flat = planning.plan_jobs(files, crops_per_frame=48, stitch=False, require_frames=False)
    assert len(flat) == len(files) and all(job.scene is None for job in flat)


def test_shards_are_disjoint_cover_everything_and_keep_scenes_whole() -> None:
    names = [f"{s}_{k}.jpg" for s in (1, 2, 3) for k in range(48)] + [f"p{i}.png" for i in range(7)]
    jobs = planning.plan_jobs(entries(names), crops_per_frame=48, stitch=True, require_frames=False)
    for count in (1, 2, 3, 5):
        seen: list[PurePosixPath] = []
        for index in range(count):
            for job in planning.shard_jobs(jobs, index, count):
                seen.extend(f.rel for f in job.files)
        assert sorted(seen) == sorted(PurePosixPath(n) for n in names)
        assert len(seen) == len(set(seen))
    # Deterministic whatever order the jobs come in.
    assert planning.shard_jobs(jobs[::-1], 1, 3) == planning.shard_jobs(jobs, 1, 3)


def test_shard_from_environment() -> None:
    assert planning.shard_from_env({}) == (0, 1)
    assert planning.shard_from_env({"RANK": "3", "WORLD_SIZE": "4"}) == (3, 4)
    with pytest.raises(Rgb2RawError):
        planning.shard_from_env({"RANK": "4", "WORLD_SIZE": "4"})


# ---------------------------------------------------------------- stitched inference, end to end

CROP = 6  # tiny crops (lossless PNG) on the challenge's 6x8 grid
TINY_CAMERA = dataclasses.replace(S7, rgb_crop=CROP)


def position_model(batch_nchw: np.ndarray) -> np.ndarray:
    """A 'full-frame' model whose output depends on the frame position (like a shading mask):
    the naive mosaic times a horizontal ramp over the input width."""
    packed = np.stack([bayer.mosaic_rgb(t.transpose(1, 2, 0)).transpose(2, 0, 1) for t in batch_nchw])
    ramp = np.linspace(0.25, 1.0, packed.shape[3], dtype=np.float32)
    return packed * ramp[None, None, None, :]


def write_scene(folder: Path, scene: str, frame: np.ndarray, skip: tuple[int, ...] = ()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, crop in enumerate(stitch.split_frame(frame, GRID)):
        if index not in skip:
            cv2.imwrite(str(folder / f"{scene}_{index}.png"),
                        cv2.cvtColor(np.round(crop * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))


def test_full_frame_model_gets_the_whole_frame_and_outputs_are_split_back(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    rng = np.random.default_rng(5)
    frame = np.round(rng.random((GRID[0] * CROP, GRID[1] * CROP, 3)) * 255) / 255
    write_scene(tmp_path / "in", "9", frame)
    write_scene(tmp_path / "in", "10", frame, skip=(3,))
    model = make_model(position_model, "frame", full_frame=True, black_level=0, white_level=1000)
    report = infer_paths([tmp_path / "in"], tmp_path / "out", model, TINY_CAMERA)

    expected = np.clip(np.rint(position_model(frame.astype(np.float32).transpose(2, 0, 1)[None])[0]
                               .transpose(1, 2, 0) * 1000), 0, 1000)
    pieces = stitch.split_frame(expected, GRID)
    for index in (0, 13, 47):
        written = np.load(tmp_path / "out" / f"9_{index}.npy")
        assert written.shape == (CROP // 2, CROP // 2, 4) and written.dtype == np.uint16
        np.testing.assert_array_equal(written, pieces[index])
    # The incomplete scene fails, crop by crop, with the reason; nothing is written for it.
    assert report.count("written") == 48 and report.count("failed") == 47
    assert "47 of 48" in report.failures[0].problem and "full frames" in report.failures[0].problem
    assert not list((tmp_path / "out").glob("10_*"))


def test_auto_stitch_only_when_crops_would_need_padding(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    frame = np.random.default_rng(6).random((GRID[0] * CROP, GRID[1] * CROP, 3))
    write_scene(tmp_path / "in", "4", frame)
    calls: list[tuple[int, ...]] = []

    def recording(batch_nchw: np.ndarray) -> np.ndarray:
        calls.append(batch_nchw.shape)
        return position_model(batch_nchw)

    for multiple, stitched in ((2, False), (4, True)):  # 6 % 2 == 0 but 6 % 4 != 0
        calls.clear()
        model = make_model(recording, size_multiple=multiple)
        infer_paths([tmp_path / "in"], tmp_path / f"out{multiple}", model, TINY_CAMERA,
                    run=RunSettings(tile=-1), out=OutputSettings())
        assert (len(calls) == 1) == stitched
        calls.clear()
        infer_paths([tmp_path / "in"], tmp_path / f"off{multiple}", model, TINY_CAMERA,
                    run=RunSettings(tile=-1), stitch="off")
        assert len(calls) == 48


def test_a_scene_of_mixed_bit_depths_is_stitched_in_float(
        tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    frame = np.round(np.random.default_rng(8).random((GRID[0] * CROP, GRID[1] * CROP, 3)) * 255)
    write_scene(tmp_path / "in", "5", frame / 255)
    crop = stitch.split_frame(frame, GRID)[7].astype(np.uint16) * 257  # the same picture, 16-bit
    cv2.imwrite(str(tmp_path / "in" / "5_7.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    model = make_model(position_model, "frame", full_frame=True, black_level=0, white_level=1000)
    report = infer_paths([tmp_path / "in"], tmp_path / "out", model, TINY_CAMERA)
    assert report.count("written") == 48
    expected = np.clip(np.rint(position_model((frame / 255).astype(np.float32)
                                              .transpose(2, 0, 1)[None])[0]
                               .transpose(1, 2, 0) * 1000), 0, 1000)
    for index, piece in enumerate(stitch.split_frame(expected, GRID)):
        np.testing.assert_allclose(np.load(tmp_path / "out" / f"5_{index}.npy"), piece, atol=1)


# ---------------------------------------------------------------- lens shading by frame position

SHADING = {"kind": "radial", "coefficients": [[1.0, -0.6, 0.1, 0.0]] * 4}


def test_shading_puts_each_crop_at_its_place_in_the_frame(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    """A pixel-wise model with lens shading gives the same RAW whether a scene's crops run as
    one stitched frame or one by one: each lone crop gets its frame position from its name."""
    frame = np.round(np.random.default_rng(8).random((GRID[0] * CROP, GRID[1] * CROP, 3)) * 255) / 255
    write_scene(tmp_path / "in", "3", frame)
    model = make_model(size_multiple=2, black_level=0, white_level=1000, shading=SHADING)
    stitched = make_model(size_multiple=2, black_level=0, white_level=1000, shading=SHADING,
                          full_frame=True)
    infer_paths([tmp_path / "in"], tmp_path / "lone", model, TINY_CAMERA, stitch="off")
    infer_paths([tmp_path / "in"], tmp_path / "frame", stitched, TINY_CAMERA)
    for index in (0, 21, 47):
        lone = np.load(tmp_path / "lone" / f"3_{index}.npy")
        whole = np.load(tmp_path / "frame" / f"3_{index}.npy")
        np.testing.assert_array_equal(lone, whole)
    # The corners are darker than the centre, as the gains say; and a crop's gains are not its
    # own frame's (negative control: a picture named like no crop is its own frame).
    corner = np.load(tmp_path / "frame" / "3_0.npy")
    expected_frame = np.clip(np.rint(bayer.mosaic_rgb(frame.astype(np.float32)) * 1000), 0, 1000)
    assert (corner <= stitch.split_frame(expected_frame, GRID)[0]).all()
    assert corner.mean() < stitch.split_frame(expected_frame, GRID)[0].mean()
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.imread(str(tmp_path / "in" / "3_0.png")))
    infer_paths([tmp_path / "photo.png"], tmp_path / "photo.npy", model, TINY_CAMERA)
    assert not np.array_equal(np.load(tmp_path / "photo.npy"), np.load(tmp_path / "lone" / "3_0.npy"))


def test_shading_only_where_the_frame_position_is_known(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    """A picture with the frame's shape is a whole frame and gets its shading; a square picture
    named like no crop has no known place in a frame and gets none (the model's own output)."""
    rng = np.random.default_rng(11)
    model = make_model(size_multiple=2, black_level=0, white_level=1000, shading=SHADING)
    shapes = {"square": (2 * CROP, 2 * CROP), "landscape": (3 * CROP, 4 * CROP),
              "portrait": (4 * CROP, 3 * CROP)}
    for name, (h, w) in shapes.items():
        picture = np.round(rng.random((h, w, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(tmp_path / f"{name}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        infer_paths([tmp_path / f"{name}.png"], tmp_path / f"{name}.npy", model, TINY_CAMERA)
        plain = np.clip(np.rint(bayer.mosaic_rgb((picture / 255).astype(np.float32)) * 1000), 0, 1000)
        out = np.load(tmp_path / f"{name}.npy").astype(np.float64)
        if name == "square":
            np.testing.assert_array_equal(out, plain)
        else:  # whole frames: the corners darkened (negative control for the square)
            assert out[0, 0].sum() < 0.8 * plain[0, 0].sum()
            assert out[out.shape[0] // 2, out.shape[1] // 2].sum() >= 0.95 * plain[
                out.shape[0] // 2, out.shape[1] // 2].sum()


def test_shading_place() -> None:
    box = stitch.crop_box("7_9", (CROP, CROP), GRID, (CROP, CROP))
    assert stitch.shading_place("7_9", (CROP, CROP), TINY_CAMERA) == (True, box)
    assert stitch.shading_place("photo", (3024, 4032), TINY_CAMERA) == (True, None)
    assert stitch.shading_place("photo", (1000, 750), TINY_CAMERA) == (True, None)
    assert stitch.shading_place("photo", (CROP, CROP), TINY_CAMERA) == (False, None)
    assert stitch.shading_place("7_9", (2 * CROP, 2 * CROP), TINY_CAMERA) == (False, None)
    assert stitch.shading_place("pano", (1000, 3000), TINY_CAMERA) == (False, None)


def test_crop_box_places_only_crop_sized_crop_names() -> None:
    box = stitch.crop_box("7_9", (CROP, CROP), GRID, (CROP, CROP))
    assert box is not None and (box.top, box.left) == (CROP // 2, CROP // 2)
    assert (box.frame_height, box.frame_width) == (GRID[0] * CROP // 2, GRID[1] * CROP // 2)
    assert stitch.crop_box("7_9", (CROP, 2 * CROP), GRID, (CROP, CROP)) is None
    assert stitch.crop_box("photo", (CROP, CROP), GRID, (CROP, CROP)) is None
    assert stitch.crop_box("7_48", (CROP, CROP), GRID, (CROP, CROP)) is None


def test_a_photo_named_like_a_crop_is_its_own_frame(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    """`IMG_0.png` of any size but the camera's crop size is a whole frame for a full-frame
    model, not crop 0 of a scene missing 47 crops (which is still refused, see above)."""
    rng = np.random.default_rng(9)
    photo = np.round(rng.random((CROP * 2, CROP * 3, 3)) * 255).astype(np.uint8)
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "IMG_0.png"), photo)
    cv2.imwrite(str(tmp_path / "in" / "7_0.png"), photo[:CROP, :CROP])  # crop-sized: a crop
    model = make_model(position_model, "frame", full_frame=True, black_level=0, white_level=1000)
    report = infer_paths([tmp_path / "in"], tmp_path / "out", model, TINY_CAMERA)
    assert (tmp_path / "out" / "IMG_0.npy").exists()
    assert np.load(tmp_path / "out" / "IMG_0.npy").shape == (CROP, CROP * 3 // 2, 4)
    assert report.count("written") == 1 and report.count("failed") == 1
    assert "needs full frames" in report.failures[0].problem
