"""Sufficient statistics of clustered data for two-level covariance-structure models.

Rows i of cluster j carry the within-level variables y_ij (every variable of the ``level: 1``
block, those also at level 2 included) and the cluster carries the between-only variables z_j
(variables of the ``level: 2`` block only; constant within a cluster). The two-level normal
likelihood depends on the data only through

* the pooled within-cluster scatter W = sum_j sum_i (y_ij - ybar_j)(y_ij - ybar_j)^T, with
  N - J degrees of freedom;
* for every cluster size n, the count of clusters of that size and the mean and covariance
  (divisor: the count) of u_j = (ybar_j, z_j) over those clusters.

The same pass keeps what lavaan's sample statistics provide for starts and for fixed
exogenous covariates (fixed.x): the total covariance of the within variables (divisor N) and
the covariance of the cluster means (divisor J).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semgalamm.errors import DataError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class SizeClass:
    """The clusters of one size: ``size`` rows each, ``count`` of them; ``mean`` (q,) and
    ``cov`` (q, q, divisor ``count``) of u_j = (ybar_j, z_j) over them."""

    size: int
    count: int
    mean: FloatArray
    cov: FloatArray


@dataclass(frozen=True)
class ClusterSample:
    """Two-level sample statistics of one group.

    ``within``: the level-1 variables (y part of u); ``between``: the between-only variables
    (z part of u). ``cluster_means`` (J, q) holds u_j for every cluster, ``sizes`` (J,) n_j.
    """

    label: str
    within: tuple[str, ...]
    between: tuple[str, ...]
    n: int
    n_clusters: int
    sizes: IntArray
    within_scatter: FloatArray
    classes: tuple[SizeClass, ...]
    cluster_means: FloatArray
    total_mean: FloatArray
    total_cov: FloatArray

    @property
    def p_within(self) -> int:
        return len(self.within)

    @property
    def pooled_within(self) -> FloatArray:
        """W / (N - J), lavaan's S.PW."""
        return self.within_scatter / max(self.n - self.n_clusters, 1)

    @property
    def between_cov(self) -> FloatArray:
        """Covariance of u_j over the clusters (divisor J), unweighted."""
        u = self.cluster_means - self.cluster_means.mean(axis=0)
        return u.T @ u / self.n_clusters

    def between_moment_estimate(self) -> FloatArray:
        """A moment estimate of the between covariance of u (lavaan's start): for the y part
        (S_B - S_PW) / c with S_B the size-weighted covariance of the cluster means (divisor
        J - 1) and c = (N - sum n_j^2 / N) / (J - 1); the z part is the covariance of z_j."""
        p = self.p_within
        N, J = self.n, self.n_clusters
        ybar = self.cluster_means[:, :p]
        centred = ybar - self.total_mean
        s_b = (centred * self.sizes[:, None]).T @ centred / max(J - 1, 1)
        c = (N - float(np.sum(self.sizes.astype(float) ** 2)) / N) / max(J - 1, 1)
        out = self.between_cov.copy()
        out[:p, :p] = (s_b - self.pooled_within) / c if c > 0 else s_b
        return out


def cluster_sample(label: str, within_values: FloatArray, between_values: FloatArray,
                   cluster_codes: IntArray, within: tuple[str, ...],
                   between: tuple[str, ...]) -> ClusterSample:
    """Statistics of complete rows. ``within_values`` (N, p1), ``between_values`` (N, pz)
    (one value per cluster, repeated on its rows), ``cluster_codes`` (N,) integer codes."""
    _, codes, sizes = np.unique(cluster_codes, return_inverse=True, return_counts=True)
    codes = codes.ravel()
    N, p = within_values.shape
    J = len(sizes)
    sums = np.zeros((J, p))
    np.add.at(sums, codes, within_values)
    ybar = sums / sizes[:, None]
    deviations = within_values - ybar[codes]
    scatter = deviations.T @ deviations
    z_sums = np.zeros((J, between_values.shape[1]))
    np.add.at(z_sums, codes, between_values)
    zbar = z_sums / sizes[:, None]
    if between_values.shape[1]:
        spread = np.abs(between_values - zbar[codes]).max(axis=0)
        scale = np.maximum(np.abs(zbar).max(axis=0), 1.0)
        varying = [v for v, s, c in zip(between, spread, scale) if s > 1e-8 * c]
        if varying:
            raise DataError(
                f"The variables {', '.join(repr(v) for v in varying)} appear only in the "
                "'level: 2' block, so they must be constant within each cluster, but they "
                "vary within clusters. Add them to the 'level: 1' block (their within part is "
                "then modelled too), or use their cluster means."
            )
    u = np.hstack([ybar, zbar])
    classes = []
    for size in np.unique(sizes):
        rows = u[sizes == size]
        mean = rows.mean(axis=0)
        centred = rows - mean
        classes.append(SizeClass(int(size), len(rows), mean, centred.T @ centred / len(rows)))
    total_mean = within_values.mean(axis=0)
    centred = within_values - total_mean
    return ClusterSample(label, within, between, N, J, sizes.astype(np.intp), scatter,
                         tuple(classes), u, total_mean, centred.T @ centred / N)
