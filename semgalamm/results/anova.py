"""Likelihood-ratio tests of nested models.

Long-data fits (FitResult, ``semgalamm.fit``) are laid out like R's ``anova(fit0, fit1)``
for lme4 fits: each row after the first (models ordered by their number of parameters) tests
the model against the one above it, Chisq = 2 (log L_1 - log L_0) on Df = npar_1 - npar_0
degrees of freedom. The test is valid for nested models fitted by maximum likelihood to the
same rows; it is conservative when the smaller model puts a variance on its boundary (0).

Wide-data SEMs (SemFit, ``semgalamm.cfa/sem/growth``) are laid out like lavaan's
``anova(fit1, fit2)`` (``lavTestLRT``, standard chi-square difference test): models ordered
by their degrees of freedom (the least restricted first), with Df, AIC, BIC, Chisq, the
chi-square difference, the RMSEA of the difference, Df diff and Pr(>Chisq).

The two kinds cannot be mixed: their likelihoods are of different data.

The result is an ``AnovaTable``: a pandas DataFrame (index the model names, the columns
above) that prints in full width with the models listed above the table, as R prints it, and
renders as an HTML table in Jupyter. Operations on it return plain DataFrames.
"""

from __future__ import annotations

import html
import inspect
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import chi2

from semgalamm.errors import ConvergenceWarning, FitWarning, SpecError
from semgalamm.results.summary import r_format

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult
    from semgalamm.results.sem_result import SemFit


class AnovaTable(pd.DataFrame):
    """The likelihood-ratio table: a DataFrame indexed by model name. ``heading``: the lines
    printed above the table (R's "Models:" list, lavaan's title)."""

    _metadata = ["heading"]

    @property
    def _constructor(self):
        return pd.DataFrame

    def to_text(self) -> str:
        """The table as R prints it: every column, numbers in R's format, blanks for NA."""
        cells = pd.DataFrame(index=self.index)
        for column in self.columns:
            values = self[column].to_numpy(dtype=float)
            if column in ("npar", "Df", "Df diff"):
                cells[column] = ["" if np.isnan(v) else f"{v:.0f}" for v in values]
            elif column == "Pr(>Chisq)":
                cells[column] = ["" if np.isnan(v) else f"{v:.4g}" for v in values]
            else:
                cells[column] = r_format(values, 5)
        return "\n".join(list(self.heading) + [cells.to_string()])

    def __repr__(self) -> str:
        return self.to_text()

    __str__ = __repr__

    def _repr_html_(self) -> str:
        heading = "<br>".join(html.escape(line) for line in self.heading if line)
        table = pd.DataFrame(self).to_html(na_rep="", border=0, float_format=lambda v:
                                           f"{v:.5g}")
        return f"<div><p>{heading}</p>\n{table}</div>"


def _caller_names(fits: Sequence[object], frame) -> list[str | None]:
    """The variable names the caller gave the fits, as R's anova labels models by its
    arguments (None for a fit that is not one variable of the caller)."""
    if frame is None:
        return [None] * len(fits)
    scope = {**frame.f_globals, **frame.f_locals}
    out = []
    for fit in fits:
        names = [name for name, value in scope.items() if value is fit
                 and not name.startswith("_")]
        out.append(names[0] if len(names) == 1 else None)
    return out


def _default_labels(fits: Sequence[object], frame) -> list[str]:
    """The caller's variable names, else the model (one line, when short), else "model i";
    made unique."""
    labels = []
    for i, (fit, name) in enumerate(zip(fits, _caller_names(fits, frame))):
        model = " ".join(str(getattr(fit, "model", "")).split())
        label = name or (model if 0 < len(model) <= 60 else f"model {i + 1}")
        labels.append(label if label not in labels else f"{label} ({i + 1})")
    return labels


def anova(*fits: FitResult | SemFit, names: Sequence[str] | None = None) -> AnovaTable:
    """Compare nested fits by likelihood-ratio tests.

    FitResults (``semgalamm.fit``): npar, AIC, BIC, logLik, deviance and the test (Chisq,
    Df, Pr(>Chisq)) of each model against the previous one, smallest model first (R's
    anova for lme4 fits). SemFits (``semgalamm.cfa/sem/growth``): lavaan's anova table
    (Df, AIC, BIC, Chisq, Chisq diff, RMSEA, Df diff, Pr(>Chisq)), least restricted model
    first.

    ``names`` label the rows; by default the caller's variable names of the fits (R's
    labels), else the model string when it fits on one short line, else "model 1", ....
    Returns an ``AnovaTable`` (a DataFrame that prints in full, with the models above it).
    """
    from semgalamm.results.fit_result import FitResult
    from semgalamm.results.sem_result import SemFit

    if len(fits) == 1 and isinstance(fits[0], (list, tuple)):
        raise SpecError("anova() takes the fits as separate arguments: anova(fit0, fit1), or "
                        "anova(*fits) for a list of fits.")
    if len(fits) < 2:
        raise SpecError("anova() compares two or more fits: anova(fit0, fit1).")
    labels = list(names) if names is not None else \
        _default_labels(fits, inspect.currentframe().f_back)
    if len(labels) != len(fits):
        raise SpecError(f"names has {len(labels)} entries for {len(fits)} fits.")
    for fit, label in zip(fits, labels):
        if not isinstance(fit, (FitResult, SemFit)):
            raise SpecError(f"anova() compares fitted models; {label} is a "
                            f"{type(fit).__name__} object. Pass the results of "
                            "semgalamm.fit() or of semgalamm.cfa()/sem()/growth().")
    kinds = {type(fit) for fit in fits}
    if len(kinds) > 1:
        sem_label = next(label for fit, label in zip(fits, labels) if isinstance(fit, SemFit))
        long_label = next(label for fit, label in zip(fits, labels)
                          if isinstance(fit, FitResult))
        raise SpecError(
            f"anova() cannot compare a SemFit ({sem_label}, from semgalamm.cfa/sem/growth on "
            f"wide data) with a FitResult ({long_label}, from semgalamm.fit on long data): "
            "their likelihoods are of differently arranged data, so the likelihood-ratio "
            "test means nothing. Fit all models with the same function and compare those."
        )
    if isinstance(fits[0], SemFit):
        return _anova_sem(fits, labels)
    return _anova_long(fits, labels)


# --------------------------------------------------------------------------- long data


def _anova_long(fits: Sequence[FitResult], labels: list[str]) -> AnovaTable:
    _check_comparable(fits, labels)
    order = sorted(range(len(fits)), key=lambda i: fits[i].npar)
    npar = np.array([fits[i].npar for i in order], dtype=float)
    loglik = np.array([fits[i].loglik for i in order])
    chisq = np.concatenate([[np.nan], 2.0 * np.diff(loglik)])
    df = np.concatenate([[np.nan], np.diff(npar)])
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, chi2.sf(np.maximum(chisq, 0.0), np.where(df > 0, df, 1)), np.nan)
    rows = [labels[i] for i in order]
    frame = pd.DataFrame({
        "npar": npar.astype(int),
        "AIC": [fits[i].aic for i in order],
        "BIC": [fits[i].bic for i in order],
        "logLik": loglik,
        "deviance": -2.0 * loglik,
        "Chisq": chisq,
        "Df": df,
        "Pr(>Chisq)": p,
    }, index=rows)
    data_name = fits[0].design.frame.attrs.get("name") if fits[0].design.frame is not None \
        else None
    models = [(label, " ".join(fits[i].model.split())) for label, i in zip(rows, order)]
    heading = ([f"Data: {data_name}"] if data_name else []) + ["Models:"] + [
        f"{label}: {model}" if label != model else model for label, model in models]
    return _table(frame, heading)


def _table(frame: pd.DataFrame, heading: list[str]) -> AnovaTable:
    table = AnovaTable(frame)
    object.__setattr__(table, "heading", tuple(heading))
    return table


def _check_comparable(fits: Sequence[FitResult], labels: list[str]) -> None:
    """Same rows, same responses, maximum likelihood: otherwise the test means nothing."""
    first = fits[0]
    for fit, label in zip(fits, labels):
        if fit.laplace.reml:
            raise SpecError(
                f"{label} was fitted by REML; likelihood-ratio tests need maximum likelihood "
                "fits. Refit it with reml=False."
            )
        if fit.nobs != first.nobs or not fit.rows.equals(first.rows):
            raise SpecError(
                f"{label} was fitted to other rows than {labels[0]} ({fit.nobs} vs "
                f"{first.nobs} rows): likelihood-ratio tests need the same data. Fit both "
                "models to the same DataFrame."
            )
        same_response = np.array_equal(fit.design.y, first.design.y) and np.array_equal(
            fit.design.trials, first.design.trials)
        if not same_response:
            raise SpecError(
                f"{label} has another response than {labels[0]}: the models are not nested."
            )


# --------------------------------------------------------------------------- SEMs (lavaan)

SEM_COLUMNS = ("Df", "AIC", "BIC", "Chisq", "Chisq diff", "RMSEA", "Df diff", "Pr(>Chisq)")


def _observed(fit: SemFit) -> list[str]:
    return sorted({v for block in fit.table.blocks for v in block.observed})


def _check_sem_comparable(fits: Sequence[SemFit], labels: list[str]) -> None:
    """Same observations, variables, groups and mean structure (lavaan refuses mixed mean
    structures and warns about different variables; here both are errors)."""
    first, name = fits[0], labels[0]
    for fit, label in zip(fits[1:], labels[1:]):
        if [s.label for s in fit.samples] != [s.label for s in first.samples]:
            raise SpecError(
                f"{label} and {name} have other groups (group={fit.group!r}: "
                f"{len(fit.samples)} vs group={first.group!r}: {len(first.samples)}): the "
                "models are not nested. Fit both with the same group= column."
            )
        if fit.nobs != first.nobs or [s.n for s in fit.samples] != [s.n for s in first.samples]:
            raise SpecError(
                f"{label} was fitted to {fit.nobs} observations and {name} to {first.nobs}: "
                "likelihood-ratio tests need the same data (check missing= and the data "
                "passed)."
            )
        if _observed(fit) != _observed(first):
            only = sorted(set(_observed(fit)) ^ set(_observed(first)))
            raise SpecError(
                f"{label} and {name} are models of different observed variables "
                f"({', '.join(only)} in one only): their chi-squares are of different data, "
                "so the models are not nested. Keep the variables in both (fix a path to 0 "
                "instead of dropping a variable)."
            )
        if fit.table.meanstructure != first.table.meanstructure:
            raise SpecError(
                f"{label} and {name} differ in their mean structure (one models intercepts, "
                "the other does not): fit both with the same meanstructure= option."
            )
        if fit.table.n_levels != first.table.n_levels:
            raise SpecError(f"{label} and {name} have different numbers of levels: the "
                            "models are not nested.")


def _anova_sem(fits: Sequence[SemFit], labels: list[str]) -> AnovaTable:
    """lavaan's lavTestLRT(..., method = "default") for ML fits: the chi-square difference
    test, the RMSEA of the difference with lavaan's N (all observations) and groups taken
    from the first model given."""
    _check_sem_comparable(fits, labels)
    not_converged = [label for fit, label in zip(fits, labels) if not fit.converged]
    if not_converged:
        warnings.warn(f"Not all models converged ({', '.join(not_converged)}): the test may "
                      "be meaningless.", ConvergenceWarning, stacklevel=3)
    measures = [fit.fit_measures() for fit in fits]
    model_df = [float(m["df"]) for m in measures]
    order = sorted(range(len(fits)), key=lambda i: model_df[i])  # stable, as R's order()
    df = np.array([model_df[i] for i in order])
    stat = np.array([float(measures[i]["chisq"]) for i in order])
    stat_diff = np.concatenate([[np.nan], np.diff(stat)])
    df_diff = np.concatenate([[np.nan], np.diff(df)])
    n, groups = float(fits[0].nobs), len(fits[0].samples)
    rmsea = [np.nan] + [
        math.sqrt(max(x / n / d - 1.0 / n, 0.0)) * math.sqrt(groups) if d > 0 else 0.0
        for x, d in zip(stat_diff[1:], df_diff[1:])]
    with np.errstate(invalid="ignore"):
        p = np.array([np.nan] + [float(chi2.sf(x, d)) if d > 0 else np.nan
                                 for x, d in zip(stat_diff[1:], df_diff[1:])])
    rows = [labels[i] for i in order]
    if np.any(stat_diff[1:] < -np.finfo(float).eps ** (1 / 3)):
        warnings.warn(
            "Some restricted models fit better than less restricted models; either these "
            "models are not nested, or the less restricted model failed to reach a global "
            f"optimum. Smallest difference = {np.nanmin(stat_diff[1:]):.6g}.", FitWarning,
            stacklevel=3)
    same = [rows[k] for k in range(1, len(rows)) if df_diff[k] == 0]
    if same:
        warnings.warn(
            f"Some models have the same degrees of freedom ({', '.join(same)} and the model "
            "above): they are not nested, so there is no test (Pr(>Chisq) is NaN); compare "
            "them by AIC or BIC.", FitWarning, stacklevel=3)
    frame = pd.DataFrame({
        "Df": df.astype(int),
        "AIC": [fits[i].aic for i in order],
        "BIC": [fits[i].bic for i in order],
        "Chisq": stat,
        "Chisq diff": stat_diff,
        "RMSEA": rmsea,
        "Df diff": df_diff,
        "Pr(>Chisq)": p,
    }, index=rows)
    return _table(frame, ["Chi-Squared Difference Test", ""])
