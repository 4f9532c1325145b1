"""Decode a run's first input while the rest of the process starts up: `FirstImage`.

A command that runs a model pays for importing the engine and loading the model before its
first image; decoding that image meanwhile, in a thread, hides most of the decoding on a
one-photo run. This module imports nothing heavy at import time, so a caller can start the
thread before numpy is imported; the thread imports what it needs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np


class FirstImage:
    """The first input image, decoded in a thread while the engine imports and the model loads
    (mostly Python, holding the GIL, while the JPEG decoder releases it): on one 12 MP photo
    this hides most of the decoding. Pass it as `batch.infer_paths(..., early_decode=)`, which
    asks for each file it reads (`batch.EarlyDecode`); errors surface there, as if it had read
    the file itself."""

    def __init__(self, inputs: list[Path], *, recursive: bool, pattern: str | None,
                 max_pixels: int | None) -> None:
        from concurrent.futures import Future  # not at import: `--help` needs none of this

        self._found = threading.Event()
        self._path: Path | None = None
        self._image: Future[np.ndarray] = Future()
        self._taken = False
        threading.Thread(target=self._run, args=(inputs, recursive, pattern, max_pixels),
                         name="rgb2raw-first", daemon=True).start()

    def _run(self, inputs: list[Path], recursive: bool, pattern: str | None,
             max_pixels: int | None) -> None:
        try:
            from rgb2raw.jobs import discover_inputs
            from rgb2raw.rgb import DEFAULT_MAX_PIXELS, read_rgb

            files = discover_inputs(inputs, recursive=recursive, pattern=pattern)
            self._path = files[0].path if files else None
        except BaseException:  # noqa: BLE001 - the run's own discovery reports it
            self._path = None
        finally:
            self._found.set()
        if self._path is None:
            return
        try:
            limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
            self._image.set_result(read_rgb(self._path, max_pixels=limit, as_float=False))
        except BaseException as exc:  # noqa: BLE001 - raised where the batch reads it
            self._image.set_exception(exc)

    def __call__(self, path: Path) -> np.ndarray | None:
        self._found.wait()
        if self._taken or self._path != path:
            return None
        self._taken = True  # once: the image is the batch's now
        return self._image.result()
