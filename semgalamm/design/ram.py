"""ParameterTable -> RamModel: the matrices of a covariance-structure model (RAM form).

For each block, the variables v = (observed y, latent eta) follow

    v = m + A v + e,   Var(e) = S,

so the implied moments of all variables are Sigma_all = E S E^T and mu_all = E m with
E = (I - A)^-1, and the observed part is Sigma(x) = F Sigma_all F^T, mu(x) = F mu_all (F selects
the observed rows). A loading ``f =~ y`` fills A[y, f], a regression ``y ~ x`` fills A[y, x]
(this is B for latents), ``a ~~ b`` fills S[a, b] and S[b, a], ``a ~1`` fills m[a]. Exact first
derivatives of Sigma and mu with respect to every free parameter come from the same matrices:

    dSigma_all / dA[i, j] = E e_i e_j^T Sigma_all + (.)^T,   dmu_all / dA[i, j] = E e_i mu_all[j]
    dSigma_all / dS[i, j] = E (e_i e_j^T + e_j e_i^T) E^T,    dmu_all / dm[i]   = E e_i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semgalamm.errors import SpecError
from semgalamm.spec.partable import BlockVariables, ParameterTable

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class BlockCells:
    """Where the table's rows sit in one block's A, S and m.

    ``*_rows``: indices of table rows; ``*_i``, ``*_j``: their cells.
    """

    variables: BlockVariables
    names: tuple[str, ...]
    n_observed: int
    a_rows: IntArray
    a_i: IntArray
    a_j: IntArray
    s_rows: IntArray
    s_i: IntArray
    s_j: IntArray
    m_rows: IntArray
    m_i: IntArray

    @property
    def size(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class BlockMoments:
    """Implied moments of one block at a parameter vector, with their derivatives.

    sigma (p, p), mu (p,): observed moments; d_sigma (K, p, p), d_mu (K, p): derivatives by
    free parameter; sigma_all, mu_all, E: moments of all variables and (I - A)^-1.
    """

    sigma: FloatArray
    mu: FloatArray
    d_sigma: FloatArray | None
    d_mu: FloatArray | None
    sigma_all: FloatArray
    mu_all: FloatArray
    E: FloatArray


@dataclass(frozen=True)
class RamModel:
    """The matrix representation of a ParameterTable: a vector of free parameters x gives
    every row's value, and every block's Sigma(x), mu(x) and their derivatives."""

    table: ParameterTable
    blocks: tuple[BlockCells, ...]
    free_index: IntArray  # per row: position in x (0-based) or -1
    fixed_values: FloatArray  # per row: the fixed value (exogenous moments filled in)

    @classmethod
    def create(cls, table: ParameterTable, fixed_values: FloatArray) -> RamModel:
        blocks = []
        for b, variables in enumerate(table.blocks, start=1):
            names = variables.observed + variables.latent
            index = {v: i for i, v in enumerate(names)}
            a, s, m = [], [], []
            for r, row in enumerate(table.rows):
                if row.block != b:
                    continue
                if row.op == "=~":
                    a.append((r, index[row.rhs], index[row.lhs]))
                elif row.op == "~":
                    a.append((r, index[row.lhs], index[row.rhs]))
                elif row.op == "~~":
                    s.append((r, index[row.lhs], index[row.rhs]))
                elif row.op == "~1":
                    m.append((r, index[row.lhs]))

            def cols(items, k):
                return np.array([it[k] for it in items], dtype=np.intp)

            blocks.append(BlockCells(
                variables, names, len(variables.observed),
                cols(a, 0), cols(a, 1), cols(a, 2), cols(s, 0), cols(s, 1), cols(s, 2),
                cols(m, 0), cols(m, 1),
            ))
        free_index = np.array([r.free - 1 for r in table.rows], dtype=np.intp)
        return cls(table, tuple(blocks), free_index, np.asarray(fixed_values, dtype=float))

    @property
    def n_free(self) -> int:
        return self.table.n_free

    def row_values(self, x: FloatArray) -> FloatArray:
        """Every row's value: x where free, the fixed value elsewhere."""
        values = self.fixed_values.copy()
        free = self.free_index >= 0
        values[free] = x[self.free_index[free]]
        return values

    def matrices(self, block: BlockCells, values: FloatArray
                 ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """A, S, m of one block."""
        n = block.size
        A = np.zeros((n, n))
        S = np.zeros((n, n))
        m = np.zeros(n)
        A[block.a_i, block.a_j] = values[block.a_rows]
        S[block.s_i, block.s_j] = values[block.s_rows]
        S[block.s_j, block.s_i] = values[block.s_rows]
        m[block.m_i] = values[block.m_rows]
        return A, S, m

    def moments(self, x: FloatArray, derivatives: bool = True) -> list[BlockMoments]:
        """Sigma(x), mu(x) of every block (and their derivatives by free parameter)."""
        values = self.row_values(x)
        out = []
        for block in self.blocks:
            A, S, m = self.matrices(block, values)
            n = block.size
            try:
                E = np.linalg.inv(np.eye(n) - A)
            except np.linalg.LinAlgError:
                raise SpecError(
                    "I - B is not invertible: the regressions among the variables "
                    f"({_cycle(block, A)}) form a cycle whose effects cancel the identity. "
                    "Change the fixed values or free the coefficients."
                ) from None
            sigma_all = E @ S @ E.T
            mu_all = E @ m
            p = block.n_observed
            d_sigma = d_mu = None
            if derivatives:
                d_sigma, d_mu = self._derivatives(block, E, sigma_all, mu_all)
            out.append(BlockMoments(sigma_all[:p, :p], mu_all[:p], d_sigma, d_mu,
                                    sigma_all, mu_all, E))
        return out

    def _derivatives(self, block: BlockCells, E: FloatArray, sigma_all: FloatArray,
                     mu_all: FloatArray) -> tuple[FloatArray, FloatArray]:
        K = self.n_free
        p = block.n_observed
        Eo = E[:p]  # observed rows of E
        d_sigma = np.zeros((K, p, p))
        d_mu = np.zeros((K, p))
        fa = self.free_index[block.a_rows]
        for k, i, j in zip(fa, block.a_i, block.a_j):
            if k < 0:
                continue
            u = np.outer(Eo[:, i], sigma_all[j, :p])
            d_sigma[k] += u + u.T
            d_mu[k] += Eo[:, i] * mu_all[j]
        fs = self.free_index[block.s_rows]
        for k, i, j in zip(fs, block.s_i, block.s_j):
            if k < 0:
                continue
            u = np.outer(Eo[:, i], Eo[:, j])
            d_sigma[k] += u if i == j else u + u.T
        fm = self.free_index[block.m_rows]
        for k, i in zip(fm, block.m_i):
            if k >= 0:
                d_mu[k] += Eo[:, i]
        return d_sigma, d_mu


def _cycle(block: BlockCells, A: FloatArray) -> str:
    """The variables involved in a directed cycle of A, for messages."""
    nonzero = np.abs(A) > 0
    names = [block.names[i] for i in range(block.size)
             if nonzero[i].any() and nonzero[:, i].any()]
    return ", ".join(names) if names else "none"
