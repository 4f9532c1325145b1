"""The `rgb2raw` command line: a thin layer that parses arguments, calls the library, prints.

Each command module registers itself on `app` when imported; only working commands are
imported here.
"""

from __future__ import annotations

from rgb2raw.cli._app import app

# isort: split
# Command modules, imported for their registration side effect.
from rgb2raw.cli import calibrate, infer, models, pack, score, train, visualize  # noqa: F401, E402
from rgb2raw.cli._app import use_fast_commands  # noqa: E402

use_fast_commands(app)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
