"""`CardContract`: a model card's contract resolved over its architecture's, as a view.

Nothing is copied: each property reads the card's own field and, where the card leaves it
unset, the architecture's default (`rgb2raw.nets.REGISTRY`) for the card's camera.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rgb2raw import nets
from rgb2raw.cameras import get_camera
from rgb2raw.levels import Levels

if TYPE_CHECKING:
    from rgb2raw.shading import RadialShading
    from rgb2raw.zoo.cards import ModelCard


class CardContract:
    """What the engine must respect to run a card's model: a view of the card, not a copy.

    Each property returns the card's own value when it sets one, else its architecture's
    (`rgb2raw.nets.REGISTRY`) for the card's camera.
    """

    __slots__ = ("card",)

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    def _inherit(self, name: str) -> Any:
        """The card's own value of field `name`, else its architecture's."""
        value = getattr(self.card, name)
        return getattr(self.card.architecture, name) if value is None else value

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def camera(self) -> str:
        return self.card.camera

    @property
    def rgb_range(self) -> float:
        return self._inherit("rgb_range")

    @property
    def size_multiple(self) -> int:
        return self._inherit("size_multiple")

    @property
    def full_frame(self) -> bool:
        return self._inherit("full_frame")

    @property
    def context(self) -> int | None:
        return self._inherit("context")

    @property
    def bytes_per_pixel(self) -> int | None:
        return self._inherit("bytes_per_pixel")

    @property
    def input_size(self) -> tuple[int, int] | None:
        value = self.card.input_size
        if value is not None:
            return value
        return nets.input_size(self.card.architecture.input, get_camera(self.card.camera))

    @property
    def levels(self) -> Levels:
        """The DN that normalised 0 and 1 stand for."""
        black, white = self.card.black_level, self.card.white_level
        if black is None or white is None:
            default = nets.level_pair(self.card.architecture.levels, get_camera(self.card.camera))
            black = default[0] if black is None else black
            white = default[1] if white is None else white
        return Levels(float(black), float(white))

    @property
    def black_level(self) -> float:
        return self.levels.black

    @property
    def white_level(self) -> float:
        return self.levels.white

    @property
    def clip_low(self) -> nets.ClipLow:
        return self._inherit("clip_low")

    @property
    def low(self) -> float:
        """The lowest DN written (values under it are clipped to it)."""
        return 0.0 if self.clip_low == "zero" else self.black_level

    @property
    def rounding(self) -> nets.Rounding:
        return self._inherit("rounding")

    @property
    def shading(self) -> RadialShading | None:
        """The lens shading to put back by frame position, or None."""
        from rgb2raw.shading import RadialShading

        return None if self.card.shading is None else RadialShading.from_dict(self.card.shading)

    @property
    def frame_runner(self) -> str | None:
        """The architecture's bounded-memory whole-frame runner (``"module:callable"``), if any."""
        return None if self.card.arch is None else nets.architecture(self.card.arch).frame_runner

    @property
    def shading_dict(self) -> dict[str, Any] | None:
        return self.card.shading

    def resolved(self) -> dict[str, Any]:
        """Every resolved value by name (for comparisons, logs and tests)."""
        names = ("name", "camera", "rgb_range", "size_multiple", "full_frame", "context",
                 "bytes_per_pixel", "input_size", "black_level", "white_level", "clip_low",
                 "rounding", "frame_runner", "shading_dict")
        return {name: getattr(self, name) for name in names}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CardContract):
            return NotImplemented
        return self.resolved() == other.resolved()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CardContract({self.resolved()})"


__all__ = ["CardContract"]
