"""rgb2raw: reconstruct camera RAW sensor data from the JPEG a phone's ISP produced.

The library is usable without the CLI; the most used pieces are re-exported here. Nothing in
this package imports torch or onnxruntime until a function that needs them runs.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from rgb2raw.errors import Rgb2RawError  # noqa: E402

__all__ = ["Rgb2RawError", "__version__"]
