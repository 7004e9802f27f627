"""lavaan's standardizedSolution() for a covariance-structure fit.

Every parameter is rescaled by the model-implied standard deviations of the variables it
links, computed at the estimate from the RAM matrices of its block (total variances: the
diagonal of Sigma_all = E S E^T; residual variances: the diagonal of S):

* ``std.all``: loadings ``f =~ y`` times sd(f) / sd(y), regressions ``y ~ x`` times
  sd(x) / sd(y), variances over the total variance, covariances over the square roots of the
  two residual variances (a residual correlation, lavaan's ``cov.std = TRUE``), intercepts
  and means over sd;
* ``std.lv``: only latent variables are rescaled;
* ``std.nox``: as ``std.all``, but the exogenous covariates (lavaan's ``ov.x``: observed
  variables that are only predictors) keep their scale.

Fixed covariates take their sample moments (they are the model's values). Defined
parameters (``:=``) are their expressions evaluated at the standardized labels, constraints
the difference of their two sides, as lavaan does. Standard errors follow from the delta
method: a central-difference Jacobian of the standardized values with respect to the free
vector, times the free vector's covariance (which already holds the equality constraints).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from semgalamm.results.sem_fit_measures import covariates as lavaan_covariates
from semgalamm.spec.expressions import evaluate

if TYPE_CHECKING:
    from semgalamm.results.sem_result import SemFit

FloatArray = NDArray[np.float64]
TYPES = ("std.all", "std.lv", "std.nox")


def block_scales(fit: SemFit, x: FloatArray) -> list[tuple[dict, FloatArray, FloatArray]]:
    """Per block: (name -> index, total variances, residual variances) at x."""
    values = fit.ram.row_values(x)
    out = []
    for cells, moments in zip(fit.ram.blocks, fit.ram.moments(x, derivatives=False)):
        _, S, _ = fit.ram.matrices(cells, values)
        index = {v: i for i, v in enumerate(cells.names)}
        out.append((index, np.diag(moments.sigma_all).copy(), np.diag(S).copy()))
    return out


def standardize_rows(fit: SemFit, x: FloatArray, row_values: FloatArray, kind: str = "std.all",
                     rows=None) -> FloatArray:
    """``row_values`` (one per row of ``rows``, the table's rows by default) rescaled with
    the variances implied at x."""
    if kind not in TYPES:
        raise ValueError(f"type='{kind}' must be one of {', '.join(TYPES)}.")
    rows = fit.table.rows if rows is None else rows
    scales = block_scales(fit, x)
    covariates = [lavaan_covariates(fit, (b - 1) // fit.table.n_levels)
                  for b in range(1, len(fit.table.blocks) + 1)]
    out = np.empty(len(rows))
    for r, (row, value) in enumerate(zip(rows, row_values)):
        index, total, resid = scales[row.block - 1]
        variables = fit.table.blocks[row.block - 1]
        if kind == "std.lv":
            kept = set(variables.observed)  # only latents are rescaled
        elif kind == "std.nox":
            # covariates keep their scale, but an outcome (the lhs of ~) is standardized
            kept = set(covariates[row.block - 1]) - ({row.lhs} if row.op == "~" else set())
        else:
            kept = set()
        sd = {name: 1.0 if name in kept else float(np.sqrt(max(total[index[name]], 0.0)))
              for name in (row.lhs, row.rhs) if name in index}
        with np.errstate(divide="ignore", invalid="ignore"):
            if row.op == "=~":
                out[r] = value * sd[row.lhs] / sd[row.rhs]
            elif row.op == "~":
                out[r] = value * sd[row.rhs] / sd[row.lhs]
            elif row.op == "~1":
                out[r] = value / sd[row.lhs]
            elif row.op == "~~" and row.lhs == row.rhs:
                out[r] = value / sd[row.lhs] ** 2
            elif row.op == "~~":
                rsd = [1.0 if name in kept else float(np.sqrt(max(resid[index[name]], 0.0)))
                       for name in (row.lhs, row.rhs)]
                out[r] = value / (rsd[0] * rsd[1])
            else:
                out[r] = np.nan
    return out


def standardized_values(fit: SemFit, x: FloatArray, kind: str = "std.all"
                        ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(rows, defined parameters, constraints) standardized at x."""
    table = fit.table
    rows = standardize_rows(fit, x, fit.ram.row_values(x), kind)
    env: dict[str, float] = {}
    for row, value in zip(table.rows, rows):
        if row.label and row.label not in env:
            env[row.label] = float(value)
    defined = []
    for definition in table.definitions:
        env[definition.name] = evaluate(definition.expr, env)
        defined.append(env[definition.name])
    constraints = [evaluate(c.lhs, env) - evaluate(c.rhs, env) for c in table.constraints]
    return rows, np.array(defined, dtype=float), np.array(constraints, dtype=float)


def _all_values(fit: SemFit, x: FloatArray, kind: str) -> FloatArray:
    return np.concatenate(standardized_values(fit, x, kind))


def delta_se(fit: SemFit, kind: str = "std.all") -> FloatArray:
    """Delta-method standard errors of every standardized value (rows, :=, constraints)."""
    x = fit.estimate.x
    base = _all_values(fit, x, kind)
    J = np.zeros((len(base), len(x)))
    for k in range(len(x)):
        h = 1e-6 * max(1.0, abs(x[k]))
        step = np.zeros(len(x))
        step[k] = h
        J[:, k] = (_all_values(fit, x + step, kind) - _all_values(fit, x - step, kind)) / (2 * h)
    J[~np.isfinite(J)] = 0.0
    variance = np.einsum("ik,kl,il->i", J, fit.vcov_free, J)
    return np.sqrt(np.clip(variance, 0.0, None))


def expression_text(expr) -> str:
    from semgalamm.syntax.nodes import BinaryOp, Call, Name, Number, Paren, UnaryOp

    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, Number):
        return f"{expr.value:g}"
    if isinstance(expr, Paren):
        return f"({expression_text(expr.expr)})"
    if isinstance(expr, UnaryOp):
        return f"{expr.op}{expression_text(expr.operand)}"
    if isinstance(expr, BinaryOp):
        return f"{expression_text(expr.left)}{expr.op}{expression_text(expr.right)}"
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(expression_text(a) for a in expr.args)})"
    return str(expr)


def standardized_solution(fit: SemFit, type: str = "std.all", level: float = 0.95,
                          constraints: bool = False) -> pd.DataFrame:
    """lavaan's standardizedSolution(fit, type=): lhs, op, rhs, (group), label, est_std, se,
    z, pvalue, ci_lower, ci_upper. ``constraints=True`` adds the ``==``/``<``/``>`` rows
    (lavaan's ``remove.eq = FALSE, remove.ineq = FALSE``)."""
    table = fit.table
    rows, defined, cons = standardized_values(fit, fit.estimate.x, type)
    se = delta_se(fit, type)
    multi_group, multi_level = table.n_groups > 1, table.n_levels > 1
    records = []
    for row, value in zip(table.rows, rows):
        record = {"lhs": row.lhs, "op": row.op, "rhs": row.rhs}
        if multi_level:
            record["level"] = table.blocks[row.block - 1].level_label
        if multi_group:
            record["group"] = row.group
        record.update(label=row.label, est_std=value)
        records.append(record)
    extra = [(d.name, ":=", d.text, d.name, v) for d, v in zip(table.definitions, defined)]
    if constraints:
        extra += [(expression_text(c.lhs), c.op, expression_text(c.rhs), "", v)
                  for c, v in zip(table.constraints, cons)]
    for lhs, op, rhs, label, value in extra:
        record = {"lhs": lhs, "op": op, "rhs": rhs}
        if multi_level:
            record["level"] = ""
        if multi_group:
            record["group"] = 0
        record.update(label=label, est_std=value)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    se = se[:len(frame)]
    est = frame["est_std"].to_numpy(dtype=float)
    # a fixed value (a variance of 1, a covariate's moments) has no sampling variance
    se = np.where(se > 1e-8 * np.maximum(1.0, np.abs(est)), se, 0.0)
    z_crit = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, est / se, np.nan)
    frame["se"] = se
    frame["z"] = z
    frame["pvalue"] = 2 * stats.norm.sf(np.abs(z))
    frame["ci_lower"] = est - z_crit * se
    frame["ci_upper"] = est + z_crit * se
    return frame
