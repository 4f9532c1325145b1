"""Training reverse-ISP networks: datasets, the camera simulation, the loop, DDP and export.

Importing this package does not import torch. The modules that need it (`losses`, `loop`,
`distributed`, `publish`) import it at their top and are themselves imported only by
`rgb2raw train` and the benchmarks, so `rgb2raw --help` never pays for torch.

Modules:
- `augment`: even-offset crops and Bayer-correct flips/rotations of (RGB, packed RAW) pairs;
- `data`: the challenge layout (scene-disjoint split, corrupt-pair policy) and synthetic
  pairs made on the fly from ordinary photos;
- `simulate`: the camera simulation (randomised unprocessing, noise, forward ISP, JPEG);
- `losses`: L1 / MSE / differentiable SSIM losses;
- `loop`: the training loop, checkpoints, CSV log, curves plot, exact resume;
- `distributed`: torchrun / DistributedDataParallel helpers;
- `publish`: ONNX export and the run folder's model card.
"""
