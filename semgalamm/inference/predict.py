"""Predictions of a fitted GALAMM at the fitted rows or at new data (lme4's ``predict``).

For a row with covariates x, random-effect columns z, loadings ell and offset o,

    nu = o + X(ell) beta + sum_smooths f_s(x) + Z(ell) b,      mu = g^{-1}(nu),

where ``b`` are the conditional modes (``conditional=True``, lme4's ``re.form = NULL``) or 0
(``conditional=False``, ``re.form = NA``). A smooth is part of the population prediction
(its penalized coefficients are fitted values of the smooth, as in mgcv and gamm4). A level
not seen in the fit gets b = 0 when ``allow_new_levels=True`` (lme4's
``allow.new.levels = TRUE``). The population-level standard error on the link scale is
``sqrt(x' V x)`` with V the covariance of the fixed effects (mgcv's ``se.fit``), or of the
fixed effects and the smooths' penalized coefficients when there are smooths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from semgalamm.design.build import _model_matrix, new_offset, new_rows
from semgalamm.design.design import RandomBlock
from semgalamm.design.frame import as_categorical, check_columns, formula_variables
from semgalamm.errors import DataError, SpecError, UnsupportedError
from semgalamm.families import RowFamilies
from semgalamm.results.checks import check_choice

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult

FloatArray = NDArray[np.float64]


def _as_frame(newdata: object) -> pd.DataFrame:
    if isinstance(newdata, dict):
        return pd.DataFrame(newdata)
    if not isinstance(newdata, pd.DataFrame):
        raise DataError("predict() takes the new data as a pandas DataFrame (or a dict of "
                        f"columns), not a {newdata.__class__.__name__} object.")
    return newdata


def _needed_columns(fit: FitResult, conditional: bool) -> list[str]:
    """The columns predictions read: fixed terms, indicators and loading covariates,
    smooth covariates and, for conditional predictions, random terms and grouping factors."""
    spec = fit.spec
    needed = [c for part in spec.fixed for c in formula_variables(part.formula)]
    needed += [ld.variable for ld in spec.loadings]
    needed += [v for ld in spec.loadings if ld.covariate
               for v in formula_variables(f"0 + {ld.covariate}")]
    for smooth in fit.design.smooths:
        needed += list(smooth.basis.spec.variables)
        needed += [smooth.basis.spec.by] if smooth.basis.spec.by else []
    for offset in spec.offsets:
        needed += formula_variables(f"0 + I({offset})")
    if conditional:
        for block in spec.random:
            needed += list(block.group)
            for formula, _ in block.parts:
                needed += formula_variables(formula)
    return list(dict.fromkeys(needed))


def block_effects(fit: FitResult) -> list[FloatArray]:
    """The conditional modes b of every random-effects block, (levels, k) each:
    b = s T(theta) u per level (s = sigma for the profiled Gaussian objective, else 1)."""
    state, out, start, theta_at = fit.state, [], 0, 0
    scale = state.sigma if fit.laplace.profiled else 1.0
    for block in fit.design.blocks:
        size = block.k * block.n_levels
        u = state.u[start:start + size].reshape(block.n_levels, block.k)
        T = block.factor(state.theta[theta_at:theta_at + block.n_theta])
        out.append(scale * u @ T.T)
        start += size
        theta_at += block.n_theta
    return out


def _level_labels(frame: pd.DataFrame, newdata: pd.DataFrame, group: tuple[str, ...]
                  ) -> list[str]:
    """The grouping factor's label of every new row, spelled as the fit's levels ("a:b"): a
    value equal to a fitted level takes its spelling, a whole-number float that of the integer
    (Subject 308.0 is level "308")."""
    def spell(value: object, spelling: dict) -> str:
        if value in spelling:
            return spelling[value]
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    columns = []
    for column in group:
        spelling = {level: str(level) for level in as_categorical(frame[column]).categories}
        columns.append([spell(v, spelling) for v in newdata[column].astype(object)])
    return [":".join(parts) for parts in zip(*columns)]


def _random_part(fit: FitResult, raw: pd.DataFrame, coded: pd.DataFrame, ell: FloatArray,
                 allow_new_levels: bool) -> FloatArray:
    """Z(ell) b at the new rows: each block's columns there times its level's b (0 for a
    level the fit has not seen)."""
    d = fit.design
    part = np.zeros(coded.shape[0])
    effects = block_effects(fit)
    for random_spec, block, b in zip(fit.spec.random, d.blocks, effects):
        labels = _level_labels(d.frame, raw, random_spec.group)
        position = {level: i for i, level in enumerate(block.levels)}
        codes = np.array([position.get(label, -1) for label in labels], dtype=np.intp)
        unseen = list(dict.fromkeys(lab for lab, c in zip(labels, codes) if c < 0))
        if unseen and not allow_new_levels:
            shown = ", ".join(repr(v) for v in unseen[:5]) + (" ..." if len(unseen) > 5 else "")
            raise DataError(
                f"The new data have level(s) {shown} of '{block.group}' that the fit has not "
                "seen. Pass allow_new_levels=True to predict them with their random effects "
                "at 0 (lme4's allow.new.levels = TRUE), or conditional=False for "
                "population-level predictions."
            )
        z = _block_columns(random_spec.parts, block, fit.design.frame, coded, ell)
        seen = codes >= 0
        part[seen] += np.sum(z[seen] * b[codes[seen]], axis=1)
    return part


def _block_columns(parts, block: RandomBlock, frame: pd.DataFrame, coded: pd.DataFrame,
                   ell: FloatArray) -> FloatArray:
    """A block's columns z (and the latent's row loadings on its latent columns) at new rows."""
    z = np.hstack([_model_matrix(formula, frame, coded)[0] for formula, _ in parts])
    for j, k in enumerate(block.latent):
        if k is not None:
            z[:, j] *= ell[:, k]
    return z


def _fixed_rows(fit: FitResult, coded: pd.DataFrame, X_par: FloatArray, ell: FloatArray
                ) -> tuple[FloatArray, FloatArray]:
    """X(ell) at the new rows (parametric and smooth fixed columns) and the penalized part of
    the smooths, sum_s A_s b_s (times the latent's loading for a latent's smooth)."""
    from semgalamm.results.smooths import _u_rows, _u_scales

    d, m = fit.design, coded.shape[0]
    X = np.zeros((m, d.p))
    X[:, :X_par.shape[1]] = X_par
    smooth_part = np.zeros(m)
    for smooth in d.smooths:
        A = smooth.basis.predict_matrix(coded) @ smooth.mixed.coef_map
        p_f = len(smooth.fixed_columns)
        X[:, list(smooth.fixed_columns)] = A[:, :p_f]
        rows = np.concatenate(_u_rows(fit, smooth) or [np.zeros(0, dtype=np.intp)])
        contribution = A[:, p_f:] @ (_u_scales(fit, smooth) * fit.state.u[rows])
        if smooth.latent is not None:
            contribution *= ell[:, smooth.latent]
        smooth_part += contribution
    for j, k in enumerate(d.fixed_latent):
        if k is not None:
            X[:, j] *= ell[:, k]
    return X, smooth_part


def _population_se(fit: FitResult, X: FloatArray, coded: pd.DataFrame,
                   ell: FloatArray) -> FloatArray:
    """sqrt(x' V x) on the link scale: V the covariance of beta (from fit.vcov()), or with
    smooths the posterior covariance of (beta, penalized coefficients), mgcv's Vp."""
    d = fit.design
    if not d.smooths:
        names = list(d.fixed_names)
        V = fit.vcov().loc[names, names].to_numpy()
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", X, V, X), 0.0))
    from semgalamm.results.smooths import _u_rows, _u_scales, posterior

    post = posterior(fit)
    rows = np.concatenate([r for s in d.smooths for r in _u_rows(fit, s)])
    bu, uu = post.u_block(rows)
    V = post.scale2 * np.block([[post.S_inv, bu], [bu.T, uu]])
    if fit.laplace.profiled:  # M is in sigma u; state.u is u
        V[d.p:] /= fit.state.sigma
        V[:, d.p:] /= fit.state.sigma
    R = np.zeros((coded.shape[0], rows.size))
    at = 0
    for smooth in d.smooths:
        A = smooth.basis.predict_matrix(coded) @ smooth.mixed.coef_map
        block = A[:, len(smooth.fixed_columns):] * _u_scales(fit, smooth)
        if smooth.latent is not None:
            block *= ell[:, [smooth.latent]]
        R[:, at:at + block.shape[1]] = block
        at += block.shape[1]
    full = np.hstack([X, R])
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", full, V, full), 0.0))


def _families_at(fit: FitResult, newdata_given: bool, m: int) -> RowFamilies:
    families = fit.design.families
    if not newdata_given:
        return families
    if len(families.families) > 1:
        raise SpecError("type='response' at new data needs a model with one family; use "
                        "type='link' (or predict at the fitted rows: newdata=None).")
    return RowFamilies.single(families.families[0], m)


def predict(fit: FitResult, newdata: pd.DataFrame | dict | None = None, *,
            conditional: bool = True, allow_new_levels: bool = False,
            type: str = "response", se_fit: bool = False) -> np.ndarray | pd.DataFrame:
    """Predictions at ``newdata`` (None: the fitted rows), conditional on the estimated random
    effects or (``conditional=False``) at the population level, on the ``"link"`` or
    ``"response"`` scale (binomial: the probability). ``se_fit=True`` returns a DataFrame
    with columns ``fit`` and ``se_fit`` (population level on the link scale only).
    ``type="probs"`` (ordinal fits): a DataFrame of P(y = category) per row and category,
    given the conditional modes (semgalamm.results.ordinal.category_probabilities)."""
    check_choice(type, ("link", "response", "probs"), "type")
    if type == "probs":
        return _category_probabilities(fit, newdata, conditional, allow_new_levels, se_fit)
    d = fit.design
    if type == "response" and d.families.mask("ordinal").all():
        raise UnsupportedError(
            "An ordinal response has no mean on the response scale: use type='probs' for the "
            "category probabilities or type='link' for the linear predictor.")
    if se_fit and (conditional or type != "link"):
        raise UnsupportedError(
            "Standard errors of predictions are given at the population level on the link "
            "scale (mgcv's se.fit): pass conditional=False, type='link'. For conditional "
            "predictions use semgalamm.bootstrap()."
        )
    if d.frame is None:
        raise DataError("This fit has no stored data to code new data with.")
    raw = d.frame if newdata is None else _as_frame(newdata)
    needed = _needed_columns(fit, conditional)
    check_columns(raw, needed, "variable")
    # grouping factors are read from raw (new levels are no categories of the fitted frame)
    population = _needed_columns(fit, False)
    grouping = {c for block in fit.spec.random for c in block.group} - set(population)
    columns = raw[[c for c in needed if c not in grouping]]
    X_par, loadings, coded = new_rows(fit.spec, d.frame, columns, d.fixed_names)
    m = coded.shape[0]
    ell = loadings.row_loadings(fit.state.lam) if loadings is not None else np.ones((m, 0))
    X, smooth_part = _fixed_rows(fit, coded, X_par, ell)
    nu = X @ fit.state.beta + smooth_part + new_offset(fit.spec, d.frame, columns)
    if conditional:
        nu = nu + _random_part(fit, raw, coded, ell, allow_new_levels)
    if se_fit:
        return pd.DataFrame({"fit": nu, "se_fit": _population_se(fit, X, coded, ell)},
                            index=raw.index)
    if type == "link":
        return nu
    return _families_at(fit, newdata is not None, m).mean(nu, np.ones(m))


def _category_probabilities(fit: FitResult, newdata, conditional: bool,
                            allow_new_levels: bool, se_fit: bool) -> pd.DataFrame:
    """predict(type="probs"): the ordinal category probabilities of F(theta_j - nu)."""
    from semgalamm.results.ordinal import category_probabilities

    if not fit.design.families.mask("ordinal").any():
        names = sorted({f.name for f in fit.design.families.families})
        raise UnsupportedError(
            "type='probs' gives the category probabilities of ordinal rows; this fit has "
            f"{', '.join(names)} rows only. Use type='response' (the mean) or type='link'.")
    if se_fit or not conditional or allow_new_levels:
        raise UnsupportedError(
            "type='probs' gives the probabilities given the random effects' conditional modes "
            "at the fitted levels: drop se_fit, conditional=False and allow_new_levels=True "
            "(or use type='link' with them).")
    return category_probabilities(fit, None if newdata is None else _as_frame(newdata))

