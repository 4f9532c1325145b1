"""The `rgb2raw` command line: a thin layer that parses arguments, calls the library, prints.

Each command module registers itself on `app` when imported; the root group imports a
command's module only when that command is looked up (`rgb2raw.cli._app.COMMANDS`), so
``rgb2raw --help`` and ``rgb2raw score ...`` pay for no other command's imports.
"""

from __future__ import annotations

from rgb2raw.cli._app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
