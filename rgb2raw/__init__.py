"""rgb2raw: reconstruct camera RAW sensor data from the JPEG a phone's ISP produced.

The library is usable without the CLI. The public API, re-exported here lazily (importing
``rgb2raw`` imports neither numpy nor torch nor onnxruntime; each name loads its module on
first use):

- `load_model` (`rgb2raw.pipeline`): a zoo name, card, run folder or weights file, opened;
- `infer_image` (`rgb2raw.pipeline`): one RGB image -> packed RAW DN;
- `infer_paths` (`rgb2raw.batch`): files and folders -> one RAW file per image;
- `read_rgb` (`rgb2raw.rgb`) and `write_raw` (`rgb2raw.raw`): the file formats;
- `score` (`rgb2raw.scoring`): the challenge's metrics over two folders;
- `pack` (`rgb2raw.submission`): a checked submission zip.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

from rgb2raw.errors import Rgb2RawError  # noqa: E402

if TYPE_CHECKING:
    from rgb2raw.batch import infer_paths
    from rgb2raw.pipeline import infer_image, load_model
    from rgb2raw.raw import write_raw
    from rgb2raw.rgb import read_rgb
    from rgb2raw.scoring import score
    from rgb2raw.submission import pack

#: Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "load_model": "rgb2raw.pipeline",
    "infer_image": "rgb2raw.pipeline",
    "infer_paths": "rgb2raw.batch",
    "read_rgb": "rgb2raw.rgb",
    "write_raw": "rgb2raw.raw",
    "score": "rgb2raw.scoring",
    "pack": "rgb2raw.submission",
}


def __getattr__(name: str) -> Any:
    """Import the module of a public name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rgb2raw' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["Rgb2RawError", "__version__", "infer_image", "infer_paths", "load_model", "pack",
           "read_rgb", "score", "write_raw"]
