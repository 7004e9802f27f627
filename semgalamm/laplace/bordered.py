"""H = A' D A + I factored as a bordered block-diagonal matrix, for large models whose random
effects are mostly one grouping factor (persons) and a few hundred others (raters, items, a
smooth's penalized part).

Order the columns of H as the levels' columns of the leading grouping factor (k per level, all
its blocks together) and then the r others:

    H = [ D   E ]      D = blockdiag(D_1, ..., D_m),  D_l = L_l L_l'  (k x k)
        [ E'  F ]      W_l = L_l^{-1} E_l,  S = F - sum_l W_l' W_l = L_S L_S'  (r x r)

A row of A touches one level of the leading factor, so D is block diagonal whatever the
design; log|H| = sum_l log|D_l| + log|S|. The factorization, the solves and the entries of
H^{-1} on every row's columns (the selected inverse the exact gradient needs) are one pass over
the levels in level order, each level's rows together:

    (H^{-1})_{ll} = L_l^{-T} (I + W_l S^{-1}_{RR} W_l') L_l^{-1},
    (H^{-1})_{lR} = -L_l^{-T} W_l S^{-1}_{RR}                (R: the border columns of level l)

CHOLMOD's up-looking factorization instead visits, for each border column, every level
connected to it: r sweeps over a factor that outgrows the cache (the scaling benchmark's
1,000,000 rows: 350 ms per factorization against 10 ms at 100,000 rows). Here each level is
read once. Compiled with numba (the ``fast`` extra); without it CHOLMOD is used.

Without a border (one grouping factor: r = 0) H is block diagonal, and numpy factors all its
blocks at once (``BlockDiagonalFactor``), for models of any size. A factorization costs about
what CHOLMOD's does (HolzingerSwineford's CFA in long form, 301 blocks of 3: 0.17 ms against
0.08 ms; a binary IRT model with 25,000 persons: the whole fit 7.2-7.3 s against 7.4-8.4 s),
H^{-1} on the rows' columns less (0.09 ms against 0.21 ms), and neither CHOLMOD's symbolic
analysis nor numba (0.3-0.9 s to load in a new process) is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_solve

from semgalamm.design.design import Design
from semgalamm.laplace.selected_inverse import HAS_NUMBA

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Smallest q for which the bordered factorization replaces CHOLMOD (below it CHOLMOD's
#: factor stays in cache and the two take about the same time).
MIN_COLUMNS = 20_000
#: Largest border r: S is dense (r^3 / 3 per factorization).
MAX_BORDER = 400


@dataclass(frozen=True)
class BorderedPattern:
    """The fixed structure: which slots of a row of A (``RandomEffectsSystem.columns``) are
    the leading factor's, and where each row's border columns sit.

    level: each row's level of the leading factor (n,).
    order, level_ptr: rows sorted by level, level l's rows order[level_ptr[l]:level_ptr[l + 1]].
    lead_slots: the slots of a row in the leading factor's blocks, in the order of the
        level's k columns.
    border_slots: the other slots; border_index (n, len(border_slots)): their border column
        (0..r-1); border_local: their position among their level's border columns.
    border_ptr, border_list: level l's distinct border columns border_list[border_ptr[l]:...].
    lead_columns (m, k), border_columns (r,): the columns of H (A's numbering) of each.
    """

    level: IntArray
    order: IntArray
    level_ptr: IntArray
    lead_slots: IntArray
    border_slots: IntArray
    border_index: IntArray
    border_local: IntArray
    border_ptr: IntArray
    border_list: IntArray
    lead_columns: IntArray
    border_columns: IntArray

    @property
    def k(self) -> int:
        return self.lead_columns.shape[1]

    @property
    def r(self) -> int:
        return self.border_columns.size


def bordered_pattern(design: Design, columns: NDArray[np.intp]) -> BorderedPattern | None:
    """The bordered structure of H for this design, or None where CHOLMOD is the better
    choice: a border (r > 0) with numba absent, q < ``MIN_COLUMNS`` or r > ``MAX_BORDER``.
    Without a border (one grouping factor) H is block diagonal and needs neither."""
    q = design.q
    if not design.blocks:
        return None
    groups: dict[str, list[int]] = {}
    for b, block in enumerate(design.blocks):
        groups.setdefault(block.group, []).append(b)
    # blocks of one group share its levels (row codes); a group whose blocks differ is skipped
    sizes = {}
    for name, members in groups.items():
        first = design.blocks[members[0]]
        if all(np.array_equal(design.blocks[b].index, first.index) for b in members[1:]):
            sizes[name] = sum(design.blocks[b].k for b in members) * first.n_levels
    if not sizes:
        return None
    lead = max(sizes, key=sizes.__getitem__)
    r = q - sizes[lead]
    if r and (not HAS_NUMBA or q < MIN_COLUMNS or r > MAX_BORDER):
        return None
    members = groups[lead]
    index = design.blocks[members[0]].index.astype(np.int64)
    m = design.blocks[members[0]].n_levels

    slot_of_block = np.cumsum([0] + [b.k for b in design.blocks])
    lead_slots = np.concatenate([np.arange(slot_of_block[b], slot_of_block[b + 1])
                                 for b in members])
    border_slots = np.setdiff1d(np.arange(columns.shape[1]), lead_slots)
    k = lead_slots.size

    is_lead = np.zeros(q, dtype=bool)
    column_offset = np.cumsum([0] + [b.k * b.n_levels for b in design.blocks])
    lead_columns = np.empty((m, k), dtype=np.int64)
    position = 0
    for b in members:
        block = design.blocks[b]
        span = column_offset[b] + np.arange(block.k * block.n_levels).reshape(m, block.k)
        lead_columns[:, position:position + block.k] = span
        position += block.k
        is_lead[column_offset[b]:column_offset[b + 1]] = True
    border_columns = np.flatnonzero(~is_lead).astype(np.int64)
    border_number = np.full(q, -1, dtype=np.int64)
    border_number[border_columns] = np.arange(border_columns.size)

    order = np.argsort(index, kind="stable").astype(np.int64)
    level_ptr = np.searchsorted(index[order], np.arange(m + 1)).astype(np.int64)
    border_index = border_number[columns[:, border_slots]].astype(np.int64)
    # each level's distinct border columns: unique (level, border column) pairs
    keys = index[:, None] * max(r, 1) + border_index
    unique_keys, inverse = np.unique(keys.ravel(), return_inverse=True)
    border_list = (unique_keys % max(r, 1)).astype(np.int64)
    border_ptr = np.searchsorted(unique_keys // max(r, 1), np.arange(m + 1)).astype(np.int64)
    border_local = (inverse.reshape(keys.shape) - border_ptr[index][:, None]).astype(np.int64)
    return BorderedPattern(index, order, level_ptr, lead_slots.astype(np.int64),
                           border_slots.astype(np.int64),
                           border_index, border_local, border_ptr, border_list,
                           lead_columns, border_columns)


def factor_for(pattern: BorderedPattern) -> BorderedFactor | BlockDiagonalFactor:
    """The factorization for this pattern: by numpy when H is block diagonal (r = 0)."""
    return BlockDiagonalFactor(pattern) if pattern.r == 0 else BorderedFactor(pattern)


class BlockDiagonalFactor:
    """H = blockdiag(D_1, ..., D_m) (one grouping factor, no border), by numpy over all levels
    at once: D_l from one bincount, then its Cholesky factor (log|H|) and inverse
    (the solves, and the selected inverse: H^{-1} on a row's columns is D_l^{-1} of its level).
    Each D_l = I + sum_i d_i a_i a_i' has eigenvalues >= 1."""

    def __init__(self, pattern: BorderedPattern) -> None:
        self.pattern = pattern
        m, k = pattern.lead_columns.shape
        self._inverse = np.zeros((m, k, k))
        self._logdet = 0.0
        #: the lower entries (a, b) of a block, and where each row's products go in one bincount
        self._entries = np.array([(a, b) for a in range(k) for b in range(a + 1)]).reshape(-1, 2)
        self._keys = (pattern.level[:, None] * len(self._entries)
                      + np.arange(len(self._entries))).ravel()
        #: the columns of H are already level by level (one block): no gather needed
        self._in_order = bool(np.array_equal(pattern.lead_columns.ravel(), np.arange(m * k)))

    def factorize(self, values: FloatArray, d: FloatArray) -> bool:
        m, k = self._inverse.shape[:2]
        first, second = self._entries[:, 0], self._entries[:, 1]
        # no border: a row's slots are its level's k columns; one bincount for all entries
        products = (values[:, first] * d[:, None]) * values[:, second]
        sums = np.bincount(self._keys, weights=products.ravel(),
                           minlength=m * len(first)).reshape(m, -1)
        block = {(a, b): sums[:, e] + (a == b) for e, (a, b) in enumerate(self._entries)}
        if k > SMALL_BLOCK:
            full = np.empty((m, k, k))
            for (a, b), entry in block.items():
                full[:, a, b] = full[:, b, a] = entry
            try:
                lower = np.linalg.cholesky(full)
            except np.linalg.LinAlgError:
                return False
            diagonal = np.diagonal(lower, axis1=1, axis2=2)
            inverse = np.linalg.inv(full)
        else:
            factored = _small_cholesky_inverse(block, k)
            if factored is None:
                return False
            diagonal, inverse = factored
        logdet = 2.0 * float(np.sum(np.log(diagonal)))
        if not np.isfinite(logdet):
            return False
        self._logdet = logdet
        self._inverse = inverse
        return True

    def logdet(self) -> float:
        return self._logdet

    def solve(self, b: FloatArray) -> FloatArray:
        """H^{-1} b for b of shape (q,) or (q, c)."""
        rhs = np.asarray(b, dtype=float)
        matrix = rhs.reshape(rhs.shape[0], -1)
        m, k = self._inverse.shape[:2]
        if self._in_order:
            return (self._inverse @ matrix.reshape(m, k, -1)).reshape(rhs.shape)
        out = np.empty_like(matrix)
        columns = self.pattern.lead_columns
        out[columns] = self._inverse @ matrix[columns]
        return out.reshape(rhs.shape)

    def clique_inverse_times(self, values: FloatArray) -> FloatArray:
        """D_l^{-1} a_i for every row i (l its level), (n, K)."""
        return np.einsum("ikl,il->ik", self._inverse[self.pattern.level], values)


#: Blocks up to this width are factored by loops over their entries, each a vector over all
#: levels (HolzingerSwineford's 301 blocks of 3: the factorization in 0.17 ms against 0.23 ms
#: with LAPACK's batched Cholesky factor and inverse).
SMALL_BLOCK = 6


def _small_cholesky_inverse(block: dict[tuple[int, int], FloatArray], k: int
                            ) -> tuple[FloatArray, FloatArray] | None:
    """The diagonal of L_l and D_l^{-1} for all levels at once, from D's lower entries
    block[a, b] (vectors over the levels), or None where a D_l is not positive definite."""
    lower: dict[tuple[int, int], FloatArray] = {}
    for j in range(k):
        pivot = block[j, j] - sum(lower[j, c] ** 2 for c in range(j))
        if not np.all(pivot > 0):
            return None
        lower[j, j] = np.sqrt(pivot)
        for i in range(j + 1, k):
            lower[i, j] = (block[i, j] - sum(lower[i, c] * lower[j, c] for c in range(j))
                           ) / lower[j, j]
    inv_lower: dict[tuple[int, int], FloatArray] = {}  # L^{-1}, lower triangular
    for i in range(k):
        inv_lower[i, i] = 1.0 / lower[i, i]
        for j in range(i):
            inv_lower[i, j] = -sum(lower[i, c] * inv_lower[c, j] for c in range(j, i)) \
                / lower[i, i]
    m = block[0, 0].size
    inverse = np.empty((m, k, k))  # D^{-1} = L^{-T} L^{-1}
    for a in range(k):
        for b in range(a + 1):
            inverse[:, a, b] = inverse[:, b, a] = sum(inv_lower[c, a] * inv_lower[c, b]
                                                      for c in range(a, k))
    return np.stack([lower[j, j] for j in range(k)], axis=1), inverse


class BorderedFactor:
    """The factorization of H = A' diag(d) A + I on a ``BorderedPattern`` (see the module)."""

    def __init__(self, pattern: BorderedPattern) -> None:
        self.pattern = pattern
        m = pattern.level_ptr.size - 1
        self._lower = np.zeros((m, pattern.k, pattern.k))
        self._w = np.zeros((pattern.border_list.size, pattern.k))
        self._schur: FloatArray = np.zeros((pattern.r, pattern.r))
        self._logdet = 0.0

    def factorize(self, values: FloatArray, d: FloatArray) -> bool:
        """Refactor with A's values (n, K) and weights d; False if H is not positive definite."""
        p = self.pattern
        ok, logdet = _kernels().factor(
            values, d, p.order, p.level_ptr, p.lead_slots, p.border_slots,
            p.border_index, p.border_local, p.border_ptr, p.border_list,
            self._lower, self._w, self._schur)
        if not ok:
            return False
        if p.r:
            try:
                self._schur[:] = np.linalg.cholesky(self._schur)
            except np.linalg.LinAlgError:
                return False
            logdet += 2.0 * float(np.sum(np.log(np.diagonal(self._schur))))
        if not np.isfinite(logdet):
            return False
        self._logdet = logdet
        return True

    def logdet(self) -> float:
        return self._logdet

    def solve(self, b: FloatArray) -> FloatArray:
        """H^{-1} b for b of shape (q,) or (q, c)."""
        p = self.pattern
        rhs = np.asarray(b, dtype=float)
        matrix = rhs.reshape(rhs.shape[0], -1)
        lead = np.ascontiguousarray(matrix[p.lead_columns])  # (m, k, c)
        border = np.ascontiguousarray(matrix[p.border_columns])  # (r, c)
        kernels = _kernels()
        kernels.forward(self._lower, self._w, p.border_ptr, p.border_list, lead, border)
        if p.r:
            border = cho_solve((self._schur, True), border)
        kernels.backward(self._lower, self._w, p.border_ptr, p.border_list, lead, border)
        out = np.empty_like(matrix)
        out[p.lead_columns] = lead
        out[p.border_columns] = border
        return out.reshape(rhs.shape)

    def clique_inverse_times(self, values: FloatArray) -> FloatArray:
        """S_i a_i for every row i, S_i = H^{-1} on row i's columns, (n, K)."""
        p = self.pattern
        border_inverse = (cho_solve((self._schur, True), np.eye(p.r)) if p.r
                          else np.zeros((0, 0)))
        out = np.zeros_like(values)
        _kernels().clique_times(
            values, p.order, p.level_ptr, p.lead_slots, p.border_slots,
            p.border_index, p.border_local, p.border_ptr, p.border_list,
            self._lower, self._w, np.ascontiguousarray(border_inverse), out)
        return out


def _factor(values, d, order, level_ptr, lead_slots, border_slots, border_index,
            border_local, border_ptr, border_list, lower, w, schur):
    """Per level: D_l = I + sum_i d_i a_il a_il', E_l, L_l = chol(D_l), W_l = L_l^{-1} E_l,
    and S = I + sum_i d_i a_iR a_iR' - sum_l W_l' W_l (lower triangle and upper)."""
    k = lead_slots.size
    nb = border_slots.size
    r = schur.shape[0]
    schur[:, :] = 0.0
    for g in range(r):
        schur[g, g] = 1.0
    w[:, :] = 0.0
    logdet = 0.0
    block = np.empty((k, k))
    for level in range(level_ptr.size - 1):
        block[:, :] = 0.0
        for a in range(k):
            block[a, a] = 1.0
        base = border_ptr[level]
        for t in range(level_ptr[level], level_ptr[level + 1]):
            i = order[t]
            di = d[i]
            for a in range(k):
                va = di * values[i, lead_slots[a]]
                for b in range(k):
                    block[a, b] += va * values[i, lead_slots[b]]
                for s in range(nb):
                    w[base + border_local[i, s], a] += va * values[i, border_slots[s]]
            for s in range(nb):
                vs = di * values[i, border_slots[s]]
                g = border_index[i, s]
                for s2 in range(nb):
                    schur[g, border_index[i, s2]] += vs * values[i, border_slots[s2]]
        # Cholesky of the level's block, in place (lower)
        for j in range(k):
            total = block[j, j]
            for c in range(j):
                total -= block[j, c] * block[j, c]
            if not total > 0.0:
                return False, 0.0
            root = np.sqrt(total)
            block[j, j] = root
            logdet += 2.0 * np.log(root)
            for i2 in range(j + 1, k):
                total = block[i2, j]
                for c in range(j):
                    total -= block[i2, c] * block[j, c]
                block[i2, j] = total / root
        for a in range(k):
            for b in range(k):
                lower[level, a, b] = block[a, b] if b <= a else 0.0
        stop = border_ptr[level + 1]
        for e in range(base, stop):  # W_l = L_l^{-1} E_l, column by column
            for a in range(k):
                total = w[e, a]
                for c in range(a):
                    total -= block[a, c] * w[e, c]
                w[e, a] = total / block[a, a]
        for e1 in range(base, stop):
            g1 = border_list[e1]
            for e2 in range(base, stop):
                total = 0.0
                for a in range(k):
                    total += w[e1, a] * w[e2, a]
                schur[g1, border_list[e2]] -= total
    return True, logdet


def _forward(lower, w, border_ptr, border_list, lead, border):
    """lead_l <- L_l^{-1} lead_l; border <- border - sum_l W_l' lead_l (in place)."""
    k = lower.shape[1]
    c = lead.shape[2]
    for level in range(lower.shape[0]):
        for j in range(c):
            for a in range(k):
                total = lead[level, a, j]
                for b in range(a):
                    total -= lower[level, a, b] * lead[level, b, j]
                lead[level, a, j] = total / lower[level, a, a]
        for e in range(border_ptr[level], border_ptr[level + 1]):
            g = border_list[e]
            for j in range(c):
                total = 0.0
                for a in range(k):
                    total += w[e, a] * lead[level, a, j]
                border[g, j] -= total


def _backward(lower, w, border_ptr, border_list, lead, border):
    """lead_l <- L_l^{-T} (lead_l - W_l x_R) with border = x_R (in place)."""
    k = lower.shape[1]
    c = lead.shape[2]
    for level in range(lower.shape[0]):
        for e in range(border_ptr[level], border_ptr[level + 1]):
            g = border_list[e]
            for j in range(c):
                for a in range(k):
                    lead[level, a, j] -= w[e, a] * border[g, j]
        for j in range(c):
            for a in range(k - 1, -1, -1):
                total = lead[level, a, j]
                for b in range(a + 1, k):
                    total -= lower[level, b, a] * lead[level, b, j]
                lead[level, a, j] = total / lower[level, a, a]


def _clique_times(values, order, level_ptr, lead_slots, border_slots, border_index,
                  border_local, border_ptr, border_list, lower, w, border_inverse, out):
    """out_i = H^{-1}[c_i, c_i] a_i, with the level's blocks of H^{-1} (module docstring)."""
    k = lead_slots.size
    nb = border_slots.size
    inv_lower = np.zeros((k, k))
    for level in range(level_ptr.size - 1):
        base, stop = border_ptr[level], border_ptr[level + 1]
        nl = stop - base
        # L_l^{-1}
        inv_lower[:, :] = 0.0
        for i2 in range(k):
            inv_lower[i2, i2] = 1.0 / lower[level, i2, i2]
            for j in range(i2):
                total = 0.0
                for c in range(j, i2):
                    total += lower[level, i2, c] * inv_lower[c, j]
                inv_lower[i2, j] = -total / lower[level, i2, i2]
        # P = W_l S^{-1}_{RR} (k x nl), Q = I + P W_l' (k x k)
        prod = np.zeros((k, nl))
        for e1 in range(nl):
            g1 = border_list[base + e1]
            for e2 in range(nl):
                s = border_inverse[border_list[base + e2], g1]
                for a in range(k):
                    prod[a, e1] += w[base + e2, a] * s
        inner = np.zeros((k, k))
        for a in range(k):
            inner[a, a] = 1.0
            for b in range(k):
                for e in range(nl):
                    inner[a, b] += prod[a, e] * w[base + e, b]
        # (H^{-1})_{ll} = L^{-T} Q L^{-1}; (H^{-1})_{lR} = -L^{-T} P
        half = np.zeros((k, k))  # Q L^{-1}
        for a in range(k):
            for b in range(k):
                total = 0.0
                for c in range(b, k):
                    total += inner[a, c] * inv_lower[c, b]
                half[a, b] = total
        h_ll = np.zeros((k, k))
        for a in range(k):
            for b in range(k):
                total = 0.0
                for c in range(a, k):
                    total += inv_lower[c, a] * half[c, b]
                h_ll[a, b] = total
        h_lr = np.zeros((k, nl))
        for a in range(k):
            for e in range(nl):
                total = 0.0
                for c in range(a, k):
                    total += inv_lower[c, a] * prod[c, e]
                h_lr[a, e] = -total
        for t in range(level_ptr[level], level_ptr[level + 1]):
            i = order[t]
            for a in range(k):
                total = 0.0
                for b in range(k):
                    total += h_ll[a, b] * values[i, lead_slots[b]]
                for s in range(nb):
                    total += h_lr[a, border_local[i, s]] * values[i, border_slots[s]]
                out[i, lead_slots[a]] = total
            for s in range(nb):
                e = border_local[i, s]
                g = border_index[i, s]
                total = 0.0
                for b in range(k):
                    total += h_lr[b, e] * values[i, lead_slots[b]]
                for s2 in range(nb):
                    total += border_inverse[g, border_index[i, s2]] * values[i, border_slots[s2]]
                out[i, border_slots[s]] = total


@dataclass(frozen=True)
class _Kernels:
    factor: object
    forward: object
    backward: object
    clique_times: object


@cache
def _kernels() -> _Kernels:
    """The kernels compiled by numba (cached on disk: compiled once per installation)."""
    import numba

    return _Kernels(*(numba.njit(cache=True)(f)
                      for f in (_factor, _forward, _backward, _clique_times)))
