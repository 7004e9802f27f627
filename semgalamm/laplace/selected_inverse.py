"""Entries of H^{-1} on the pattern of its Cholesky factor (a selected inverse).

With P H P' = L L' (CHOLMOD's fill-reducing permutation P), Z = (L L')^{-1} restricted to
the pattern of L follows from the Takahashi recursion, column by column from the last:

    Z_ij = -(1 / L_jj) sum_{k > j} L_kj Z_ik        (i > j in the pattern of column j)
    Z_jj = 1 / L_jj^2 - (1 / L_jj) sum_{k > j} L_kj Z_kj

Every Z_ik it needs lies in the pattern of L (rows of column j form a clique of later
columns), so the cost is sum_j |L_*j|^2 lookups: about one numeric factorization. The entries
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


def _takahashi(indptr: IntArray, indices: IntArray, data: FloatArray) -> FloatArray:
    """Z on the pattern of the lower CSC factor L (sorted rows, diagonal first)."""
    q = indptr.size - 1
    z = np.zeros_like(data)
    for j in range(q - 1, -1, -1):
        start, stop = indptr[j], indptr[j + 1]
        ljj = data[start]
        for a in range(start + 1, stop):
            i = indices[a]
            total = 0.0
            for b in range(start + 1, stop):
                k = indices[b]
                col, row = (i, k) if i < k else (k, i)
                lo, hi = indptr[col], indptr[col + 1]
                while lo < hi:  # binary search for ``row`` in column ``col``
                    mid = (lo + hi) // 2
                    if indices[mid] < row:
                        lo = mid + 1
                    else:
                        hi = mid
                total += data[b] * z[lo]
            z[a] = -total / ljj
        off = 0.0
        for a in range(start + 1, stop):
            off += data[a] * z[a]
        z[start] = 1.0 / (ljj * ljj) - off / ljj
    return z


@cache
def _compiled_takahashi():
    import numba

    return numba.njit(cache=True)(_takahashi)


def selected_inverse(L: sp.csc_matrix) -> FloatArray:
    """Values of (L L')^{-1} on the pattern of L (L lower triangular CSC, sorted indices)."""
    if HAS_NUMBA:
        return _compiled_takahashi()(L.indptr.astype(np.int64), L.indices.astype(np.int64),
                                     L.data)
    q = L.shape[0]
    if q > DENSE_LIMIT:
        raise UnsupportedError(
            f"The exact gradient of a model with {q} random effects needs numba (a dense "
            "inverse would be too slow): pip install 'semgalamm[fast]'.")
    dense = solve_triangular(L.toarray(), np.eye(q), lower=True)
    inverse = dense.T @ dense
    cols = np.repeat(np.arange(q), np.diff(L.indptr))
    return inverse[L.indices, cols]


class RowCliqueInverse:
    """Gathers S_i = H^{-1}[c_i, c_i] (K x K per row i of A, c_i its columns) from the
    selected inverse on the pattern of L, for one fixed symbolic factorization."""

    def __init__(self, columns: IntArray, permutation: IntArray, L: sp.csc_matrix) -> None:
        q = L.shape[0]
        inverse_perm = np.empty(q, dtype=np.int64)
        inverse_perm[permutation] = np.arange(q)
        c = inverse_perm[columns]  # (n, K) positions in the permuted order
        first = c[:, :, None]
        second = c[:, None, :]
        col = np.minimum(first, second)
        row = np.maximum(first, second)
        keys = np.repeat(np.arange(q, dtype=np.int64), np.diff(L.indptr)) * q + L.indices
        wanted = col * q + row
        self.position = np.searchsorted(keys, wanted)
        if not np.array_equal(keys[np.minimum(self.position, keys.size - 1)], wanted):
            raise AssertionError("a pair of columns of a row of A is not in the pattern of L")
        self.nnz = L.nnz

    def times(self, z: FloatArray, values: FloatArray) -> FloatArray:
        """S_i a_i for every row, (n, K), with z the selected inverse and a_i = values[i]."""
        return np.einsum("ikl,il->ik", z[self.position], values)
