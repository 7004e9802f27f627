"""Entries of H^{-1} on the pattern of its Cholesky factor (a selected inverse).

With P H P' = L L' (CHOLMOD's fill-reducing permutation P), Z = (L L')^{-1} restricted to
the pattern of L follows from the Takahashi recursion, column by column from the last:

    Z_ij = -(1 / L_jj) sum_{k > j} L_kj Z_ik        (i > j in the pattern of column j)
    Z_jj = 1 / L_jj^2 - (1 / L_jj) sum_{k > j} L_kj Z_kj

Every Z_ik it needs lies in the pattern of L (rows of column j form a clique of later
columns). Done by supernodes (columns sharing their rows below a dense diagonal block), the
recursion is dense matrix algebra on each: about the cost of one numeric factorization. The entries
of H^{-1} inside the clique of every row of A (``RowCliqueInverse``) are gathered from it.

The recursion is compiled with numba (the ``fast`` extra). Without numba, H^{-1} is formed
densely from L, which is as fast for small q and is used up to ``DENSE_LIMIT`` columns.
"""

from __future__ import annotations

import importlib.util
from functools import cache

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import solve_triangular

from semgalamm.errors import UnsupportedError

#: numba is installed (imported on first use: it takes 0.3 s).
HAS_NUMBA = importlib.util.find_spec("numba") is not None

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: Largest q for which the selected inverse may be taken from a dense inverse (without numba).
DENSE_LIMIT = 4000


def _supernodes(indptr: IntArray, indices: IntArray) -> IntArray:
    """Starts of the supernodes of L (and q at the end): runs of columns j, j + 1, ... where
    column j + 1 has the structure of column j without row j (a dense diagonal block above
    rows shared by all its columns)."""
    counts = np.diff(indptr)
    q = counts.size
    first_below = indices[np.minimum(indptr[:-1] + 1, indices.size - 1)]
    joins = (counts[:-1] == counts[1:] + 1) & (counts[:-1] > 1) & \
        (first_below[:-1] == np.arange(1, q))
    return np.concatenate([[0], np.flatnonzero(~joins) + 1, [q]]).astype(np.int64)


def _takahashi(indptr: IntArray, indices: IntArray, data: FloatArray,
               supernodes: IntArray) -> FloatArray:
    """Z on the pattern of the lower CSC factor L (sorted rows, diagonal first), one
    supernode at a time from the last: with J its columns and R the rows below them,

        Z_RJ = -Z_RR L_RJ L_JJ^{-1},    Z_JJ = L_JJ^{-T} L_JJ^{-1} - L_JJ^{-T} L_RJ' Z_RJ
    """
    z = np.zeros_like(data)
    for s in range(supernodes.size - 2, -1, -1):
        j0, j1 = supernodes[s], supernodes[s + 1]
        if j1 - j0 == 1:
            _column(j0, indptr, indices, data, z)
        else:
            _supernode(j0, j1, indptr, indices, data, z)
    return z


def _column(j: int, indptr: IntArray, indices: IntArray, data: FloatArray,
            z: FloatArray) -> None:
    """The recursion for one column: Z_ij = -(1 / L_jj) sum_k L_kj Z_ik, then Z_jj. Each pair
    (i, k) of its rows is visited once, walking column min(i, k) of Z (whose rows contain
    those of column j below it)."""
    start, stop = indptr[j], indptr[j + 1]
    m = stop - start - 1
    total = np.zeros(m)
    for b in range(m):
        k = indices[start + 1 + b]
        lkj = data[start + 1 + b]
        p = indptr[k]
        total[b] += lkj * z[p]  # Z_kk
        for a in range(b + 1, m):
            i = indices[start + 1 + a]
            while indices[p] < i:
                p += 1
            total[a] += lkj * z[p]  # Z_ik L_kj for row i
            total[b] += data[start + 1 + a] * z[p]  # Z_ki L_ij for row k
    ljj = data[start]
    off = 0.0
    for a in range(m):
        z[start + 1 + a] = -total[a] / ljj
        off += data[start + 1 + a] * z[start + 1 + a]
    z[start] = 1.0 / (ljj * ljj) - off / ljj


def _supernode(j0: int, j1: int, indptr: IntArray, indices: IntArray, data: FloatArray,
               z: FloatArray) -> None:
    """The recursion for the columns J = j0..j1-1 sharing the rows R below them, in dense
    blocks: Z_RJ = -Z_RR L_RJ L_JJ^{-1}, Z_JJ = L_JJ^{-T} (L_JJ^{-1} - L_RJ' Z_RJ)."""
    w = j1 - j0
    r = indptr[j0 + 1] - indptr[j0] - w
    rows = indices[indptr[j0] + w : indptr[j0 + 1]]
    diag = np.zeros((w, w))
    below = np.empty((r, w))
    for t in range(w):
        start = indptr[j0 + t]
        for v in range(t, w):
            diag[v, t] = data[start + v - t]
        for a in range(r):
            below[a, t] = data[start + w - t + a]
    if w <= SMALL_BLOCK:
        inverse = _lower_inverse(diag)
        z_jj = np.zeros((w, w))
        for a in range(w):
            for b in range(w):
                for c in range(max(a, b), w):
                    z_jj[a, b] += inverse[c, a] * inverse[c, b]
    else:
        inverse = np.ascontiguousarray(np.linalg.inv(diag))
        z_jj = np.ascontiguousarray(inverse.T) @ inverse
    z_rj = np.zeros((r, w))
    if r > 0:
        z_rr = np.empty((r, r))
        for a in range(r):
            p = indptr[rows[a]]
            z_rr[a, a] = z[p]
            for b in range(a + 1, r):  # rows[b] is in column rows[a]: walk to it
                while indices[p] < rows[b]:
                    p += 1
                z_rr[a, b] = z_rr[b, a] = z[p]
        z_rj = -(z_rr @ below) @ inverse
        z_jj -= np.ascontiguousarray(inverse.T) @ (np.ascontiguousarray(below.T) @ z_rj)
    for t in range(w):
        start = indptr[j0 + t]
        for v in range(t, w):
            z[start + v - t] = z_jj[v, t]
        for a in range(r):
            z[start + w - t + a] = z_rj[a, t]


#: Diagonal blocks up to this width are inverted by loops: a LAPACK call from compiled code
#: costs more than the arithmetic (HolzingerSwineford's 301 blocks of 3: 0.29 -> 0.05 ms).
SMALL_BLOCK = 16


def _lower_inverse(lower: FloatArray) -> FloatArray:
    """The inverse of a lower-triangular matrix by forward substitution (lower triangular)."""
    w = lower.shape[0]
    out = np.zeros((w, w))
    for i in range(w):
        out[i, i] = 1.0 / lower[i, i]
        for j in range(i):
            total = 0.0
            for k in range(j, i):
                total += lower[i, k] * out[k, j]
            out[i, j] = -total / lower[i, i]
    return out


@cache
def _compiled_takahashi():
    """Compile the recursion (cached on disk by numba: compiled once per installation)."""
    import numba

    global _column, _supernode, _lower_inverse
    _column, _supernode, _lower_inverse = (
        numba.njit(cache=True)(f) for f in (_column, _supernode, _lower_inverse))
    return numba.njit(cache=True)(_takahashi)


def selected_inverse(L: sp.csc_matrix, supernodes: IntArray | None = None) -> FloatArray:
    """Values of (L L')^{-1} on the pattern of L (L lower triangular CSC, sorted indices);
    ``supernodes``: those of L's pattern when known (``RowCliqueInverse.supernodes``)."""
    if HAS_NUMBA:  # L's own int32 indices: an int64 copy would cost 8 bytes per nonzero
        if supernodes is None:
            supernodes = _supernodes(L.indptr.astype(np.int64), L.indices.astype(np.int64))
        return _compiled_takahashi()(L.indptr, L.indices, L.data, supernodes)
    q = L.shape[0]
    if q > DENSE_LIMIT:
        raise UnsupportedError(
            f"The exact gradient of a model with {q} random effects needs numba (a dense "
            "inverse would be too slow): pip install 'semgalamm[fast]'.")
    dense = solve_triangular(L.toarray(), np.eye(q), lower=True)
    inverse = dense.T @ dense
    cols = np.repeat(np.arange(q), np.diff(L.indptr))
    return inverse[L.indices, cols]


#: Rows of A handled at once when the (n, K, K) tables are built or gathered: the int64 and
#: float64 temporaries of a chunk stay a few MB instead of ~400 bytes per row of A.
ROW_CHUNK = 1 << 15


class RowCliqueInverse:
    """Gathers S_i = H^{-1}[c_i, c_i] (K x K per row i of A, c_i its columns) from the
    selected inverse on the pattern of L, for one fixed symbolic factorization."""

    def __init__(self, columns: IntArray, permutation: IntArray, L: sp.csc_matrix) -> None:
        q = L.shape[0]
        inverse_perm = np.empty(q, dtype=np.int64)
        inverse_perm[permutation] = np.arange(q)
        keys = np.repeat(np.arange(q, dtype=np.int64), np.diff(L.indptr)) * q + L.indices
        n, K = columns.shape
        #: (n, K, K) positions in the selected inverse, int32 when they fit (half the memory)
        self.position = np.empty((n, K, K), dtype=np.int32 if L.nnz < 2**31 else np.int64)
        for start in range(0, n, ROW_CHUNK):
            rows = slice(start, start + ROW_CHUNK)
            self.position[rows] = _clique_positions(inverse_perm[columns[rows]], keys, q)
        self.nnz = L.nnz
        #: the supernodes of L's pattern (``selected_inverse``)
        self.supernodes = _supernodes(L.indptr.astype(np.int64), L.indices.astype(np.int64))

    def inverse(self, L: sp.csc_matrix) -> FloatArray:
        """The selected inverse of L (its pattern that of this object's)."""
        return selected_inverse(L, self.supernodes)

    def times(self, z: FloatArray, values: FloatArray) -> FloatArray:
        """S_i a_i for every row, (n, K), with z the selected inverse and a_i = values[i]
        (gathered by chunks of rows: the (n, K, K) S_i never exist at once)."""
        out = np.empty_like(values)
        for start in range(0, values.shape[0], ROW_CHUNK):
            rows = slice(start, start + ROW_CHUNK)
            np.einsum("ikl,il->ik", z[self.position[rows]], values[rows], out=out[rows])
        return out


def _clique_positions(c: IntArray, keys: IntArray, q: int) -> IntArray:
    """Positions in L's values (CSC keys column * q + row, sorted) of the pairs of each row's
    permuted columns c (m, K): (m, K, K), entry (k, l) at (max, min) of c_k, c_l."""
    first, second = c[:, :, None], c[:, None, :]
    wanted = np.minimum(first, second) * q + np.maximum(first, second)
    position = np.searchsorted(keys, wanted)
    if not np.array_equal(keys[np.minimum(position, keys.size - 1)], wanted):
        raise AssertionError("a pair of columns of a row of A is not in the pattern of L")
    return position
