"""Fetch a diverse, licensed photo corpus for training and benchmarking, with a licence manifest.

    python benchmarks/fetch_photos.py [--cache ~/.cache/rgb2raw-photos] [--max-side 1024]

Sources (each file's licence is read from its package's machine-readable copyright file, or
from scikit-image's docstrings, and recorded next to it):

- Debian packages, fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into the
  cache (nothing is installed on the system; run ``apt-get update`` once first):
  ``lomiri-wallpapers-16.04`` (CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0 photos),
  ``plasma-workspace-wallpapers`` (GPL-2+; only its photographs, not its digital art),
  ``mate-backgrounds`` (GPL-2+; its nature photographs), ``forensics-samples-files`` (its
  phone photos, CC-BY-SA-4.0 by its copyright file, not the package's MIT code licence);
- scikit-image's colour photos (``pip install scikit-image``): public domain or CC0.

Every photo is shrunk (area filter) so its longer side is at most ``--max-side`` and written
as PNG to ``CACHE/photos/<source>-<name>.png``; ``CACHE/photos/manifest.json`` lists each
one with its source file, package and version, copyright, licence and split. The split is
fixed by name (`assign_splits`): a quarter of each source is ``test``: the photos the quality
benchmark uses and training never sees. The photos stay in the cache; never commit them.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

DEFAULT_CACHE = Path.home() / ".cache" / "rgb2raw-photos"
MANIFEST = "manifest.json"
# Chosen by looking at each package's images: photographs only (no renders, logos, patterns).
# Paths are relative to the unpacked package; `doc_root` is where its copyright file names
# files from (the upstream source layout).
DEBIAN_SOURCES: dict[str, dict[str, Any]] = {
    "lomiri-wallpapers-16.04": {
        "short": "lomiri",
        "dir": "usr/share/backgrounds",
        "doc_prefix": "16.04/",
        "files": ["Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg",
                  "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
                  "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
                  "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
                  "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
                  "sunset_by_Aitzol_Berasategi.jpg", "umang_by_Abhishek_Mudgal.jpg"],
    },
    "plasma-workspace-wallpapers": {
        "short": "plasma",
        "dir": "usr/share/wallpapers",
        "doc_prefix": "",
        "files": ["BytheWater/contents/images/2560x1600.jpg",
                  "ColdRipple/contents/images/2560x1600.jpg",
                  "ColorfulCups/contents/images/2560x1600.jpg",
                  "DarkestHour/contents/images/2560x1600.jpg",
                  "EveningGlow/contents/images/2560x1600.jpg",
                  "FallenLeaf/contents/images/2560x1600.jpg",
                  "Grey/contents/images/2560x1600.jpg", "Kite/contents/images/2560x1600.jpg",
                  "OneStandsOut/contents/images/2560x1600.jpg",
                  "Path/contents/images/2560x1600.jpg",
                  "summer_1am/contents/images/2560x1600.jpg",
                  "Volna/contents/images/5120x2880.jpg"],
    },
    "mate-backgrounds": {
        "short": "mate",
        "dir": "usr/share/backgrounds/mate",
        "doc_prefix": "",
        "files": [f"nature/{name}.jpg" for name in (
            "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
            "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")],
    },
    "forensics-samples-files": {
        "short": "forensics",
        "dir": "usr/share/forensics-samples",
        "doc_prefix": "",
        "files": ["original-files/pic1/IMG_20200827_231612.jpg",
                  "original-files/pic1/IMG_1054.JPG",
                  "original-files/pic1/IMG-20191006-WA0002.jpg",
                  "original-files/pic2/IMG_20200124_231153.jpg",
                  "original-files/pic2/IMG_20200608_111614.jpg",
                  "original-files/pic2/IMG_20191224_234846.jpg"],
    },
}
# scikit-image's colour photographs and their licences as its docstrings state them.
SKIMAGE_PHOTOS = {"astronaut": "public domain", "chelsea": "CC0-1.0", "coffee": "CC0-1.0",
                  "rocket": "public domain"}
TEST_SHARE = 0.25


def assign_splits(entries: list[dict[str, Any]]) -> None:
    """Set each entry's ``split``: in every source, the quarter (rounded down, at least one of
    two or more) whose names hash lowest is ``test``, so the split never depends on order."""
    sources = sorted({entry["source"].split("=")[0] for entry in entries})
    for source in sources:
        group = [e for e in entries if e["source"].split("=")[0] == source]
        ranked = sorted(group, key=lambda e: hashlib.sha256(e["name"].encode()).hexdigest())
        n_test = max(1, int(len(group) * TEST_SHARE)) if len(group) >= 2 else 0
        for rank, entry in enumerate(ranked):
            entry["split"] = "test" if rank < n_test else "train"


def parse_copyright(text: str) -> list[tuple[list[str], str, str]]:
    """The ``Files:`` paragraphs of a DEP-5 copyright file: (globs, copyright, licence)."""
    paragraphs: list[tuple[list[str], str, str]] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            globs = fields["files"].split()
            licence = fields["license"].splitlines()[0].strip()
            paragraphs.append((globs, " ".join(fields.get("copyright", "").split()), licence))
    return paragraphs


def licence_of(path: str, paragraphs: list[tuple[list[str], str, str]]) -> tuple[str, str]:
    """(copyright, licence) of `path`: the last matching paragraph wins, as DEP-5 says."""
    found = ("", "")
    for globs, holder, licence in paragraphs:
        if any(fnmatch.fnmatchcase(path, pattern) for pattern in globs):
            found = (holder, licence)
    return found


def shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (int(width * scale) & ~1, int(height * scale) & ~1)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb[: rgb.shape[0] & ~1, : rgb.shape[1] & ~1])


def fetch_package(package: str, cache: Path) -> tuple[Path, str]:
    """Download (once) and unpack a Debian package; return its root folder and version."""
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    deb = found[-1]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    root = cache / "extracted" / package
    if not root.is_dir():  # unpack beside it, then rename: a stopped run leaves no half tree
        partial = root.with_name(root.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(deb), str(partial)], check=True)
        partial.rename(root)
    return root, version


def write_photo(rgb: np.ndarray, target: Path, max_side: int) -> tuple[int, int]:
    small = shrink(rgb, max_side)
    if not cv2.imwrite(str(target), cv2.cvtColor(small, cv2.COLOR_RGB2BGR)):
        raise RuntimeError(f"could not write {target}")
    return small.shape[1], small.shape[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--max-side", type=int, default=1024)
    args = parser.parse_args(argv)
    photos_dir = args.cache / "photos"
    photos_dir.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for package, spec in DEBIAN_SOURCES.items():
        root, version = fetch_package(package, args.cache)
        copyright_text = (root / "usr/share/doc" / package / "copyright").read_text("utf-8")
        paragraphs = parse_copyright(copyright_text)
        for relative in spec["files"]:
            source = root / spec["dir"] / relative
            holder, licence = licence_of(spec["doc_prefix"] + relative, paragraphs)
            if not licence:
                print(f"skipped (no licence found): {source}", file=sys.stderr)
                continue
            bgr = cv2.imread(str(source), cv2.IMREAD_COLOR)
            if bgr is None:
                print(f"skipped (unreadable): {source}", file=sys.stderr)
                continue
            stem = relative.split("/")[0] if "/contents/" in relative else Path(relative).stem
            name = f"{spec['short']}-{stem}"
            width, height = write_photo(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                                        photos_dir / f"{name}.png", args.max_side)
            entries.append({"name": name, "file": f"{name}.png", "width": width,
                            "height": height, "source": f"debian:{package}={version}",
                            "source_path": f"/{spec['dir']}/{relative}", "copyright": holder,
                            "license": licence})
            print(f"{name}: {licence}", file=sys.stderr)
    try:
        import skimage
        import skimage.data
    except ImportError:
        print("scikit-image not installed: its photos are left out (pip install scikit-image)",
              file=sys.stderr)
    else:
        for photo, licence in SKIMAGE_PHOTOS.items():
            name = f"skimage-{photo}"
            rgb = np.ascontiguousarray(getattr(skimage.data, photo)()[..., :3])
            width, height = write_photo(rgb, photos_dir / f"{name}.png", args.max_side)
            entries.append({"name": name, "file": f"{name}.png", "width": width,
                            "height": height, "source": f"pypi:scikit-image=={skimage.__version__}",
                            "source_path": f"skimage.data.{photo}()",
                            "copyright": "see the skimage.data docstring",
                            "license": licence})
    assign_splits(entries)
    manifest = {"max_side": args.max_side, "photos": entries}
    (photos_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    counts = {split: sum(e["split"] == split for e in entries) for split in ("train", "test")}
    print(f"{len(entries)} photos ({counts['train']} train, {counts['test']} test) in "
          f"{photos_dir}; manifest {photos_dir / MANIFEST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
