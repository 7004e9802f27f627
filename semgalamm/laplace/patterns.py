"""The profiled Gaussian deviance by patterns of levels, for models with one grouping factor
whose levels repeat a few designs (a CFA in long form: every person answers the same items).

With one grouping factor, H = A' W A + I is block diagonal and the marginal covariance of
level l's responses is sigma^2 V_l, V_l = W_l^{-1} + A_l A_l'. Levels whose rows have equal
rows of A (as functions of theta and lambda), of X and of the weights share V_l: a *pattern*
g, with c_g levels of n_g rows each, their responses stacked as Y_g (c_g x n_g). By Woodbury
with D_g = I + A_g' W_g A_g (k x k), every quantity of the profiled fit is a few products of
(n_g x k), (n_g x p) and (c_g x n_g) matrices per pattern, whatever the number of levels:

    log|H| = sum_g c_g log|D_g|
    beta = (sum_g c_g X_g' V_g^{-1} X_g)^{-1} sum_g X_g' V_g^{-1} sum_l y_l
    C_X = H^{-1} A' W X = D_g^{-1} A_g' W_g X_g       (the same k x p block for each level)
    U_g = R_g W_g A_g D_g^{-1}          (c_g x k: the conditional modes, R_g = Y_g - 1 (X_g beta)')
    r^2 = sum_g |W_g^{1/2} (R_g - U_g A_g')|^2 + |U_g|^2

and S_i a_i = D_g^{-1} a_t for row t of every level of the pattern (the exact gradient's
selected inverse). The numbers are those of the general engine (``objective.py``), which is
used when the levels repeat few patterns; REML adds log|X' V^{-1} X| (p x p) as there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semgalamm.design.design import Design
from semgalamm.design.frame import equal_rows

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: At most this many patterns (the per-pattern work is a few dozen small products).
MAX_PATTERNS = 8


@dataclass(frozen=True)
class LevelPatterns:
    """rows[g]: (c_g, n_g) rows of the levels of pattern g (each level's rows in one order,
    equal across the pattern); levels[g]: (c_g,) those levels; columns: (m, k) each level's
    columns of H."""

    rows: tuple[IntArray, ...]
    levels: tuple[IntArray, ...]
    columns: IntArray


def level_patterns(design: Design, level: IntArray, columns: IntArray,
                   row_values: tuple[FloatArray, ...]) -> LevelPatterns | None:
    """Group the levels (``level``: each row's, of the one grouping factor) by their rows'
    signatures: ``row_values``, per-row arrays that determine A, X and the weights (A and X
    at two random parameter points, the prior weights, the variance groups). None when there
    are more than ``MAX_PATTERNS`` patterns."""
    signature = np.column_stack([np.asarray(v, dtype=float).reshape(design.n, -1)
                                 for v in row_values])
    row_type = equal_rows(signature)
    if row_type is None:
        return None
    order = np.lexsort((row_type, level))  # by level, then by row type: a canonical order
    sizes = np.bincount(level, minlength=columns.shape[0])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    rows, levels = [], []
    for size in np.unique(sizes[sizes > 0]):
        members = np.flatnonzero(sizes == size)
        member_rows = order[starts[members][:, None] + np.arange(size)[None, :]]
        pattern = equal_rows(row_type[member_rows].astype(float))
        if pattern is None or len(rows) + pattern.max() + 1 > MAX_PATTERNS:
            return None
        for g in range(pattern.max() + 1):
            rows.append(member_rows[pattern == g])
            levels.append(members[pattern == g])
    return LevelPatterns(tuple(rows), tuple(levels), columns)


@dataclass(frozen=True)
class PatternFit:
    """The profiled fit by patterns: r^2, log|H|, beta, and per row the residual, the
    conditional modes of its level's columns (n, k) and S_i a_i (n, k); u on H's columns;
    X' V^{-1} X (p x p) and C_X = H^{-1} A' W X (q x p), which REML's terms read."""

    pwrss: float
    logdet: float
    beta: FloatArray
    resid: FloatArray
    row_modes: FloatArray
    clique: FloatArray
    u: FloatArray
    xvx: FloatArray
    C_X: FloatArray


def profiled_fit(patterns: LevelPatterns, values: FloatArray, X: FloatArray,
                 y: FloatArray, w: FloatArray) -> PatternFit | None:
    """The fit at A's row values, X, the response y (offset removed) and weights w (module
    docstring); None when X' V^{-1} X is singular."""
    n, k = values.shape
    p = X.shape[1]
    solved = []
    xvx = np.zeros((p, p))
    xvy = np.zeros(p)
    logdet = 0.0
    for rows in patterns.rows:
        first = rows[0]
        A, Xg, wg = values[first], X[first], w[first]
        Y = y[rows]
        WA = wg[:, None] * A
        D = np.eye(k) + A.T @ WA
        lower = np.linalg.cholesky(D)
        logdet += rows.shape[0] * 2.0 * float(np.sum(np.log(np.diagonal(lower))))
        D_inv = np.linalg.inv(D)
        WX = wg[:, None] * Xg
        AWX = A.T @ WX
        xvx += rows.shape[0] * (Xg.T @ WX - AWX.T @ D_inv @ AWX)
        ysum = Y.sum(axis=0)
        xvy += WX.T @ ysum - AWX.T @ (D_inv @ (WA.T @ ysum))
        solved.append((A, Xg, wg, Y, WA, D_inv, D_inv @ AWX))
    try:
        beta = np.linalg.solve(xvx, xvy) if p else np.zeros(0)
    except np.linalg.LinAlgError:
        return None
    resid = np.empty(n)
    row_modes = np.empty((n, k))
    clique = np.empty((n, k))
    u = np.zeros(patterns.columns.size)  # a level without rows keeps 0
    C_X = np.zeros((patterns.columns.size, p))
    pwrss = 0.0
    for rows, levels, (A, Xg, wg, Y, WA, D_inv, level_C_X) in zip(
            patterns.rows, patterns.levels, solved, strict=True):
        R = Y - Xg @ beta
        modes = R @ WA @ D_inv  # (c_g, k)
        left = R - modes @ A.T
        pwrss += float(np.sum(wg * left**2) + np.sum(modes**2))
        resid[rows] = left
        row_modes[rows] = modes[:, None, :]
        clique[rows] = (A @ D_inv)[None, :, :]
        u[patterns.columns[levels]] = modes
        C_X[patterns.columns[levels]] = level_C_X[None, :, :]
    return PatternFit(pwrss, logdet, beta, resid, row_modes, clique, u, xvx, C_X)
