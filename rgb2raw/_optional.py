"""Optional packages: say which extra to install, in one line, before any work starts.

torch and onnx are the ``torch`` extra (``pip install "rgb2raw[torch]"``): the torch backend,
training and ONNX export need them; inference with ONNX files does not.
"""

from __future__ import annotations

import importlib.util
import sys

from rgb2raw.errors import Rgb2RawError

#: The extra that provides each optional package.
EXTRAS: dict[str, str] = {"torch": "torch", "onnx": "torch"}


def available(module: str) -> bool:
    """Whether `module` can be imported here (found, not necessarily imported yet)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or broken package counts as missing
        return False


def require(module: str, extra: str | None = None, *, purpose: str = "this") -> None:
    """Raise a one-line `Rgb2RawError` naming the extra to install when `module` is missing."""
    if available(module):
        return
    extra = extra or EXTRAS.get(module, module)
    raise Rgb2RawError(None, f"{purpose} needs the {module} package, which is not installed; "
                             f'install it with: pip install "rgb2raw[{extra}]"')


__all__ = ["EXTRAS", "available", "require"]
