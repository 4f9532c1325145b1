"""`GlobalReverseISP` as a fast ONNX graph: exported per-image corrections + the pixel-wise part
written node by node.

The exported torch graph of the whole network spends most of a 12 MP frame on a 6-D transpose
(`pixel_unshuffle`) and on 64-bit table indices. Here only the per-image part (statistics of a
point sample, the MLP, the corrected tables and gains: 1/16 of the pixels and the 65536-entry
tables) comes from the torch exporter; the per-pixel part is the calibrated inverse's fast
layout (`rgb2raw.nets.parametric_graph`: SpaceToDepth, 32-bit indices into one flat table row,
one matrix row per Bayer site, the highlight fade as one multiply-add), fed by that image's
tables and gains instead of constants. Same contract and same numbers as the torch module (to
float32 rounding): ``rgb`` (N, 3, H, W) -> ``raw`` (N, 4, H/2, W/2).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rgb2raw.nets.globalnet import LEVELS, SITE_CHANNELS, GlobalReverseISP

if TYPE_CHECKING:
    from onnx import ModelProto

OPSET = 17
GRAPH_VERSION = "1"


def _corrections_graph(model: GlobalReverseISP) -> ModelProto:
    """The exported per-image part: rgb -> table_row (N, 3 * 65536), gain_base and
    gain_slope (N, 4, 1) per Bayer site."""
    import onnx
    import torch
    from torch import nn

    class Corrections(nn.Module):
        def __init__(self, net: GlobalReverseISP) -> None:
            super().__init__()
            self.net = net

        def forward(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            tables, gains, highlight = self.net.corrections(rgb)
            sites = list(SITE_CHANNELS)
            base = gains[:, sites].unsqueeze(2)
            slope = (highlight - gains)[:, sites].unsqueeze(2)
            return tables.reshape(rgb.shape[0], 3 * LEVELS), base, slope

    wrapper = Corrections(model).eval()
    with tempfile.TemporaryDirectory(prefix="rgb2raw-export-") as scratch:
        path = Path(scratch) / "corrections.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                wrapper, (torch.rand(1, 3, 64, 64),), str(path), input_names=["rgb"],
                output_names=["table_row", "gain_base", "gain_slope"],
                dynamic_axes={"rgb": {0: "batch", 2: "height", 3: "width"},
                              "table_row": {0: "batch"}, "gain_base": {0: "batch"},
                              "gain_slope": {0: "batch"}},
                opset_version=OPSET, dynamo=False)
        return onnx.load(str(path))


def build_graph(model: GlobalReverseISP, name: str = "global-reverse-isp") -> ModelProto:
    """The whole network as one ONNX model (see the module docstring)."""
    from onnx import TensorProto, checker, helper, numpy_helper

    corrections = _corrections_graph(model)
    matrix = model.matrix.detach().numpy().astype(np.float32)
    sites = list(SITE_CHANNELS)
    knee_scale = 1.0 / (1.0 - model.knee)
    # SpaceToDepth orders block channels as (2 * by + bx) * 3 + c: channel c's table starts at
    # c * LEVELS in each image's flat table row.
    prefix = "px_"
    constants = {
        "zero": np.float32(0.0), "one": np.float32(1.0), "levels": np.float32(LEVELS - 1),
        "half": np.float32(0.5),
        "table_offsets": (np.arange(12) % 3 * LEVELS).astype(np.int32).reshape(1, 12, 1, 1),
        "index_row": np.array([0, -1], dtype=np.int64),
        "site_rgb_shape": np.array([0, 4, 3, -1], dtype=np.int64),
        "site_shape": np.array([0, 4, -1], dtype=np.int64),
        "rgb_to_cam": matrix,
        "own_rows": matrix[sites].reshape(4, 1, 3),
        "mean_weights": np.full((1, 3), knee_scale / 3.0, dtype=np.float32),
        "knee_offset": np.float32(-model.knee * knee_scale),
        "batch_axis": np.array([0], dtype=np.int64),
        "batch_axis_end": np.array([1], dtype=np.int64),
        "spatial_axes": np.array([2], dtype=np.int64),
        "spatial_end": np.array([4], dtype=np.int64),
        "channels": np.array([4], dtype=np.int64),
    }

    def c(key: str) -> str:
        return prefix + key

    node = helper.make_node
    nodes = [
        node("SpaceToDepth", ["rgb"], [c("blocks")], blocksize=2),
        node("Clip", [c("blocks"), c("zero"), c("one")], [c("clipped")]),
        node("Mul", [c("clipped"), c("levels")], [c("scaled")]),
        node("Add", [c("scaled"), c("half")], [c("rounded")]),
        node("Cast", [c("rounded")], [c("level")], to=TensorProto.INT32),  # round half up
        node("Add", [c("level"), c("table_offsets")], [c("table_index")]),
        node("Reshape", [c("table_index"), c("index_row")], [c("level_row")]),
        node("GatherElements", ["table_row", c("level_row")], [c("linear_row")], axis=1),
        node("Shape", [c("blocks")], [c("blocks_shape")]),
        node("Reshape", [c("linear_row"), c("blocks_shape")], [c("linear_blocks")]),
        node("Reshape", [c("linear_blocks"), c("site_rgb_shape")], [c("linear")]),
        node("MatMul", [c("rgb_to_cam"), c("linear")], [c("camera_all")]),
        node("Clip", [c("camera_all"), c("zero"), c("one")], [c("camera")]),
        node("MatMul", [c("mean_weights"), c("camera")], [c("mean_scaled")]),
        node("Add", [c("mean_scaled"), c("knee_offset")], [c("knee_distance")]),
        node("Clip", [c("knee_distance"), c("zero"), c("one")], [c("knee_clipped")]),
        node("Mul", [c("knee_clipped"), c("knee_clipped")], [c("weight")]),
        node("MatMul", [c("own_rows"), c("linear")], [c("own_all")]),
        node("Clip", [c("own_all"), c("zero"), c("one")], [c("own")]),
        node("Reshape", [c("weight"), c("site_shape")], [c("weight_sites")]),
        node("Mul", [c("weight_sites"), "gain_slope"], [c("gain_rise")]),
        node("Add", [c("gain_rise"), "gain_base"], [c("gain")]),
        node("Reshape", [c("own"), c("site_shape")], [c("own_sites")]),
        node("Mul", [c("own_sites"), c("gain")], [c("balanced")]),
        node("Clip", [c("balanced"), c("zero"), c("one")], [c("raw_flat")]),
        node("Slice", [c("blocks_shape"), c("batch_axis"), c("batch_axis_end")], [c("batch")]),
        node("Slice", [c("blocks_shape"), c("spatial_axes"), c("spatial_end")], [c("raw_hw")]),
        node("Concat", [c("batch"), c("channels"), c("raw_hw")], [c("raw_shape")], axis=0),
        node("Reshape", [c("raw_flat"), c("raw_shape")], ["raw"]),
    ]
    graph = corrections.graph
    initializers = list(graph.initializer) + [
        numpy_helper.from_array(np.asarray(value), c(key)) for key, value in constants.items()]
    merged = helper.make_graph(
        list(graph.node) + nodes, name,
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT,
                                       ["batch", 4, "raw_height", "raw_width"])],
        initializers)
    result = helper.make_model(merged, opset_imports=[helper.make_opsetid("", OPSET)],
                               producer_name="rgb2raw.nets.globalnet_graph",
                               producer_version=GRAPH_VERSION)
    result.ir_version = 8
    checker.check_model(result)
    return result


def export_graph(model: GlobalReverseISP, path: str | os.PathLike[str]) -> Path:
    """Write `build_graph(model)` to `path` atomically; returns the path."""
    from rgb2raw.nets.export import evaluating, publish

    with evaluating(model):
        data = build_graph(model).SerializeToString()
    return publish(data, path)


__all__ = ["GRAPH_VERSION", "build_graph", "export_graph"]
