"""A prior over phone ISPs for the one-frame defaults: textbook tone curves, each matched to the
real figure, and the fixed inverse that does best across all of them.

Why this exists. One real frame per camera pins the exposure, the white balance and the tone
curve over the levels that scene holds; fitted alone, the default is the inverse of *that* ISP.
The photos users bring (and the simulations we are judged on) come from ISPs whose curves we do
not know. Under squared error the best fixed inverse for an unknown ISP is an average of the
plausible ones, so the default is built as one:

1. **Families** (`tone_curves.FAMILIES`): forward tone curves (linear -> encoded) from public formulas:
   sRGB, 2.2 and 2.6 gammas, Brooks et al.'s smoothstep over sRGB, a half-strength smoothstep,
   Hable's filmic curve at three white points, Narkowicz's ACES fit at two, the extended
   Reinhard curve at three, and log curves that lift shadows at three strengths; plus the two
   real curves that `calibrate_defaults.py` fits to the figures (one per phone). Each family
   inverts into a table (`inverse_table`).
2. **Matched to the real frame** (`matched`): each family gets the one exposure that best
   explains this camera's real figure, with the figure's white balance, the camera's colour
   matrix and black level. So every family agrees with the real shot's level; they differ in
   contrast, shadows and highlights, which one frame cannot settle.
3. **Simulated** (`simulate`): licensed photos stand for what each family's ISP made of a scene;
   the RAW behind it gets an exposure spread of `EXPOSURE_EV` stops and a white-balance spread
   (half the pairs by a fixed ISP whose JPEG shows the exposure, half by an auto-exposing one
   whose JPEG does not), sensor noise, and a JPEG quality of 88-97. Each simulated pixel
   counts by its level as real phone JPEGs count it (`real_content`): the photos are
   wallpapers, ten times as often near white as real phone crops.
4. **Mixed** (`mixture_weights`): the default's table and gains are a non-negative mixture of
   the families' (linear in the weights, because they share white balance and matrix). The
   weights minimise the mean over families and the real figure of log squared error, that is,
   they maximise the mean PSNR, so no family is sacrificed for the others' sake (iteratively
   reweighted least squares, each data set weighted by its own inverse error).

Held out (`leave_one_out`): every family in turn is removed from both the mixture's
components and its data, the rest are mixed, and the result is scored on the removed family's
simulations of test photos: what the default does on an ISP it has never seen.

Benchmark code: reads the photo cache of `fetch_photos.py` and, through `real_pairs.py`,
../shared. Nothing here is shipped or needed by a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from real_content import Content
from tone_curves import FAMILIES, inverse_table

from rgb2raw import bayer, metrics
from rgb2raw.cameras import get_camera
from rgb2raw.inverse import InverseParams
from rgb2raw.train.isp_families import Centre

#: Exposure spread of the simulations, in stops (standard deviation).
EXPOSURE_EV = 0.3
#: White-balance spread (log standard deviation of the red and blue illuminant gains); the ISP's
#: auto white balance takes out `AWB_SHARE` of it.
WB_LOG_SD = 0.08
AWB_SHARE = 0.7
#: ISO range of the simulated noise (log-uniform).
ISO = (50.0, 100.0)
JPEG_QUALITY = (88, 97)
PHOTOS = Path.home() / ".cache" / "rgb2raw-photos" / "photos"


#: The real curves (fitted to each phone's figure by calibrate_defaults.py) join as families
#: named ``figure-<camera>``.
REAL_FAMILY = "figure-{}"


# ------------------------------------------------------------------------------ matching


def with_table(params: InverseParams, table: np.ndarray, scale: float = 1.0) -> InverseParams:
    """`params` with a shared tone table and its gains times `scale` (white balance kept)."""
    gains = (params.gains * scale).astype(np.float32)
    return replace(params, tables=np.stack([table] * 3).astype(np.float32), gains=gains,
                   highlight_gains=np.maximum(gains, 1.0).astype(np.float32))


@dataclass(frozen=True)
class FigureData:
    """A real figure as fitting data: picture on the comparison grid, RAW there in DN (P20:
    warped onto the picture), the usable mask, and the lens-shading gain per channel there."""

    picture: np.ndarray  # (h, w, 3) float32 in [0, 1]
    raw: np.ndarray  # (h, w, 3) float32 DN (R, mean G, B)
    mask: np.ndarray  # (h, w) bool
    shading: np.ndarray  # (h, w, 3) float32 (ones without shading)


def camera_linear(params: InverseParams, rgb01: np.ndarray) -> np.ndarray:
    """(..., 3) camera RGB before gains: matrix times the tables, clipped at 0."""
    return np.clip(np.einsum("...c,dc->...d", params.linear_rgb(rgb01), params.matrix), 0, None)


def _fit_scale(pred: np.ndarray, raw: np.ndarray, keep: np.ndarray) -> float:
    p, r = pred[keep].astype(np.float64), raw[keep].astype(np.float64)
    return float(np.sum(p * r) / max(np.sum(p * p), 1e-12))


def matched(params: InverseParams, figure: FigureData, tables: dict[str, np.ndarray]
            ) -> dict[str, InverseParams]:
    """Each family's table with the single exposure that best explains the real figure
    (least squares over its usable, unclipped pixels), `params`' white balance and matrix."""
    span = params.white_level - params.black_level
    target = figure.raw - params.black_level
    keep = figure.mask[..., None] & (figure.raw < params.white_level - 0.05 * span)
    keep = np.broadcast_to(keep, figure.raw.shape)
    out = {}
    for name, table in tables.items():
        base = with_table(params, table)
        pred = camera_linear(base, figure.picture) * base.gains * figure.shading * span
        out[name] = with_table(params, table, _fit_scale(pred, target, keep))
    return out


# ------------------------------------------------------------------------------ simulation


def photos(split: str, cache: Path = PHOTOS) -> list[np.ndarray]:
    """The cached licensed photos of one split (`fetch_photos.py`), RGB float32 in [0, 1]."""
    from rgb2raw.train.learned_recipe import photo_entries

    if not (cache / "manifest.json").is_file():
        raise SystemExit(f"{cache}: no manifest.json; run benchmarks/fetch_photos.py first")
    out = []
    for entry in photo_entries(cache, split):
        bgr = cv2.imread(str(cache / entry["file"]), cv2.IMREAD_COLOR)
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    if not out:
        raise SystemExit(f"{cache}: no {split} photos; run benchmarks/fetch_photos.py first")
    return out


def views(pictures: Sequence[np.ndarray], per_photo: int, rng: np.random.Generator,
          size: tuple[int, int] = (384, 512)) -> list[np.ndarray]:
    """Random crops (even offsets and sides) of each photo, turned with the photo."""
    out = []
    for picture in pictures:
        h, w = picture.shape[:2]
        ch, cw = size if w >= h else size[::-1]  # a portrait photo gives portrait crops
        ch, cw = min(ch, h // 2 * 2), min(cw, w // 2 * 2)
        for _ in range(per_photo):
            y = int(rng.integers(0, h - ch + 1)) // 2 * 2
            x = int(rng.integers(0, w - cw + 1)) // 2 * 2
            out.append(picture[y:y + ch, x:x + cw])
    return out


def _jpeg(rgb01: np.ndarray, quality: int) -> np.ndarray:
    bgr = cv2.cvtColor((np.clip(rgb01, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255


def simulate(view: np.ndarray, isp: InverseParams, camera: str, rng: np.random.Generator,
             auto_exposure: bool) -> tuple[np.ndarray, np.ndarray]:
    """One (JPEG in [0, 1], packed RAW in DN) pair of the family whose inverse is `isp`.

    `view` is what the ISP made of the scene at its usual exposure; the scene's RAW is that
    inverted, moved by an exposure and a white balance of the shot's own, noised and
    quantised. The ISP then develops that RAW: white balance (mostly adapted), its exposure
    (auto-exposing: the shot's undone; fixed: not), the matrix inverted, the tone table
    inverted, JPEG."""
    stops = rng.normal(0.0, EXPOSURE_EV)
    illuminant = np.exp(rng.normal(0.0, WB_LOG_SD, 3))
    illuminant[1] = 1.0
    shot = isp.gains * np.float32(2.0 ** stops) * illuminant.astype(np.float32)
    raw3 = np.clip(camera_linear(isp, view) * shot, 0.0, 1.0)
    iso = float(np.exp(rng.uniform(np.log(ISO[0]), np.log(ISO[1]))))
    sd = np.sqrt(get_camera(camera).noise_variance(raw3, iso))
    raw3 = np.clip(raw3 + rng.standard_normal(raw3.shape).astype(np.float32) * sd, 0.0, 1.0)
    span = isp.white_level - isp.black_level
    packed = bayer.mosaic_rgb(raw3.astype(np.float32))
    raw_dn = np.clip(np.rint(isp.black_level + packed * span), isp.black_level, isp.white_level)
    develop = isp.gains * np.float32(2.0 ** stops if auto_exposure else 1.0) \
        * (illuminant ** AWB_SHARE).astype(np.float32)
    forward = Centre(camera, isp)  # the inverse's inverse: matrix, then tone tables
    encoded = forward.forward_tone(np.clip(forward.to_linear(raw3 / develop), 0.0, 1.0))
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    return _jpeg(encoded, quality), raw_dn.astype(np.float32)


def simulate_family(isp: InverseParams, camera: str, pictures: Sequence[np.ndarray],
                    seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [simulate(v, isp, camera, rng, auto_exposure=bool(i % 2))
            for i, v in enumerate(pictures)]


def pair_psnr(params: InverseParams, pairs: Sequence[tuple[np.ndarray, np.ndarray]],
              target: np.ndarray | None = None) -> float:
    """Mean PSNR (whole DN / 1024, the challenge's scale) of `params` over simulated pairs.

    With `target` band shares (`real_content`), each RAW site's squared error is weighted by
    its JPEG pixel's band so that the pairs count levels in those shares."""
    span = params.white_level - params.black_level
    content = None if target is None else Content.reweighting(target, [j for j, _ in pairs])
    scores = []
    for jpeg, raw in pairs:
        pred = np.rint(params.black_level + params.apply(jpeg) * span)
        if content is None:
            scores.append(metrics.psnr(pred, raw, data_range=1024.0))
            continue
        weight = bayer.pack(content.weight(jpeg))  # each site's own JPEG pixel
        mse = float(np.sum(weight * (pred - raw) ** 2) / np.sum(weight))
        scores.append(10.0 * np.log10(1024.0 ** 2 / max(mse, 1e-12)))
    return float(np.mean(scores))


# ------------------------------------------------------------------------------ the mixture


@dataclass(frozen=True)
class Observations:
    """Sampled sites of one data set: picture RGB, camera channel, RAW in DN, shading gain, and
    how much each counts (`real_content`; ones for real data)."""

    rgb: np.ndarray  # (N, 3)
    channel: np.ndarray  # (N,)
    raw: np.ndarray  # (N,)
    shading: np.ndarray  # (N,)
    weight: np.ndarray  # (N,)


def pair_observations(pairs: Sequence[tuple[np.ndarray, np.ndarray]], per_pair: int,
                      rng: np.random.Generator, target: np.ndarray | None = None
                      ) -> Observations:
    """`per_pair` random sites of each pair; with `target` band shares, weighted to them."""
    rgb, channel, raw = [], [], []
    for jpeg, packed in pairs:
        h, w = packed.shape[:2]
        site = rng.integers(0, 4, per_pair)
        y, x = rng.integers(0, h, per_pair), rng.integers(0, w, per_pair)
        dy, dx = site // 2, site % 2
        rgb.append(jpeg[2 * y + dy, 2 * x + dx])
        channel.append(np.array([0, 1, 1, 2])[site])
        raw.append(packed[y, x, site])
    n = per_pair * len(pairs)
    sites = np.concatenate(rgb)
    content = Content.uniform() if target is None else Content.reweighting(
        target, [j for j, _ in pairs])
    return Observations(sites, np.concatenate(channel), np.concatenate(raw),
                        np.ones(n, np.float32), content.weight(sites).astype(np.float32))


def figure_observations(figure: FigureData) -> Observations:
    rows, cols = np.nonzero(figure.mask)
    rgb = np.repeat(figure.picture[rows, cols], 3, axis=0)
    channel = np.tile(np.arange(3), rows.size)
    raw = figure.raw[rows, cols].reshape(-1)
    shading = figure.shading[rows, cols].reshape(-1)
    return Observations(rgb, channel, raw, shading, np.ones(raw.size, np.float32))


def _predictions(components: Sequence[InverseParams], data: Observations) -> np.ndarray:
    """(K, N) each component's RAW above black, in DN, without highlight fade or clipping."""
    out = []
    for params in components:
        span = params.white_level - params.black_level
        camera = camera_linear(params, data.rgb)[np.arange(data.rgb.shape[0]), data.channel]
        out.append(camera * params.gains[data.channel] * data.shading * span)
    return np.stack(out)


@dataclass(frozen=True)
class _Normal:
    """One data set's least-squares problem in the weights: the (observation-weighted) mean of
    (w @ P - r)^2 is (w Q w - 2 c w + rr) / n."""

    q: np.ndarray
    c: np.ndarray
    rr: float
    n: float

    def mse(self, w: np.ndarray) -> float:
        return max(float(w @ self.q @ w - 2.0 * self.c @ w + self.rr) / self.n, 1e-12)


def _normal(components: Sequence[InverseParams], data: Observations) -> _Normal:
    """Observations whose RAW or picture is clipped do not vote (their values are bounds)."""
    black, white = components[0].black_level, components[0].white_level
    keep = (data.raw < white - 0.02 * (white - black)) & (data.rgb.max(axis=1) < 252.5 / 255)
    p = _predictions(components, data)[:, keep].astype(np.float64)
    r = (data.raw[keep] - black).astype(np.float64)
    u = data.weight[keep].astype(np.float64)
    return _Normal((p * u) @ p.T, (p * u) @ r, float((r * u) @ r), max(float(u.sum()), 1e-12))


def mixture_weights(components: Sequence[InverseParams], datasets: Sequence[Observations],
                    emphasis: Sequence[float], rounds: int = 12) -> np.ndarray:
    """Non-negative weights of the components maximising sum_d emphasis_d * PSNR_d.

    PSNR is minus log squared error, so iteratively reweighted least squares with each data set
    weighted by emphasis / its current error climbs it; each round is a small non-negative
    least-squares problem on the (K, K) normal equations."""
    from scipy.optimize import nnls

    normals = [_normal(components, d) for d in datasets]
    k = len(components)
    weights = np.full(k, 1.0 / k)
    for _ in range(rounds):
        scale = [e / n.mse(weights) / n.n for n, e in zip(normals, emphasis, strict=True)]
        q = sum(s * n.q for s, n in zip(scale, normals, strict=True))
        c = sum(s * n.c for s, n in zip(scale, normals, strict=True))
        root = np.linalg.cholesky(q + np.eye(k) * 1e-12 * np.trace(q))
        weights, _ = nnls(root.T, np.linalg.solve(root, c))
    return weights


def mix(components: Sequence[InverseParams], weights: np.ndarray) -> InverseParams:
    """The mixture as one pixel-wise model: its table the weighted mean of the components'
    (weighted by their exposure too), its gains the weighted sum. Exact because the components
    share white balance and matrix: sum_k w_k g_k M T_k(x) = (sum_k w_k g_k) M T(x)."""
    scales = np.array([c.gains[1] for c in components], np.float64) * weights
    table = sum(s * c.tables[1].astype(np.float64) for s, c in zip(scales, components, strict=True))
    table = np.asarray(table, np.float64) / max(scales.sum(), 1e-12)
    first = components[0]
    factor = scales.sum() / float(first.gains[1]) * float(table[-1])
    return with_table(first, (table / table[-1]).astype(np.float32), factor)


def with_highlights(params: InverseParams, figure: FigureData) -> InverseParams:
    """Highlight gains from the figure's bright pixels (`fit_highlight_gains`, its RAW with the
    lens shading taken out). Where the frame has too few (the S7 figure's brightest level is
    0.95), no fade: the P20 figure, the one real frame with highlights, shows its clipped JPEG
    white over RAW at its gains (its fitted highlight gains are within 1 % of them), not at
    RAW white as Brooks et al.'s max(gain, 1) assumes."""
    from rgb2raw.calibrate.fit import MIN_HIGHLIGHT, fit_highlight_gains
    from rgb2raw.calibrate.samples import site_samples

    black = params.black_level
    raw = black + (figure.raw - black) / figure.shading
    samples = site_samples(figure.picture, raw, 0, mask=figure.mask)
    fitted, _ = fit_highlight_gains(params, samples)
    camera = np.clip(np.einsum("nc,dc->nd", params.linear_rgb(samples.rgb), params.matrix), 0, 1)
    bright = camera.mean(axis=1) > params.knee
    seen = np.array([np.sum(bright & (samples.channel == c)) for c in range(3)])
    gains = np.where(seen >= MIN_HIGHLIGHT, fitted, params.gains).astype(np.float32)
    return replace(params, highlight_gains=gains)


# ------------------------------------------------------------------------------ the prior


def _rescaled(data: Observations, black: float, factor: float) -> Observations:
    return Observations(data.rgb, data.channel, black + (data.raw - black) * factor, data.shading,
                        data.weight)


@dataclass(frozen=True)
class Prior:
    """The families of one camera matched to its whole figure, with simulated pairs of each:
    training observations (from `train` photos) and test pairs (from `test` photos). With
    `content` (band shares of real phone JPEGs, `real_content.real_shares`), each family's
    training sites are weighted to count levels as real pictures do; score the test pairs with
    `pair_psnr(..., prior.content)` for the same."""

    camera: str
    tables: dict[str, np.ndarray]
    families: dict[str, InverseParams]
    train: dict[str, Observations]
    test: dict[str, list[tuple[np.ndarray, np.ndarray]]]
    content: np.ndarray | None = None

    @classmethod
    def build(cls, camera: str, params: InverseParams, figure: FigureData,
              real_tables: dict[str, np.ndarray], seed: int = 0,
              per_pair: int = 3000, content: np.ndarray | None = None) -> Prior:
        tables = {name: inverse_table(curve) for name, curve in FAMILIES.items()} | real_tables
        families = matched(params, figure, tables)
        rng = np.random.default_rng(seed)
        train_views = views(photos("train"), 1, rng)
        test_views = views(photos("test"), 2, rng)
        train, test = {}, {}
        for i, (name, isp) in enumerate(families.items()):
            pairs = simulate_family(isp, camera, train_views, seed + 100 + i)
            train[name] = pair_observations(pairs, per_pair, np.random.default_rng(seed + 300 + i),
                                            content)
            test[name] = simulate_family(isp, camera, test_views, seed + 200 + i)
        return cls(camera, tables, families, train, test, content)

    def fit(self, params: InverseParams, figure: FigureData, emphasis: float,
            real_tables: dict[str, np.ndarray] | None = None, exclude: str | None = None
            ) -> tuple[InverseParams, dict[str, float]]:
        """The default for the figure fit `params` on `figure` (all of it, or a half): the
        families matched there, mixed with the real figure counted `emphasis` times as much
        as each simulated family. The simulated observations were made at the whole frame's
        matching; they follow a new matching by its exposure ratio. `exclude` leaves a family
        out of both the components and the data (held-out scoring)."""
        tables = {n: t for n, t in (self.tables | (real_tables or {})).items() if n != exclude}
        here = matched(params, figure, tables)
        black = params.black_level
        data = [_rescaled(self.train[n], black, here[n].gains[1] / self.families[n].gains[1])
                for n in here]
        components = list(here.values())
        weights = mixture_weights(components, [*data, figure_observations(figure)],
                                  [1.0] * len(here) + [emphasis])
        return with_highlights(mix(components, weights), figure), dict(zip(here, weights.tolist(), strict=True))
