"""`rgb2raw score`: parity with the reference scorer, pairing by stem, bad inputs, outputs."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
official_reference = pytest.importorskip("official_reference")

from rgb2raw import metrics, scoring  # noqa: E402
from rgb2raw.cli import app  # noqa: E402
from rgb2raw.errors import Rgb2RawError  # noqa: E402

SHAPE = (36, 36, 4)


@pytest.fixture()
def pairs(tmp_path: Path) -> tuple[Path, Path]:
    """Six pairs like the shared fixtures: identical, noise, blur-ish, gain, float, saturated."""
    rng = np.random.default_rng(0)
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    for stem in ("a_identical", "b_noise", "c_smooth", "d_gain", "e_float", "f_saturated"):
        gt = rng.integers(100, 900, SHAPE).astype(np.uint16)
        pred: np.ndarray = gt.copy()
        if stem == "b_noise":
            pred = np.clip(gt + rng.normal(0, 15, SHAPE), 0, 1024).astype(np.uint16)
        elif stem == "c_smooth":
            pred = ((gt.astype(int) + np.roll(gt, 1, axis=0)) // 2).astype(np.uint16)
        elif stem == "d_gain":
            pred = np.clip(gt * 1.1, 0, 1024).astype(np.uint16)
        elif stem == "e_float":
            pred = np.clip(gt + rng.normal(0, 3, SHAPE), 0, 1024).astype(np.float32)
        elif stem == "f_saturated":
            pred = np.clip(gt * 2.0, 0, 1024).astype(np.uint16)
        np.save(gt_dir / f"{stem}.npy", gt)
        np.save(pred_dir / f"{stem}.npy", pred)
    return pred_dir, gt_dir


def _assert_matches_reference(result: scoring.ScoreResult, pred: Path, gt: Path) -> None:
    reference = official_reference.score_folders(str(pred), str(gt))
    assert result.count == reference["count"]
    assert result.psnr == pytest.approx(reference["psnr"], abs=1e-9)
    assert result.ssim == pytest.approx(reference["ssim"], abs=1e-12)
    for image in result.per_image:
        assert image.psnr == pytest.approx(reference["per_image"][image.stem]["psnr"], abs=1e-9)
        assert image.ssim == pytest.approx(reference["per_image"][image.stem]["ssim"], abs=1e-12)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("path", ["native", "opencv"])
def test_scores_match_reference(pairs: tuple[Path, Path], workers: int, path: str,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the C extension (where built) and through OpenCV, on one thread and two."""
    if path == "native" and metrics._native_module is None:
        pytest.skip("the C extension rgb2raw._ssim is not built")
    monkeypatch.setattr(metrics, "native", metrics._native_module if path == "native" else None)
    result = scoring.score(*pairs, workers=workers)
    _assert_matches_reference(result, *pairs)
    assert {s.stem: s.psnr for s in result.per_image}["a_identical"] == 999.0


def test_zip_prediction_scores_like_its_folder(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    pred, gt = pairs
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(pred.iterdir()):
            out.write(path, f"submission/{path.name}")
        out.writestr("__MACOSX/submission/._b_noise.npy", b"junk")
    assert scoring.score(archive, gt).to_dict() == scoring.score(pred, gt).to_dict()


def test_missing_and_extra_files_fail_unless_allowed(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    (pred / "b_noise.npy").rename(pred / "z_extra.npy")
    with pytest.raises(Rgb2RawError, match=r"1 missing \(b_noise\); 1 extra \(z_extra\)"):
        scoring.score(pred, gt)
    result = scoring.score(pred, gt, allow_missing=True)
    assert result.count == 5 and result.missing == ("b_noise",) and result.extra == ("z_extra",)


@pytest.mark.parametrize(("content", "problem"), [
    (np.full(SHAPE, 1025, np.uint16), "outside"),
    (np.full(SHAPE, np.nan, np.float32), "NaN"),
    (np.full(SHAPE, -1.0), "outside"),
    (np.zeros((36, 30, 4), np.uint16), "differs from the ground truth"),
])
def test_bad_values_name_the_file(pairs: tuple[Path, Path], content: np.ndarray, problem: str) -> None:
    pred, gt = pairs
    np.save(pred / "d_gain.npy", content)
    with pytest.raises(Rgb2RawError, match=problem) as caught:
        scoring.score(pred, gt)
    assert caught.value.path is not None and caught.value.path.endswith("d_gain.npy")


def test_object_array_and_unreadable_file(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    np.save(pred / "c_smooth.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(Rgb2RawError, match="pickled"):
        scoring.score(pred, gt)
    (pred / "c_smooth.npy").write_bytes(b"not numpy")
    with pytest.raises(Rgb2RawError, match="not a readable"):
        scoring.score(pred, gt)


def test_white_level_option(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    at_1024 = scoring.score(pred, gt)
    at_2048 = scoring.score(pred, gt, white_level=2048)
    noisy_1024 = {s.stem: s for s in at_1024.per_image}["b_noise"]
    noisy_2048 = {s.stem: s for s in at_2048.per_image}["b_noise"]
    # Doubling the white level halves the error relative to full scale: +6.02 dB.
    assert noisy_2048.psnr - noisy_1024.psnr == pytest.approx(20 * np.log10(2), abs=1e-9)


def test_cli_table_json_csv(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    pred, gt = pairs
    json_path, csv_path = tmp_path / "s.json", tmp_path / "s.csv"
    runner = CliRunner()
    run = runner.invoke(app, ["score", str(pred), str(gt), "--json", str(json_path),
                              "--csv", str(csv_path), "--top", "2"])
    assert run.exit_code == 0, run.output
    data = json.loads(json_path.read_text())
    reference = official_reference.score_folders(str(pred), str(gt))
    assert set(data) == {"psnr", "ssim", "count", "per_image"} and data["count"] == 6
    assert data["psnr"] == pytest.approx(reference["psnr"], abs=1e-9)
    assert run.output.strip().splitlines()[-1] == (
        f"mean PSNR {data['psnr']:.4f} dB  SSIM {data['ssim']:.6f}  (6 images)")
    assert "f_saturated" in run.output and "a_identical" not in run.output  # worst 2 only
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "stem,psnr,ssim" and len(rows) == 7
    again = runner.invoke(app, ["score", str(pred), str(gt), "--json", str(json_path)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_cli_error_is_one_line_and_exit_1(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    (pred / "e_float.npy").unlink()
    run = CliRunner().invoke(app, ["score", str(pred), str(gt)])
    assert run.exit_code == 1
    assert run.output.strip().count("\n") == 0 and run.output.startswith("error: ")
    assert "e_float" in run.output


def test_zip_with_two_folders_is_refused_unless_allowed(pairs: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    pred, gt = pairs
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for index, path in enumerate(sorted(pred.iterdir())):
            out.write(path, f"{'first' if index < 3 else 'second'}/{path.name}")
    with pytest.raises(Rgb2RawError, match=r"in 2 folders \(first/, second/\)"):
        scoring.score(archive, gt)
    assert scoring.score(archive, gt, allow_multiple_folders=True).to_dict() == \
        scoring.score(pred, gt).to_dict()
    run = CliRunner().invoke(app, ["score", str(archive), str(gt)])
    assert run.exit_code == 1 and run.output.count("\n") == 1 and "2 folders" in run.output
    run = CliRunner().invoke(app, ["score", str(archive), str(gt), "--allow-multiple-folders"])
    assert run.exit_code == 0, run.output


def test_corrupt_zip_member_and_lying_header_are_one_line(pairs: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    pred, gt = pairs
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for path in sorted(pred.iterdir()):
            out.write(path, f"submission/{path.name}")
    data = bytearray(archive.read_bytes())
    middle = data.find(b"b_noise.npy") + 200  # inside that member's compressed bytes
    data[middle:middle + 64] = bytes(64)
    archive.write_bytes(bytes(data))
    run = CliRunner().invoke(app, ["score", str(archive), str(gt)])
    assert run.exit_code == 1 and run.output.startswith("error: ") and run.output.count("\n") == 1
    # A 200-byte .npy claiming (200000, 200000, 4): refused from its header, no MemoryError.
    header = b"{'descr': '<u2', 'fortran_order': False, 'shape': (200000, 200000, 4), }"
    header += b" " * (117 - len(header)) + b"\n"
    payload = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    (pred / "c_smooth.npy").write_bytes(payload + bytes(200 - len(payload)))
    run = CliRunner().invoke(app, ["score", str(pred), str(gt)])
    assert run.exit_code == 1 and run.output.count("\n") == 1
    assert "c_smooth.npy: truncated .npy file: the header promises" in run.output


def test_cli_shows_the_worst_ten_by_default_and_all_on_request(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    for index in range(12):
        gt = rng.integers(100, 900, SHAPE).astype(np.uint16)
        noise = rng.normal(0, 2 + 3 * index, SHAPE)  # image 11 is the worst
        np.save(gt_dir / f"im{index:02d}.npy", gt)
        np.save(pred_dir / f"im{index:02d}.npy", np.clip(gt + noise, 0, 1024).astype(np.uint16))
    runner = CliRunner()
    lines = runner.invoke(app, ["score", str(pred_dir), str(gt_dir)]).output.splitlines()
    assert lines[0] == "worst 10 of 12" and lines[2].startswith("im11 ")
    assert len(lines) == 2 + 10 + 1 and "im00" not in "".join(lines)
    every = runner.invoke(app, ["score", str(pred_dir), str(gt_dir), "--all"]).output.splitlines()
    assert every[0] == "per image, worst first" and len(every) == 2 + 12 + 1
    assert [line.split()[0] for line in every[2:-1]] == [f"im{i:02d}" for i in range(11, -1, -1)]
    only = runner.invoke(app, ["score", str(pred_dir), str(gt_dir), "--top", "0"]).output
    assert only.count("\n") == 1 and only.startswith("mean PSNR")


def test_json_and_csv_dash_mean_stdout(pairs: tuple[Path, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pred, gt = pairs
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    run = runner.invoke(app, ["score", str(pred), str(gt), "--json", "-"])
    assert run.exit_code == 0, run.output
    data = json.loads(run.stdout)  # stdout holds the JSON alone
    assert data["count"] == 6 and set(data["per_image"]) == {p.stem for p in pred.iterdir()}
    run = runner.invoke(app, ["score", str(pred), str(gt), "--csv", "-", "--json", "s.json"])
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines()[0] == "stem,psnr,ssim" and len(run.stdout.splitlines()) == 7
    assert json.loads((tmp_path / "s.json").read_text()) == data
    assert not (tmp_path / "-").exists()
    run = runner.invoke(app, ["score", str(pred), str(gt), "--csv", "-", "--json", "-"])
    assert run.exit_code == 2


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_bad_white_level_is_a_usage_error(pairs: tuple[Path, Path], value: str) -> None:
    run = CliRunner().invoke(app, ["score", *map(str, pairs), "--white-level", value])
    assert run.exit_code == 2 and "Traceback" not in run.output


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (a read-only mode, or /sys for root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").write_bytes(b"")
    except OSError:
        return folder
    (folder / "probe").unlink()  # root ignores modes; sysfs refuses new files even to root
    candidate = Path("/sys/kernel")
    try:
        (candidate / "rgb2raw-probe").write_bytes(b"")
    except OSError:
        return candidate
    pytest.skip("no unwritable folder available")


def test_unwritable_or_folder_outputs_fail_first_in_one_line(pairs: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    pred, gt = pairs
    (pred / "a_identical.npy").write_bytes(b"not numpy")  # scoring would fail on this
    runner = CliRunner()
    target = _unwritable_folder(tmp_path) / "s.json"
    run = runner.invoke(app, ["score", str(pred), str(gt), "--json", str(target)])
    # The output is checked before any scoring: the error names it, not the bad .npy.
    assert run.exit_code == 1 and run.output.count("\n") == 1
    assert run.output.startswith(f"error: {target}: cannot be written")
    folder = tmp_path / "out"
    folder.mkdir()
    for extra in ([], ["--overwrite"], ["--force"]):
        run = runner.invoke(app, ["score", str(pred), str(gt), "--json", str(folder), *extra])
        assert run.exit_code == 1 and run.output == f"error: {folder}: is a folder; expected a file name\n"
    run = runner.invoke(app, ["score", str(pred), str(gt), "--csv", "/dev/null", "--overwrite"])
    assert run.exit_code == 1 and "/dev/null: is not a regular file" in run.output


@pytest.mark.parametrize("args", [["--top", "-1"], ["--top", "x"], ["--workers", "0"],
                                  ["--white-level", "abc"], ["--json", "-", "--csv", "-"]])
def test_malformed_values_are_usage_errors(pairs: tuple[Path, Path], args: list[str]) -> None:
    run = CliRunner().invoke(app, ["score", *map(str, pairs), *args])
    assert run.exit_code == 2 and "Traceback" not in run.output


def test_values_are_converted_and_typed(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    """score parses its own values (no pydantic); what reaches the command is still typed."""
    out = tmp_path / "sub" / "s.json"  # a missing folder is created at write time
    run = CliRunner().invoke(app, ["score", *map(str, pairs), "--top", "2", "--workers", "1",
                                   "--white-level", "2048", "--json", str(out)])
    assert run.exit_code == 0, run.output
    assert run.output.splitlines()[0] == "worst 2 of 6"
    at_2048 = scoring.score(*pairs, white_level=2048)
    assert json.loads(out.read_text())["psnr"] == pytest.approx(at_2048.psnr, abs=1e-12)


def test_the_score_command_imports_no_pydantic_torch_or_scipy(pairs: tuple[Path, Path]) -> None:
    """Start-up is part of what `rgb2raw score` costs: only what scoring needs is imported."""
    import subprocess

    code = ("import sys\n"
            f"sys.argv = ['rgb2raw', 'score', {str(pairs[0])!r}, {str(pairs[1])!r}, '--top', '0']\n"
            "from rgb2raw.cli import main\n"
            "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
            "print(sorted(m for m in ('pydantic', 'torch', 'onnxruntime', 'scipy', 'PIL', 'rich')"
            " if m in sys.modules))\n"
            # With the C extension OpenCV is not needed either (the fixture's float32
            # prediction included).
            "from rgb2raw import metrics\n"
            "print(metrics.native is not None and 'cv2' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("mean PSNR") and lines[-2:] == ["[]", "False"]


@pytest.mark.parametrize("delay", [0.0, 1e9])
def test_progress_bar_only_once_scoring_has_taken_the_delay(tmp_path: Path, delay: float,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the bar (and rich) waits PROGRESS_DELAY_S: quick runs never draw it."""
    import contextlib
    from collections.abc import Iterator

    from rgb2raw import progress
    from rgb2raw.cli import score as score_cli

    updates: list[tuple[int, int]] = []
    opened: list[str] = []

    class Recorder(progress.Bars):
        def update(self, task: int, **changes: object) -> None:
            updates.append((changes["completed"], changes["total"]))  # type: ignore[arg-type]

    @contextlib.contextmanager
    def fake_bars(style: progress.Style = "count", **_: object) -> Iterator[progress.Bars]:
        opened.append(style)
        yield Recorder(None)

    monkeypatch.setattr(progress, "is_enabled", lambda: True)
    monkeypatch.setattr(progress, "bars", fake_bars)
    monkeypatch.setattr(score_cli, "PROGRESS_DELAY_S", delay)
    count = score_cli.PROGRESS_MIN_IMAGES + 4
    rng = np.random.default_rng(2)
    for folder in ("pred", "gt"):
        (tmp_path / folder).mkdir()
    for index in range(count):
        gt = rng.integers(0, 1025, (12, 12, 4)).astype(np.uint16)
        np.save(tmp_path / "gt" / f"{index}.npy", gt)
        np.save(tmp_path / "pred" / f"{index}.npy", gt)
    run = CliRunner().invoke(app, ["score", str(tmp_path / "pred"), str(tmp_path / "gt"),
                                   "--workers", "1"])
    assert run.exit_code == 0, run.output
    if delay:
        assert opened == [] and updates == []
    else:
        assert opened == ["count"]
        assert updates[0] == (1, count) and updates[-1] == (count, count)
