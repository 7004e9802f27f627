"""Tidy tables built from a FitResult: loadings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult


def loading_estimates(fit: FitResult) -> pd.DataFrame | None:
    """One row per loading: latent, indicator, estimate, se (nan when fixed), free flag."""
    spec = fit.spec
    if not spec.loadings:
        return None
    names = fit.design.loadings.lambda_names
    lam = dict(zip(names, fit.state.lam))
    cov = fit.vcov()
    rows = []
    for loading in spec.loadings:
        if loading.fixed is not None:
            rows.append((loading.latent, loading.indicator, loading.fixed, np.nan, False,
                         loading.label))
        else:
            se = float(np.sqrt(cov.loc[loading.label, loading.label]))
            rows.append((loading.latent, loading.indicator, lam[loading.label], se, True,
                         loading.label))
    return pd.DataFrame(rows, columns=["latent", "indicator", "estimate", "se", "free",
                                       "label"])


def loading_table(fit: FitResult) -> pd.DataFrame | None:
    """Loadings as an indicator x latent table with SE columns (lavaan/galamm layout)."""
    est = loading_estimates(fit)
    if est is None:
        return None
    indicators = list(dict.fromkeys(est.indicator))
    columns = {}
    for latent in fit.spec.latents:
        own = est[est.latent == latent].set_index("indicator")
        columns[latent] = own.estimate.reindex(indicators)
        columns[f"{latent} SE"] = own.se.reindex(indicators)
    return pd.DataFrame(columns, index=indicators)
