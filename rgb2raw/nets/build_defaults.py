"""Regenerate the bundled offline models: ``python -m rgb2raw.nets.build_defaults``.

Two kinds per camera profile (s7, p20, generic), both the fast pixel-wise ONNX graph of
`rgb2raw.nets.parametric_graph` with a model card written through the one card writer
(`rgb2raw.zoo.write_card`):

- ``parametric-<camera>``: the uncalibrated formula (Brooks et al.'s unprocessing) with the
  profile's constants, checked against the exact torch module `ParametricInverseISP`;
- ``calibrated-<camera>``: the parameters stored in ``calibrated-<camera>.npz``, which
  ``benchmarks/calibrate_defaults.py`` fits to the real phone figures (that script reads
  the challenge figures at build time; this one reads only the package's models folder). The camera's default.

Nothing is trained here and the graph is written node by node (no exporter, no torch), so the
files depend only on the profiles and the stored parameters and come out byte for byte the same
on every machine; the test suite rebuilds them and compares.

Options: ``--out DIR`` (default: the package's models folder), ``--camera NAME`` (repeatable;
default all three).
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rgb2raw._atomic import atomic_write
from rgb2raw.cameras import CAMERA_NAMES, CameraProfile, get_camera
from rgb2raw.inverse import InverseParams
from rgb2raw.shading import RadialShading

FORMULA_PREFIX = "parametric"
CALIBRATED_PREFIX = "calibrated"
CARD_TEXTS = {FORMULA_PREFIX: "parametric.md", CALIBRATED_PREFIX: "calibrated.md"}
BUILD_COMMAND = "python -m rgb2raw.nets.build_defaults"
FIT_COMMAND = "python benchmarks/calibrate_defaults.py"
# Peak memory of the graph per RGB pixel, input included, rounded up: measured 45 bytes under
# ONNX Runtime 1.32 on a 12 MP image (the input's 12 plus 33 for intermediates and output).
BYTES_PER_PIXEL = 48


def model_name(camera: CameraProfile, prefix: str = FORMULA_PREFIX) -> str:
    """The zoo name of a camera's bundled model, e.g. ``parametric-s7``, ``calibrated-p20``."""
    return f"{prefix}-{camera.name}"


# ----------------------------------------------------------------------------- stored fits


def save_calibration(path: str | os.PathLike[str], params: InverseParams,
                     shading: RadialShading | None) -> Path:
    """Store a calibrated camera: its `InverseParams` and optional lens shading, one ``.npz``."""
    arrays = params.to_arrays()
    if shading is not None:
        arrays["shading"] = shading.coefficients
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    target = Path(path)
    with atomic_write(target) as handle:
        handle.write(buffer.getvalue())
    return target


def load_calibration(path: str | os.PathLike[str]) -> tuple[InverseParams, RadialShading | None]:
    """Read what `save_calibration` wrote (no pickles)."""
    with np.load(Path(path), allow_pickle=False) as arrays:
        params = InverseParams.from_arrays(arrays)
        shading = RadialShading(arrays["shading"]) if "shading" in arrays else None
    return params, shading


# ----------------------------------------------------------------------------- building


def _description(prefix: str, camera: CameraProfile, shading: RadialShading | None) -> str:
    if prefix == FORMULA_PREFIX:
        return (f"fixed inverse ISP (Brooks et al. 2019 unprocessing) built from the "
                f"{camera.name} camera profile: inverse tone curve, inverse sRGB gamma, "
                "sRGB-to-camera matrix, daylight white balance undone with highlight protection, "
                "RGGB sampling; no learned weights; pixel-wise (linearisation by a 16-bit table)")
    where = ("the mean of the s7 and p20 calibrations" if camera.name == "generic"
             else f"the real {camera.name} JPEG + RAW figure of the AIM 2022 README")
    return (f"calibrated inverse ISP for {camera.name}, fitted to {where}: fitted tone table, "
            "white balance, exposure and black level"
            + (", lens shading by frame position" if shading is not None else "")
            + "; pixel-wise (exact tiles)")


def build_model(params: InverseParams, camera: CameraProfile, prefix: str,
                out_dir: str | os.PathLike[str],
                shading: RadialShading | None = None) -> tuple[Path, Path]:
    """Write one pixel-wise model (graph + card) into `out_dir`; returns (onnx, card) paths.

    Both files are written atomically; existing ones are replaced (they are build outputs,
    not user files).
    """
    from rgb2raw.nets.parametric_graph import build_graph
    from rgb2raw.zoo import ModelCard, file_entry, write_card

    folder = Path(out_dir)
    name = model_name(camera, prefix)
    onnx_path = folder / f"{name}.onnx"
    with atomic_write(onnx_path) as handle:
        handle.write(build_graph(params, name).SerializeToString())
    source = (f"built by `{BUILD_COMMAND}` from rgb2raw.cameras.{camera.name.upper()}"
              if prefix == FORMULA_PREFIX else
              f"fitted by `{FIT_COMMAND}`, built by `{BUILD_COMMAND}` from {name}.npz")
    card = ModelCard(
        name=name, camera=camera.name, arch="parametric",
        description=_description(prefix, camera, shading),
        files=(file_entry(onnx_path, "onnx"),),
        # Each output pixel depends on its own 2x2 block only: tiles need no overlap.
        full_frame=False, context=0, bytes_per_pixel=BYTES_PER_PIXEL,
        black_level=params.black_level, white_level=params.white_level,
        source=source, license="MIT (rgb2raw)", card=CARD_TEXTS[prefix],
        shading=None if shading is None else shading.to_dict(),
    )
    return onnx_path, write_card(folder / f"{name}.json", card)


def build_one(camera: CameraProfile, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write `camera`'s uncalibrated formula model and its card into `out_dir`."""
    return build_model(InverseParams.from_camera(camera), camera, FORMULA_PREFIX, out_dir)


def build_calibrated(camera: CameraProfile, out_dir: str | os.PathLike[str],
                     source_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path] | None:
    """Write `camera`'s calibrated model from its stored fit (in `source_dir`, default
    `out_dir`); None when there is no stored fit."""
    stored = Path(source_dir or out_dir) / f"{model_name(camera, CALIBRATED_PREFIX)}.npz"
    if not stored.is_file():
        return None
    params, shading = load_calibration(stored)
    return build_model(params, camera, CALIBRATED_PREFIX, out_dir, shading)


def build_all(out_dir: str | os.PathLike[str], cameras: Sequence[str] = CAMERA_NAMES,
              source_dir: str | os.PathLike[str] | None = None) -> list[tuple[Path, Path]]:
    """Build every bundled model of the cameras named in `cameras` into `out_dir`."""
    built: list[tuple[Path, Path]] = []
    for name in cameras:
        camera = get_camera(name)
        built.append(build_one(camera, out_dir))
        calibrated = build_calibrated(camera, out_dir, source_dir)
        if calibrated is not None:
            built.append(calibrated)
    return built


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints the files it wrote, one per line."""
    from rgb2raw.zoo import models_dir

    parser = argparse.ArgumentParser(prog=BUILD_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the package's models folder)",
    )
    parser.add_argument(
        "--camera",
        action="append",
        choices=CAMERA_NAMES,
        help="build only this camera (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    out_dir = models_dir() if args.out is None else args.out
    for onnx_path, card_path in build_all(out_dir, args.camera or CAMERA_NAMES, models_dir()):
        print(onnx_path)
        print(card_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
