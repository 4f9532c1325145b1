"""Regenerate the bundled offline default models: ``python -m rgb2raw.nets.build_defaults``.

For each camera profile (s7, p20, generic) this writes the fast ONNX graph of the parametric
inverse ISP (`rgb2raw.nets.parametric_graph`, checked against the exact torch module
`ParametricInverseISP` by the tests) to ``parametric-<camera>.onnx`` and its model card
``parametric-<camera>.json`` (the format `rgb2raw.zoo` reads) with the file's size and pins.
Nothing is trained and the graph is written node by node (no exporter, no torch), so the files
depend only on the camera profiles and come out byte for byte the same on every machine.

Options: ``--out DIR`` (default: the package's models folder), ``--camera NAME`` (repeatable;
default all three).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rgb2raw import download
from rgb2raw._atomic import atomic_write
from rgb2raw.cameras import CAMERA_NAMES, CameraProfile, get_camera

MODEL_PREFIX = "parametric"
CARD_TEXT = "parametric.md"
BUILD_COMMAND = "python -m rgb2raw.nets.build_defaults"
# Peak memory of the graph per RGB pixel, input included, rounded up: measured 45 bytes under
# ONNX Runtime 1.32 on a 12 MP image (the input's 12 plus 33 for intermediates and output).
BYTES_PER_PIXEL = 48


def model_name(camera: CameraProfile) -> str:
    """The zoo name of a camera's parametric model, e.g. ``parametric-s7``."""
    return f"{MODEL_PREFIX}-{camera.name}"


def card_dict(camera: CameraProfile, onnx_path: Path) -> dict[str, Any]:
    """The JSON form of the model card for `camera`'s exported graph at `onnx_path`."""
    git_blob_sha1, sha256 = download.file_digests(onnx_path)
    return {
        "name": model_name(camera),
        "camera": camera.name,
        "arch": "parametric",
        "description": (
            f"fixed inverse ISP (Brooks et al. 2019 unprocessing) built from the {camera.name} "
            "camera profile: inverse tone curve, inverse sRGB gamma, sRGB-to-camera matrix, "
            "daylight white balance undone with highlight protection, RGGB sampling; "
            "no learned weights; pixel-wise (linearisation by a 16-bit table)"
        ),
        "files": [
            {
                "filename": onnx_path.name,
                "format": "onnx",
                "urls": [],
                "git_blob_sha1": git_blob_sha1,
                "sha256": sha256,
                "size": onnx_path.stat().st_size,
                "bundled": True,
            }
        ],
        "rgb_range": 1.0,
        "size_multiple": 2,
        "input_size": None,
        "full_frame": False,
        # Each output pixel depends on its own 2x2 block only: tiles need no overlap.
        "context": 0,
        "bytes_per_pixel": BYTES_PER_PIXEL,
        "black_level": camera.black_level,
        "white_level": camera.white_level,
        "source": f"built by `{BUILD_COMMAND}` from rgb2raw.cameras.{camera.name.upper()}",
        "license": "MIT (rgb2raw)",
        "reported": None,
        "card": CARD_TEXT,
    }


def build_one(camera: CameraProfile, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write `camera`'s parametric model and its card into `out_dir`.

    Returns the (onnx, json) paths. Both files are written atomically; existing ones are
    replaced (they are build outputs, not user files).
    """
    from rgb2raw.nets.parametric_graph import build_graph

    folder = Path(out_dir)
    name = model_name(camera)
    onnx_path = folder / f"{name}.onnx"
    with atomic_write(onnx_path) as handle:
        handle.write(build_graph(camera).SerializeToString())
    card_path = folder / f"{name}.json"
    text = json.dumps(card_dict(camera, onnx_path), indent=2) + "\n"
    with atomic_write(card_path) as handle:
        handle.write(text.encode("utf-8"))
    return onnx_path, card_path


def build_all(
    out_dir: str | os.PathLike[str], cameras: Sequence[str] = CAMERA_NAMES
) -> list[tuple[Path, Path]]:
    """Build the parametric model of every camera named in `cameras` into `out_dir`."""
    return [build_one(get_camera(name), out_dir) for name in cameras]


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
    for onnx_path, card_path in build_all(out_dir, args.camera or CAMERA_NAMES):
        print(onnx_path)
        print(card_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
