"""lavaan's modindices(): score tests of the parameters a covariance-structure model leaves
fixed.

The model is extended by candidate parameters, each at its current value (0 for a parameter
the model does not have, the fixed value for one it fixes), and every candidate is tested on
its own: with g the log-likelihood gradient and I the expected information of the extended
model at the estimate, split into the model's free parameters (m, equality constraints
projected: x = x_p + K z) and the candidates (e),

    V  = I_ee - I_em K (K^T I_mm K)^-1 K^T I_me     (diagonal only)
    mi = g_e^2 / V,     epc = g_e / V               (expected parameter change)

Candidates, per group (lavaan's full parameter table, without the moments of fixed
covariates, which the model reproduces exactly):

* every fixed parameter of the model (marker loadings, fixed variances and covariances,
  intercepts fixed at 0, ...);
* loadings ``f =~ y`` of every latent on every observed variable that is not a covariate;
* covariances ``~~`` between observed variables that are not covariates, and between latents;
* regressions ``a ~ b`` among all variables that appear in a regression (both directions),
  when the model has regressions, except a covariate on a covariate;
* intercepts and means ``~1`` with a mean structure.

A candidate that would fill a cell of the model's matrices already in use (``y ~ f`` beside
``f =~ y``) is left out, and so is a candidate whose V is not positive (V / N below
sqrt(machine epsilon), lavaan's rule): it is not identified beside the model's parameters
(``visual ~ textual`` beside a free covariance, a marker loading beside a free latent
variance). As lavaan does, a residual covariance is not a candidate between two variables that
a regression links, nor between an indicator and an observed outcome that is not one, and
with fixed covariates the information leaves out the covariates' own moments (a candidate
``x ~ y`` that moves them is tested on the rest of the data).

``sepc_all`` is the EPC standardized as lavaan's ``std.all`` with the model's implied
variances (a covariance over the two residual standard deviations); ``sepc_lv`` and
``sepc_nox`` likewise.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from semgalamm.covstruct.likelihood import loglik
from semgalamm.design.ram import BlockMoments, RamModel
from semgalamm.errors import UnsupportedError
from semgalamm.results.sem_standardized import standardize_rows
from semgalamm.spec.partable import ParameterRow, ParameterTable

if TYPE_CHECKING:
    from semgalamm.results.sem_result import SemFit

EPS_SQRT = math.sqrt(np.finfo(float).eps)


def _cell(row: ParameterRow) -> tuple:
    """The matrix cell of a row: A[i, j], S{i, j} or m[i] (by name, within its block)."""
    if row.op == "=~":
        return ("A", row.rhs, row.lhs, row.block)
    if row.op == "~":
        return ("A", row.lhs, row.rhs, row.block)
    if row.op == "~~":
        a, b = sorted((row.lhs, row.rhs))
        return ("S", a, b, row.block)
    return ("m", row.lhs, "", row.block)


def covariates_of(fit: SemFit, block: int) -> tuple[str, ...]:
    """lavaan's ``ov.x`` of a block (1-based): observed variables that are only predictors."""
    from semgalamm.results.sem_fit_measures import covariates

    return covariates(fit, (block - 1) // fit.table.n_levels)


def candidate_rows(fit: SemFit) -> tuple[list[int], list[ParameterRow]]:
    """(indices of the model's fixed rows to free, new rows), lavaan's candidate set."""
    table = fit.table
    freed = [r for r, row in enumerate(table.rows) if not row.free and not row.exo]
    used = {_cell(row) for row in table.rows}
    new: list[ParameterRow] = []
    next_id = max(row.id for row in table.rows) + 1
    for b, variables in enumerate(table.blocks, start=1):
        rows = [row for row in table.rows if row.block == b]
        covariates = set(covariates_of(fit, b))
        observed = [v for v in variables.observed if v not in covariates]
        linked = {frozenset((row.lhs, row.rhs)) for row in rows if row.op == "~"}
        latent = list(variables.latent)
        wanted: list[tuple[str, str, str]] = []
        wanted += [(f, "=~", y) for f in latent for y in observed]
        indicators = {row.rhs for row in rows if row.op == "=~"}
        for names in (observed, latent):
            wanted += [(a, "~~", c) for i, a in enumerate(names) for c in names[i:]
                       if (a in indicators) == (c in indicators) or a in latent]
        if any(row.op == "~" for row in rows):
            eqs = list(dict.fromkeys(v for row in rows if row.op == "~"
                                     for v in (row.lhs, row.rhs)))
            wanted += [(a, "~", c) for a in eqs for c in eqs
                       if a != c and not (a in covariates and c in covariates)]
        if table.meanstructure:
            wanted += [(v, "~1", "") for v in observed + latent]
        for lhs, op, rhs in wanted:
            row = ParameterRow(id=next_id, lhs=lhs, op=op, rhs=rhs, block=b,
                               group=variables.group, level=variables.level, user=10, free=0,
                               value=0.0, label="")
            cell = _cell(row)
            if cell in used or (op == "~~" and frozenset((lhs, rhs)) in linked):
                continue
            used.add(cell)
            new.append(row)
            next_id += 1
    return freed, new


def _without_covariate_moments(moments: list[BlockMoments], table: ParameterTable
                               ) -> list[BlockMoments]:
    """The moments with the derivatives of the fixed covariates' own moments (their means and
    covariances among themselves) set to 0: as lavaan, the information leaves out what the
    covariates' fixed sample moments would say about a candidate that changes them."""
    out = []
    for block, m in zip(table.blocks, moments):
        index = [block.observed.index(v) for v in block.exogenous]
        if index and m.d_sigma is not None:
            d_sigma, d_mu = m.d_sigma.copy(), m.d_mu.copy()
            d_sigma[:, np.array(index)[:, None], np.array(index)[None, :]] = 0.0
            d_mu[:, index] = 0.0
            m = replace(m, d_sigma=d_sigma, d_mu=d_mu)
        out.append(m)
    return out


def score_tests(fit: SemFit) -> pd.DataFrame:
    """mi and epc of every candidate (NaN where V is not positive), unsorted."""
    table = fit.table
    if table.n_levels > 1:
        raise UnsupportedError("Modification indices of two-level models are not available "
                               "yet.")
    freed, new = candidate_rows(fit)
    n_free = table.n_free
    rows = list(table.rows)
    candidates: list[ParameterRow] = []
    for k, r in enumerate(freed):
        rows[r] = replace(rows[r], free=n_free + k + 1)
        candidates.append(rows[r])
    for k, row in enumerate(new):
        row = replace(row, free=n_free + len(freed) + k + 1)
        rows.append(row)
        candidates.append(row)
    if not candidates:
        return pd.DataFrame(columns=["lhs", "op", "rhs", "group", "mi", "epc", "sepc_lv",
                                     "sepc_all", "sepc_nox"])
    extended = ParameterTable(tuple(rows), table.blocks, (), (), table.meanstructure,
                              table.options)
    fixed = np.concatenate([fit.ram.fixed_values, np.zeros(len(new))])
    ram = RamModel.create(extended, fixed)
    current = np.array([fit.ram.fixed_values[r] for r in freed] + [0.0] * len(new))
    x = np.concatenate([fit.estimate.x, current])
    moments = ram.moments(x, derivatives=True)
    samples = list(fit.samples)
    grad = loglik(moments, samples, table.meanstructure, True, False).gradient
    info = loglik(_without_covariate_moments(moments, table), samples, table.meanstructure,
                  False, True).information
    K = fit.estimate.constraints.K
    e = np.arange(n_free, len(x))
    I_mm = K.T @ info[:n_free, :n_free] @ K
    I_em = info[np.ix_(e, np.arange(n_free))] @ K
    try:
        solved = np.linalg.solve(I_mm, I_em.T)
    except np.linalg.LinAlgError:
        solved = np.linalg.pinv(I_mm) @ I_em.T
    V = np.diag(info)[e] - np.einsum("ij,ji->i", I_em, solved)
    n = fit.nobs
    V = np.where(V / n < EPS_SQRT, np.nan, V)
    g = grad[e]
    mi = g * g / V
    epc = g / V
    # standardized EPC: a variance's EPC is replaced by its current value (lavaan, cov.std)
    values = np.where([c.op == "~~" and c.lhs == c.rhs for c in candidates], current, epc)
    est_x = fit.estimate.x
    records = {
        "lhs": [c.lhs for c in candidates], "op": [c.op for c in candidates],
        "rhs": [c.rhs for c in candidates], "group": [c.group for c in candidates],
        "mi": mi, "epc": epc,
        "sepc_lv": standardize_rows(fit, est_x, values, "std.lv", candidates),
        "sepc_all": standardize_rows(fit, est_x, values, "std.all", candidates),
        "sepc_nox": standardize_rows(fit, est_x, values, "std.nox", candidates),
    }
    return pd.DataFrame(records)


def modification_indices(fit: SemFit, sort: bool = True, minimum_value: float = 0.0
                         ) -> pd.DataFrame:
    """lavaan's modindices(fit, sort. = sort, minimum.value = minimum_value): lhs, op, rhs,
    (group), mi, epc, sepc_lv, sepc_all, sepc_nox; candidates that are not identified are
    left out."""
    frame = score_tests(fit)
    frame = frame[frame["mi"].notna() & (frame["mi"] >= minimum_value)]
    if sort:
        frame = frame.sort_values("mi", ascending=False, kind="stable")
    if fit.table.n_groups == 1:
        frame = frame.drop(columns="group")
    return frame.reset_index(drop=True)
