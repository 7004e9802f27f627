"""Spline bases with penalties, built as R's mgcv builds them.

Each constructor returns a basis object (the state needed to evaluate the basis at new covariate
values) together with the model matrix ``X`` for the data and the penalty matrices ``S``.  No
identifiability constraint is applied here and penalties are not rescaled; that is the job of
:mod:`semgalamm.design.smooths`, which mirrors ``mgcv::smoothCon``.

The algorithms follow mgcv 1.8-41 (Wood, 2003, 2017):

* ``tp``: thin plate regression spline.  The full thin plate spline on the unique covariate
  points is truncated to the ``k`` eigenvectors of the radial matrix ``E`` with the largest
  eigenvalues in magnitude, the polynomial side condition ``Tᵀ U δ = 0`` is absorbed by a
  Householder QT factorization (mgcv's ``QT`` convention), and each column is rescaled to unit
  root mean square.
* ``cr``: cubic regression spline with ``k`` knots at quantiles of the unique covariate values,
  parameterized by the function values at the knots (natural spline, second derivatives zero at
  the end knots).
* ``t2`` margins: a margin is reparameterized by :func:`natural_parameterization` (mgcv's
  ``nat.param(type = 3, unit.fnorm = TRUE)``) so that its penalty becomes a partial identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse.linalg
from numpy.typing import NDArray

from semgalamm.design.r_random import RRandom

FloatArray = NDArray[np.float64]

#: mgcv's limit on the number of unique covariate points used as ``tp`` knots (beyond it, a
#: random subset drawn as R's ``set.seed(1); sample()`` does).
MAX_TP_KNOTS = 2000


# ---------------------------------------------------------------------------------------------
# R-compatible helpers
# ---------------------------------------------------------------------------------------------


def r_quantile(values: FloatArray, probs: FloatArray) -> FloatArray:
    """Quantiles as R's ``quantile(type = 7)`` computes them, rounding included."""
    x = np.sort(np.asarray(values, dtype=float))
    index = (x.size - 1) * np.asarray(probs, dtype=float)
    lo = np.floor(index).astype(int)
    hi = np.ceil(index).astype(int)
    q = x[lo].copy()
    h = index - lo
    mask = (index > lo) & (x[hi] != q)
    q[mask] = (1.0 - h[mask]) * q[mask] + h[mask] * x[hi[mask]]
    return q


def r_seq01(length: int) -> FloatArray:
    """R's ``seq(0, 1, length.out = length)``."""
    if length == 1:
        return np.zeros(1)
    by = 1.0 / (length - 1)
    inner = np.arange(1, length - 1) * by
    return np.concatenate([[0.0], inner, [1.0]])


def householder_qr_null(C: FloatArray) -> FloatArray:
    """Null-space basis ``Z`` of ``C`` (``q × p``) from R's LINPACK QR of ``Cᵀ``.

    R's ``qr(t(C))`` (LINPACK ``dqrdc2``, no pivoting needed for full-rank ``C``) factors
    ``Cᵀ = Q R`` with ``Q = H₁ ⋯ H_q``; mgcv absorbs ``C γ = 0`` by ``γ = Z γ'`` with ``Z`` the
    last ``p − q`` columns of ``Q``.  Returns ``Z`` (``p × (p − q)``).
    """
    A = np.array(C, dtype=float).T.copy()
    p, q = A.shape
    Q = np.eye(p)
    for col in range(q):
        x = A[col:, col]
        norm = float(np.linalg.norm(x))
        if norm == 0.0:
            continue
        if x[0] != 0.0:
            norm = math.copysign(norm, x[0])
        u = x / norm
        u[0] += 1.0
        # reflection H = I - u uᵀ / u₀ acting on rows col: of A and of Qᵀ
        A[col:, col + 1 :] -= np.outer(u, u @ A[col:, col + 1 :]) / u[0]
        A[col:, col] = 0.0
        A[col, col] = -norm
        Q[:, col:] -= np.outer(Q[:, col:] @ u, u) / u[0]
    return Q[:, q:]


# ---------------------------------------------------------------------------------------------
# thin plate regression splines
# ---------------------------------------------------------------------------------------------


def tp_default_order(d: int, m: int | None) -> int:
    """Penalty order ``m``; an invalid ``2m ≤ d`` becomes the smallest ``m`` with ``2m > d + 1``."""
    if m is None or 2 * m <= d:
        m = 1
        while 2 * m < d + 2:
            m += 1
    return m


def tp_poly_powers(d: int, m: int) -> NDArray[np.int64]:
    """Exponents (``M × d``) of the polynomials spanning the penalty null space, in mgcv's order."""
    M = math.comb(m + d - 1, d)
    powers = np.zeros((M, d), dtype=np.int64)
    index = [0] * d
    for i in range(M):
        powers[i] = index
        total = sum(index)
        if total < m - 1:
            index[0] += 1
        else:
            total -= index[0]
            index[0] = 0
            for j in range(1, d):
                index[j] += 1
                total += 1
                if total == m:
                    total -= index[j]
                    index[j] = 0
                else:
                    break
    return powers


def _eta_constant(m: int, d: int) -> float:
    """Constant of the thin plate radial function ``η_{md}`` (mgcv's ``eta_const``)."""
    if d % 2 == 0:
        f = -1.0 if (m + 1 + d // 2) % 2 else 1.0
        f /= 2.0 ** (2 * m - 1) * math.pi ** (d // 2)
        f /= math.factorial(m - 1) * math.factorial(m - d // 2)
        return f
    f = 1.0
    for i in range(m - (d - 1) // 2):
        f /= -0.5 - i
    f /= 4.0**m * math.pi ** (d // 2) * math.factorial(m - 1)
    return f


def tp_radial(sq_dist: FloatArray, m: int, d: int) -> FloatArray:
    """Radial function ``η_{md}(r)`` evaluated at squared distances ``r²``; zero at ``r = 0``."""
    c = _eta_constant(m, d)
    r2 = np.asarray(sq_dist, dtype=float)
    out = np.zeros_like(r2)
    pos = r2 > 0
    if d % 2 == 0:
        out[pos] = c * 0.5 * np.log(r2[pos]) * r2[pos] ** (m - d // 2)
    else:
        out[pos] = c * r2[pos] ** (m - d // 2 - 1) * np.sqrt(r2[pos])
    return out


def _tp_poly(x: FloatArray, powers: NDArray[np.int64]) -> FloatArray:
    """Null-space polynomial matrix ``T`` (``n × M``)."""
    return np.prod(x[:, None, :] ** powers[None, :, :], axis=2)


def _mgcv_qt(A: FloatArray) -> FloatArray:
    """Orthogonal ``Q`` with ``A Q = [0, B]`` built from mgcv's ``QT`` Householder sequence."""
    A = np.array(A, dtype=float)
    r, c = A.shape
    Q = np.eye(c)
    for i in range(r):
        p = A[i, : c - i].copy()
        scale = np.max(np.abs(p))
        if scale == 0.0:
            continue
        p /= scale
        lsq = float(np.sqrt(p @ p))
        if p[-1] < 0.0:
            lsq = -lsq
        p[-1] += lsq
        u = np.zeros(c)
        u[: c - i] = p * np.sqrt(1.0 / (lsq * p[-1]))
        A -= np.outer(A @ u, u)
        Q -= np.outer(Q @ u, u)
    return Q


@dataclass(frozen=True)
class TprsBasis:
    """State of a thin plate regression spline basis (mgcv's ``tprs.smooth``).

    Attributes
    ----------
    shift : ndarray (d,)
        Covariate means subtracted before evaluation.
    knots : ndarray (nu, d)
        Unique (shifted) covariate points, the knots of the full spline.
    UZ : ndarray (nu + M, k)
        Map from the truncated coefficients to the full spline coefficients ``[δ; α]``.
    m : int
        Penalty order.
    powers : ndarray (M, d)
        Polynomial exponents of the null space.
    """

    shift: FloatArray
    knots: FloatArray
    UZ: FloatArray
    m: int
    powers: NDArray[np.int64]

    def evaluate(self, x: FloatArray) -> FloatArray:
        """Basis matrix ``B(x)`` (``n × k``) at covariate rows ``x`` (``n × d``)."""
        xs = np.asarray(x, dtype=float).reshape(len(x), -1) - self.shift
        d = xs.shape[1]
        sq = ((xs[:, None, :] - self.knots[None, :, :]) ** 2).sum(axis=2)
        full = np.hstack([tp_radial(sq, self.m, d), _tp_poly(xs, self.powers)])
        return full @ self.UZ


def _largest_eigenpairs(E: FloatArray, k: int) -> tuple[FloatArray, FloatArray]:
    """Eigenpairs of the symmetric E containing the k of largest magnitude: all of them for a
    small E, else the k found by Lanczos iterations (ARPACK to machine precision), as mgcv
    does for the same k."""
    n = E.shape[0]
    if n <= 4 * k or n <= 200:
        return np.linalg.eigh(E)
    v0 = np.full(n, 1.0 / np.sqrt(n))  # deterministic start
    values, vectors = scipy.sparse.linalg.eigsh(E, k, which="LM", tol=0.0, v0=v0)
    return values, vectors


def tprs_basis(
    x: FloatArray, k: int | None, m: int | None = None
) -> tuple[TprsBasis, FloatArray, FloatArray, int]:
    """Thin plate regression spline basis of rank ``k`` (mgcv ``bs = "tp"``).

    Parameters
    ----------
    x : ndarray (n, d)
        Covariate values.
    k : int or None
        Basis dimension; ``None`` gives mgcv's default ``M + 8`` (``d = 1``), ``M + 27``
        (``d = 2``) or ``M + 100``, with ``M`` the null space dimension.
    m : int or None
        Penalty order (``None`` gives the smallest ``m`` with ``2m > d + 1``).

    Returns
    -------
    basis, X, S, M
        The basis state, the model matrix ``X`` (``n × k``), the penalty ``S`` (``k × k``) and the
        null space dimension ``M``.
    """
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    n, d = x.shape
    m = tp_default_order(d, m)
    powers = tp_poly_powers(d, m)
    M = powers.shape[0]
    if k is None or k < 0:
        k = M + (8, 27, 100)[min(d, 3) - 1]
    k = max(k, M + 1)
    shift = x.mean(axis=0)
    xs = x - shift
    unique, inverse = np.unique(xs, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    knots = unique
    if unique.shape[0] > MAX_TP_KNOTS:  # mgcv: a random subset, set.seed(1) as in R
        knots = unique[RRandom(1).sample(unique.shape[0], MAX_TP_KNOTS) - 1]
    nu = knots.shape[0]
    if nu < k:
        raise ValueError(
            f"a 'tp' smooth has {nu} unique covariate points, fewer than k = {k} basis functions"
        )
    sq = ((knots[:, None, :] - knots[None, :, :]) ** 2).sum(axis=2)
    E = tp_radial(sq, m, d)
    T = _tp_poly(knots, powers)
    if nu == k:  # all knots kept: no eigen truncation
        U = np.eye(nu)
        EU = E
        UEU = E
    else:
        values, vectors = _largest_eigenpairs(E, k)
        keep = np.sort(np.argsort(-np.abs(values), kind="stable")[:k])[::-1]
        U = vectors[:, keep]  # eigenvalues in descending algebraic order, as mgcv's Lanczos
        EU = U * values[keep]
        UEU = np.diag(values[keep])
    Q = _mgcv_qt(T.T @ U)
    Z = Q[:, : k - M]
    if knots is unique:
        X1 = np.hstack([EU @ Z, T])
    else:  # radial functions of the knots at every unique data point
        E_data = tp_radial(((unique[:, None, :] - knots[None, :, :]) ** 2).sum(axis=2), m, d)
        X1 = np.hstack([E_data @ (U @ Z), _tp_poly(unique, powers)])
    X = X1[inverse]
    S = np.zeros((k, k))
    S[: k - M, : k - M] = Z.T @ UEU @ Z
    UZ = np.zeros((nu + M, k))
    UZ[:nu, : k - M] = U @ Z
    UZ[nu:, k - M :] = np.eye(M)
    w = np.sqrt((X**2).mean(axis=0))
    X = X / w
    UZ = UZ / w
    S = S / np.outer(w, w)
    S = (S + S.T) / 2.0
    return TprsBasis(shift, knots, UZ, m, powers), X, S, M


# ---------------------------------------------------------------------------------------------
# cubic regression splines
# ---------------------------------------------------------------------------------------------


def _cr_matrices(knots: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``F`` (second derivatives at knots = ``F β``) and penalty ``S = Dᵀ B⁻¹ D``."""
    nk = knots.size
    h = np.diff(knots)
    D = np.zeros((nk - 2, nk))
    B = np.zeros((nk - 2, nk - 2))
    for i in range(nk - 2):
        D[i, i] = 1.0 / h[i]
        D[i, i + 2] = 1.0 / h[i + 1]
        D[i, i + 1] = -D[i, i] - D[i, i + 2]
        B[i, i] = (h[i] + h[i + 1]) / 3.0
        if i > 0:
            B[i, i - 1] = B[i - 1, i] = h[i] / 6.0
    BinvD = np.linalg.solve(B, D)
    F = np.zeros((nk, nk))
    F[1:-1] = BinvD
    S = D.T @ BinvD
    return F, (S + S.T) / 2.0


@dataclass(frozen=True)
class CrBasis:
    """State of a cubic regression spline (mgcv's ``cr.smooth``): knots and the map ``F``."""

    knots: FloatArray
    F: FloatArray

    def evaluate(self, x: FloatArray) -> FloatArray:
        """Basis matrix ``B(x)`` (``n × k``); linear extrapolation outside the knot range."""
        x = np.asarray(x, dtype=float).reshape(-1)
        kn, F = self.knots, self.F
        nk = kn.size
        X = np.zeros((x.size, nk))
        rows = np.arange(x.size)
        inside = (x >= kn[0]) & (x <= kn[-1])
        j = np.clip(np.searchsorted(kn, x, side="left") - 1, 0, nk - 2)
        hi = kn[j + 1] - kn[j]
        am = kn[j + 1] - x
        ap = x - kn[j]
        cm = am * (am * am / hi - hi) / 6.0
        cp = ap * (ap * ap / hi - hi) / 6.0
        ins = rows[inside]
        ji = j[inside]
        X[ins] = cm[inside, None] * F[ji] + cp[inside, None] * F[ji + 1]
        X[ins, ji] += am[inside] / hi[inside]
        X[ins, ji + 1] += ap[inside] / hi[inside]
        low = rows[x < kn[0]]
        if low.size:
            h0 = kn[1] - kn[0]
            xik = x[low] - kn[0]
            X[low] = (-xik * h0 / 3.0)[:, None] * F[0] + (-xik * h0 / 6.0)[:, None] * F[1]
            X[low, 0] += 1.0 - xik / h0
            X[low, 1] += xik / h0
        high = rows[x > kn[-1]]
        if high.size:
            h1 = kn[-1] - kn[-2]
            xik = x[high] - kn[-1]
            X[high] = (xik * h1 / 6.0)[:, None] * F[-2] + (xik * h1 / 3.0)[:, None] * F[-1]
            X[high, -2] -= xik / h1
            X[high, -1] += 1.0 + xik / h1
        return X


def cr_basis(x: FloatArray, k: int | None) -> tuple[CrBasis, FloatArray, FloatArray, int]:
    """Cubic regression spline basis with ``k`` knots (mgcv ``bs = "cr"``, default ``k = 10``).

    Returns the basis state, ``X`` (``n × k``), the penalty ``S`` and the null space dimension 2.
    """
    x = np.asarray(x, dtype=float).reshape(-1)
    k = 10 if k is None or k < 0 else max(k, 3)
    xu = np.unique(x)
    if xu.size < k:
        raise ValueError(f"a 'cr' smooth needs at least k = {k} unique covariate values")
    knots = r_quantile(xu, r_seq01(k))
    F, S = _cr_matrices(knots)
    basis = CrBasis(knots, F)
    return basis, basis.evaluate(x), S, 2


# ---------------------------------------------------------------------------------------------
# t2 margins
# ---------------------------------------------------------------------------------------------


def r_symmetric_eigen(A: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Eigen-decomposition, eigenvalues descending, by LAPACK ``dsyevr`` as R's ``eigen()``.

    The same LAPACK driver matters where eigenvalues tie: mgcv's t2 margins depend on which basis
    of the (two-dimensional) penalty null space ``eigen()`` returns, and ``dsyevr`` gives R's.
    """
    values, vectors = scipy.linalg.eigh(A, driver="evr")
    return values[::-1], vectors[:, ::-1]


def natural_parameterization(X: FloatArray, S: FloatArray, rank: int) -> FloatArray:
    """Matrix ``P`` turning a margin's penalty into a partial identity (mgcv ``nat.param`` type 3).

    ``X P`` has penalty ``diag(1, …, 1, 0, …, 0)`` (``rank`` ones, up to one common factor), the
    constant function as first null space column, and penalized and unpenalized column groups
    each scaled to unit mean square.
    """
    p = X.shape[1]
    values, V = r_symmetric_eigen(S)
    E = np.ones(p)
    E[:rank] = np.sqrt(values[:rank])
    XV = X @ V
    col_norm = (XV**2).sum(axis=0) / E**2
    av_norm = col_norm[:rank].mean()
    E[rank:] = np.sqrt(col_norm[rank:] / av_norm)
    P = V / E
    Xp = XV / E
    if rank < p - 1:
        null = np.arange(rank, p)
        Xn = Xp[:, null] - Xp[:, null].mean(axis=0)
        _, um = r_symmetric_eigen(Xn.T @ Xn)
        Xp[:, null[::-1]] = Xp[:, null] @ um
        P[:, null[::-1]] = P[:, null] @ um
    scale = 1.0 / np.sqrt((Xp[:, :rank] ** 2).mean())
    P[:, :rank] *= scale
    Xp[:, :rank] *= scale
    if rank < p:
        scalef = 1.0 / np.sqrt((Xp[:, rank:] ** 2).mean())
        P[:, rank:] *= scalef
    return P


def t2_model_matrix(
    margins: list[FloatArray], ranks: list[int]
) -> tuple[FloatArray, list[int], list[str]]:
    """Row tensor product of reparameterized margins split into separately penalized blocks.

    Follows mgcv's ``t2.model.matrix(full = FALSE)``: each margin ``j`` has range space columns
    ``R_j`` (its first ``ranks[j]`` columns) and null space columns ``N_j``; every product of one
    part per margin is a block, penalized with its own identity penalty unless all parts are null
    space parts (that block, placed last, is unpenalized).

    Returns the matrix, the column counts of the penalized blocks and their labels (``"rn"``…).
    """
    blocks = [margins[0][:, : ranks[0]]]
    labels = ["r"]
    no_null = False
    if ranks[0] < margins[0].shape[1]:
        blocks.append(margins[0][:, ranks[0] :])
        labels.append("n")
    else:
        no_null = True
    for Xm, r in zip(margins[1:], ranks[1:], strict=True):
        Zi = Xm[:, :r]
        has_null = r < Xm.shape[1]
        if not has_null:
            no_null = True
        new_blocks, new_labels = [], []
        for A, lab in zip(blocks, labels, strict=True):
            new_blocks.append(_row_kron(A, Zi))
            new_labels.append(lab + "r")
        if has_null:
            Ni = Xm[:, r:]
            for A, lab in zip(blocks, labels, strict=True):
                new_blocks.append(_row_kron(A, Ni))
                new_labels.append(lab + "n")
        blocks, labels = new_blocks, new_labels
    sub_cols = [b.shape[1] for b in blocks]
    if not no_null:
        sub_cols, labels = sub_cols[:-1], labels[:-1]
    return np.hstack(blocks), sub_cols, labels


def _row_kron(A: FloatArray, B: FloatArray) -> FloatArray:
    """Row-wise Kronecker product, column order as mgcv: ``A[:, j] * B`` for each ``j``."""
    return (A[:, :, None] * B[:, None, :]).reshape(A.shape[0], -1)
