"""The parametric inverse ISP as a fast ONNX graph, written node by node.

`rgb2raw.nets.parametric.ParametricInverseISP` is the reference: an exact torch module. Exported
as is, its graph evaluates asin, sin and a power at every pixel and does the colour maths on all
three channels of every pixel; on two CPU cores a 12 MP photo took 0.5 s in ONNX Runtime. This
graph computes the same function in about a tenth of that time:

* **Linearisation by table.** The inverse tone curve and the inverse sRGB gamma depend on one
  value each, so they are one 65536-entry table, computed once in float64 at the 16-bit levels
  ``k / 65535`` and indexed by ``round(clip(x, 0, 1) * 65535)`` (a GatherElements, which ONNX
  Runtime runs several times faster than a Gather). For 8- and 16-bit images every input is on
  that grid, so the table is exact to float32 rounding; any other float input moves by at most
  half a step, which changes the output by at most 2e-4 (near black, where the inverse
  smoothstep is steepest), a fifth of a DN at 10 bits.
* **Mosaic first.** SpaceToDepth turns the picture into its 2x2 blocks, (N, 12, H/2, W/2), in
  one pass; every later step then works on block planes. Each Bayer site keeps one colour, so
  the site's own RAW channel needs one row of the colour matrix (3 multiply-adds); all three
  rows (9) are needed only for the highlight weight, which uses the mean camera RGB.
* **Highlight protection without a max.** ``max(w + (1 - w) g, g)`` with the inverse gain
  ``g`` equals ``g + w * max(0, 1 - g)`` for a weight ``w`` in [0, 1], so the per-site gain is
  one multiply-add with constants.

Contract: as the torch module's (``rgb`` (N, 3, H, W) float32 in [0, 1], H and W even ->
``raw`` (N, 4, H/2, W/2) in [0, 1], channels R, Gr, Gb, B). The output depends on each 2x2
block alone, so its model card says ``context: 0``. Building it needs the ``onnx`` package;
running it needs only ONNX Runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rgb2raw.cameras import CameraProfile
from rgb2raw.isp import HIGHLIGHT_KNEE

if TYPE_CHECKING:
    from onnx import ModelProto

#: Table size: one entry per 16-bit level, so 8- and 16-bit inputs hit entries exactly.
LUT_LEVELS = 65536
#: Opset of the graph (GatherElements, SpaceToDepth and Clip with inputs need <= 13).
OPSET = 17
#: Bumped whenever the graph's structure changes; stored as the producer version.
GRAPH_VERSION = "2"
#: Channel of each Bayer site, in the packed order R, Gr, Gb, B.
SITE_CHANNELS = (0, 1, 1, 2)

# The sRGB transfer curve (IEC 61966-2-1), as in `rgb2raw.nets.parametric`.
_SRGB_LINEAR_THRESHOLD = 0.04045
_SRGB_LINEAR_SLOPE = 12.92
_SRGB_OFFSET = 0.055
_SRGB_SCALE = 1.055
_SRGB_EXPONENT = 2.4


def linearize(encoded: np.ndarray) -> np.ndarray:
    """Inverse smoothstep tone curve, then inverse sRGB gamma, in float64 (the exact function
    the table samples; the torch module computes the same in float32)."""
    y = np.clip(np.asarray(encoded, dtype=np.float64), 0.0, 1.0)
    tone = np.clip(0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0), 0.0, 1.0)
    return np.where(tone <= _SRGB_LINEAR_THRESHOLD, tone / _SRGB_LINEAR_SLOPE,
                    ((tone + _SRGB_OFFSET) / _SRGB_SCALE) ** _SRGB_EXPONENT)


def linearize_table() -> np.ndarray:
    """`linearize` at the levels ``k / 65535``, float32, shape (65536,)."""
    return linearize(np.arange(LUT_LEVELS, dtype=np.float64) / (LUT_LEVELS - 1)).astype(np.float32)


def build_graph(camera: CameraProfile) -> ModelProto:
    """The ONNX model of `camera`'s parametric inverse ISP (see the module docstring)."""
    from onnx import TensorProto, checker, helper, numpy_helper

    rgb_to_cam = np.asarray(camera.rgb_to_cam, dtype=np.float32)
    # Cast to float32 before inverting, as the torch module and `isp.safe_inverse_gains` do.
    inverse_gains = (1.0 / np.asarray(camera.wb_gains, dtype=np.float32)).astype(np.float32)
    site_gains = inverse_gains[list(SITE_CHANNELS)].reshape(4, 1)
    knee_scale = 1.0 / (1.0 - HIGHLIGHT_KNEE)
    constants = {
        "zero": np.float32(0.0),
        "one": np.float32(1.0),
        "levels": np.float32(LUT_LEVELS - 1),
        "half": np.float32(0.5),
        "table": linearize_table().reshape(1, LUT_LEVELS),
        "table_row": np.array([1, -1], dtype=np.int64),
        "site_rgb_shape": np.array([0, 4, 3, -1], dtype=np.int64),
        "site_shape": np.array([0, 4, -1], dtype=np.int64),
        "rgb_to_cam": rgb_to_cam,
        # One matrix row per site: the site's own camera channel.
        "own_rows": rgb_to_cam[list(SITE_CHANNELS)].reshape(4, 1, 3),
        # Highlight weight before its clip: (mean(camera RGB) - knee) / (1 - knee).
        "mean_weights": np.full((1, 3), knee_scale / 3.0, dtype=np.float32),
        "knee_offset": np.float32(-HIGHLIGHT_KNEE * knee_scale),
        "gain_base": site_gains,
        "gain_slope": np.maximum(0.0, 1.0 - site_gains).astype(np.float32),
        "batch_axis": np.array([0], dtype=np.int64),
        "spatial_axes": np.array([2], dtype=np.int64),
        "spatial_end": np.array([4], dtype=np.int64),
        "channels": np.array([4], dtype=np.int64),
    }
    node = helper.make_node
    nodes = [
        # (N, 3, H, W) -> (N, 12, H/2, W/2): channel (2 * by + bx) * 3 + c of each 2x2 block.
        node("SpaceToDepth", ["rgb"], ["blocks"], blocksize=2),
        # Linearise through the table.
        node("Clip", ["blocks", "zero", "one"], ["clipped"]),
        node("Mul", ["clipped", "levels"], ["scaled"]),
        node("Add", ["scaled", "half"], ["rounded"]),
        node("Cast", ["rounded"], ["level"], to=TensorProto.INT32),  # truncates: round half up
        node("Reshape", ["level", "table_row"], ["level_row"]),
        node("GatherElements", ["table", "level_row"], ["linear_row"], axis=1),
        node("Shape", ["blocks"], ["blocks_shape"]),
        node("Reshape", ["linear_row", "blocks_shape"], ["linear_blocks"]),
        node("Reshape", ["linear_blocks", "site_rgb_shape"], ["linear"]),  # (N, 4, 3, L)
        # Camera RGB at every site (for the highlight weight) and each site's own channel.
        node("MatMul", ["rgb_to_cam", "linear"], ["camera_all"]),
        node("Clip", ["camera_all", "zero", "one"], ["camera"]),
        node("MatMul", ["mean_weights", "camera"], ["mean_scaled"]),  # (N, 4, 1, L)
        node("Add", ["mean_scaled", "knee_offset"], ["knee_distance"]),
        node("Clip", ["knee_distance", "zero", "one"], ["knee_clipped"]),
        node("Mul", ["knee_clipped", "knee_clipped"], ["weight"]),
        node("MatMul", ["own_rows", "linear"], ["own_all"]),  # (N, 4, 1, L)
        node("Clip", ["own_all", "zero", "one"], ["own"]),
        # Inverse white balance fading to gain 1 above the knee, then the final clip.
        node("Reshape", ["weight", "site_shape"], ["weight_sites"]),  # (N, 4, L)
        node("Mul", ["weight_sites", "gain_slope"], ["gain_rise"]),
        node("Add", ["gain_rise", "gain_base"], ["gain"]),
        node("Reshape", ["own", "site_shape"], ["own_sites"]),
        node("Mul", ["own_sites", "gain"], ["balanced"]),
        node("Clip", ["balanced", "zero", "one"], ["raw_flat"]),
        # Back to (N, 4, H/2, W/2).
        node("Slice", ["blocks_shape", "batch_axis", "batch_axis_end"], ["batch"]),
        node("Slice", ["blocks_shape", "spatial_axes", "spatial_end"], ["raw_hw"]),
        node("Concat", ["batch", "channels", "raw_hw"], ["raw_shape"], axis=0),
        node("Reshape", ["raw_flat", "raw_shape"], ["raw"]),
    ]
    constants["batch_axis_end"] = np.array([1], dtype=np.int64)
    graph = helper.make_graph(
        nodes, f"parametric-{camera.name}",
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT,
                                       ["batch", 4, "raw_height", "raw_width"])],
        [numpy_helper.from_array(np.asarray(value), name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="rgb2raw.nets.parametric_graph",
                              producer_version=GRAPH_VERSION)
    model.ir_version = 8  # readable by ONNX Runtime 1.10 and later
    checker.check_model(model)
    return model


__all__ = ["GRAPH_VERSION", "LUT_LEVELS", "build_graph", "linearize", "linearize_table"]
