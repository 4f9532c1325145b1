"""The reproducible recipe of the local learned models (``learned-<camera>``), as one command.

    python -m rgb2raw.train.recipe PHOTOS RUN_DIR --camera s7 [--epochs 60] [--threads 1]

trains `rgb2raw.nets.tiny.LocalReverseISP` (the "tiny" architecture with ``local`` set) on
pairs simulated from the photos in PHOTOS with the "broad" regime of
`rgb2raw.train.simulate.REGIMES`, then exports ``RUN_DIR/model.onnx`` and its card. Every
setting is in `recipe_config`; the seed is fixed, so a rerun makes the same batches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rgb2raw.cameras import get_camera
from rgb2raw.levels import SCORER_WHITE
from rgb2raw.train.config import TrainConfig


def local_tiny_kwargs(camera: str) -> dict[str, object]:
    """`net_kwargs` of the local tiny network for `camera` (trained in the scorer's units)."""
    white = get_camera(camera).white_level
    return {"local": True, "camera": camera, "width": 32, "dilations": [1, 2, 4, 8, 1],
            "base_scale": white / SCORER_WHITE}


def recipe_config(photos: str, camera: str, *, epochs: int = 60, threads: int = 1,
                  seed: int = 0, plain: float | None = None) -> TrainConfig:
    """The recipe's training settings for `camera` on the photos folder `photos`."""
    return TrainConfig(
        camera=camera, arch="tiny", epochs=epochs, synthetic=photos,
        net_kwargs=local_tiny_kwargs(camera),
        batch_size=16, crop=128, lr=2e-3, seed=seed, val_fraction=0.0, threads=threads,
        synthetic_length=512, synthetic_regime="broad", synthetic_plain=plain,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--camera", required=True, choices=("s7", "p20"))
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain", type=float, help="share of pairs in the parametric regime "
                        "(default: the broad regime's 0.5)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    from rgb2raw.train.loop import train

    config = recipe_config(str(args.photos), args.camera, epochs=args.epochs,
                           threads=args.threads, seed=args.seed, plain=args.plain)
    train(config, args.run_dir, overwrite=args.overwrite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
