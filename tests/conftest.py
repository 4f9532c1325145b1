"""Shared fixtures: an isolated environment for every test, and tiny models made on the spot.

Nothing here reads the network or files outside the test's own temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rgb2raw import bayer
from rgb2raw.backends import FunctionBackend
from rgb2raw.loading import LoadedModel
from rgb2raw.zoo import ModelCard, ModelFile

#: The contract a function model gets unless a test says otherwise: the challenge's units
#: (black 0, white 1024), any even size, tiles blended, nearest rounding, clipped to black.
FUNCTION_DEFAULTS: dict[str, Any] = {"rgb_range": 1.0, "size_multiple": 1, "full_frame": False,
                                     "black_level": 0.0, "white_level": 1024.0}


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty model cache and no stray rgb2raw environment switches.

    Returns the cache folder (RGB2RAW_HOME).
    """
    home = tmp_path / "rgb2raw-home"
    for name in list(os.environ):
        if name.startswith("RGB2RAW_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RGB2RAW_HOME", str(home))
    return home


def function_card(name: str = "m", *, camera: str = "generic", **contract: Any) -> ModelCard:
    """A card for a model computed by a Python function (no architecture, no real file)."""
    values = {**FUNCTION_DEFAULTS, **contract}
    return ModelCard(name=name, camera=camera, arch=None, description="a function model",
                     files=(ModelFile(filename=f"{name}.onnx", format="onnx", bundled=True),),
                     **values)


def mosaic_batch(batch: np.ndarray) -> np.ndarray:
    """The naive model: sample each RGB tile onto RGGB (N, 3, H, W) -> (N, 4, H/2, W/2)."""
    return np.stack([bayer.mosaic_rgb(t.transpose(1, 2, 0)).transpose(2, 0, 1) for t in batch])


@pytest.fixture
def naive_batch() -> Callable[[np.ndarray], np.ndarray]:
    """The naive model's batch function (`mosaic_batch`), for tests that wrap it."""
    return mosaic_batch


@pytest.fixture
def make_model() -> Callable[..., LoadedModel]:
    """``make_model(function=mosaic_batch, name="m", camera="generic", **contract)``: a
    `LoadedModel` running a numpy function, with `FUNCTION_DEFAULTS` under `contract`."""

    def make(function: Callable[[np.ndarray], np.ndarray] = mosaic_batch, name: str = "m", *,
             camera: str = "generic", **contract: Any) -> LoadedModel:
        return LoadedModel(function_card(name, camera=camera, **contract),
                           FunctionBackend(function, name))

    return make


@pytest.fixture
def tiny_net() -> Callable[[int], Any]:
    """``tiny_net(seed)``: a random RGB -> packed RAW CNN (two 3x3 convs, a 2x2 stride-2 head)."""
    torch = pytest.importorskip("torch")

    def make(seed: int = 0) -> Any:
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 4, 2, stride=2), torch.nn.Sigmoid(),
        ).eval()

    return make


def calibrated_like(seed: int, *, gains: tuple[float, float, float],
                    highlight_gains: tuple[float, float, float], knee: float) -> Any:
    """A calibrated-looking `InverseParams`: a different monotone table per channel, a skewed
    matrix (seeded), the given gains and highlight behaviour, the P20's levels."""
    from rgb2raw.inverse import InverseParams, table_from_curve

    rng = np.random.default_rng(seed)
    codes = np.linspace(0, 1, 17)
    tables = np.stack([table_from_curve(codes, codes ** (1.8 + 0.4 * c) * (0.9 + 0.05 * c))
                       for c in range(3)])
    matrix = np.eye(3, dtype=np.float32) + rng.normal(0, 0.15, (3, 3)).astype(np.float32)
    return InverseParams(tables=tables, matrix=matrix, gains=np.array(gains),
                         highlight_gains=np.array(highlight_gains), knee=knee,
                         black_level=60, white_level=1020)
