"""The reproducible recipe of the learned offline models (``learned-<camera>``), as one command.

    python -m rgb2raw.train.learned_recipe PHOTOS RUN_DIR --camera s7 [--minutes 15]
    python -m rgb2raw.train.learned_recipe PHOTOS RUN_DIR --camera s7 --bundle models \
        --quality benchmarks/results/quality.json      # copy a run into models/

PHOTOS is the folder `benchmarks/fetch_photos.py` writes (its ``manifest.json`` says each
photo's licence and split); only ``train`` photos with a licence are used. A fixed bank of
pairs is simulated once (`rgb2raw.train.isp_families`, centred on the bundled
``calibrated-<camera>``, the families in `TRAIN_FAMILIES` only: the held-out families are never
simulated here), then `GlobalReverseISP` (starting as ``calibrated-<camera>`` itself) is trained
on it with AdamW and a cosine schedule, in the calibrated camera's RAW levels with its lens
shading divided out (the card carries the same shading, which the engine applies). ``RUN_DIR`` gets ``best.pt`` (a
checkpoint `rgb2raw.train.publish` reads), ``model.onnx`` and ``model.json`` (a card that says
``full_frame``), and ``recipe.json`` (the settings, the photos and their licences, the loss).
Every random choice comes from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rgb2raw._atomic import atomic_write
from rgb2raw.rgb import read_rgb
from rgb2raw.train.isp_families import (
    REFERENCE_GREEN,
    TRAIN_FAMILIES,
    SensorRanges,
    centre,
    flat_target,
    random_view,
    simulate,
)
from rgb2raw.zoo.cards import ModelCard, ModelFile, Reported

MANIFEST = "manifest.json"


@dataclass
class Recipe:
    """Every setting of one learned-model run."""

    camera: str
    families: list[str] = field(default_factory=lambda: list(TRAIN_FAMILIES))
    views_per_photo: int = 48
    view: tuple[int, int] = (192, 256)
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-5
    minutes: float = 12.0  # training time budget (the bank is made before)
    max_steps: int = 4000
    seed: int = 0
    threads: int = 1
    net_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Overrides of `isp_families.SensorRanges` for the training bank (lists for tuples).
    sensor: dict[str, Any] = field(default_factory=dict)


def photo_entries(photos_dir: Path, split: str = "train") -> list[dict[str, Any]]:
    """The manifest's licensed photos of one split (``train`` or ``test``), in its order."""
    manifest = json.loads((photos_dir / MANIFEST).read_text(encoding="utf-8"))
    return [e for e in manifest["photos"] if e["split"] == split and e.get("license")]


def make_bank(photos: list[np.ndarray], recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """(JPEGs uint8 (N, H, W, 3), RAW normalised float32 (N, H/2, W/2, 4)) of the bank."""
    where = centre(recipe.camera)
    overrides: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                 for k, v in recipe.sensor.items()}
    sensor = SensorRanges(**overrides)
    rng = np.random.default_rng([recipe.seed, 1])
    jpegs, raws = [], []
    for index in range(len(photos) * recipe.views_per_photo):
        photo = photos[index % len(photos)]
        family = recipe.families[(index // len(photos)) % len(recipe.families)]
        view = random_view(photo, rng, recipe.view)
        if rng.uniform() < 0.5:  # portrait views too
            view = np.ascontiguousarray(random_view(photo, rng, recipe.view[::-1]).transpose(1, 0, 2))
        jpeg, raw_dn, _ = simulate(view, recipe.camera, family, rng, sensor, where=where)
        jpegs.append(jpeg)
        raws.append(flat_target(raw_dn, where))
    return np.stack(jpegs), np.stack(raws)


def net_kwargs(recipe: Recipe) -> dict[str, Any]:
    return {"camera": recipe.camera, **recipe.net_kwargs}


def train(photos_dir: Path, run_dir: Path, recipe: Recipe, *, log: Any = sys.stderr) -> dict[str, Any]:
    """Simulate the bank, train, and write the run folder; returns the run's summary."""
    import torch

    from rgb2raw.train.checkpoint import build_model, save_checkpoint

    params = centre(recipe.camera).params
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    entries = photo_entries(photos_dir, "train")
    photos = [np.rint(read_rgb(photos_dir / e["file"]) * 255.0).astype(np.uint8) for e in entries]
    started = time.perf_counter()
    jpegs, raws = make_bank(photos, recipe)
    bank_seconds = time.perf_counter() - started
    print(f"bank: {len(jpegs)} pairs from {len(photos)} photos in {bank_seconds:.0f} s",
          file=log, flush=True)
    kwargs = net_kwargs(recipe)
    model = build_model("global", kwargs)
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr,
                                  weight_decay=recipe.weight_decay)
    rgb_all = torch.from_numpy(jpegs).permute(0, 3, 1, 2)
    raw_all = torch.from_numpy(raws).permute(0, 3, 1, 2)
    rng = np.random.default_rng([recipe.seed, 2])
    budget = recipe.minutes * 60.0
    started = time.perf_counter()
    losses: list[float] = []
    step = 0
    while step < recipe.max_steps and time.perf_counter() - started < budget:
        # Cosine schedule over the time budget (the step count depends on the machine's load).
        progress = min(1.0, (time.perf_counter() - started) / budget)
        for group in optimiser.param_groups:
            group["lr"] = recipe.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
        pick = rng.choice(len(jpegs), size=recipe.batch_size, replace=False)
        rgb = rgb_all[pick].float() / 255.0
        target = raw_all[pick]
        prediction = model(rgb)
        error = prediction - target
        loss = error.abs().mean() + 4.0 * error.square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        step += 1
        if step % 100 == 0:
            print(f"step {step}: loss {np.mean(losses[-100:]):.5f} "
                  f"({time.perf_counter() - started:.0f} s)", file=log, flush=True)
    train_seconds = time.perf_counter() - started
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"camera": recipe.camera, "arch": "global", "epochs": 1, "synthetic": str(photos_dir),
              "net_kwargs": kwargs, "crop": recipe.view[0], "batch_size": recipe.batch_size,
              "lr": recipe.lr, "seed": recipe.seed,
              # targets are normalised between the camera's own levels
              "black_level": params.black_level, "white_level": params.white_level}
    save_checkpoint(run_dir / "best.pt", {"state_dict": model.state_dict(), "config": config,
                                          "metrics": {"epoch": 1, "steps": step}})
    summary = {"recipe": asdict(recipe), "steps": step, "bank_pairs": int(len(jpegs)),
               "bank_seconds": round(bank_seconds, 1), "train_seconds": round(train_seconds, 1),
               "final_loss": float(np.mean(losses[-100:])) if losses else None,
               "photos": [{k: e[k] for k in ("name", "source", "source_path", "copyright",
                                             "license")} for e in entries]}
    publish(run_dir, model, recipe)
    with atomic_write(run_dir / "recipe.json") as handle:
        handle.write((json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return summary


def publish(run_dir: Path, model: Any, recipe: Recipe) -> None:
    """Export ``model.onnx`` and write ``model.json`` (the "global" contract: full frame, the
    camera's own levels)."""
    from rgb2raw.nets.globalnet_graph import export_graph
    from rgb2raw.train.publish import graph_bytes_per_pixel
    from rgb2raw.zoo.cards import file_entry, write_card

    onnx_path = export_graph(model, run_dir / "model.onnx")
    card = learned_card("model", recipe, file_entry(onnx_path, "onnx"),
                        graph_bytes_per_pixel(onnx_path))
    write_card(run_dir / "model.json", card)


def _recipe_of(run_dir: Path) -> Recipe:
    summary = json.loads((run_dir / "recipe.json").read_text(encoding="utf-8"))
    settings = dict(summary["recipe"])
    settings["view"] = tuple(settings["view"])
    return Recipe(**settings)


def republish(run_dir: Path) -> Path:
    """Rebuild a run's ``model.onnx`` and ``model.json`` from its ``best.pt`` (the graph is a
    function of the weights alone, so this is how a bundled graph is reproduced)."""
    from rgb2raw.train.checkpoint import build_model, read_checkpoint

    payload = read_checkpoint(run_dir / "best.pt")
    model = build_model("global", payload["config"]["net_kwargs"])
    model.load_state_dict(payload["state_dict"], strict=True)
    publish(run_dir, model.eval(), _recipe_of(run_dir))
    return run_dir / "model.onnx"


def learned_card(name: str, recipe: Recipe, onnx_file: ModelFile, bytes_per_pixel: int | None,
                 reported: Reported | None = None, card: str | None = None) -> ModelCard:
    """The card of a learned run: the "global" architecture's contract (full frame) with the
    calibrated camera's levels and lens shading, plus what the run measured."""
    where = centre(recipe.camera)
    return ModelCard(
        name=name, camera=recipe.camera, arch="global",
        description=(f"calibrated-{recipe.camera} corrected per image from global statistics "
                     "(GlobalReverseISP: per-colour gain and tone-table correction), trained on "
                     f"phone ISPs simulated around it ({', '.join(recipe.families)}) from a "
                     "licensed photo corpus"
                     + ("; lens shading by frame position" if where.shading is not None else "")),
        files=(onnx_file,), bytes_per_pixel=bytes_per_pixel, full_frame=True,
        black_level=where.params.black_level, white_level=where.params.white_level,
        shading=None if where.shading is None else where.shading.to_dict(),
        source="python -m rgb2raw.train.learned_recipe (rgb2raw)",
        license=("MIT (rgb2raw); trained on photos under CC-BY-4.0, CC-BY-SA-4.0, CC0-1.0, "
                 "GPL-2+ and public domain (see the model card)"),
        reported=reported, card=card)


def bundle(run_dir: Path, models_dir: Path, reported: dict[str, Any] | None, *,
           overwrite: bool = False) -> Path:
    """Copy a run's ONNX graph into `models_dir` as ``learned-<camera>.onnx`` with its card."""
    import shutil

    from rgb2raw.errors import Rgb2RawError
    from rgb2raw.zoo.cards import file_entry, load_card, write_card

    recipe = _recipe_of(run_dir)
    local = load_card(run_dir / "model.json")
    name = f"learned-{recipe.camera}"
    target, card_path = models_dir / f"{name}.onnx", models_dir / f"{name}.json"
    if not overwrite and (target.exists() or card_path.exists()):
        raise Rgb2RawError(card_path, "already exists (use overwrite to replace it)")
    with atomic_write(target) as handle, (run_dir / "model.onnx").open("rb") as source:
        shutil.copyfileobj(source, handle)
    score = None if reported is None else Reported(
        str(reported["set"]), float(reported["psnr"]), float(reported["ssim"]))
    card = learned_card(name, recipe, file_entry(target, "onnx"), local.bytes_per_pixel,
                        reported=score, card="learned.md")
    return write_card(card_path, card)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--camera", required=True, choices=tuple(REFERENCE_GREEN))
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--max-steps", type=int, default=4000)
    parser.add_argument("--views-per-photo", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--knots", type=int, default=12,
                        help="knots of the per-image tone-table correction")
    parser.add_argument("--hidden", type=int, default=64, help="width of the MLP")
    parser.add_argument("--alpha", type=float, nargs=2, metavar=("LO", "HI"),
                        help="share of scene brightness the sensor AE leaves in the RAW "
                             "(default: SensorRanges')")
    parser.add_argument("--ae-compensation", type=float, nargs=2, metavar=("LO", "HI"),
                        help="share of the sensor exposure the ISP undoes (default: 1 1)")
    parser.add_argument("--bundle", type=Path, metavar="MODELS_DIR",
                        help="do not train: copy RUN_DIR into MODELS_DIR as learned-<camera>, "
                             "with the mean held-out score of --quality")
    parser.add_argument("--quality", type=Path, help="bench_quality.py's quality.json")
    parser.add_argument("--republish", action="store_true",
                        help="do not train: rebuild RUN_DIR's model.onnx and model.json from "
                             "its best.pt")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if args.republish:
        print(republish(args.run_dir))
        return 0
    if args.bundle is not None:
        reported = None
        if args.quality is not None:
            record = json.loads(args.quality.read_text(encoding="utf-8"))
            cells = [cell for column, cell in record["rows"]["learned"].items()
                     if column.startswith(f"{args.camera} / ")]
            reported = {"set": "bench_quality.py: mean over held-out ISP families "
                               f"({', '.join(record['families'])}) on held-out photos",
                        "psnr": round(float(np.mean([c["psnr"] for c in cells])), 4),
                        "ssim": round(float(np.mean([c["ssim"] for c in cells])), 4)}
        print(bundle(args.run_dir, args.bundle, reported, overwrite=args.overwrite))
        return 0
    recipe = Recipe(camera=args.camera, minutes=args.minutes, max_steps=args.max_steps,
                    views_per_photo=args.views_per_photo, threads=args.threads, seed=args.seed,
                    net_kwargs={"knots": args.knots, "hidden": args.hidden},
                    sensor={k: list(v) for k, v in (("alpha", args.alpha),
                                                     ("ae_compensation", args.ae_compensation))
                            if v is not None})
    summary = train(args.photos, args.run_dir, recipe)
    print(json.dumps({k: summary[k] for k in ("steps", "bank_pairs", "train_seconds",
                                              "final_loss")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
