"""The two-level normal likelihood (lavaan's ``cluster=`` with ``level: 1`` / ``level: 2``),
its exact gradient and expected information, the saturated (h1) and baseline models, and
lavaan's fit measures for two levels.

Model. Row i of cluster j (n_j rows) has the within-level variables y_ij (the ``level: 1``
block's observed variables); the cluster has the between-only variables z_j (observed only in
the ``level: 2`` block)::

    y_ij = mu_y + b_j + w_ij,   w_ij ~ N(0, Sigma_W),   (b_j, z_j) ~ N((0, mu_z), Sigma_B~)

Sigma_W is the level-1 block's implied covariance. Sigma_B~ is the level-2 block's implied
covariance placed on u = (y, z): a variable of both levels takes its between (co)variances
from level 2; a within-only variable (level 1 only, e.g. a fixed.x covariate) has no between
part (zero rows and columns). mu_y is the level-1 implied mean plus, for variables of both
levels, the level-2 mean (lavaan fixes the within intercept of such a variable at 0).

The likelihood of cluster j factors into the within-cluster deviations (covariance Sigma_W,
n_j - 1 degrees of freedom) and u_j = (ybar_j, z_j), normal with mean mu_u = D mu_1 + E mu_2 and

    V_n = E Sigma_2 E^T + D Sigma_W D^T / n,      n = n_j,

(D, E place the level-1 and level-2 variables in u). So with the pooled within scatter W and,
per cluster size n, the count m_n, mean and covariance of u_j over the clusters of that size,

    l = -1/2 [ (N - J)(p_1 log 2pi + log|Sigma_W|) + tr(Sigma_W^-1 W) ]
        -1/2 sum_n m_n [ q log 2pi + log|V_n| + tr(V_n^-1 (C_n + d_n d_n^T)) ]
        -1/2 p_1 sum_j log n_j,

d_n = mean_n - mu_u (the last term makes log|V_n| lavaan's log|Sigma_W + n Sigma_B|). It is a
sum of normal terms with known covariances, so the gradient (through dSigma_1, dmu_1, dSigma_2,
dmu_2 of the RamModel) and the expected information are exact:

    dl = tr(G_1 dSigma_1) + tr(G_2 dSigma_2) + g_u^T dmu_u,
    G_1 = 1/2 (P_W W P_W - (N - J) P_W) + sum_n m_n/(2n) [M_n]_yy,   G_2 = sum_n m_n/2 E^T M_n E,
    M_n = P_n (C_n + d_n d_n^T) P_n - P_n,   g_u = sum_n m_n P_n d_n;
    I_kl = (N - J)/2 tr(P_W dS1_k P_W dS1_l) + sum_n m_n [1/2 tr(P_n dV_k P_n dV_l)
           + dmu_k^T P_n dmu_l].

lavaan's ``logl`` leaves out the marginal likelihood of the fixed exogenous covariates
(``loglik.x``): the saturated likelihood of the within covariates with their total covariance
over the N rows plus that of the between covariates with the covariance of their cluster means
over the J clusters (:func:`x_loglik`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

from semgalamm.covstruct.estimate import AffineConstraints, fisher_scoring
from semgalamm.covstruct.likelihood import LikelihoodValue
from semgalamm.design.cluster_moments import ClusterSample
from semgalamm.design.ram import BlockMoments
from semgalamm.design.sample_moments import GroupSample, Pattern
from semgalamm.spec.partable import BlockVariables, ParameterTable

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class TwoLevelLayout:
    """Where the variables of the two blocks sit in u = (y, z).

    ``within``: the level-1 block's observed variables (y, in that block's order);
    ``between``: the level-2 block's observed variables; ``z``: the between-only ones;
    ``e2``: the position in u of every level-2 variable; ``both``: positions in y of the
    variables of both levels.
    """

    within: tuple[str, ...]
    between: tuple[str, ...]
    z: tuple[str, ...]
    e2: IntArray
    both: IntArray

    @classmethod
    def create(cls, level1: BlockVariables, level2: BlockVariables) -> TwoLevelLayout:
        within, between = level1.observed, level2.observed
        z = tuple(v for v in between if v not in within)
        e2 = np.array([within.index(v) if v in within else len(within) + z.index(v)
                       for v in between], dtype=np.intp)
        both = np.array([i for i, v in enumerate(within) if v in between], dtype=np.intp)
        return cls(within, between, z, e2, both)

    @property
    def p1(self) -> int:
        return len(self.within)

    @property
    def q(self) -> int:
        return len(self.within) + len(self.z)

    @property
    def within_only(self) -> tuple[str, ...]:
        return tuple(v for v in self.within if v not in self.between)


def _inverse_logdet(sigma: FloatArray) -> tuple[FloatArray, float] | None:
    try:
        chol = np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        return None
    inv_chol = np.linalg.inv(chol)
    return inv_chol.T @ inv_chol, 2.0 * float(np.log(np.diag(chol)).sum())


def loglik_twolevel(m1: BlockMoments, m2: BlockMoments, layout: TwoLevelLayout,
                    sample: ClusterSample, gradient: bool = False,
                    information: bool = False) -> LikelihoodValue:
    """lavaan's joint two-level log-likelihood of one group (fixed covariates included), with
    the exact gradient and expected information over the free vector where asked for."""
    p1, q, e2 = layout.p1, layout.q, layout.e2
    N, J = sample.n, sample.n_clusters
    nw = N - J
    sigma_w = m1.sigma
    inverse = _inverse_logdet(sigma_w)
    if inverse is None:
        return LikelihoodValue(-np.inf)
    Pw, logdet_w = inverse
    W = sample.within_scatter
    total = -0.5 * (nw * (p1 * LOG_2PI + logdet_w) + float(np.sum(Pw * W)))
    total -= 0.5 * p1 * float(np.log(sample.sizes).sum())
    VB = np.zeros((q, q))
    VB[np.ix_(e2, e2)] = m2.sigma
    mu_u = np.zeros(q)
    mu_u[:p1] = m1.mu
    mu_u[e2] += m2.mu
    K = m1.d_sigma.shape[0] if (gradient or information) else 0
    G1 = 0.5 * (Pw @ W @ Pw - nw * Pw) if gradient else None
    G2 = np.zeros((len(e2), len(e2))) if gradient else None
    g_u = np.zeros(q) if gradient else None
    info = None
    if information:
        dS1 = m1.d_sigma
        PdS = np.einsum("ij,kjl->kil", Pw, dS1)
        info = 0.5 * nw * np.einsum("kij,lji->kl", PdS, PdS)
        dVB = np.zeros((K, q, q))
        dVB[:, e2[:, None], e2[None, :]] = m2.d_sigma
        dmu_u = np.zeros((K, q))
        dmu_u[:, :p1] = m1.d_mu
        dmu_u[:, e2] += m2.d_mu
    for size_class in sample.classes:
        n, m = size_class.size, size_class.count
        V = VB.copy()
        V[:p1, :p1] += sigma_w / n
        inverse = _inverse_logdet(V)
        if inverse is None:
            return LikelihoodValue(-np.inf)
        P, logdet = inverse
        d = size_class.mean - mu_u
        outer = size_class.cov + np.outer(d, d)
        total += -0.5 * m * (q * LOG_2PI + logdet + float(np.sum(P * outer)))
        if gradient:
            M = 0.5 * m * (P @ outer @ P - P)
            G1 += M[:p1, :p1] / n
            G2 += M[np.ix_(e2, e2)]
            g_u += m * (P @ d)
        if information:
            dV = dVB.copy()
            dV[:, :p1, :p1] += m1.d_sigma / n
            PdV = np.einsum("ij,kjl->kil", P, dV)
            info += 0.5 * m * np.einsum("kij,lji->kl", PdV, PdV)
            info += m * (dmu_u @ P @ dmu_u.T)
    grad = None
    if gradient:
        grad = (np.einsum("ij,kij->k", G1, m1.d_sigma)
                + np.einsum("ij,kij->k", G2, m2.d_sigma)
                + m1.d_mu @ g_u[:p1] + m2.d_mu @ g_u[e2])
    return LikelihoodValue(total, grad, info)


# --------------------------------------------------------------------------- covariates


def _h1_loglik(n: int, cov: FloatArray) -> float:
    p = cov.shape[0]
    return -0.5 * n * (p * LOG_2PI + float(np.linalg.slogdet(cov)[1]) + p)


def x_loglik(level1: BlockVariables, level2: BlockVariables, layout: TwoLevelLayout,
             sample: ClusterSample) -> float:
    """lavaan's ``loglik.x``: the saturated log-likelihood of the within fixed covariates
    (total covariance, N rows) plus that of the between ones (cluster means, J clusters)."""
    total = 0.0
    if level1.exogenous:
        idx = [layout.within.index(v) for v in level1.exogenous]
        total += _h1_loglik(sample.n, sample.total_cov[np.ix_(idx, idx)])
    if level2.exogenous:
        idx = [int(layout.e2[layout.between.index(v)]) for v in level2.exogenous]
        u = sample.cluster_means[:, idx]
        u = u - u.mean(axis=0)
        total += _h1_loglik(sample.n_clusters, u.T @ u / sample.n_clusters)
    return total


def block_moments(layout: TwoLevelLayout, sample: ClusterSample
                  ) -> tuple[tuple[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]:
    """Sample moments per level in the blocks' orders, lavaan's way: level 1 the pooled
    within covariance (total covariance and means for within-only variables; within means of
    variables of both levels 0); level 2 the moment estimate of the between covariance (the
    cluster-mean covariance for between-only variables) and the means."""
    p1 = layout.p1
    cov1 = sample.pooled_within.copy()
    only = [i for i, v in enumerate(layout.within) if v not in layout.between]
    cov1[np.ix_(only, only)] = sample.total_cov[np.ix_(only, only)]
    mean1 = np.zeros(p1)
    mean1[only] = sample.total_mean[only]
    between = sample.between_moment_estimate()
    cov2 = between[np.ix_(layout.e2, layout.e2)]
    u_mean = sample.cluster_means.mean(axis=0)
    u_mean[:p1] = sample.total_mean
    mean2 = u_mean[layout.e2]
    return (mean1, cov1), (mean2, cov2)


def block_samples(layout: TwoLevelLayout, sample: ClusterSample) -> list[GroupSample]:
    """One GroupSample per level for start_values/fixed_values (used with a table whose rows
    carry their block as group, :func:`table_by_block`): the moments of
    :func:`block_moments`, level-2 variances of variables of both levels floored at a
    hundredth of their total variance (a start, not an estimate)."""
    (mean1, cov1), (mean2, cov2) = block_moments(layout, sample)
    total_var = np.zeros(len(layout.between))
    for k, v in enumerate(layout.between):
        if v in layout.within:
            i = layout.within.index(v)
            total_var[k] = sample.total_cov[i, i]
    floor = 1e-2 * total_var
    diag = np.diag(cov2).copy()
    low = diag < floor
    cov2[low, :] = 0.0
    cov2[:, low] = 0.0
    cov2[low, low] = floor[low]
    out = []
    for label, mean, cov in (("within", mean1, cov1), ("between", mean2, cov2)):
        p = len(mean)
        out.append(GroupSample(label, sample.n, (Pattern(np.arange(p), sample.n, mean, cov),),
                               mean, cov, np.empty((0, p))))
    return out


# --------------------------------------------------------------------------- h1 and baseline


@dataclass(frozen=True)
class CellModel:
    """A two-level model whose free parameters are cells of the level matrices directly:
    ``cells`` lists (level, kind, i, j) with kind "cov" (symmetric cell) or "mean"; everything
    else stays at the base values. The saturated and the baseline (independence) models."""

    base: tuple[FloatArray, FloatArray, FloatArray, FloatArray]  # sigma1, mu1, sigma2, mu2
    cells: tuple[tuple[int, str, int, int], ...]

    def start(self) -> FloatArray:
        sigma1, mu1, sigma2, mu2 = self.base
        out = []
        for level, kind, i, j in self.cells:
            sigma, mu = (sigma1, mu1) if level == 1 else (sigma2, mu2)
            out.append(sigma[i, j] if kind == "cov" else mu[i])
        return np.array(out)

    def matrices(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        sigma1, mu1, sigma2, mu2 = (a.copy() for a in self.base)
        for value, (level, kind, i, j) in zip(x, self.cells):
            sigma, mu = (sigma1, mu1) if level == 1 else (sigma2, mu2)
            if kind == "cov":
                sigma[i, j] = sigma[j, i] = value
            else:
                mu[i] = value
        return sigma1, mu1, sigma2, mu2

    def moments(self, x: FloatArray) -> tuple[BlockMoments, BlockMoments]:
        sigma1, mu1, sigma2, mu2 = self.matrices(x)
        K = len(self.cells)
        d = {1: (np.zeros((K, *sigma1.shape)), np.zeros((K, len(mu1)))),
             2: (np.zeros((K, *sigma2.shape)), np.zeros((K, len(mu2))))}
        for k, (level, kind, i, j) in enumerate(self.cells):
            d_sigma, d_mu = d[level]
            if kind == "cov":
                d_sigma[k, i, j] = d_sigma[k, j, i] = 1.0
            else:
                d_mu[k, i] = 1.0
        return (BlockMoments(sigma1, mu1, *d[1], sigma1, mu1, np.eye(len(mu1))),
                BlockMoments(sigma2, mu2, *d[2], sigma2, mu2, np.eye(len(mu2))))


@dataclass(frozen=True)
class SaturatedFit:
    """The maximum of a CellModel: level matrices, joint loglik, convergence."""

    sigma1: FloatArray
    mu1: FloatArray
    sigma2: FloatArray
    mu2: FloatArray
    loglik: float
    n_free: int
    converged: bool


def fit_cells(model: CellModel, layout: TwoLevelLayout, sample: ClusterSample
              ) -> SaturatedFit:
    """Fisher scoring over the cells of a CellModel."""
    def evaluate_at(x, gradient=False, information=False):
        m1, m2 = model.moments(x)
        return loglik_twolevel(m1, m2, layout, sample, gradient, information)

    K = len(model.cells)
    estimate = fisher_scoring(evaluate_at, AffineConstraints(np.zeros(K), np.eye(K)),
                              model.start())
    sigma1, mu1, sigma2, mu2 = model.matrices(estimate.x)
    return SaturatedFit(sigma1, mu1, sigma2, mu2, estimate.loglik, K, estimate.converged)


def _positive_definite(sigma: FloatArray, floor: float = 1e-3) -> FloatArray:
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    scale = max(float(values.max()), 1e-8)
    return (vectors * np.maximum(values, floor * scale)) @ vectors.T


def saturated_model(layout: TwoLevelLayout, sample: ClusterSample) -> CellModel:
    """Every (co)variance of both levels and every mean free (within means of variables of
    both levels fixed at 0): lavaan's unrestricted two-level model (h1)."""
    (mean1, cov1), (mean2, cov2) = block_moments(layout, sample)
    cov2 = _positive_definite(cov2)
    cells: list[tuple[int, str, int, int]] = []
    for level, cov in ((1, cov1), (2, cov2)):
        p = cov.shape[0]
        cells += [(level, "cov", i, j) for j in range(p) for i in range(j, p)]
    cells += [(1, "mean", i, 0) for i, v in enumerate(layout.within) if v not in layout.between]
    cells += [(2, "mean", i, 0) for i in range(len(layout.between))]
    return CellModel((cov1, mean1, cov2, mean2), tuple(cells))


def baseline_model(layout: TwoLevelLayout, sample: ClusterSample,
                   covariates: tuple[tuple[str, ...], tuple[str, ...]],
                   fixed: tuple[FloatArray, ...] | None) -> CellModel:
    """lavaan's independence model: free variances and means of every variable at each level
    where it is observed (within means only for within-only variables), no covariances but
    those among the covariates (``covariates``: per level), which keep the model's treatment:
    fixed at ``fixed`` (sigma1, mu1, sigma2, mu2) with fixed.x, else free."""
    (mean1, cov1), (mean2, cov2) = block_moments(layout, sample)
    sigma1 = np.diag(np.diag(cov1))
    sigma2 = np.diag(np.clip(np.diag(cov2), 1e-2 * np.diag(cov1).mean(), None))
    mu1 = mean1.copy()
    mu2 = mean2.copy()
    x1 = [layout.within.index(v) for v in covariates[0]]
    x2 = [layout.between.index(v) for v in covariates[1]]
    if fixed is not None:
        f_sigma1, f_mu1, f_sigma2, f_mu2 = fixed
    else:
        f_sigma1, f_mu1, f_sigma2, f_mu2 = cov1, mean1, _positive_definite(cov2), mean2
    sigma1[np.ix_(x1, x1)] = f_sigma1[np.ix_(x1, x1)]
    mu1[x1] = f_mu1[x1]
    sigma2[np.ix_(x2, x2)] = f_sigma2[np.ix_(x2, x2)]
    mu2[x2] = f_mu2[x2]
    skip1, skip2 = (x1, x2) if fixed is not None else ([], [])
    cells: list[tuple[int, str, int, int]] = []
    cells += [(1, "cov", i, i) for i in range(layout.p1) if i not in skip1]
    cells += [(2, "cov", i, i) for i in range(len(layout.between)) if i not in skip2]
    if fixed is None:
        cells += [(1, "cov", i, j) for a, j in enumerate(x1) for i in x1[a + 1:]]
        cells += [(2, "cov", i, j) for a, j in enumerate(x2) for i in x2[a + 1:]]
    cells += [(1, "mean", i, 0) for i, v in enumerate(layout.within)
              if v not in layout.between and i not in skip1]
    cells += [(2, "mean", i, 0) for i in range(len(layout.between)) if i not in skip2]
    return CellModel((sigma1, mu1, sigma2, mu2), tuple(cells))


# --------------------------------------------------------------------------- fit measures


def _cov2cor(sigma: FloatArray) -> FloatArray:
    sd = np.sqrt(np.diag(sigma))
    with np.errstate(divide="ignore", invalid="ignore"):
        return sigma / np.outer(sd, sd)


def _srmr(sample_cov: FloatArray, implied: FloatArray) -> float:
    residual = _cov2cor(sample_cov) - _cov2cor(implied)
    rows, cols = np.tril_indices(len(residual))
    return float(np.sqrt(np.mean(residual[rows, cols] ** 2)))


def _rmsea_ci(chisq: float, df: int, n: int, level: float = 0.90) -> tuple[float, float]:
    """lavaan's RMSEA confidence interval (noncentral chi-square inversion)."""
    if df < 1:
        return 0.0, 0.0
    upper_p, lower_p = 1 - (1 - level) / 2, (1 - level) / 2

    def cdf(lam):
        return stats.chi2.cdf(chisq, df) if lam <= 0 else stats.ncx2.cdf(chisq, df, lam)

    lower = 0.0
    if cdf(0.0) - upper_p >= 0:
        lam = optimize.brentq(lambda v: cdf(v) - upper_p, 0.0, max(chisq, 1e-12))
        lower = math.sqrt(lam / (n * df))
    bound = max(n, 4 * chisq)
    upper = 0.0
    if not (cdf(bound) - lower_p > 0 or cdf(0.0) - lower_p < 0):
        lam = optimize.brentq(lambda v: cdf(v) - lower_p, 0.0, bound)
        upper = math.sqrt(lam / (n * df))
    return lower, upper


def fit_measures(*, loglik: float, npar: int, n: int, n_exo_fixed: int, x_part: float,
                 h1: SaturatedFit, baseline: SaturatedFit,
                 implied: tuple[FloatArray, FloatArray]) -> dict[str, float]:
    """lavaan's fitMeasures() for a two-level model (one group). ``loglik``: the model's logl
    (covariates' part removed); ``x_part``: lavaan's loglik.x; ``implied``: the model's
    Sigma of level 1 and level 2 (for SRMR against the h1 moments)."""
    h1_logl = h1.loglik - x_part
    base_logl = baseline.loglik - x_part
    stats_free = h1.n_free - n_exo_fixed
    df = stats_free - npar
    chisq = max(2 * (h1_logl - loglik), 0.0)
    base_df = stats_free - (baseline.n_free)
    base_chisq = max(2 * (h1_logl - base_logl), 0.0)
    pvalue = float(stats.chi2.sf(chisq, df)) if df > 0 else math.nan
    t1 = max(chisq - df, 0.0)
    t2 = max(chisq - df, base_chisq - base_df, 0.0)
    cfi = 1.0 if math.isclose(t1, 0.0, abs_tol=1.5e-8) and math.isclose(t2, 0, abs_tol=1.5e-8) \
        else 1 - t1 / t2
    tli_t1 = (chisq - df) * base_df
    tli_t2 = (base_chisq - base_df) * df
    tli = 1 - tli_t1 / tli_t2 if df > 0 and abs(tli_t2) > 0 else 1.0
    rmsea = math.sqrt(max(chisq / n / df - 1 / n, 0.0)) if df > 0 else 0.0
    ci_lower, ci_upper = _rmsea_ci(chisq, df, n)
    rmsea_p = float(stats.ncx2.sf(chisq, df, n * df * 0.05**2)) if df > 0 else math.nan
    notclose_p = float(stats.ncx2.cdf(chisq, df, n * df * 0.08**2)) if df > 0 else math.nan
    srmr_within = _srmr(h1.sigma1, implied[0])
    srmr_between = _srmr(h1.sigma2, implied[1])
    return {
        "npar": npar, "logl": loglik, "unrestricted.logl": h1_logl,
        "chisq": chisq, "df": df, "pvalue": pvalue,
        "baseline.chisq": base_chisq, "baseline.df": base_df,
        "baseline.pvalue": float(stats.chi2.sf(base_chisq, base_df)) if base_df > 0
        else math.nan,
        "cfi": cfi, "tli": tli, "rmsea": rmsea, "rmsea.ci.lower": ci_lower,
        "rmsea.ci.upper": ci_upper, "rmsea.pvalue": rmsea_p,
        "rmsea.notclose.pvalue": notclose_p, "srmr": srmr_within + srmr_between,
        "aic": -2 * loglik + 2 * npar, "bic": -2 * loglik + npar * math.log(n),
        "bic2": -2 * loglik + npar * math.log((n + 2) / 24), "ntotal": n,
        "srmr_within": srmr_within, "srmr_between": srmr_between,
    }


def warn_unconverged(fit: SaturatedFit, what: str) -> None:
    """Warn when a reference model did not converge, or when the unrestricted between
    covariance is not positive semi-definite (a between variance near zero: lavaan's EM keeps
    it PSD, so its h1 and the fit measures that use it may differ)."""
    if not fit.converged:
        warnings.warn(f"The {what} two-level model did not converge; the fit measures that "
                      "use it may be off.", RuntimeWarning, stacklevel=3)
    elif what == "saturated" and np.linalg.eigvalsh(fit.sigma2).min() < 0:
        warnings.warn(
            "The unrestricted (h1) between-level covariance matrix is not positive "
            "semi-definite (a variable with almost no between-cluster variance?). chisq and "
            "SRMR use it as it is; lavaan's EM estimate stays positive semi-definite, so "
            "they may differ from lavaan's.", RuntimeWarning, stacklevel=3)


Evaluate = Callable[[FloatArray, bool, bool], LikelihoodValue]


def table_by_block(table: ParameterTable) -> ParameterTable:
    """The table with every row's group set to its block: start_values and fixed_values then
    read one sample per block (see :func:`block_samples`)."""
    from dataclasses import replace

    return replace(table, rows=tuple(replace(r, group=r.block) for r in table.rows))
