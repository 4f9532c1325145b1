"""Any pixel-wise inverse ISP (`rgb2raw.inverse.InverseParams`) as a fast ONNX graph, node by node.

The uncalibrated formula (Brooks et al.'s unprocessing, whose exact torch reference is
`rgb2raw.nets.parametric.ParametricInverseISP`) and every calibrated camera are instances of
one function; this graph computes it with constants taken from the parameters. Exported from
torch, the formula's graph evaluated asin, sin and a power at every pixel and took 0.5 s for a
12 MP photo on two CPU cores; this one takes about a tenth of that:

* **Linearisation by table.** Each channel's inverse tone curve and gamma is one 65536-entry
  table, indexed by ``round(clip(x, 0, 1) * 65535)`` plus the channel's offset into one flat
  row (a GatherElements, which ONNX Runtime runs several times faster than a Gather). For 8-
  and 16-bit images every input is on that grid, so the table is exact to float32 rounding;
  any other float input moves by at most half a 16-bit step.
* **Mosaic first.** SpaceToDepth turns the picture into its 2x2 blocks, (N, 12, H/2, W/2), in
  one pass; every later step then works on block planes. Each Bayer site keeps one colour, so
  the site's own RAW channel needs one row of the colour matrix (3 multiply-adds); all three
  rows (9) are needed only for the highlight weight, which uses the mean camera RGB.
* **Highlight fade as one multiply-add.** The per-site gain is ``g + w * (h - g)`` with the
  site's gain ``g``, its highlight gain ``h`` and the weight ``w`` in [0, 1].

Contract: ``rgb`` (N, 3, H, W) float32 in [0, 1], H and W even -> ``raw`` (N, 4, H/2, W/2) in
[0, 1], channels R, Gr, Gb, B, equal to `InverseParams.apply` to float32 rounding. The output
depends on each 2x2 block alone, so its model card says ``context: 0``. Building it needs the
``onnx`` package; running it needs only ONNX Runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rgb2raw.cameras import CameraProfile
from rgb2raw.inverse import TABLE_LEVELS, InverseParams

if TYPE_CHECKING:
    from onnx import ModelProto

#: Table size: one entry per 16-bit level, so 8- and 16-bit inputs hit entries exactly.
LUT_LEVELS = TABLE_LEVELS
#: Opset of the graph (GatherElements, SpaceToDepth and Clip with inputs need <= 13).
OPSET = 17
#: Bumped whenever the graph's structure changes; stored as the producer version.
GRAPH_VERSION = "3"
#: The producer name the graph records (how `rgb2raw.nets.pixelwise` recognises it).
PRODUCER = "rgb2raw.nets.parametric_graph"
#: Channel of each Bayer site, in the packed order R, Gr, Gb, B.
SITE_CHANNELS = (0, 1, 1, 2)


#: The graph, node by node: (operator, inputs, outputs, attributes). `rgb2raw.nets.pixelwise`
#: reads a file back only when its nodes are exactly these.
NODES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], dict[str, int]], ...] = (
    # (N, 3, H, W) -> (N, 12, H/2, W/2): channel (2 * by + bx) * 3 + c of each 2x2 block.
    ("SpaceToDepth", ("rgb",), ("blocks",), {"blocksize": 2}),
    # Linearise through the table.
    ("Clip", ("blocks", "zero", "one"), ("clipped",), {}),
    ("Mul", ("clipped", "levels"), ("scaled",), {}),
    ("Add", ("scaled", "half"), ("rounded",), {}),
    ("Cast", ("rounded",), ("level",), {"to": 6}),  # to int32; truncates: round half up
    ("Add", ("level", "table_offsets"), ("table_index",), {}),
    ("Reshape", ("table_index", "table_row"), ("level_row",), {}),
    ("GatherElements", ("table", "level_row"), ("linear_row",), {"axis": 1}),
    ("Shape", ("blocks",), ("blocks_shape",), {}),
    ("Reshape", ("linear_row", "blocks_shape"), ("linear_blocks",), {}),
    ("Reshape", ("linear_blocks", "site_rgb_shape"), ("linear",), {}),  # (N, 4, 3, L)
    # Camera RGB at every site (for the highlight weight) and each site's own channel.
    ("MatMul", ("rgb_to_cam", "linear"), ("camera_all",), {}),
    ("Clip", ("camera_all", "zero", "one"), ("camera",), {}),
    ("MatMul", ("mean_weights", "camera"), ("mean_scaled",), {}),  # (N, 4, 1, L)
    ("Add", ("mean_scaled", "knee_offset"), ("knee_distance",), {}),
    ("Clip", ("knee_distance", "zero", "one"), ("knee_clipped",), {}),
    ("Mul", ("knee_clipped", "knee_clipped"), ("weight",), {}),
    ("MatMul", ("own_rows", "linear"), ("own_all",), {}),  # (N, 4, 1, L)
    ("Clip", ("own_all", "zero", "one"), ("own",), {}),
    # Inverse white balance fading to gain 1 above the knee, then the final clip.
    ("Reshape", ("weight", "site_shape"), ("weight_sites",), {}),  # (N, 4, L)
    ("Mul", ("weight_sites", "gain_slope"), ("gain_rise",), {}),
    ("Add", ("gain_rise", "gain_base"), ("gain",), {}),
    ("Reshape", ("own", "site_shape"), ("own_sites",), {}),
    ("Mul", ("own_sites", "gain"), ("balanced",), {}),
    ("Clip", ("balanced", "zero", "one"), ("raw_flat",), {}),
    # Back to (N, 4, H/2, W/2).
    ("Slice", ("blocks_shape", "batch_axis", "batch_axis_end"), ("batch",), {}),
    ("Slice", ("blocks_shape", "spatial_axes", "spatial_end"), ("raw_hw",), {}),
    ("Concat", ("batch", "channels", "raw_hw"), ("raw_shape",), {"axis": 0}),
    ("Reshape", ("raw_flat", "raw_shape"), ("raw",), {}),
)


#: The initialisers in file order.
CONSTANT_ORDER = ("zero", "one", "levels", "half", "table", "table_offsets", "table_row",
                  "site_rgb_shape", "site_shape", "rgb_to_cam", "own_rows", "mean_weights",
                  "knee_offset", "gain_base", "gain_slope", "batch_axis", "spatial_axes",
                  "spatial_end", "channels", "batch_axis_end")


def structure_constants() -> dict[str, np.ndarray]:
    """The constants every such graph has, whatever its parameters (shapes, offsets, 0, 1)."""
    # SpaceToDepth orders block channels as (2 * by + bx) * 3 + c: channel c's table starts at
    # c * LUT_LEVELS in the one flat table row.
    table_offsets = (np.arange(12) % 3 * LUT_LEVELS).astype(np.int32).reshape(1, 12, 1, 1)
    constants = {
        "zero": np.float32(0.0),
        "one": np.float32(1.0),
        "levels": np.float32(LUT_LEVELS - 1),
        "half": np.float32(0.5),
        "table_offsets": table_offsets,
        "table_row": np.array([1, -1], dtype=np.int64),
        "site_rgb_shape": np.array([0, 4, 3, -1], dtype=np.int64),
        "site_shape": np.array([0, 4, -1], dtype=np.int64),
        "batch_axis": np.array([0], dtype=np.int64),
        "spatial_axes": np.array([2], dtype=np.int64),
        "spatial_end": np.array([4], dtype=np.int64),
        "channels": np.array([4], dtype=np.int64),
        "batch_axis_end": np.array([1], dtype=np.int64),
    }
    return {name: np.asarray(value) for name, value in constants.items()}


def graph_constants(params: InverseParams) -> dict[str, np.ndarray]:
    """The graph's constants (its initialisers, in file order), computed from `params`: the
    one place the parameters become numbers of the graph."""
    matrix = np.asarray(params.matrix, dtype=np.float32)
    sites = list(SITE_CHANNELS)
    site_gains = params.gains[sites].reshape(4, 1)
    site_highlight = params.highlight_gains[sites].reshape(4, 1)
    knee_scale = 1.0 / (1.0 - params.knee)
    constants = {
        **structure_constants(),
        "table": params.tables.reshape(1, 3 * LUT_LEVELS),
        "rgb_to_cam": matrix,
        # One matrix row per site: the site's own camera channel.
        "own_rows": matrix[sites].reshape(4, 1, 3),
        # Highlight weight before its clip: (mean(camera RGB) - knee) / (1 - knee).
        "mean_weights": np.full((1, 3), knee_scale / 3.0, dtype=np.float32),
        "knee_offset": np.float32(-params.knee * knee_scale),
        "gain_base": site_gains,
        "gain_slope": (site_highlight - site_gains).astype(np.float32),
    }
    return {name: np.asarray(constants[name]) for name in CONSTANT_ORDER}


def build_graph(params: InverseParams | CameraProfile, name: str | None = None) -> ModelProto:
    """The ONNX model of a pixel-wise inverse ISP (see the module docstring).

    `params` is an `InverseParams` (a calibrated camera, say) or a camera profile, which means
    its uncalibrated formula, `InverseParams.from_camera(camera)`. `name` names the graph.
    """
    from onnx import TensorProto, checker, helper, numpy_helper

    if isinstance(params, CameraProfile):
        name = name or f"parametric-{params.name}"
        params = InverseParams.from_camera(params)
    nodes = [helper.make_node(op, list(inputs), list(outputs), **attributes)  # type: ignore[arg-type]
             for op, inputs, outputs, attributes in NODES]
    graph = helper.make_graph(
        nodes, name or "inverse-isp",
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT,
                                       ["batch", 4, "raw_height", "raw_width"])],
        [numpy_helper.from_array(value, key) for key, value in graph_constants(params).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER, producer_version=GRAPH_VERSION)
    model.ir_version = 8  # readable by ONNX Runtime 1.10 and later
    checker.check_model(model)
    return model


__all__ = ["GRAPH_VERSION", "LUT_LEVELS", "NODES", "PRODUCER", "SITE_CHANNELS", "build_graph",
           "graph_constants", "structure_constants"]
