"""Which RGB rows an output row of `LiteISPNetS` depends on, with its channel gates frozen.

Why this exists: it is the measure of why plain tiles cannot run the network exactly. With every
channel attention's gate frozen the network is local, but its reach is `receptive_radius()` =
1,341 RGB rows each side (the Haar levels multiply the depth of the deep layers by up to 16), so
a tile with exact context would be most of a P20 frame; `rgb2raw.nets.twopass` runs whole
frames instead. The strip halos that runner needs are the local radii below.
"""

from __future__ import annotations

# Radii (rows each side) of the local pieces, in rows of the level they run on.
RES_HALO = 2  # conv3x3, ReLU, conv3x3
SA_HALO = 3  # 7x7 convolution of the spatial attention
BLOCK_HALO = RES_HALO + SA_HALO


def receptive_radius(n_blocks: int = 4) -> int:
    """How far (RGB rows, each side) a gate-frozen LiteISPNetS output row's inputs reach.

    The maximum over output rows of `input_rows(r)`'s reach beyond RGB rows ``2r, 2r + 1``
    (the pattern repeats every 8 output rows, one block of the H/16 level).
    """
    worst = 0
    for r in range(16):
        lo, hi = input_rows(r, n_blocks)
        worst = max(worst, 2 * r - lo, hi - (2 * r + 1))
    return worst


def input_rows(r: int, n_blocks: int = 4) -> tuple[int, int]:
    """The RGB rows (inclusive, unbounded frame) that output row `r` depends on, gates frozen.

    An interval of rows is propagated backwards through the layers: a 3x3 convolution widens it
    by one row each side, the spatial attention's 7x7 by three, a Haar downsampling maps output
    rows ``[lo, hi]`` to ``[2lo, 2hi + 1]``, a Haar upsampling to ``[lo // 2, hi // 2]``, the
    stride-2 head to ``[2lo - 1, 2hi + 1]``; a skip or residual takes the union of its paths.
    """
    Rows = tuple[int, int]

    def conv(rows: Rows, radius: int = 1) -> Rows:
        return rows[0] - radius, rows[1] + radius

    def group(rows: Rows) -> Rows:  # x + conv(blocks(x)): the blocks' path is the wider one
        return conv(rows, n_blocks * BLOCK_HALO + 1)

    def down(rows: Rows) -> Rows:
        return 2 * rows[0], 2 * rows[1] + 1

    def up(rows: Rows) -> Rows:
        return rows[0] // 2, rows[1] // 2

    def union(p: Rows, q: Rows) -> Rows:
        return min(p[0], q[0]), max(p[1], q[1])

    out = (r, r)
    u1 = conv(out, 2)  # tail: one conv; shading: two
    u2 = up(group(conv(u1)))  # up1 = HaarUp, group, conv
    d1 = u2  # u2 = up2(u3) + d1
    u3 = up(group(conv(u2)))  # up2
    d2 = u3  # u3 = up3(m) + d2
    m = up(group(conv(u3)))  # up3
    d3 = union(m, conv(group(group(conv(m)))))  # m = middle(d3) + d3
    d2 = union(d2, conv(group(down(d3))))  # d3 = down3(d2) = Haar(group(conv(d2)))
    d1 = union(d1, conv(group(down(d2))))  # d2 = down2(d1)
    half = conv(group(conv(down(d1))))  # d1 = Haar(conv(group(conv(head(rgb)))))
    return 2 * half[0] - 1, 2 * half[1] + 1
