"""lavaan's fitMeasures() for a covariance-structure fit: the user model against the
saturated (h1) and the independence (baseline) models.

Both reference models are fitted to the same data as the user model:

* saturated (h1): free means and covariances of all observed variables. With complete data its
  maximum is the sample moments (closed form); with ``missing="ml"`` (FIML) it is fitted by the
  pattern likelihood, through a parameter table whose rows are every mean and covariance;
* baseline (independence): free variances (and means) of the observed variables, no
  covariances. With FIML it still factorizes over variables, so every variable's maximum is
  the mean and variance of its observed values.

Exogenous covariates whose moments are fixed (fixed.x) keep their sample moments in both; their
own (saturated) log-likelihood is left out of every ``logl`` as lavaan leaves it out, and their
moments are not counted among the data (``df``).

lavaan's conventions (maximum likelihood, normal theory): chi-square 2 (h1 - h0) and its
degrees of freedom the number of sample moments minus ``npar``; RMSEA with N (not N - 1)
and, with G groups, times sqrt(G), its 90% interval from the noncentral chi-square; SRMR is
Bentler's (residuals scaled by the sample standard deviations, means included with a mean
structure; with groups the n-weighted mean of the per-group figures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize, stats

from semgalamm.covstruct.estimate import maximize
from semgalamm.covstruct.likelihood import LOG_2PI, loglik, pattern_terms
from semgalamm.covstruct.start import fixed_values
from semgalamm.design.ram import RamModel
from semgalamm.design.sample_moments import GroupSample, group_sample
from semgalamm.errors import UnsupportedError
from semgalamm.spec.partable import BlockVariables, ParameterRow, ParameterTable

if TYPE_CHECKING:
    from semgalamm.results.sem_result import SemFit

FloatArray = NDArray[np.float64]

#: lavaan's fitMeasures() names, in lavaan's order.
FIT_MEASURES = (
    "npar", "logl", "unrestricted.logl", "chisq", "df", "pvalue", "baseline.chisq",
    "baseline.df", "baseline.pvalue", "cfi", "tli", "rmsea", "rmsea.ci.lower",
    "rmsea.ci.upper", "rmsea.pvalue", "rmsea.notclose.pvalue", "srmr", "aic", "bic", "bic2",
    "ntotal",
)


@dataclass(frozen=True)
class GroupReference:
    """One group's log-likelihoods (fixed covariates' own part left out) under the user model
    (h0), the saturated model (h1) and the independence model, with the h1 moments (the sample
    moments; their FIML estimates with missing data), over the block's observed variables."""

    loglik_h0: float
    loglik_h1: float
    loglik_baseline: float
    mean: FloatArray
    cov: FloatArray
    h1_iterations: int = 0


# --------------------------------------------------------------------------- counting


def _block(fit: SemFit, g: int) -> BlockVariables:
    return fit.table.blocks[g * fit.table.n_levels]


def _exo_index(block: BlockVariables) -> list[int]:
    return [block.observed.index(v) for v in block.exogenous]


def n_moments(fit: SemFit) -> int:
    """The number of sample moments lavaan counts (``ndat``): per group p(p+1)/2 covariances
    (+ p means with a mean structure), the fixed covariates' own moments excluded."""
    total = 0
    ms = int(fit.table.meanstructure)
    for g in range(len(fit.samples)):
        block = _block(fit, g)
        p, q = len(block.observed), len(block.exogenous)
        total += p * (p + 1) // 2 + ms * p - (q * (q + 1) // 2 + ms * q)
    return total


def covariates(fit: SemFit, g: int) -> tuple[str, ...]:
    """lavaan's ``ov.x`` of group g: observed variables that are only predictors in ``~``
    (whether or not their moments are fixed)."""
    block = _block(fit, g)
    if block.exogenous:
        return block.exogenous
    rows = [r for r in fit.table.rows if r.block == g * fit.table.n_levels + 1]
    outcomes = {r.lhs for r in rows if r.op == "~"} | {r.rhs for r in rows if r.op == "=~"}
    predictors = {r.rhs for r in rows if r.op == "~"}
    return tuple(v for v in block.observed if v in predictors and v not in outcomes)


def baseline_npar(fit: SemFit) -> int:
    """Free parameters of the independence model, per group: a variance (and a mean) per
    observed variable that is not a covariate, and, when the covariates' moments are not fixed,
    their means and covariances (lavaan keeps the covariates saturated)."""
    ms = int(fit.table.meanstructure)
    total = 0
    for g in range(len(fit.samples)):
        block = _block(fit, g)
        x = covariates(fit, g)
        total += (len(block.observed) - len(x)) * (1 + ms)
        if not block.exogenous:
            total += len(x) * (len(x) + 1) // 2 + ms * len(x)
    return total


# --------------------------------------------------------------------------- reference models


def x_marginal_loglik(block: BlockVariables, sample: GroupSample) -> float:
    """The saturated log-likelihood of the fixed covariates alone (0 without any)."""
    index = _exo_index(block)
    if not index:
        return 0.0
    S = sample.cov[np.ix_(index, index)]
    q = len(index)
    return float(-0.5 * sample.n * (q * LOG_2PI + np.linalg.slogdet(S)[1] + q))


def _saturated_complete(sample: GroupSample) -> float:
    p = sample.cov.shape[0]
    return float(-0.5 * sample.n * (p * LOG_2PI + np.linalg.slogdet(sample.cov)[1] + p))


def saturated_table(block: BlockVariables, meanstructure: bool = True) -> ParameterTable:
    """A one-group parameter table with every mean and covariance of the observed variables
    free, the fixed covariates' own moments fixed (filled from the sample)."""
    exo = set(block.exogenous)
    rows: list[ParameterRow] = []
    names = block.observed

    def add(lhs: str, op: str, rhs: str, is_exo: bool) -> None:
        free = 0 if is_exo else 1 + sum(1 for r in rows if r.free)
        rows.append(ParameterRow(id=len(rows) + 1, lhs=lhs, op=op, rhs=rhs, block=1, group=1,
                                 level=1, user=0, free=free, value=math.nan, label="",
                                 exo=is_exo))

    for i, a in enumerate(names):
        for b in names[i:]:
            add(a, "~~", b, a in exo and b in exo)
    if meanstructure:
        for a in names:
            add(a, "~1", "", a in exo)
    variables = BlockVariables(1, block.group_label, 1, block.level_label, names, (),
                               block.exogenous)
    return ParameterTable(tuple(rows), (variables,), meanstructure=meanstructure)


def _saturated_fiml(block: BlockVariables, sample: GroupSample
                    ) -> tuple[float, FloatArray, FloatArray, int]:
    """FIML fit of the saturated model: (log-likelihood, mean, covariance, iterations)."""
    table = saturated_table(block, True)
    ram = RamModel.create(table, fixed_values(table, [sample]))
    samples = [sample]

    def evaluate_at(x, gradient=False, info=False):
        return loglik(ram.moments(x, derivatives=gradient or info), samples, True, gradient,
                      info)

    start_cov = sample.cov
    if np.linalg.eigvalsh(start_cov).min() <= 1e-8 * np.trace(start_cov):
        start_cov = np.diag(np.diag(sample.cov))
    index = {v: i for i, v in enumerate(block.observed)}
    x0 = np.zeros(table.n_free)
    for row in table.rows:
        if not row.free:
            continue
        if row.op == "~1":
            x0[row.free - 1] = sample.mean[index[row.lhs]]
        else:
            x0[row.free - 1] = start_cov[index[row.lhs], index[row.rhs]]
    estimate = maximize(table, evaluate_at, x0)
    moments = ram.moments(estimate.x, derivatives=False)[0]
    return estimate.loglik, moments.mu.copy(), moments.sigma.copy(), estimate.iterations


def _baseline_joint(block: BlockVariables, sample: GroupSample, x: tuple[str, ...]) -> float:
    """The independence model's log-likelihood (covariates' own part included): every
    variable but the covariates on its own, at the mean and variance of its observed values;
    the covariates saturated."""
    exo = set(x)
    if not x:
        total = 0.0
    elif block.exogenous:
        total = x_marginal_loglik(block, sample)
    else:
        index = [block.observed.index(v) for v in x]
        sub = group_sample(sample.label, sample.values[:, index])
        sub_block = BlockVariables(1, block.group_label, 1, block.level_label, x, (), ())
        total = _saturated_complete(sub) if sub.complete else \
            _saturated_fiml(sub_block, sub)[0]
    values = sample.values
    for j, name in enumerate(block.observed):
        if name in exo:
            continue
        column = values[:, j]
        column = column[~np.isnan(column)]
        n_j = column.size
        if n_j == 0:
            continue
        variance = float(np.mean((column - column.mean()) ** 2))
        total += -0.5 * n_j * (LOG_2PI + math.log(variance) + 1.0)
    return total


def reference_models(fit: SemFit) -> list[GroupReference]:
    """Per group: h0, h1 and baseline log-likelihoods and the h1 moments."""
    if fit.table.n_levels > 1:
        raise UnsupportedError(
            "Fit measures of two-level models (the saturated and baseline models per level) "
            "are not available yet."
        )
    out = []
    meanstructure = fit.table.meanstructure
    implied = fit.implied
    for g, sample in enumerate(fit.samples):
        block = _block(fit, g)
        x_part = x_marginal_loglik(block, sample)
        h0 = pattern_terms(implied[g * fit.table.n_levels], sample, meanstructure, False,
                           False).loglik
        iterations = 0
        if sample.complete:
            h1 = _saturated_complete(sample)
            mean, cov = sample.mean.copy(), sample.cov.copy()
        else:
            h1, mean, cov, iterations = _saturated_fiml(block, sample)
        out.append(GroupReference(h0 - x_part, h1 - x_part,
                                  _baseline_joint(block, sample, covariates(fit, g)) - x_part,
                                  mean, cov,
                                  iterations))
    return out


# --------------------------------------------------------------------------- the measures


def _rmsea_interval(chisq: float, df: float, n: float, groups: int,
                    level: float = 0.90) -> tuple[float, float]:
    """lavaan's interval: the noncentrality parameters at which the observed chi-square is
    the upper and lower (1 - level)/2 quantile, as RMSEA."""
    if not (df > 0 and np.isfinite(chisq)):
        return math.nan, math.nan
    upper_p, lower_p = 0.5 + level / 2, 0.5 - level / 2

    def cdf(ncp: float) -> float:
        return float(stats.chi2.cdf(chisq, df)) if ncp <= 0 else \
            float(stats.ncx2.cdf(chisq, df, ncp))

    def solve(p: float, hi: float) -> float:
        if cdf(0.0) < p:
            return 0.0
        while cdf(hi) > p:
            hi *= 2
        return optimize.brentq(lambda lam: cdf(lam) - p, 0.0, hi, xtol=1e-12, rtol=1e-12)

    lam_lower = solve(upper_p, max(chisq, 1.0))
    lam_upper = solve(lower_p, max(n, 4 * chisq, 1.0))
    scale = math.sqrt(groups)
    return (math.sqrt(lam_lower / (n * df)) * scale, math.sqrt(lam_upper / (n * df)) * scale)


def srmr(fit: SemFit, references: list[GroupReference] | None = None) -> float:
    """Bentler's SRMR: residual covariances (and means) scaled by the sample standard
    deviations, root mean square over the p(p+1)/2 (+ p) moments; groups weighted by n."""
    references = references if references is not None else fit.reference
    total, weights = 0.0, 0
    for g, ref in enumerate(references):
        moments = fit.implied[g * fit.table.n_levels]
        sd = np.sqrt(np.diag(ref.cov))
        residual = (ref.cov - moments.sigma) / np.outer(sd, sd)
        lower = residual[np.tril_indices(len(sd))]
        squares = float(lower @ lower)
        count = lower.size
        if fit.table.meanstructure:
            mean_res = (ref.mean - moments.mu) / sd
            squares += float(mean_res @ mean_res)
            count += sd.size
        n = fit.samples[g].n
        total += n * math.sqrt(squares / count)
        weights += n
    return total / weights


def fit_measures(fit: SemFit) -> pd.Series:
    """lavaan's fitMeasures(fit) as a Series (lavaan's names). Two-level fits compute theirs
    with their own saturated and baseline models (covstruct/twolevel.py)."""
    if fit.table.n_levels > 1:
        return pd.Series(fit.extra["fit_measures"], dtype=float)
    references = fit.reference
    groups = len(fit.samples)
    n = float(fit.nobs)
    npar = fit.npar
    logl = float(sum(r.loglik_h0 for r in references))
    h1 = float(sum(r.loglik_h1 for r in references))
    base = float(sum(r.loglik_baseline for r in references))
    ndat = n_moments(fit)
    df = ndat - npar
    chisq = max(2.0 * (h1 - logl), 0.0)
    pvalue = float(stats.chi2.sf(chisq, df)) if df > 0 else math.nan
    b_df = ndat - baseline_npar(fit)
    b_chisq = max(2.0 * (h1 - base), 0.0)
    b_pvalue = float(stats.chi2.sf(b_chisq, b_df)) if b_df > 0 else math.nan

    t1 = max(chisq - df, 0.0)
    t2 = max(chisq - df, b_chisq - b_df, 0.0)
    cfi = 1.0 if t1 == 0 and t2 == 0 else 1.0 - t1 / t2
    if df > 0 and b_df > 0 and b_chisq / b_df != 1:
        tli = (b_chisq / b_df - chisq / df) / (b_chisq / b_df - 1.0)
    else:
        tli = 1.0
    if df > 0:
        rmsea = math.sqrt(max(chisq / (n * df) - 1.0 / n, 0.0)) * math.sqrt(groups)
        lower, upper = _rmsea_interval(chisq, df, n, groups)
        close = float(stats.ncx2.sf(chisq, df, n * df * 0.05 ** 2 / groups))
        not_close = float(stats.ncx2.cdf(chisq, df, n * df * 0.08 ** 2 / groups))
    else:
        rmsea, lower, upper, close, not_close = 0.0, 0.0, 0.0, math.nan, math.nan
    values = {
        "npar": float(npar), "logl": logl, "unrestricted.logl": h1, "chisq": chisq,
        "df": float(df), "pvalue": pvalue, "baseline.chisq": b_chisq,
        "baseline.df": float(b_df), "baseline.pvalue": b_pvalue, "cfi": cfi, "tli": tli,
        "rmsea": rmsea, "rmsea.ci.lower": lower, "rmsea.ci.upper": upper,
        "rmsea.pvalue": close, "rmsea.notclose.pvalue": not_close,
        "srmr": srmr(fit, references),
        "aic": -2.0 * logl + 2.0 * npar, "bic": -2.0 * logl + npar * math.log(n),
        "bic2": -2.0 * logl + npar * math.log((n + 2.0) / 24.0), "ntotal": n,
    }
    return pd.Series([values[k] for k in FIT_MEASURES], index=list(FIT_MEASURES), dtype=float)


def group_chisq(fit: SemFit) -> list[float]:
    """Each group's contribution to the chi-square, 2 (h1_g - h0_g)."""
    return [2.0 * (r.loglik_h1 - r.loglik_h0) for r in fit.reference]
