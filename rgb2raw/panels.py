"""Drawing labelled comparison panels whose text and scale bar grow with the figure.

Every length in a panel (margins, title bars, caption lines, the colour bar and its ticks,
line thickness) derives from one number, the text height `PanelStyle.font_px`. That height
is 8 pt when the print resolution is known (``dpi``), else about 1/80 of the panel's width,
so a 4000-pixel panel reads as well as a 1000-pixel one. `panel_style` picks it; `compose`
lays tiles out; `colorbar` draws an inferno scale with round tick values (`nice_ticks`).

A tile is an (H, W, 3) uint8 RGB image. Text is drawn with OpenCV's Hershey font, whose
capital letters are `_CAP_HEIGHT_AT_SCALE_1` pixels high at scale 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

BACKGROUND = (255, 255, 255)
TITLE_BAR = (38, 38, 38)
TITLE_TEXT = (255, 255, 255)
CAPTION_TEXT = (20, 20, 20)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_CAP_HEIGHT_AT_SCALE_1 = 22  # cv2.getTextSize("H", _FONT, 1, 1)[0][1]
#: Text height for print: 8 pt, a usual size for figure labels in a paper.
PRINT_POINTS = 8.0
MIN_FONT_PX = 11
MAX_FONT_PX = 160


@dataclass(frozen=True)
class PanelStyle:
    """The sizes of one panel's parts, all from the text height."""

    font_px: int

    @property
    def scale(self) -> float:
        """OpenCV font scale for `font_px`-high capitals."""
        return self.font_px / _CAP_HEIGHT_AT_SCALE_1

    @property
    def thickness(self) -> int:
        return max(1, round(self.font_px / 12))

    @property
    def margin(self) -> int:
        return max(4, round(self.font_px * 0.5))

    @property
    def title_height(self) -> int:
        return round(self.font_px * 2.0)

    @property
    def line_height(self) -> int:
        """Height of one caption line."""
        return round(self.font_px * 1.9)

    @property
    def bar_gap(self) -> int:
        return max(3, round(self.font_px * 0.4))

    @property
    def bar_width(self) -> int:
        return max(8, round(self.font_px * 1.0))

    @property
    def tick_length(self) -> int:
        return max(2, round(self.font_px * 0.35))

    def text_width(self, text: str) -> int:
        return int(cv2.getTextSize(text, _FONT, self.scale, self.thickness)[0][0])

    def bar_extra(self, labels: Sequence[str]) -> int:
        """Width of a colour bar with these tick labels, gap included."""
        widest = max((self.text_width(label) for label in labels), default=0)
        return self.bar_gap + self.bar_width + self.tick_length + self.margin // 2 + widest + self.margin


def font_px_for(width_px: int, dpi: int | None) -> int:
    """The text height for a panel `width_px` wide: 8 pt at `dpi`, else width / 80."""
    # A capital letter is about 0.72 of the point size high.
    size = PRINT_POINTS * dpi / 72.0 * 0.72 if dpi is not None else width_px / 80.0
    return int(np.clip(round(size), MIN_FONT_PX, MAX_FONT_PX))


def nice_ticks(vmax: float, target: int = 5) -> tuple[float, list[float]]:
    """A round top not below `vmax` and round ticks from 0 to it (3 to 7 of them).

    The step is 1, 2 or 5 times a power of ten; the top is the first multiple of the step at
    or above `vmax`.
    """
    vmax = max(float(vmax), 1e-3)
    raw_step = vmax / (target - 1)
    power = 10.0 ** math.floor(math.log10(raw_step))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw_step - 1e-12)
    count = math.ceil(vmax / step - 1e-9)
    top = count * step
    ticks = [round(i * step, 10) for i in range(count + 1)]
    return top, ticks


def tick_label(value: float) -> str:
    return f"{value:g}"


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], style: PanelStyle,
             color: tuple[int, int, int], scale: float | None = None) -> None:
    cv2.putText(image, text, origin, _FONT, style.scale if scale is None else scale, color,
                style.thickness, cv2.LINE_AA)


def _fitted_scale(text: str, style: PanelStyle, width: int) -> float:
    """The style's scale, shrunk only as much as `text` needs to fit in `width`."""
    scale = style.scale
    natural = style.text_width(text)
    if natural > width > 0:
        scale *= width / natural
    return scale


def titled_tile(image: np.ndarray, label: str, style: PanelStyle) -> np.ndarray:
    """A dark title bar with `label` in white above an RGB uint8 tile."""
    height, width = image.shape[:2]
    bar = style.title_height
    tile = np.empty((bar + height, width, 3), dtype=np.uint8)
    tile[:bar] = TITLE_BAR
    tile[bar:] = image
    pad = style.margin
    scale = _fitted_scale(label, style, width - 2 * pad)
    text_h = round(_CAP_HEIGHT_AT_SCALE_1 * scale)
    put_text(tile, label, (pad, (bar + text_h) // 2), style, TITLE_TEXT, scale)
    return tile


def colorbar(height: int, vmax: float, style: PanelStyle, unit: str = "DN") -> np.ndarray:
    """A vertical inferno scale (0 at the bottom, `vmax` at the top) with round ticks.

    `vmax` should come from `nice_ticks` so the top tick is the top of the bar.
    """
    _, ticks = nice_ticks(vmax)
    labels = [tick_label(t) + (f" {unit}" if i == len(ticks) - 1 else "")
              for i, t in enumerate(ticks)]
    extra = style.bar_extra(labels)
    bar = np.full((height, extra, 3), BACKGROUND, dtype=np.uint8)
    ramp = np.linspace(255, 0, height).astype(np.uint8)[:, None].repeat(style.bar_width, axis=1)
    colours = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    left = style.bar_gap
    right = left + style.bar_width
    bar[:, left:right] = colours
    text_x = right + style.tick_length + style.margin // 2
    half = style.thickness // 2
    for value, label in zip(ticks, labels, strict=True):
        y = int(round((1.0 - value / vmax) * (height - 1)))
        bar[max(0, y - half): y + half + 1, right: right + style.tick_length] = CAPTION_TEXT
        baseline = int(np.clip(y + style.font_px // 2, style.font_px + 1, height - 2))
        put_text(bar, label, (text_x, baseline), style, CAPTION_TEXT)
    return bar


def wrap_caption(parts: Sequence[str], style: PanelStyle, width: int) -> list[str]:
    """Join caption parts with wide spaces, starting a new line where the next would not fit."""
    lines: list[str] = []
    for part in parts:
        candidate = f"{lines[-1]}   {part}" if lines else part
        if lines and style.text_width(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(part)
    return lines


def compose(tiles: Sequence[tuple[str, np.ndarray]], caption: Sequence[str], style: PanelStyle,
            colorbar_image: np.ndarray | None = None, width: int | None = None) -> np.ndarray:
    """Lay labelled tiles of equal size side by side on white, a caption under them.

    `colorbar_image` goes right of the last tile, under no title. `caption` parts are joined
    into as few lines as fit. `width`, when given, is the exact width of the result (extra
    pixels go to the right margin).
    """
    sizes = {image.shape[:2] for _, image in tiles}
    if len(sizes) != 1:
        raise ValueError(f"panel tiles must share one size, got {sorted(sizes)}")
    tile_h, tile_w = tiles[0][1].shape[:2]
    margin = style.margin
    extra = 0 if colorbar_image is None else colorbar_image.shape[1]
    natural = margin + len(tiles) * (tile_w + margin) + extra
    total_w = natural if width is None else max(width, natural)
    lines = wrap_caption(caption, style, total_w - 2 * margin)
    caption_h = style.line_height * len(lines) + margin
    height = margin + style.title_height + tile_h + caption_h
    panel = np.full((height, total_w, 3), BACKGROUND, dtype=np.uint8)
    x = margin
    top = margin
    for label, image in tiles:
        panel[top: top + style.title_height + tile_h, x: x + tile_w] = titled_tile(image, label,
                                                                                  style)
        x += tile_w + margin
    if colorbar_image is not None:
        y0 = top + style.title_height
        x_bar = x - margin  # hug the heat map; the bar's own gap separates them
        panel[y0: y0 + tile_h, x_bar: x_bar + extra] = colorbar_image[:tile_h]
    baseline = top + style.title_height + tile_h
    for line in lines:
        baseline += style.line_height
        scale = _fitted_scale(line, style, total_w - 2 * margin)
        put_text(panel, line, (margin, baseline - (style.line_height - style.font_px) // 2),
                 style, CAPTION_TEXT, scale)
    return panel


def tile_width_for(total_width: int, tiles: int, style: PanelStyle, bar_extra: int) -> int:
    """The tile width that makes a panel of `tiles` tiles (and a colour bar) `total_width` wide."""
    return max(8, (total_width - style.margin - tiles * style.margin - bar_extra) // tiles)


__all__ = [
    "PanelStyle",
    "colorbar",
    "compose",
    "font_px_for",
    "nice_ticks",
    "tick_label",
    "tile_width_for",
    "titled_tile",
    "wrap_caption",
]
