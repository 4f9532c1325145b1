"""`TrainConfig`: every setting that defines a training run, stored inside its checkpoints.

A config holds plain values only (str, int, float, bool, None, lists and dicts of them), so a
checkpoint ``{"state_dict": ..., "config": config.to_dict()}`` loads with
``torch.load(..., weights_only=True)`` and rebuilds its network with `build_model`.
Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from rgb2raw.errors import InvalidParameter
from rgb2raw.levels import SCORER
from rgb2raw.nets import TRAINABLE

BadPairPolicy = Literal["skip", "stop"]
#: The architectures `rgb2raw train` trains (the registry's trainable ones).
TRAIN_ARCHS: tuple[str, ...] = TRAINABLE
# The scorer's units: the network predicts DN / 1024 (black 0, white 1024) unless an --init
# model says otherwise; an ONNX file with these units needs no card to be used correctly.
SCORER_LEVELS = (SCORER.black, SCORER.white)


@dataclass
class TrainConfig:
    """One run's settings; the CLI options map onto these fields one to one."""

    camera: str
    arch: str
    epochs: int
    data: str | None = None  # challenge-layout folder
    synthetic: str | None = None  # folder of ordinary photos
    init: str | None = None  # zoo model name or checkpoint to start from
    net_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. smaller widths
    batch_size: int = 8
    crop: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: float = 0.05  # fraction of all steps with a linear warm-up
    min_lr_ratio: float = 0.01  # cosine decays to lr * this
    loss: str = "l1:1,ssim:0.5"
    ema: float = 0.0  # EMA decay of the weights (0 = off), e.g. 0.999
    amp: bool = True  # mixed precision, used on CUDA only
    seed: int = 0
    val_fraction: float = 0.1
    on_bad_pair: BadPairPolicy = "skip"
    workers: int = 0
    device: str = "auto"
    threads: int = 0  # torch CPU threads per process (0: torch's default)
    black_level: float = SCORER_LEVELS[0]
    white_level: float = SCORER_LEVELS[1]
    synthetic_length: int = 256  # synthetic pairs per epoch
    synthetic_val: int = 32  # fixed synthetic validation pairs
    synthetic_regime: str = "default"  # simulation ranges: a name in train.simulate.REGIMES
    synthetic_plain: float | None = None  # overrides the regime's plain_probability if set
    max_photo_side: int = 1024
    cache: bool = False  # keep decoded challenge pairs in memory
    checkpoint_every: int = 0  # also save last.pt every N steps (0: once per epoch)
    val_every: int = 1  # validate every N epochs (and after the last)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config, ignoring fields this version does not know (older runs)."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def check(self) -> None:
        """Raise InvalidParameter (a ValueError) for settings that cannot work, before any data is read."""
        if self.arch not in TRAIN_ARCHS:
            raise InvalidParameter("arch", f"unknown architecture {self.arch!r}; choose {', '.join(TRAIN_ARCHS)}")
        if (self.data is None) == (self.synthetic is None):
            raise InvalidParameter("data", "give exactly one data source: data (challenge layout) or synthetic (photos)")
        if self.epochs < 1 or self.batch_size < 1:
            raise InvalidParameter("batch_size" if self.epochs >= 1 else "epochs", "epochs and batch size must be at least 1")
        if self.crop < 2 or self.crop % 2:
            raise InvalidParameter("crop", f"crop must be a positive even number, got {self.crop}")
        if not 0 <= self.val_fraction < 1:
            raise InvalidParameter("val_fraction", f"val fraction must be in [0, 1), got {self.val_fraction}")
        if not 0 <= self.ema < 1:
            raise InvalidParameter("ema", f"ema decay must be in [0, 1), got {self.ema}")
        if not 0 <= self.warmup < 1:
            raise InvalidParameter("warmup", f"warmup fraction must be in [0, 1), got {self.warmup}")
        if self.on_bad_pair not in ("skip", "stop"):
            raise InvalidParameter("on_bad_pair", f"on-bad-pair must be skip or stop, got {self.on_bad_pair!r}")
        from rgb2raw.train.simulate import REGIMES

        if self.synthetic_regime not in REGIMES:
            raise InvalidParameter("synthetic_regime", f"unknown synthetic regime {self.synthetic_regime!r}; choose "
                             f"{', '.join(REGIMES)}")
        if self.synthetic_plain is not None and not 0 <= self.synthetic_plain <= 1:
            raise InvalidParameter("synthetic_plain", f"synthetic plain share must be in [0, 1], got {self.synthetic_plain}")
        if self.white_level <= self.black_level:
            raise InvalidParameter("white_level", "white level must be above black level")
