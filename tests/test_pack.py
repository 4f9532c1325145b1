"""`rgb2raw pack`: validation before writing, deterministic zips, the scorer's view of them."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
official_reference = pytest.importorskip("official_reference")

from rgb2raw import submission  # noqa: E402
from rgb2raw.cli import app  # noqa: E402
from rgb2raw.errors import Rgb2RawError  # noqa: E402

SHAPE = (20, 20, 4)
runner = CliRunner()
INFO = submission.SubmissionInfo(runtime=0.25, device="cpu", extra_data=False, description="tiny: test")


@pytest.fixture()
def preds(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "pred"
    folder.mkdir()
    for index in range(3):
        np.save(folder / f"10_{index}.npy", rng.integers(0, 1025, SHAPE).astype(np.uint16))
    np.save(folder / "10_3.npy", (rng.random(SHAPE) * 1024).astype(np.float32))
    return folder


def _no_leftovers(folder: Path) -> None:
    assert not [p for p in folder.iterdir() if p.suffix == ".zip" or p.name.startswith(".rgb2raw-tmp")]


def test_zip_layout_readme_and_determinism(preds: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.zip"
    summary = submission.pack(preds, out, INFO, expect=4)
    assert summary.count == 4 and summary.shape == SHAPE and summary.float_files == 1
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert names[0] == "submission/" and "submission/readme.txt" in names
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
        readme = archive.read("submission/readme.txt").decode()
    assert readme.splitlines()[0] == "runtime per frame [s] : 0.25"
    assert submission.parse_readme(readme) == submission.ReadmeFields(0.25, 1, 0, "tiny: test")
    again = tmp_path / "b.zip"
    submission.pack(preds, again, INFO)
    assert again.read_bytes() == out.read_bytes()


def test_parse_readme_mirrors_scorer() -> None:
    text = "junk line\nruntime : x\nCPU : 0\nExtra : 1\nOther : a : b\n"
    assert submission.parse_readme(text) == submission.ReadmeFields(-1, 0, 1, "a : b")
    assert submission.parse_readme("only : 1\n").description == -1


def test_unzipped_submission_scores_like_its_folder(preds: Path, tmp_path: Path) -> None:
    gt = tmp_path / "gt"
    gt.mkdir()
    rng = np.random.default_rng(5)
    for path in preds.iterdir():
        np.save(gt / path.name, rng.integers(0, 1025, SHAPE).astype(np.uint16))
    # The float prediction is packed rounded, so score the folder with it rounded too.
    np.save(preds / "10_3.npy", np.rint(np.load(preds / "10_3.npy")).astype(np.uint16))
    out = tmp_path / "s.zip"
    submission.pack(preds, out, INFO)
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(unzipped)
    from_zip = official_reference.score_submission(str(unzipped), str(gt))
    from_folder = official_reference.score_folders(str(preds), str(gt))
    assert from_zip == from_folder


@pytest.mark.parametrize(("mutate", "problem"), [
    (lambda d: np.save(d / "10_1.npy", np.zeros((20, 22, 4), np.uint16)), "shape"),
    (lambda d: np.save(d / "10_1.npy", np.full(SHAPE, 1025, np.uint16)), "outside"),
    (lambda d: np.save(d / "10_1.npy", np.full(SHAPE, np.nan)), "NaN"),
    (lambda d: np.save(d / "10_1.npy", np.array([{}], dtype=object), allow_pickle=True), "pickled"),
    (lambda d: (d / "10_1.npy").write_bytes(b"garbage"), "not a readable"),
    (lambda d: np.save(d / "10_1.npy", np.zeros(SHAPE, bool)), "dtype"),
])
def test_bad_file_is_named_and_nothing_written(preds: Path, tmp_path: Path, mutate, problem: str) -> None:
    mutate(preds)
    out = tmp_path / "s.zip"
    with pytest.raises(Rgb2RawError, match=problem) as caught:
        submission.pack(preds, out, INFO)
    assert caught.value.path is not None and caught.value.path.endswith("10_1.npy")
    _no_leftovers(tmp_path)


def test_counts_cameras_and_rgb_dir(preds: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zip"
    with pytest.raises(Rgb2RawError, match="holds 4 .npy files, expected 5"):
        submission.pack(preds, out, INFO, expect=5)
    with pytest.raises(Rgb2RawError, match=r"expected \(252, 252, 4\)"):
        submission.pack(preds, out, INFO, camera="s7", expect=4)
    with pytest.raises(Rgb2RawError, match="expected 720"):
        submission.pack(preds, out, INFO, camera="p20")
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    for index in (0, 1, 2, 4):
        (rgb / f"10_{index}.jpg").write_bytes(b"")
    with pytest.raises(Rgb2RawError, match="missing") as missing:
        submission.pack(preds, out, INFO, rgb_dir=rgb)
    assert missing.value.path is not None and missing.value.path.endswith("10_4.npy")
    (rgb / "10_3.jpg").write_bytes(b"")
    (rgb / "10_4.jpg").unlink()
    submission.pack(preds, out, INFO, rgb_dir=rgb)  # now one JPEG per .npy
    np.save(preds / "10_9.npy", np.zeros(SHAPE, np.uint16))
    with pytest.raises(Rgb2RawError, match="no matching JPEG") as extra:
        submission.pack(preds, out, INFO, rgb_dir=rgb, force=True)
    assert extra.value.path is not None and extra.value.path.endswith("10_9.npy")


def test_existing_zip_refused_without_force(preds: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zip"
    out.write_bytes(b"keep me")
    with pytest.raises(Rgb2RawError, match="already exists"):
        submission.pack(preds, out, INFO)
    assert out.read_bytes() == b"keep me"
    submission.pack(preds, out, INFO, force=True)
    assert zipfile.is_zipfile(out)


def test_check_rejects_flat_and_junk_zips(tmp_path: Path) -> None:
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as archive:
        archive.writestr("a.npy", b"")
    with pytest.raises(Rgb2RawError, match="one top-level folder"):
        submission.check_submission_zip(flat, count=1)
    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("submission/readme.txt", INFO.readme_text())
        archive.writestr("__MACOSX/submission/._a.npy", b"")
    with pytest.raises(Rgb2RawError, match="junk"):
        submission.check_submission_zip(junk, count=0)


def test_cli_summary_and_errors(preds: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.zip"
    runner = CliRunner()
    run = runner.invoke(app, ["pack", str(preds), "-o", str(out), "--runtime", "0.5",
                              "--device", "gpu", "--extra-data", "--description", "x"])
    assert run.exit_code == 0, run.output
    assert "4 .npy, each 20x20x4 uint16" in run.output and "rounded" in run.output
    with zipfile.ZipFile(out) as archive:
        fields = submission.parse_readme(archive.read("submission/readme.txt").decode())
    assert fields == submission.ReadmeFields(0.5, 0, 1, "x")
    again = runner.invoke(app, ["pack", str(preds), "-o", str(out), "--runtime", "0.5"])
    assert again.exit_code == 1 and again.output.startswith("error: ") and "already exists" in again.output
    np.save(preds / "10_2.npy", np.full(SHAPE, 1025, np.uint16))
    bad = runner.invoke(app, ["pack", str(preds), "-o", str(tmp_path / "t.zip"), "--runtime", "0.5"])
    assert bad.exit_code == 1 and "10_2.npy" in bad.output and bad.output.strip().count("\n") == 0
    assert not (tmp_path / "t.zip").exists()


@pytest.mark.parametrize("spelling", [["--measured-on", "GPU"], ["--device", "gpu"]])
def test_measured_on_names_the_readme_device_and_device_is_a_hidden_alias(
        preds: Path, tmp_path: Path, spelling: list[str]) -> None:
    out = tmp_path / "g.zip"
    run = runner.invoke(app, ["pack", str(preds), "-o", str(out), "--runtime", "0.5", *spelling])
    assert run.exit_code == 0, run.stderr
    with zipfile.ZipFile(out) as archive:
        readme = archive.read("submission/readme.txt").decode()
    assert submission.parse_readme(readme).cpu == 0
    helped = runner.invoke(app, ["pack", "--help"], env={"COLUMNS": "200"})
    assert "--measured-on" in helped.stdout and "--device" not in helped.stdout


def test_force_is_a_hidden_alias_of_overwrite(preds: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.zip"
    args = ["pack", str(preds), "-o", str(out), "--runtime", "0.5"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args).exit_code == 1
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
