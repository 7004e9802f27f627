"""Family parameters of a fit (ordinal thresholds, negative binomial size, Gamma dispersion)
and the predicted category probabilities of ordinal rows.

For an ordinal row with linear predictor nu in threshold set s (an indicator level),

    P(y <= j) = F(theta_{s,j} - nu),   P(y = j) = F(theta_{s,j} - nu) - F(theta_{s,j-1} - nu)

with theta_{s,-1} = -inf and theta_{s,K-1} = +inf (ordinal::clmm's parametrization).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import norm

from semgalamm.errors import UnsupportedError

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult


def family_parameter_values(fit: FitResult) -> pd.Series:
    """The family parameters at the optimum on the optimizer's scale, by name (empty without
    them)."""
    parameters = fit.design.families.parameters
    if parameters is None:
        return pd.Series([], dtype=float, name="estimate")
    values = fit.laplace.layout.unpack(fit.optimizer.x)["family"]
    return pd.Series(values, index=list(parameters.names), name="estimate")


def family_parameter_table(fit: FitResult) -> pd.DataFrame:
    """One row per family parameter, as lavaan's parameter table for thresholds: ``lhs``
    (the indicator or the response), ``op`` ("|" for a threshold, "size" and "dispersion"
    for the negative binomial and Gamma parameters), ``rhs`` ("t1", "t2", ... for
    thresholds), ``estimate`` and ``se`` on the optimizer's scale (thresholds; log size;
    log dispersion), ``z value``, ``Pr(>|z|)``, and ``natural``: the threshold, the size
    exp(log size) or the dispersion exp(log dispersion) (Gamma: 1 / shape)."""
    values = family_parameter_values(fit)
    columns = ["name", "lhs", "op", "rhs", "estimate", "se", "z value", "Pr(>|z|)", "natural"]
    if values.empty:
        return pd.DataFrame(columns=columns)
    parameters = fit.design.families.parameters
    cov = fit.vcov()
    names = list(values.index)
    se = np.sqrt(np.diag(cov.loc[names, names].to_numpy()))
    response = fit.spec.response.name
    describe = {}
    for thresholds in parameters.sets:
        lhs = thresholds.key or response
        for j in range(len(thresholds.categories) - 1):
            describe[names[thresholds.first + j]] = (lhs, "|", f"t{j + 1}", False)
    rows = []
    for name, value, error in zip(names, values.to_numpy(), se, strict=True):
        lhs, op, rhs, logged = describe.get(name, (response, _family_op(name), "", True))
        z = value / error if error > 0 else np.nan
        rows.append((name, lhs, op, rhs, value, error, z, 2 * norm.sf(abs(z)),
                     np.exp(value) if logged else value))
    return pd.DataFrame(rows, columns=columns)


def _family_op(name: str) -> str:
    return "size" if name.startswith("log(size)") else "dispersion"


def category_probabilities(fit: FitResult, newdata: pd.DataFrame | None = None
                           ) -> pd.DataFrame:
    """P(y = category) for every row (columns: the categories of all threshold sets in order,
    nan where a category is not one of the row's or the row is not ordinal), given the random
    effects' conditional modes; at the rows of ``newdata`` (their linear predictor from
    ``fit.predict(newdata, type="link")``) when given."""
    parameters = fit.design.families.parameters
    if parameters is None or not parameters.sets:
        raise UnsupportedError("category_probabilities() needs a fit with ordinal rows.")
    if newdata is None:
        nu, row_set, index = fit.state.nu, parameters.row_set, fit.rows
    else:
        nu = np.asarray(fit.predict(newdata, type="link"), dtype=float)
        row_set, index = _new_row_sets(fit, newdata), newdata.index
    thresholds = family_parameter_values(fit).to_numpy()
    columns = list(dict.fromkeys(c for s in parameters.sets for c in s.categories))
    out = np.full((nu.shape[0], len(columns)), np.nan)
    for s, thresholds_set in enumerate(parameters.sets):
        rows = np.flatnonzero(row_set == s)
        family = fit.design.families.families[fit.design.families.codes[
            np.flatnonzero(parameters.row_set == s)[0]]]
        k = len(thresholds_set.categories)
        theta = thresholds[thresholds_set.first:thresholds_set.first + k - 1]
        cumulative = family.cdf(theta[None, :] - nu[rows, None])
        full = np.column_stack([np.zeros(rows.size), cumulative, np.ones(rows.size)])
        where = [columns.index(c) for c in thresholds_set.categories]
        out[np.ix_(rows, where)] = np.diff(full, axis=1)
    return pd.DataFrame(out, index=index, columns=columns)


def _new_row_sets(fit: FitResult, newdata: pd.DataFrame) -> np.ndarray:
    """The threshold set of each row of ``newdata``, from its indicator levels."""
    from semgalamm.design.row_families import threshold_set_keys

    families = fit.design.families
    if not families.is_single:
        raise UnsupportedError(
            "category_probabilities(newdata=...) is available for fits whose rows are all "
            "ordinal; for mixed families use the fitted rows (newdata=None).")
    single = type(families).single(families.families[0], newdata.shape[0])
    keys = threshold_set_keys(single, fit.spec, newdata)
    sets = {s.key: i for i, s in enumerate(families.parameters.sets)}
    unknown = sorted({k for k in keys if k not in sets})
    if unknown:
        raise UnsupportedError(
            f"newdata has indicator levels without thresholds in the fit: {', '.join(unknown)}.")
    return np.array([sets[k] for k in keys], dtype=np.intp)


def family_parameter_sections(fit: FitResult) -> list[tuple[str, pd.DataFrame]]:
    """Tables for the summary: ordinal::clmm's "Threshold coefficients:" (estimate, standard
    error, z value) and the negative binomial size and Gamma dispersion on their natural
    scale (standard errors by the delta method, exp(v) se(v))."""
    table = family_parameter_table(fit)
    if table.empty:
        return []
    out = []
    thresholds = table[table.op == "|"]
    if not thresholds.empty:
        out.append(("Threshold coefficients:", pd.DataFrame({
            "Estimate": thresholds.estimate.to_numpy(), "Std. Error": thresholds.se.to_numpy(),
            "z value": thresholds["z value"].to_numpy()}, index=list(thresholds.name))))
    other = table[table.op != "|"]
    if not other.empty:
        names = [name.removeprefix("log(").replace(")", "", 1) for name in other.name]
        out.append(("Family parameters:", pd.DataFrame({
            "Estimate": other.natural.to_numpy(),
            "Std. Error": (other.natural * other.se).to_numpy(),
            "log scale": other.estimate.to_numpy(), "SE (log)": other.se.to_numpy()},
            index=names)))
    return out
