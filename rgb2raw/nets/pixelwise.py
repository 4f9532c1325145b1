"""The pixel-wise inverse ISP graph evaluated in cache-sized strips, without ONNX Runtime.

`rgb2raw.nets.parametric_graph` turns an `InverseParams` into an ONNX graph whose numbers are
`graph_constants(params)`. `PixelwiseFunction` computes the same function from the same
constants, read back from the file (`read_function`, no ``onnx`` package needed), and
`PixelwiseBackend` runs it as the engine's backend for such a model on the CPU. It exists for
speed on whole photos, which ONNX Runtime spends most of its time on as tiles of float32:

* **An 8-bit picture needs 256 table entries, not 65536.** The graph indexes each channel's
  table with ``round(clip(x) * 65535)``; for ``x = u / 255`` (`rgb2raw.rgb.to_unit`) that is
  one of 256 entries, so one 256-entry row per channel (``cv2.LUT``, cache-resident) gives the
  graph's linear values exactly. Other inputs are indexed as the graph does, into the full table.
* **Strips of the decoded image.** The picture is read as decoded (H, W, 3) in strips of
  `STRIP_ROWS` RAW rows, so every intermediate stays in cache; the matrix and the highlight
  weight's mean are `cv2.transform`s; each Bayer site then takes its own channel.
* **Lens shading in the same pass,** each strip's gains from `RadialShading.gain_map` of its
  own rows (equal to those rows of the whole frame's map), made in the worker, kept for the
  next photo of the same size.

The result equals the graph's (and `InverseParams.apply`'s, times the shading) to float32
rounding: the 3-term dot products may round differently from ONNX Runtime's MatMul, so a value
can sit one float32 step away, at most 1 DN after quantisation (the tests check both).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from rgb2raw.inverse import table_index
from rgb2raw.nets.parametric_graph import (
    GRAPH_VERSION,
    LUT_LEVELS,
    NODES,
    PRODUCER,
    SITE_CHANNELS,
    graph_constants,
    structure_constants,
)
from rgb2raw.rgb import to_unit
from rgb2raw.shading import FrameBox

if TYPE_CHECKING:
    from rgb2raw.inverse import InverseParams
    from rgb2raw.shading import RadialShading

#: RAW rows per strip: 64 RGB rows of a 4032-wide photo keep a strip's float planes (~3 MB
#: each) in the L2/L3 caches; measured fastest of 8-64 on this project's machine.
STRIP_ROWS = 32
#: Float values -> uint16 DN, elementwise (so it may run on any part of an image).
Quantiser = Callable[[np.ndarray], np.ndarray]
#: Bayer site (row, column) offsets in the packed order R, Gr, Gb, B.
SITE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))
#: Largest ``.onnx`` file worth reading back (the bundled graphs are 0.8 MB).
_MAX_FILE = 8 << 20


class PixelwiseFunction:
    """The graph's function from its constants (see the module docstring)."""

    def __init__(self, constants: dict[str, np.ndarray]) -> None:
        table = np.asarray(constants["table"], dtype=np.float32)
        self.tables = table.reshape(3, LUT_LEVELS)
        self.matrix = np.asarray(constants["rgb_to_cam"], dtype=np.float32).reshape(3, 3)
        own_rows = np.asarray(constants["own_rows"], dtype=np.float32).reshape(4, 3)
        if not np.array_equal(own_rows, self.matrix[list(SITE_CHANNELS)]):
            raise ValueError("the sites' rows are not the matrix's")
        mean = np.asarray(constants["mean_weights"], dtype=np.float32).reshape(3)
        offset = np.float32(constants["knee_offset"])
        # cv2.transform's last column is added: (mean weights . camera) + knee offset.
        self.knee_row = np.array([[*mean, offset]], dtype=np.float32)
        self.gain_base = np.asarray(constants["gain_base"], dtype=np.float32).reshape(4)
        self.gain_slope = np.asarray(constants["gain_slope"], dtype=np.float32).reshape(4)
        # The 256 entries an 8-bit image can reach, indexed exactly as the graph does.
        levels = table_index(to_unit(np.arange(256, dtype=np.uint8)))
        self.lut8 = np.stack([self.tables[c][levels] for c in range(3)], axis=-1).reshape(1, 256, 3)
        for name, expected in structure_constants().items():
            found = np.asarray(constants[name])
            if found.dtype != expected.dtype or not np.array_equal(found, expected):
                raise ValueError(f"constant {name} is not the graph's")

        self._gains = _StripGains()

    @classmethod
    def from_params(cls, params: InverseParams) -> PixelwiseFunction:
        """The function of `params`, as `build_graph(params)` computes it."""
        return cls(graph_constants(params))

    def _linear(self, strip: np.ndarray, out: np.ndarray) -> np.ndarray:
        """(h, w, 3) decoded or [0, 1] pixels -> linear RGB float32 through the tables."""
        if strip.dtype == np.uint8:
            return cv2.LUT(strip, self.lut8, dst=out)
        levels = table_index(to_unit(strip))
        for c in range(3):
            out[..., c] = self.tables[c][levels[..., c]]
        return out

    def _strip(self, rgb: np.ndarray, out: np.ndarray, start: int, stop: int,
               gains: np.ndarray | None, quantise: Quantiser | None, scratch: _Scratch) -> None:
        """RAW rows start:stop of `out` from RGB rows 2 start : 2 stop (`gains`: the lens
        shading of those rows), in the worker's own `scratch` memory."""
        rows = stop - start
        linear = self._linear(rgb[2 * start: 2 * stop], scratch.linear[: 2 * rows])
        camera = cv2.transform(linear, self.matrix, dst=scratch.camera[: 2 * rows])
        np.clip(camera, np.float32(0.0), np.float32(1.0), out=camera)
        weight = cv2.transform(camera, self.knee_row, dst=scratch.weight[: 2 * rows])
        np.clip(weight, np.float32(0.0), np.float32(1.0), out=weight)
        np.multiply(weight, weight, out=weight)
        value, packed = scratch.value[:rows], scratch.packed[:rows]
        for site, (dy, dx) in enumerate(SITE_OFFSETS):
            np.multiply(weight[dy::2, dx::2], self.gain_slope[site], out=value)
            value += self.gain_base[site]
            value *= camera[dy::2, dx::2, SITE_CHANNELS[site]]
            np.clip(value, np.float32(0.0), np.float32(1.0), out=value)
            if gains is not None:
                value *= gains[:, :, site]
            packed[:, :, site] = value
        out[start:stop] = packed if quantise is None else quantise(packed)

    def evaluate(self, rgb: np.ndarray, *, shading: RadialShading | None = None,
                 box: FrameBox | None = None, workers: int = 1,
                 quantise: Quantiser | None = None) -> np.ndarray:
        """(H, W, 3) RGB (uint8/uint16 as decoded, or float in [0, 1]), H and W even ->
        packed (H/2, W/2, 4) float32 in [0, 1] (times the lens shading of `box`, if any).

        `quantise` (values -> uint16 DN, elementwise: `rgb2raw.pipeline.quantise`) is applied
        to each strip as it is made, and the result is uint16: the whole picture's float
        values never exist. `workers` threads take strips in turn (OpenCV and numpy release
        the GIL)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] % 2 or rgb.shape[1] % 2:
            raise ValueError(f"expected (H, W, 3) RGB with even sides, got shape {rgb.shape}")
        rgb = np.ascontiguousarray(rgb)
        height, width = rgb.shape[0] // 2, rgb.shape[1] // 2
        out = np.empty((height, width, 4), dtype=np.float32 if quantise is None else np.uint16)
        frame = box or FrameBox(0, 0, height, width)
        starts = range(0, height, STRIP_ROWS)

        local = threading.local()

        def run(start: int) -> None:
            stop = min(height, start + STRIP_ROWS)
            gains = None if shading is None else self._gains.get(shading, frame, start, stop, width)
            scratch = getattr(local, "scratch", None)
            if scratch is None:
                scratch = local.scratch = _Scratch(min(height, STRIP_ROWS), width)
            self._strip(rgb, out, start, stop, gains, quantise, scratch)

        workers = max(1, min(int(workers), len(starts)))
        if workers == 1:
            for start in starts:
                run(start)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="rgb2raw-strip") as pool:
                for _ in pool.map(run, starts):  # re-raises a strip's error
                    pass
        return out


class _Scratch:
    """One worker's strip memory, reused strip after strip: fresh multi-megabyte arrays per
    strip cost page faults (tripling the time when glibc hands the memory back each time)."""

    def __init__(self, rows: int, width: int) -> None:
        self.linear = np.empty((2 * rows, 2 * width, 3), dtype=np.float32)
        self.camera = np.empty((2 * rows, 2 * width, 3), dtype=np.float32)
        self.weight = np.empty((2 * rows, 2 * width), dtype=np.float32)
        self.value = np.empty((rows, width), dtype=np.float32)
        self.packed = np.empty((rows, width, 4), dtype=np.float32)


class _StripGains:
    """Lens-shading gains strip by strip, kept for the last picture placement.

    `RadialShading.gain_map` of a region equals that region of the whole frame's map, so each
    strip's gains come from its own small map, made by the worker that needs it (in cache,
    in parallel); a folder of same-sized photos computes them once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._strips: dict[int, np.ndarray] = {}

    def get(self, shading: RadialShading, frame: FrameBox, start: int, stop: int,
            width: int) -> np.ndarray:
        key = (shading.coefficients.tobytes(), frame, width)
        with self._lock:
            if key != self._key:
                self._key, self._strips = key, {}
            found = self._strips.get(start)
        if found is None or found.shape[0] != stop - start:
            box = FrameBox(frame.top + start, frame.left, frame.frame_height, frame.frame_width)
            found = shading.gain_map((stop - start, width), box)
            with self._lock:
                if key == self._key:
                    self._strips[start] = found
        return found


def read_function(path: str | os.PathLike[str]) -> PixelwiseFunction | None:
    """The function of a graph written by `parametric_graph.build_graph`, read from `path`;
    None for any other file (or an unreadable one: ONNX Runtime then reports it)."""
    from rgb2raw.nets._onnx_wire import read_model

    try:
        path = Path(path)
        if path.stat().st_size > _MAX_FILE:
            return None
        model = read_model(path.read_bytes())
        if (model.producer_name, model.producer_version) != (PRODUCER, GRAPH_VERSION):
            return None
        nodes = [(n.op_type, n.inputs, n.outputs, n.attributes) for n in model.nodes]
        if nodes != [(op, i, o, a) for op, i, o, a in NODES]:
            return None
        return PixelwiseFunction(model.initializers)
    except (OSError, ValueError, KeyError, TypeError):
        return None


class PixelwiseBackend:
    """A `PixelwiseFunction` as an engine backend on the CPU.

    `predict_image` runs a whole decoded picture (what `rgb2raw.pipeline.predict` uses when it
    can); `run` takes the engine's (N, 3, H, W) float32 tiles like any backend (test-time
    augmentation goes that way).
    """

    fixed_hw: tuple[int, int] | None = None

    def __init__(self, function: PixelwiseFunction, *, workers: int = 1,
                 name: str = "pixelwise") -> None:
        self.function = function
        self.workers = max(1, int(workers))
        self.name = name
        self.description = "pixelwise:cpu"

    def ready(self) -> None:
        """Ready once built."""

    def predict_image(self, rgb: np.ndarray, *, shading: RadialShading | None = None,
                      box: FrameBox | None = None, quantise: Quantiser | None = None
                      ) -> np.ndarray:
        """`PixelwiseFunction.evaluate` on this backend's threads."""
        return self.function.evaluate(rgb, shading=shading, box=box, workers=self.workers,
                                      quantise=quantise)

    def run(self, batch: np.ndarray) -> np.ndarray:
        from rgb2raw.backends import _check_batch, _check_output

        batch = _check_batch(batch)
        outputs = [self.function.evaluate(image.transpose(1, 2, 0)).transpose(2, 0, 1)
                   for image in batch]
        return _check_output(np.stack(outputs), batch, self.name)


__all__ = ["STRIP_ROWS", "PixelwiseBackend", "PixelwiseFunction", "Quantiser", "read_function"]
