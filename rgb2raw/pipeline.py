"""The one-image engine: a model, one RGB image in, packed RAW DN out.

    rgb (H, W, 3) in [0, 1] --tiles/TTA (or the whole frame)--> backend --> v (H/2, W/2, 4)
      --[noise]--> DN = black + v * (white - black), rounded once, clipped --> uint16

A model is a `LoadedModel`: a backend plus the `ModelCard` it was opened from; the engine reads
the card's resolved contract (`ModelCard.contract`: the card's overrides over its
architecture's defaults in `rgb2raw.nets.REGISTRY`) and nothing else. `load_model` resolves a
zoo name, card, run folder, ``.onnx`` file or torch checkpoint and opens it; `infer_image`
runs one image. Many files are `rgb2raw.batch`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rgb2raw import levels, tiling
from rgb2raw.backends import Device, TorchBackend
from rgb2raw.cameras import CameraProfile
from rgb2raw.errors import Rgb2RawError
from rgb2raw.loading import BackendName, LoadedModel, open_model
from rgb2raw.nets.pixelwise import PixelwiseBackend
from rgb2raw.rgb import to_unit
from rgb2raw.shading import FrameBox
from rgb2raw.zoo import CardContract, ModelCard, resolve_model


def load_model(model: str | os.PathLike[str] | ModelCard | None = None, *,
               camera: str | None = None, arch: str | None = None,
               backend: BackendName = "auto", device: Device = "cpu", threads: int = 0,
               fp16: bool = False, providers: list[str] | None = None,
               background: bool = False) -> LoadedModel:
    """Resolve `model` (`rgb2raw.zoo.resolve_model`) and open it on `backend`.

    None means the camera's bundled default. Zoo models are fetched into the cache if needed
    (`rgb2raw.zoo.pull`, which honours RGB2RAW_OFFLINE). A torch checkpoint runs on the torch
    backend directly, or is exported to a temporary ONNX file for the ONNX backend. A missing
    optional package is reported before anything loads. `background` opens an ONNX session
    in a thread while the caller goes on (its problems surface at `model.backend.ready()`).
    """
    card = resolve_model(model, camera=camera, arch=arch)
    return open_model(card, backend=backend, device=device, threads=threads, fp16=fp16,
                      providers=providers, background=background)


@dataclass(frozen=True)
class RunSettings:
    """How to run the network on one image (not what to do with the result)."""

    #: Tile side in RGB pixels; 0 picks one from free memory; -1 runs the whole image at once.
    tile: int = 0
    #: Tile overlap in RGB pixels; None: what the model needs (its context, stitched exactly),
    #: or `tiling.DEFAULT_OVERLAP` with blending when the context is unknown.
    overlap: int | None = None
    #: Tiles per backend call.
    batch_size: int = 1
    #: Self-ensemble passes: 1 (off), 2, 4 or 8.
    tta: int = 1


def _tile_for(model: LoadedModel, settings: RunSettings, image_hw: tuple[int, int]
              ) -> int | tuple[int, int]:
    """Tile size for `plan_tiles`: 0 (whole image) for full-frame models or a tile of -1."""
    contract = model.contract
    if contract.full_frame or settings.tile < 0:
        return 0
    fixed = model.backend.fixed_hw
    if fixed is not None:  # a graph exported for one input size: tiles of exactly that size
        return int(fixed[0]), int(fixed[1])
    if settings.tile > 0:
        return settings.tile
    natural = contract.input_size
    if natural is not None and image_hw[0] <= natural[0] and image_hw[1] <= natural[1]:
        return 0  # what the authors ran in one pass (e.g. one challenge crop) stays one pass
    bytes_per_pixel = contract.bytes_per_pixel or tiling.DEFAULT_BYTES_PER_PIXEL
    side = tiling.auto_tile_size(contract.size_multiple, batch_size=settings.batch_size,
                                 bytes_per_pixel=bytes_per_pixel, workers=model.workers)
    return side if natural is None else max(side, *natural)


def _frame_runner(model: LoadedModel) -> Callable[[np.ndarray], np.ndarray] | None:
    """The architecture's whole-frame runner on the model's torch backend, if it has one."""
    spec = model.contract.frame_runner
    backend = model.backend
    if spec is None or not isinstance(backend, TorchBackend):
        return None
    from rgb2raw.nets import resolve_callable

    runner = resolve_callable(spec)
    return lambda batch: backend.run_frame(runner, batch)


def _whole_picture(model: LoadedModel, settings: RunSettings) -> bool:
    """Whether the model runs the whole decoded picture in one call (a pixel-wise backend;
    tiles would give the same numbers, test-time augmentation would not)."""
    return (isinstance(model.backend, PixelwiseBackend) and settings.tta == 1
            and model.contract.rgb_range == 1)


def predict(rgb: np.ndarray, model: LoadedModel, settings: RunSettings | None = None,
            *, on_tiles: Callable[[int], None] | None = None,
            box: FrameBox | None = None, lens_shading: bool = True) -> np.ndarray:
    """The model's packed output for an (H, W, 3) image: float32 (H/2, W/2, 4), v units.

    `rgb` is float in [0, 1], or uint8/uint16 as decoded (`rgb2raw.rgb.read_rgb` with
    ``as_float=False``): then each tile is converted on its way to the network, with the same
    arithmetic as a whole-image conversion, so the results are identical.

    A model with lens shading (`CardContract.shading`) gets it by frame position: `box` says
    where the image sits in its sensor frame; None means the image is the whole frame.
    `lens_shading` False leaves the shading out, for an image whose place in its frame is not
    known (`rgb2raw.stitch.shading_place`).
    """
    settings = settings or RunSettings()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] % 2 or rgb.shape[1] % 2:
        raise ValueError(f"expected (H, W, 3) RGB with even sides, got shape {rgb.shape}")
    contract = model.contract
    if contract.full_frame and settings.tta > 1:
        raise Rgb2RawError(None, f"model {contract.name} depends on the frame position; "
                                 "test-time augmentation is not available for it")
    scale = np.float32(contract.rgb_range)
    shading = contract.shading if lens_shading else None
    if _whole_picture(model, settings):
        # A pixel-wise graph on the whole decoded picture, shading included: no tiles needed.
        assert isinstance(model.backend, PixelwiseBackend)
        return model.backend.predict_image(rgb, shading=shading, box=box)
    runner = _frame_runner(model) if contract.full_frame else None

    def prepare(tile: np.ndarray, out: np.ndarray) -> None:
        """One (h, w, 3) tile into its (3, h, w) float32 batch slot, in [0, 1]: integer
        images are converted here, tile by tile (`rgb2raw.rgb.to_unit`)."""
        to_unit(tile.transpose(2, 0, 1), out=out)

    def run_batch(batch: np.ndarray) -> np.ndarray:
        if scale != 1:
            batch *= scale  # the batch is the engine's own buffer
        if runner is not None:
            return runner(batch)
        return model.backend.run(batch)

    def predict_one(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        plan = tiling.plan_tiles(height, width, tile=_tile_for(model, settings, (height, width)),
                                 overlap=settings.overlap, size_multiple=contract.size_multiple,
                                 context=contract.context)
        return tiling.infer_tiled(image, run_batch, plan, batch_size=settings.batch_size,
                                  workers=model.workers, on_tiles=on_tiles,
                                  prepare=None if image.dtype.kind == "f" else prepare)

    if settings.tta > 1:
        from rgb2raw.tta import predict_tta

        values = predict_tta(rgb, predict_one, settings.tta)
    else:
        values = predict_one(rgb)
    if shading is not None:
        # After the model, on the whole output: tiles and TTA never see the frame position.
        values = shading.apply(values, box)
    return values


def quantise(values: np.ndarray, contract: CardContract, *, noisy: bool = False) -> np.ndarray:
    """Model units -> uint16 DN with the model's own rounding and clipping (its contract).

    Noise may take values under the black level, so `noisy` output keeps them (floor 0).
    """
    low = 0.0 if noisy else contract.low
    return levels.quantise(values, contract.levels, low=low, high=contract.white_level,
                           rounding=contract.rounding, name=contract.name)


def predict_dn(rgb: np.ndarray, model: LoadedModel, settings: RunSettings | None = None, *,
               box: FrameBox | None = None, lens_shading: bool = True) -> np.ndarray:
    """``quantise(predict(...))``: packed uint16 DN without noise. A pixel-wise backend
    quantises each strip as it makes it (the same `quantise`), so no whole-picture float
    output is made."""
    settings = settings or RunSettings()
    contract = model.contract
    if rgb.ndim == 3 and _whole_picture(model, settings):
        assert isinstance(model.backend, PixelwiseBackend)
        return model.backend.predict_image(rgb, shading=contract.shading if lens_shading else None,
                                           box=box,
                                           quantise=lambda values: quantise(values, contract))
    return quantise(predict(rgb, model, settings, box=box, lens_shading=lens_shading), contract)


def add_camera_noise(values: np.ndarray, contract: CardContract, camera: CameraProfile, *,
                     iso: float | None, rng: np.random.Generator) -> np.ndarray:
    """Add the camera's shot/read noise to model-unit values, in the camera's linear signal.

    The model's levels and the camera's may differ (a model trained on challenge data outputs
    DN/1024 with the black offset included), so values go to DN, then to the camera's [0, 1]
    signal, get noise (`rgb2raw.isp.add_noise`), and come back.
    """
    from rgb2raw.isp import add_noise

    model_levels, camera_levels = contract.levels, levels.Levels.of(camera)
    signal = camera_levels.normalise(model_levels.to_dn(values))
    noisy = add_noise(signal, camera, iso=iso, rng=rng, clip=False)
    return model_levels.normalise(camera_levels.to_dn(noisy))


def infer_image(rgb: np.ndarray, model: LoadedModel, settings: RunSettings | None = None, *,
                camera: CameraProfile | None = None, noise: bool = False,
                iso: float | None = None, rng: np.random.Generator | None = None,
                box: FrameBox | None = None, lens_shading: bool = True) -> np.ndarray:
    """RAW for one (H, W, 3) [0, 1] RGB image: packed (H/2, W/2, 4) uint16 DN in model levels.

    `box`: where the image sits in its sensor frame (None: it is the whole frame);
    `lens_shading` False: its place is not known, so the model's lens shading is left out.
    """
    if not noise:
        return predict_dn(rgb, model, settings, box=box, lens_shading=lens_shading)
    values = predict(rgb, model, settings, box=box, lens_shading=lens_shading)
    if camera is None or rng is None:
        raise ValueError("noise needs a camera profile and a random generator")
    noisy = add_camera_noise(values, model.contract, camera, iso=iso, rng=rng)
    return quantise(noisy, model.contract, noisy=True)


__all__ = [
    "LoadedModel",
    "RunSettings",
    "add_camera_noise",
    "infer_image",
    "load_model",
    "predict",
    "predict_dn",
    "quantise",
]
