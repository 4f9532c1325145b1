"""The linear-algebra steps of the fit (`rgb2raw.calibrate.fit`), each a least-squares solve.

Tables are piecewise linear on `knots` levels, so an observation touches two knots per
channel (`knot_features`); table values come from non-negative increments (`cumulative`),
which makes them monotone, solved by an active-set method (`nonneg_qp`) with smoothness and
channel-tie penalties as quadratic forms (`second_difference`, `channel_tie`).
"""

from __future__ import annotations

import numpy as np


def knot_features(rgb: np.ndarray, knots: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower knot index (N, 3) and the fraction towards the next knot (N, 3)."""
    position = np.clip(rgb.astype(np.float64), 0.0, 1.0) * (knots - 1)
    lower = np.minimum(np.floor(position), knots - 2).astype(np.int64)
    return lower, position - lower


def linear(lower: np.ndarray, frac: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """T_j(x_j) for every observation: (N, 3)."""
    out = np.empty(lower.shape, np.float64)
    for j in range(3):
        t = tables[j]
        out[:, j] = (1.0 - frac[:, j]) * t[lower[:, j]] + frac[:, j] * t[lower[:, j] + 1]
    return out


def solve_gains(pred: np.ndarray, raw: np.ndarray, weight: np.ndarray, group: np.ndarray,
                 groups: int, black: float | None) -> tuple[np.ndarray, float]:
    """Per-group gains A and (if `black` is None) the shared black level, by least squares."""
    def sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=weight * values, minlength=groups)

    s1, sp, spp = sums(np.ones_like(pred)), sums(pred), sums(pred * pred)
    sy, spy = sums(raw), sums(pred * raw)
    seen = spp > 1e-12
    if black is None:
        # Eliminate each group's gain; the sum of squares is then a parabola in the black level.
        numerator = np.sum((sy - sp * spy / np.where(seen, spp, 1.0))[seen])
        denominator = np.sum((s1 - sp * sp / np.where(seen, spp, 1.0))[seen])
        black = float(numerator / denominator) if denominator > 1e-9 else 0.0
        black = max(black, 0.0)
    gains = np.where(seen, (spy - black * sp) / np.where(seen, spp, 1.0), np.nan)
    return gains, black


def solve_matrix(linear: np.ndarray, target: np.ndarray, weight: np.ndarray,
                  channel: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """Each matrix row by weighted least squares, target ~ M[c] . linear, with a ridge of
    `strength` (relative to the row's mean data weight) towards `prior`'s row."""
    matrix = prior.copy()
    for c in range(3):
        pick = channel == c
        if not pick.any():
            continue
        lin, wt = linear[pick], weight[pick]
        normal = np.einsum("n,ni,nj->ij", wt, lin, lin)
        rhs = np.einsum("n,ni,n->i", wt, lin, target[pick])
        ridge = (strength * np.trace(normal) / 3.0) + 1e-12 * np.trace(normal)
        matrix[c] = np.linalg.solve(normal + ridge * np.eye(3), rhs + ridge * prior[c])
    return matrix


def table_normal(lower: np.ndarray, frac: np.ndarray, coeff: np.ndarray, target: np.ndarray,
                  weight: np.ndarray, knots: int, offset: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Normal equations of target ~ sum_j coeff_j * T_j(x_j) (+ offset * b) in the 3*knots
    table values (and b): the (3K, 3K) matrix, the right-hand side and, with `offset`, the
    (3K + 1)-th row [cross terms with b..., b's own term, b's right-hand side]."""
    size = 3 * knots
    index = [j * knots + lower[:, j] + step for j in range(3) for step in (0, 1)]
    value = [coeff[:, j] * ((1.0 - frac[:, j]) if step == 0 else frac[:, j])
             for j in range(3) for step in (0, 1)]
    normal = np.zeros(size * size)
    rhs = np.zeros(size)
    cross = None if offset is None else np.zeros(size + 2)
    for p, (ip, vp) in enumerate(zip(index, value, strict=True)):
        wv = weight * vp
        rhs += np.bincount(ip, weights=wv * target, minlength=size)
        if cross is not None and offset is not None:
            cross[:size] += np.bincount(ip, weights=wv * offset, minlength=size)
        for iq, vq in zip(index[p:], value[p:], strict=True):
            block = np.bincount(ip * size + iq, weights=wv * vq, minlength=size * size)
            normal += block
            if iq is not ip:
                normal += block.reshape(size, size).T.reshape(-1)
    if cross is not None and offset is not None:
        cross[size] = np.sum(weight * offset * offset)
        cross[size + 1] = np.sum(weight * offset * target)
    return normal.reshape(size, size), rhs, cross


def nonneg_qp(q: np.ndarray, r: np.ndarray, start: np.ndarray, max_steps: int = 4) -> np.ndarray:
    """min 0.5 x'Qx - r'x subject to x >= 0 (Q positive definite), by an active-set method.

    Starts with the variables that are positive in `start` free (a feasible point), walks
    towards the free-set optimum, fixing at zero each variable that would turn negative, and
    frees again any fixed variable whose gradient asks to move up (the Lawson-Hanson steps).
    Warm-started from the previous round's solution, a step or two is usually enough; the
    alternation calls it every round, so it stops after `max_steps` solves (each a descent
    step, feasible) and the next round continues from there.
    """
    n = r.size
    free = start > 0
    if not free.any():
        free[:] = True
    x = np.where(free, np.maximum(start, 1e-300), 0.0)
    for _ in range(max_steps):
        z = np.zeros(n)
        if free.any():
            z[free] = np.linalg.solve(q[np.ix_(free, free)], r[free])
        if np.all(z[free] >= 0):
            x = z
            gradient = r - q @ x
            fixed = ~free
            if not fixed.any() or gradient[fixed].max() <= 1e-12 * max(1.0, np.abs(r).max()):
                return x
            free[np.flatnonzero(fixed)[np.argmax(gradient[fixed])]] = True
            continue
        falling = free & (z < 0)
        alpha = np.min(x[falling] / (x[falling] - z[falling]))
        x = x + alpha * (z - x)
        hit = free & (x <= 1e-15)
        hit[np.flatnonzero(falling)[np.argmin(x[falling])]] = True
        free &= ~hit
        x[~free] = 0.0
    return np.maximum(x, 0.0)


def increments_to_tables(delta: np.ndarray, knots: int) -> np.ndarray:
    tables = np.zeros((3, knots))
    tables[:, 1:] = np.cumsum(delta.reshape(3, knots - 1), axis=1)
    return tables


def cumulative(knots: int) -> np.ndarray:
    """(3K, 3(K-1)): table values from increments, T_j(0) = 0."""
    block = np.tril(np.ones((knots, knots - 1)), k=-1)
    out = np.zeros((3 * knots, 3 * (knots - 1)))
    for j in range(3):
        out[j * knots:(j + 1) * knots, j * (knots - 1):(j + 1) * (knots - 1)] = block
    return out


def channel_tie(knots: int) -> np.ndarray:
    """Sum over channel pairs of (T_j - T_j')^2 at every knot, as a (3K, 3K) quadratic form."""
    laplacian = np.array([[2.0, -1.0, -1.0], [-1.0, 2.0, -1.0], [-1.0, -1.0, 2.0]])
    return np.kron(laplacian, np.eye(knots))


def second_difference(knots: int) -> np.ndarray:
    d = np.zeros((knots - 2, knots))
    rows = np.arange(knots - 2)
    d[rows, rows], d[rows, rows + 1], d[rows, rows + 2] = 1.0, -2.0, 1.0
    penalty = d.T @ d
    out = np.zeros((3 * knots, 3 * knots))
    for j in range(3):
        out[j * knots:(j + 1) * knots, j * knots:(j + 1) * knots] = penalty
    return out


__all__ = ["channel_tie", "cumulative", "increments_to_tables", "knot_features", "linear", "nonneg_qp", "second_difference", "solve_gains", "solve_matrix", "table_normal"]
