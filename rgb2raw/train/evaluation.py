"""Validation during training: the official metrics in the scorer's units, over all ranks."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from rgb2raw.levels import Levels, scorer_units
from rgb2raw.train.config import TrainConfig
from rgb2raw.train.distributed import DistContext, gather_objects


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, config: TrainConfig, context: DistContext
             ) -> tuple[float, float]:
    """Mean PSNR and SSIM over `dataset` in the scorer's units (DN / 1024), all ranks.

    Each rank scores every world_size-th item; the sums are gathered. The scores are
    `rgb2raw.metrics`' (the official semantics), on predictions rounded like a submission.
    """
    from rgb2raw import metrics

    model_levels = Levels(config.black_level, config.white_level)
    was_training = model.training
    model.eval()
    totals = [0.0, 0.0, 0]
    for index in range(context.rank, len(dataset), context.world_size):
        rgb, target = dataset[index]
        output = model(torch.from_numpy(rgb)[None].to(context.device)).float().cpu().numpy()[0]
        prediction = scorer_units(model_levels.to_dn(output.transpose(1, 2, 0)))
        reference = scorer_units(model_levels.to_dn(target.transpose(1, 2, 0)))
        totals[0] += float(metrics.psnr(prediction, reference))
        totals[1] += float(metrics.ssim(prediction, reference))
        totals[2] += 1
    model.train(was_training)
    gathered = gather_objects(context, totals)
    count = sum(int(t[2]) for t in gathered)
    if count == 0:
        return math.nan, math.nan
    return sum(t[0] for t in gathered) / count, sum(t[1] for t in gathered) / count


__all__ = ["evaluate"]
