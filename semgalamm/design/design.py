"""The product of the design stage: X(lambda), Z(lambda) and what the Laplace engine needs.

Notation (Bates et al. 2015; Sorensen et al. 2023):

    nu = offset + X(lambda) beta + Z(lambda) Lambda_theta u,    u ~ N(0, sigma^2 I) or N(0, I)

``Z(lambda)`` is stored by random-effects block (one block per grouping factor of a random
term). A block with k columns has, for every row i, k base values ``z0[i]`` (1 for an
intercept, a covariate for a slope) placed in the columns of the row's level; a column that
belongs to a latent variable is multiplied by the row's loading on that latent,
ell_k(i) = offset_k(i) + sum_j basis_k[i, j] lambda_j. Columns of X may be multiplied by a row
loading in the same way (a latent's fixed regression, galamm's ``sl()``). Loadings only change
values, never the sparsity pattern.

Regressions among latents, eta = B eta + h(w) + zeta, give eta = (I - B)^{-1} (h(w) + zeta):
every place that multiplies by "the row's loading on latent k" uses the effective loadings
ell (I - B)^{-1} instead (``LoadingMap.row_loadings``), which gives X(lambda, B) and
Z(lambda, B). A row that loads on ``ability`` with ``ability ~ b*climate`` thus gets
b * lambda in climate's columns (of its level, say school), and in climate's h(w) columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from semgalamm.families import RowFamilies

if TYPE_CHECKING:
    import pandas as pd

    from semgalamm.design.smooth_terms import SmoothDesign

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class RandomBlock:
    """One grouping factor of a random term: columns ``(0 + x1 + x2 | group)``.

    Attributes
    ----------
    group: name of the grouping factor ("Subject", "batch:cask").
    levels: level labels, in the order of the block's columns of Z.
    index: level code of every row (n,).
    columns: names of the k columns ("(Intercept)", "Days", or a latent name).
    z0: base values (n, k), before loadings.
    latent: per column, the index of the latent whose row loading multiplies it, or None.
    correlated: unstructured k x k covariance (True) or diagonal (False).
    scalar: one variance for all k columns, T = theta I (the penalized part of a smooth: a
        single level whose k columns are iid, gamm4's ``Xr`` blocks).
    """

    group: str
    levels: tuple[str, ...]
    index: IntArray
    columns: tuple[str, ...]
    z0: FloatArray
    latent: tuple[int | None, ...]
    correlated: bool = True
    scalar: bool = False

    @property
    def k(self) -> int:
        return len(self.columns)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_theta(self) -> int:
        if self.scalar:
            return 1
        return self.k * (self.k + 1) // 2 if self.correlated else self.k

    def theta_names(self) -> list[str]:
        """Names of the elements of the relative Cholesky factor T, lme4's order."""
        if self.scalar:
            return [self.group]
        rows, cols = self._theta_positions()
        return [
            f"{self.group}.{self.columns[r]}" + ("" if r == c else f".{self.columns[c]}")
            for r, c in zip(rows, cols)
        ]

    def _theta_positions(self) -> tuple[IntArray, IntArray]:
        """(row, col) of each theta element in T: the lower triangle column by column (lme4),
        or the diagonal for an uncorrelated block."""
        return self._positions

    @cached_property
    def _positions(self) -> tuple[IntArray, IntArray]:
        if not self.correlated:
            d = np.arange(self.k)
            return d, d
        cols, rows = np.triu_indices(self.k)
        return rows, cols

    def theta_lower(self) -> FloatArray:
        """Lower bounds: 0 for diagonal elements of T, -inf for the others (lme4)."""
        if self.scalar:
            return np.zeros(1)
        rows, cols = self._theta_positions()
        return np.where(rows == cols, 0.0, -np.inf)

    def theta_start(self) -> FloatArray:
        if self.scalar:
            return np.ones(1)
        rows, cols = self._theta_positions()
        return np.where(rows == cols, 1.0, 0.0)

    def factor(self, theta: FloatArray) -> FloatArray:
        """The k x k lower-triangular relative covariance factor T(theta) of this block."""
        if self.scalar:
            return theta[0] * np.eye(self.k)
        T = np.zeros((self.k, self.k))
        T[self._theta_positions()] = theta
        return T


@dataclass(frozen=True)
class StructuralEntry:
    """One entry B[lhs, rhs] (latent indices): the free parameter ``parameter`` (its position
    in lambda) or the fixed ``value``."""

    lhs: int
    rhs: int
    parameter: int | None
    value: float


@dataclass(frozen=True)
class LoadingMap:
    """Row loadings ell_k(i) = offset_k(i) + basis_k[i, :] @ lambda for every latent k, times
    (I - B)^{-1} when latents are regressed on each other.

    ``basis`` is one sparse (n, n_lambda) matrix per latent; ``lambda_names`` name the free
    parameters (loadings, then B entries) and ``lambda_start`` their starting values;
    ``structural`` the entries of B.
    """

    latents: tuple[str, ...]
    offset: tuple[FloatArray, ...]
    basis: tuple[sp.csr_matrix, ...]
    lambda_names: tuple[str, ...]
    lambda_start: FloatArray
    structural: tuple[StructuralEntry, ...] = ()

    def B(self, lam: FloatArray) -> FloatArray:
        """The K x K matrix of regressions among latents (row: the regressed latent)."""
        B = np.zeros((len(self.latents), len(self.latents)))
        for e in self.structural:
            B[e.lhs, e.rhs] += lam[e.parameter] if e.parameter is not None else e.value
        return B

    def total_effects(self, lam: FloatArray) -> FloatArray | None:
        """(I - B)^{-1}, or None when I - B is singular (condition number above 1e12)."""
        M = np.eye(len(self.latents)) - self.B(lam)
        if not np.all(np.isfinite(M)) or np.linalg.cond(M) > 1e12:
            return None
        return np.linalg.inv(M)

    @cached_property
    def _stacked_offset(self) -> FloatArray:
        """The offsets of all latents one after the other, (K n,)."""
        return np.concatenate(self.offset) if self.offset else np.zeros(0)

    @cached_property
    def _stacked_basis(self) -> sp.csr_matrix:
        """The bases of all latents stacked, (K n, n_lambda): E = reshape(offset + this lambda)
        in one sparse product per evaluation."""
        return sp.vstack(self.basis, format="csr") if self.basis else sp.csr_matrix((0, 0))

    @cached_property
    def _stacked_basis_transposed(self) -> sp.csr_matrix:
        """(n_lambda, K n): df/dlambda = this times df/dE stacked by latent."""
        return self._stacked_basis.T.tocsr()

    def lambda_chain(self, grad_raw: FloatArray) -> FloatArray:
        """sum_k basis_k' g_k for g = df/dE (n, K): df/dlambda through the raw loadings."""
        return self._stacked_basis_transposed @ grad_raw.T.ravel()

    def row_loadings(self, lam: FloatArray) -> FloatArray:
        """The effective loadings ell (I - B)^{-1}, an (n, K) array with one column per latent
        (all nan where I - B is singular: an infeasible point)."""
        ell = (self._stacked_offset + self._stacked_basis @ lam).reshape(len(self.offset), -1).T
        if not self.structural:
            return ell
        inverse = self.total_effects(lam)
        if inverse is None:
            return np.full_like(ell, np.nan)
        return ell @ inverse


@dataclass(frozen=True)
class Design:
    """Everything the Laplace engine needs, built once per fit.

    y: response (successes for binomial), trials: binomial trials (1 elsewhere),
    weights: prior weights, offset: known part of nu. X0: fixed-effects base matrix (n, p)
    with ``fixed_names``; ``fixed_latent`` gives, per column, the latent whose row loading
    multiplies it (or None). ``blocks``: the random-effects blocks of Z. ``loadings``: the map
    lambda -> row loadings (None when the model has no latent variables).
    ``dispersion_group``: the residual-variance group of every Gaussian row (-1 for rows of
    families without a dispersion), labelled by ``dispersion_levels`` (the first is the
    reference of the SD ratios) of the grouping ``dispersion_by`` (None: one residual variance).
    ``smooths``: the smooth terms (their columns of X and blocks); ``frame``: the data as the
    design read them (categoricals set), for predictions on new data.
    """

    y: FloatArray
    trials: FloatArray
    weights: FloatArray
    offset: FloatArray
    X0: FloatArray
    fixed_names: tuple[str, ...]
    fixed_latent: tuple[int | None, ...]
    blocks: tuple[RandomBlock, ...]
    families: RowFamilies
    dispersion_group: IntArray
    dispersion_levels: tuple[str, ...]
    loadings: LoadingMap | None = None
    dispersion_by: str | None = None
    smooths: tuple[SmoothDesign, ...] = ()
    frame: pd.DataFrame | None = None

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.X0.shape[1]

    @property
    def q(self) -> int:
        return sum(b.k * b.n_levels for b in self.blocks)

    @property
    def n_dispersion(self) -> int:
        """Number of residual variances (groups of Gaussian rows)."""
        return len(self.dispersion_levels)

    @property
    def n_lambda(self) -> int:
        return 0 if self.loadings is None else len(self.loadings.lambda_names)

    def row_loadings(self, lam: FloatArray) -> FloatArray:
        """Effective row loadings (n, K): the loadings times (I - B)^{-1}."""
        if self.loadings is None:
            return np.ones((self.n, 0))
        return self.loadings.row_loadings(lam)

    def X(self, ell: FloatArray) -> FloatArray:
        """X(lambda): base columns times the row loading of their latent, (n, p)."""
        if not any(k is not None for k in self.fixed_latent):
            return self.X0
        X = self.X0.copy()
        for j, k in enumerate(self.fixed_latent):
            if k is not None:
                X[:, j] *= ell[:, k]
        return X

    def block_values(self, block: RandomBlock, ell: FloatArray) -> FloatArray:
        """Z(lambda)'s nonzero values of one block, (n, k): z0 times row loadings."""
        if not any(k is not None for k in block.latent):
            return block.z0
        z = block.z0.copy()
        for j, k in enumerate(block.latent):
            if k is not None:
                z[:, j] *= ell[:, k]
        return z

    def theta_start(self) -> FloatArray:
        return np.concatenate([b.theta_start() for b in self.blocks] or [np.zeros(0)])

    def theta_lower(self) -> FloatArray:
        return np.concatenate([b.theta_lower() for b in self.blocks] or [np.zeros(0)])

    def theta_names(self) -> list[str]:
        return [name for b in self.blocks for name in b.theta_names()]
