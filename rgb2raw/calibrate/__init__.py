"""Fitting a camera's inverse pipeline from RAW + picture pairs (`rgb2raw calibrate`).

Layers, from arrays up:

* `samples` - which RAW value pairs with which picture pixel, and which observations vote;
* `fit` - the alternating least-squares fit of an `rgb2raw.inverse.InverseParams`, its
  linear-algebra steps in `solve` (and `_blas`: those small solves on one BLAS thread);
* `core` - `fit_arrays` (pairs in memory), white-level detection, lens shading;
* `align` - the global affine alignment of a picture to its RAW (cropped/zoomed ISPs);
* `data` - finding and reading pairs (challenge `.npy` crops, DNG + JPEG), frames of crops;
* `report` - scores and summaries; `run` - the whole calibration into a run folder;
* `forward` - the forward direction of an `InverseParams`, for tests and benchmarks.
"""

from __future__ import annotations

from rgb2raw.calibrate.core import detect_white, fit_arrays, fit_shading
from rgb2raw.calibrate.fit import FitOptions, InverseFit

__all__ = ["FitOptions", "InverseFit", "detect_white", "fit_arrays", "fit_shading"]
