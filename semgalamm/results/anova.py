"""Likelihood-ratio tests of nested models, laid out like R's ``anova(fit0, fit1)``.

Each row after the first (models ordered by their number of parameters) tests the model
against the one above it: Chisq = 2 (log L_1 - log L_0) on Df = npar_1 - npar_0 degrees of
freedom. The test is valid for nested models fitted by maximum likelihood to the same rows;
it is conservative when the smaller model puts a variance on its boundary (0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import chi2

from semgalamm.errors import SpecError

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult


def anova(*fits: FitResult, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Compare nested fits: npar, AIC, BIC, logLik, deviance and the likelihood-ratio test
    (Chisq, Df, Pr(>Chisq)) of each model against the previous one, smallest model first.

    ``names`` label the rows (default "model 1", "model 2", ... in the order given).
    """
    if len(fits) < 2:
        raise SpecError("anova() compares two or more fits: anova(fit0, fit1).")
    labels = list(names) if names is not None else [f"model {i + 1}" for i in range(len(fits))]
    if len(labels) != len(fits):
        raise SpecError(f"names has {len(labels)} entries for {len(fits)} fits.")
    _check_comparable(fits, labels)
    order = sorted(range(len(fits)), key=lambda i: fits[i].df)
    npar = np.array([fits[i].df for i in order], dtype=float)
    loglik = np.array([fits[i].loglik for i in order])
    chisq = np.concatenate([[np.nan], 2.0 * np.diff(loglik)])
    df = np.concatenate([[np.nan], np.diff(npar)])
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, chi2.sf(np.maximum(chisq, 0.0), np.where(df > 0, df, 1)), np.nan)
    return pd.DataFrame({
        "npar": npar.astype(int),
        "AIC": [fits[i].aic for i in order],
        "BIC": [fits[i].bic for i in order],
        "logLik": loglik,
        "deviance": -2.0 * loglik,
        "Chisq": chisq,
        "Df": df,
        "Pr(>Chisq)": p,
    }, index=[labels[i] for i in order])


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
