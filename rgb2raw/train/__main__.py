"""``python -m rgb2raw.train ARGS`` is ``rgb2raw train ARGS``; handy under torchrun's ``-m``:

    torchrun --nproc-per-node 2 -m rgb2raw.train DATA -o RUN_DIR --camera s7 --arch tiny
"""

from __future__ import annotations

import sys

from rgb2raw.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="rgb2raw train")
