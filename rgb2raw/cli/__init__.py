"""The `rgb2raw` command line: a thin layer that parses arguments, calls the library, prints.

Each command module registers itself on `app` when imported; only working commands are
imported here.
"""

from __future__ import annotations

from rgb2raw.cli._app import app

# Command modules, imported for their registration side effect (one per line, sorted).
from rgb2raw.cli import infer as _infer  # noqa: F401,E402
from rgb2raw.cli import models as _models  # noqa: F401,E402
from rgb2raw.cli import pack  # noqa: E402,F401  isort: skip
from rgb2raw.cli import score  # noqa: E402,F401  isort: skip
from rgb2raw.cli import train as _train  # noqa: F401,E402
from rgb2raw.cli import visualize  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
