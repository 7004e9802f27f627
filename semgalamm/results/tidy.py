"""broom's three tables of a fit: ``tidy`` (one row per estimate), ``glance`` (one row per
model) and ``augment`` (one row per observation), with broom's column names written the
Python way (``std.error`` -> ``std_error``, ``p.value`` -> ``p_value``).

FitResult follows broom.mixed's tidiers for lme4 fits: ``effect`` is "fixed", "ran_pars"
(random-effect SDs ``sd__term`` and correlations ``cor__term1.term2``, the residual SD as
``sd__Observation`` in group "Residual"), "ran_vals" (conditional modes with their
conditional SDs), and, for GALAMMs, "loading" and "regression" (among latents). SemFit
follows broom's tidy.lavaan and glance.lavaan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import norm

from semgalamm.errors import SpecError, nearest
from semgalamm.results.checks import check_level
from semgalamm.results.conditional_variance import block_names, ranef_table
from semgalamm.results.ordinal import family_parameter_table

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult
    from semgalamm.results.sem_result import SemFit

EFFECTS = ("fixed", "ran_pars", "ran_vals", "loading", "regression")
COLUMNS = ["effect", "group", "term", "estimate", "std_error", "statistic", "p_value"]


def _effects(fit: FitResult, effects: str | Sequence[str] | None) -> list[str]:
    """The requested kinds of rows; by default every kind the model has except "ran_vals"
    (broom.mixed's default is fixed and ran_pars)."""
    if effects is None:
        chosen = ["fixed", "ran_pars"]
        if fit.spec.loadings:
            chosen.append("loading")
        if fit.spec.structural:
            chosen.append("regression")
        return chosen
    chosen = [effects] if isinstance(effects, str) else list(effects)
    for effect in chosen:
        if effect not in EFFECTS:
            raise SpecError(f"effects must be among {', '.join(map(repr, EFFECTS))}, not "
                            f"{effect!r}.{nearest(effect, EFFECTS)}")
    return chosen


def _wald(estimate: np.ndarray, se: np.ndarray, p_values: bool) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.where(se > 0, estimate / se, np.nan)
    p = 2 * norm.sf(np.abs(statistic)) if p_values else np.full(len(estimate), np.nan)
    return pd.DataFrame({"estimate": estimate, "std_error": se, "statistic": statistic,
                         "p_value": p})


def _fixed(fit: FitResult) -> pd.DataFrame:
    """Fixed effects; lme4 gives no p-value for a linear mixed model's t statistic. Ordinal
    thresholds come first, as in broom's tidy.clmm, and a ``coef_type`` column tells them
    ("intercept", clmm's alpha) from the fixed effects ("location", clmm's beta)."""
    table = _wald(fit.fixef.to_numpy(), fit.fixef_se.to_numpy(), not fit.laplace.profiled)
    table = table.assign(effect="fixed", group=None, term=list(fit.design.fixed_names),
                         parameter=list(fit.design.fixed_names))
    family = family_parameter_table(fit)
    thresholds = family[family.op == "|"]
    if thresholds.empty:
        return table
    alpha = _wald(thresholds.estimate.to_numpy(dtype=float), thresholds.se.to_numpy(dtype=float),
                  True)
    alpha = alpha.assign(effect="fixed", group=None, term=thresholds.name.to_numpy(),
                         parameter=thresholds.name.to_numpy(), coef_type="intercept")
    return pd.concat([alpha, table.assign(coef_type="location")], ignore_index=True)


def _family_pars(fit: FitResult) -> pd.DataFrame:
    """The negative binomial size and the Gamma dispersion as "ran_pars" rows of group
    "Residual" (term "size", "dispersion"), on their natural scale with delta-method SEs
    (exp(psi) se(psi)); no statistic, as for the other ran_pars."""
    family = family_parameter_table(fit)
    rows = family[family.op != "|"]
    natural = rows.natural.to_numpy(dtype=float)
    return pd.DataFrame({
        "group": "Residual", "term": rows.name.str.replace(r"^log\((.*)\)$", r"\1",
                                                           regex=True).to_numpy(),
        "estimate": natural, "effect": "ran_pars",
        "std_error": natural * rows.se.to_numpy(dtype=float), "statistic": np.nan,
        "p_value": np.nan})


def _ran_pars(fit: FitResult) -> pd.DataFrame:
    """Random-effect SDs and correlations of every block, then the residual SD(s)."""
    rows = []
    for name, block, cov in zip(block_names(fit), fit.design.blocks, fit._block_covariances()):
        sd = np.sqrt(np.diag(cov))
        if block.scalar:  # a smooth's penalized coefficients share one variance
            rows.append((name, "sd__(penalized)", sd[0]))
            continue
        for i, term in enumerate(block.columns):  # broom.mixed's order: sd_i, then cor_ij
            rows.append((name, f"sd__{term}", sd[i]))
            for j in range(i + 1, block.k) if block.correlated else ():
                corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                rows.append((name, f"cor__{term}.{block.columns[j]}", corr))
    by = fit.design.dispersion_by
    for level, sd in zip(fit.design.dispersion_levels, fit._group_sigma()):
        rows.append(("Residual", f"sd__Observation[{by}={level}]" if by else "sd__Observation",
                     sd))
    frame = pd.DataFrame(rows, columns=["group", "term", "estimate"])
    frame = frame.assign(effect="ran_pars", std_error=np.nan, statistic=np.nan, p_value=np.nan)
    family = _family_pars(fit)
    return pd.concat([frame, family], ignore_index=True) if len(family) else frame


def _loadings(fit: FitResult) -> pd.DataFrame:
    est = fit.loading_estimates()
    table = _wald(est.estimate.to_numpy(), est.se.to_numpy(), True)
    return table.assign(effect="loading", group=est.latent.to_numpy(),
                        term=est.indicator.to_numpy(), parameter=est.label.to_numpy())


def _regressions(fit: FitResult) -> pd.DataFrame:
    est = fit.structural
    table = _wald(est.estimate.to_numpy(), est.se.to_numpy(), True)
    return table.assign(effect="regression", group=None,
                        term=(est.lhs + " ~ " + est.rhs).to_numpy(), parameter=est.label)


def tidy_fit(fit: FitResult, effects: str | Sequence[str] | None = None,
             conf_int: bool = False, conf_level: float = 0.95) -> pd.DataFrame:
    """broom.mixed's tidy(): one row per estimate, ``effect``, ``group``, ``term``,
    ``estimate``, ``std_error``, ``statistic`` (estimate / std_error), ``p_value`` (Wald,
    normal), with ``conf_int`` Wald intervals ``conf_low``, ``conf_high`` (none for ran_pars,
    as broom.mixed's Wald method; mode +- z conditional SD for ran_vals); "ran_vals" rows add
    a ``level`` column."""
    chosen = _effects(fit, effects)
    build = {"fixed": _fixed, "ran_pars": _ran_pars, "loading": _loadings,
             "regression": _regressions,
             "ran_vals": lambda f: ranef_table(f).assign(effect="ran_vals", statistic=np.nan,
                                                         p_value=np.nan)}
    parts = []
    for effect in chosen:
        if effect == "loading" and not fit.spec.loadings or \
                effect == "regression" and not fit.spec.structural:
            what = "loadings" if effect == "loading" else "regressions among latents"
            raise SpecError(f"effects={effect!r}: the model has no {what}.")
        parts.append(build[effect](fit))
    frame = pd.concat(parts, ignore_index=True)
    columns = COLUMNS[:2] + (["level"] if "ran_vals" in chosen else []) + COLUMNS[2:]
    if "coef_type" in frame:  # ordinal thresholds (broom's tidy.clmm)
        columns.insert(columns.index("term") + 1, "coef_type")
    if conf_int:
        level = check_level(conf_level, "conf_level")
        z = norm.ppf(0.5 + level / 2)
        wald = frame.effect.isin(["fixed", "ran_vals", "loading", "regression"])
        frame["conf_low"] = np.where(wald, frame.estimate - z * frame.std_error, np.nan)
        frame["conf_high"] = np.where(wald, frame.estimate + z * frame.std_error, np.nan)
        columns += ["conf_low", "conf_high"]
    return frame[columns]


def residual_scale(fit: FitResult) -> float:
    """lme4's sigma(): the residual SD of Gaussian rows (of the reference group), sqrt of
    the dispersion of a Gamma model (glmmTMB's and lme4's sigma), 1 for families without a
    scale (binomial, Poisson, negative binomial, ordinal)."""
    families = fit.design.families
    if families.mask("gaussian").any():
        return fit.sigma
    if families.is_single and families.families[0].name == "gamma":
        table = family_parameter_table(fit)
        return float(np.sqrt(table.loc[table.op == "dispersion", "natural"].iloc[0]))
    return 1.0


def glance_fit(fit: FitResult) -> pd.DataFrame:
    """broom.mixed's glance(): one row with nobs, sigma (lme4's sigma(): 1 without Gaussian
    rows, ``residual_scale``), logLik, AIC, BIC, deviance (-2 logLik; named REMLcrit for
    REML fits, as broom.mixed names it) and df_residual (nobs - npar)."""
    return pd.DataFrame([{"nobs": fit.nobs, "sigma": residual_scale(fit), "logLik": fit.loglik,
                          "AIC": fit.aic, "BIC": fit.bic,
                          "REMLcrit" if fit.laplace.reml else "deviance": fit.deviance,
                          "df_residual": fit.nobs - fit.npar}])


def model_frame(fit: FitResult) -> pd.DataFrame:
    """The response and the grouping factors of the rows used, indexed like the data."""
    d = fit.design
    columns = {".response": d.y / d.trials}
    for block in d.blocks:
        if not block.scalar:
            columns[block.group] = np.asarray(block.levels, dtype=object)[block.index]
    return pd.DataFrame(columns, index=fit.rows)


def leverages(fit: FitResult) -> np.ndarray:
    """lme4's hatvalues(): the diagonal of the hat matrix of the penalized system,

        h_i = p_i [a_i' H^-1 a_i + (x_i - C' a_i)' S^-1 (x_i - C' a_i)],

    with a_i row i of A = Z(lambda) Lambda_theta, x_i of X(lambda), H = A'WA + I, C = H^-1
    A'WX and S = X'WX - X'WA C at the working weights W (the blocks of the inverse of the
    penalized cross-product matrix) and p_i the row's weight outside: W itself for Gaussian
    rows (the exact hat matrix of the weighted least squares), the prior weight elsewhere
    (binomial trials), as lme4 does for GLMMs."""
    from semgalamm.results.smooths import posterior

    d, state = fit.design, fit.state
    post = posterior(fit)  # factors H at the working weights
    system = fit.laplace.objective.system
    ell = d.row_loadings(state.lam)
    values = system.values(state.theta, ell)
    random_part = np.sum(values * system.clique_inverse_times(values), axis=1)
    C = np.asarray(post.C)
    residual = d.X(ell) - (np.einsum("ik,ikp->ip", values, C[system.columns])
                           if system.q else 0.0)
    fixed_part = np.einsum("ip,pr,ir->i", residual, post.S_inv, residual)
    gaussian = d.families.mask("gaussian")
    if fit.laplace.profiled:
        outside = d.weights * (state.sigma / fit._row_sigma()) ** 2
    else:
        with np.errstate(invalid="ignore"):
            outside = np.where(gaussian, d.weights / fit._row_sigma() ** 2,
                               d.weights * np.where(d.families.mask("binomial"), d.trials, 1))
    return outside * (random_part + fixed_part)


def cooks_distance(fit: FitResult, hat: np.ndarray) -> np.ndarray:
    """lme4's cooks.distance(): (r_i / (1 - h_i))^2 h_i / (sigma^2 p), r the Pearson
    residuals, p the rank of X, sigma lme4's sigma() (``residual_scale``)."""
    p = np.linalg.matrix_rank(fit.design.X0) if fit.design.p else 0
    pearson = fit.residuals("pearson")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (pearson / (1 - hat)) ** 2 * hat / (residual_scale(fit) ** 2 * p)
    return np.where(np.isfinite(out), out, np.nan)


def augment_fit(fit: FitResult, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """broom.mixed's augment(): the data's rows used by the fit (a copy; or the model frame
    when ``data`` is None) with ``.fitted`` (nu, the linear predictor at the conditional
    modes), ``.mu`` (the mean on the response scale), ``.fixed`` (X(lambda) beta + offset,
    random effects at 0), ``.resid`` (response residuals for all-Gaussian models, deviance
    residuals otherwise, as lme4's residuals()), ``.wtres`` (Pearson residuals), ``.hat``
    (lme4's hatvalues(), ``leverages``) and ``.cooksd`` (lme4's cooks.distance())."""
    d = fit.design
    if data is None:
        frame = model_frame(fit)
    else:
        if not isinstance(data, pd.DataFrame):
            raise SpecError("augment() takes the data the model was fitted to as a pandas "
                            f"DataFrame, not a {type(data).__name__}.")
        missing = fit.rows.difference(data.index)
        if len(missing):
            raise SpecError(f"augment(): {len(missing)} rows the model was fitted to are not "
                            f"in data (index {list(missing[:5])}...): pass the DataFrame "
                            "given to fit().")
        frame = data.loc[fit.rows].copy()
    gaussian = bool(np.all(d.families.mask("gaussian")))
    ell = d.row_loadings(fit.state.lam)
    frame[".fitted"] = fit.linear_predictor()
    frame[".mu"] = fit.fitted()
    frame[".fixed"] = d.X(ell) @ fit.state.beta + d.offset
    frame[".resid"] = fit.residuals("response" if gaussian else "deviance")
    frame[".wtres"] = fit.residuals("pearson")
    frame[".hat"] = leverages(fit)
    frame[".cooksd"] = cooks_distance(fit, frame[".hat"].to_numpy())
    return frame


# --------------------------------------------------------------------------- SEMs (lavaan)


def tidy_sem(fit: SemFit, conf_int: bool = False, conf_level: float = 0.95) -> pd.DataFrame:
    """broom's tidy.lavaan: term ("visual =~ x1"), op, estimate, std_error, statistic,
    p_value, (conf_low, conf_high), std_lv, std_all, std_nox; group/level/label columns as
    parameter_estimates() has them."""
    level = check_level(conf_level, "conf_level")
    table = fit.parameter_estimates(level=level)
    frame = pd.DataFrame({"term": table.lhs + " " + table.op + " " + table.rhs, "op": table.op})
    for column in ("group", "level"):
        if column in table:
            frame[column] = table[column]
    if table.label.astype(bool).any():
        frame["label"] = table.label
    frame["estimate"] = table.est
    frame["std_error"] = table.se
    frame["statistic"] = table.z
    frame["p_value"] = table.pvalue
    if conf_int:
        frame["conf_low"] = table.ci_lower
        frame["conf_high"] = table.ci_upper
    for kind in ("std.lv", "std.all", "std.nox"):
        frame[kind.replace(".", "_")] = standardized_estimates(fit, table, kind)
    return frame


def standardized_estimates(fit: SemFit, table: pd.DataFrame, kind: str) -> np.ndarray:
    """The standardized estimate (``kind`` "std.lv", "std.all" or "std.nox") of every row of
    ``table`` (parameter_estimates()), matched by lhs, op, rhs, group and level."""
    keys = [key for key in ("lhs", "op", "rhs", "group", "level") if key in table]
    std = fit.standardized_solution(type=kind)[keys + ["est_std"]]
    merged = table[keys].merge(std.drop_duplicates(keys), on=keys, how="left")
    return merged["est_std"].to_numpy()


def glance_sem(fit: SemFit) -> pd.DataFrame:
    """broom's glance.lavaan: AIC, BIC, cfi, chisq, npar, rmsea, rmsea_conf_high, srmr, tli,
    converged, estimator, ngroups, missing_method, nobs (agfi is not computed)."""
    m = fit.fit_measures()
    return pd.DataFrame([{
        "AIC": fit.aic, "BIC": fit.bic, "cfi": m.get("cfi", np.nan),
        "chisq": m.get("chisq", np.nan), "npar": fit.npar, "rmsea": m.get("rmsea", np.nan),
        "rmsea_conf_high": m.get("rmsea.ci.upper", np.nan), "srmr": m.get("srmr", np.nan),
        "tli": m.get("tli", np.nan), "converged": fit.converged, "estimator": "ML",
        "ngroups": len(fit.samples), "missing_method": fit.missing, "nobs": fit.nobs}])
