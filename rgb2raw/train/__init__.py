"""Training reverse-ISP networks: datasets, the camera simulation, the loop, DDP and export.

Importing this package does not import torch. The modules that need it (`losses`, `loop`,
`datasets`, `optimiser`, `evaluation`, `distributed`, `publish`) import it at their top and
are themselves imported only by `rgb2raw train` and the benchmarks, so `rgb2raw --help` never
pays for torch; `check_requirements` says which extra to install before any of them loads.

Modules:
- `augment`: even-offset crops and Bayer-correct flips/rotations of (RGB, packed RAW) pairs;
- `data`: the challenge layout (scene-disjoint split, corrupt-pair policy) and synthetic
  pairs made on the fly from ordinary photos;
- `simulate`: the camera simulation (randomised unprocessing, noise, forward ISP, JPEG);
- `losses`: L1 / MSE / differentiable SSIM losses;
- `datasets`: a run's datasets from its config (all ranks agree; bad-pair policy);
- `optimiser`: learning-rate schedule, weight EMA, RNG state for exact resume;
- `evaluation`: validation with the official metrics in the scorer's units;
- `loop`: the training loop, checkpoints, CSV log, curves plot, exact resume;
- `distributed`: torchrun / DistributedDataParallel helpers;
- `publish`: ONNX export and the run folder's model card.
"""

from __future__ import annotations


def check_requirements(*, export: bool = True) -> None:
    """Raise one line naming the extra to install when torch (or, to export the result, onnx)
    is missing; call it before importing the training modules."""
    from rgb2raw._optional import require

    require("torch", purpose="training")
    if export:
        require("onnx", purpose="exporting the trained network to ONNX at the end of training")
