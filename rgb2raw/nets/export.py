"""Export an rgb2raw torch network to ONNX for the torch-free runtime.

Graph contract (what the ONNX Runtime backend can rely on):
- one input ``"rgb"``: float32 ``(N, 3, H, W)``, sRGB in [0, 1];
- one output ``"raw"``: float32 ``(N, 4, H/2, W/2)``, packed RGGB in the network's own units
  (see each network's docstring: [0, 1] of 1024 for the U-Net; normalised between black and
  white level, unclamped, for LiteISPNet-S).
- N, H and W are dynamic for both architectures: neither holds anything tied to the frame size
  (LiteISPNet-S's "shading mask" is computed from the features, not stored). H and W must
  still be multiples of the network's ``size_multiple`` (4 for the U-Net, 16 for
  LiteISPNet-S); the graph does not check this, so the caller pads.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rgb2raw._atomic import atomic_write

if TYPE_CHECKING:
    from torch import nn

INPUT_NAME = "rgb"
OUTPUT_NAME = "raw"


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode inside the block; its training flag is restored after, even when
    the export fails (an export must not change the model it was given)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def publish(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write a finished graph's bytes to `path` atomically; returns the path."""
    target = Path(path)
    with atomic_write(target) as handle:
        handle.write(data)
    return target


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    example_hw: tuple[int, int] = (256, 256),
    opset: int = 17,
) -> Path:
    """Write `model` as an ONNX file at `path` (atomically) and return the path.

    `example_hw` is the size of the tracing example only (the exported axes stay dynamic); it
    must be a valid input size for the model. The TorchScript-based exporter is used
    (``dynamo=False``): the dynamo exporter needs onnxscript, which rgb2raw does not depend on.
    """
    import torch

    height, width = example_hw
    multiple = int(getattr(model, "size_multiple", 1))
    if height % multiple or width % multiple:
        raise ValueError(f"example_hw must be multiples of {multiple}, got {height}x{width}")

    # Export into a private scratch folder, then publish the bytes atomically: the exporter
    # writes the file in several steps and a killed run must not leave half a model behind.
    with evaluating(model), tempfile.TemporaryDirectory(prefix="rgb2raw-export-") as scratch:
        scratch_file = Path(scratch) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter announces its own deprecation; nothing to act on.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (torch.rand(1, 3, height, width),),
                str(scratch_file),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                    OUTPUT_NAME: {0: "batch", 2: "raw_height", 3: "raw_width"},
                },
                opset_version=opset,
                dynamo=False,
            )
        onnx_bytes = scratch_file.read_bytes()
    return publish(onnx_bytes, path)
