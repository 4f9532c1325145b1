"""A run's datasets, built from its config: challenge pairs or pairs simulated from photos.

Under DDP every rank checks its share of the files and the verdicts are gathered, so all
ranks agree on the same dataset. Bad pairs are reported through `on_bad_pair` (rank 0 passes
the CLI's callback) and, with the ``stop`` policy, end the run before any training.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from rgb2raw.cameras import get_camera
from rgb2raw.errors import Rgb2RawError
from rgb2raw.levels import Levels
from rgb2raw.train import data as train_data
from rgb2raw.train.config import TrainConfig
from rgb2raw.train.distributed import DistContext, gather_objects
from rgb2raw.train.simulate import REGIMES

log = logging.getLogger("rgb2raw.train")


def _report_bad(config: TrainConfig, bad: list[train_data.BadPair],
                on_bad_pair: Callable[[train_data.BadPair], None] | None) -> None:
    """Apply the bad-pair policy: report every bad pair; stop raises on the first."""
    for item in bad:
        log.warning("%s: %s (%s)", item.path, item.problem,
                    "stopping" if config.on_bad_pair == "stop" else "skipped")
        if on_bad_pair is not None:
            on_bad_pair(item)
    if bad and config.on_bad_pair == "stop":
        first = bad[0]
        raise Rgb2RawError(first.path, f"{first.problem} (bad training pair; use "
                                       "--on-bad-pair skip to leave it out)")


def prepare_data(config: TrainConfig, context: DistContext, size_multiple: int,
                 on_bad_pair: Callable[[train_data.BadPair], None] | None = None
                 ) -> tuple[Any, Any, list[train_data.BadPair]]:
    """Build (train dataset, validation dataset or None, bad pairs) from the config.

    Under DDP every rank checks its share of the files and the verdicts are gathered, so all
    ranks agree on the same dataset.
    """
    levels = Levels(config.black_level, config.white_level)
    min_side = config.crop + 2
    if config.data is not None:
        pairs, bad = train_data.find_pairs(config.data)
        mine = list(range(context.rank, len(pairs), context.world_size))
        good_local, bad_local = train_data.scan_pairs([pairs[i] for i in mine], min_side=min_side)
        verdicts = gather_objects(context, ([mine[i] for i in good_local], bad_local))
        good = sorted(i for indices, _ in verdicts for i in indices)
        bad = bad + sorted((b for _, found in verdicts for b in found), key=lambda b: str(b.path))
        _report_bad(config, bad, on_bad_pair)
        usable = [pairs[i] for i in good]
        if not usable:
            raise Rgb2RawError(config.data, "no usable training pairs")
        train_pairs, val_pairs = train_data.split_by_scene(usable, config.val_fraction, config.seed)
        train_set = train_data.ChallengeDataset(train_pairs, levels, crop=config.crop,
                                                seed=config.seed, cache=config.cache)
        val_set = train_data.ChallengeDataset(val_pairs, levels, crop=None, seed=config.seed,
                                              size_multiple=size_multiple, cache=True
                                              ) if val_pairs else None
        return train_set, val_set, bad
    assert config.synthetic is not None
    camera = get_camera(config.camera)
    photos = train_data.find_photos(config.synthetic)
    train_paths, val_paths = train_data.split_photos(photos, config.val_fraction, config.seed)
    train_images, _, bad = train_data.scan_photos(train_paths, max_side=config.max_photo_side,
                                                  min_side=config.crop)
    val_images, _, bad_val = train_data.scan_photos(val_paths, max_side=config.max_photo_side,
                                                    min_side=config.crop)
    bad += bad_val
    _report_bad(config, bad, on_bad_pair)
    if not train_images:
        raise Rgb2RawError(config.synthetic, "no usable training photos")
    ranges = REGIMES[config.synthetic_regime]
    if config.synthetic_plain is not None:
        ranges = dataclasses.replace(ranges, plain_probability=config.synthetic_plain)
    synthetic_train = train_data.SyntheticDataset(train_images, camera, levels, crop=config.crop,
                                                  length=config.synthetic_length, seed=config.seed,
                                                  ranges=ranges)
    val_crop = config.crop - config.crop % max(2, size_multiple)
    synthetic_val = train_data.SyntheticDataset(val_images, camera, levels, crop=val_crop,
                                                length=config.synthetic_val, seed=config.seed + 1,
                                                fixed=True, ranges=ranges) if val_images else None
    return synthetic_train, synthetic_val, bad


# -------------------------------------------------------------------------------- the loop


__all__ = ["prepare_data"]
