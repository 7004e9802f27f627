"""Confidence intervals of a wide-data SEM's free and defined (``:=``) parameters
(``SemFit.confint(level, method, parm)``).

Wald: estimate +- z SE, z the normal quantile of 1/2 + level/2 (lavaan's parameterEstimates
ci.lower, ci.upper), a ``:=`` parameter's SE by the delta method. Bootstrap: the percentile
or basic intervals of the same rows over parametric bootstrap replicates
(semgalamm.inference.sem_bootstrap, lavaan's ``bootstrapLavaan(type = "parametric")``), the
interval lavaan users report for an indirect effect. Rows are named as ``vcov()`` names the
free parameters (the label, else lhs op rhs with ".g2" for the second group), then each
``:=`` by its name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from semgalamm.results.sem_result import SemFit


def free_and_defined(fit: SemFit) -> pd.Series:
    """The free parameters and the ``:=`` parameters, named as ``SemFit.confint()`` rows
    (the default statistic of its bootstrap intervals)."""
    names = [*fit.vcov().index, *(d.name for d in fit.table.definitions)]
    values = np.concatenate([fit.estimate.x, fit._defined(fit.estimate.x)])
    return pd.Series(values, index=names, name="estimate")


def sem_wald_intervals(fit: SemFit, level: float) -> pd.DataFrame:
    """Wald intervals: columns estimate and the two bounds (as FitResult's Wald intervals);
    a parameter held at an inequality bound has none."""
    estimate = free_and_defined(fit)
    x = np.asarray(fit.estimate.x, dtype=float)
    se_free = np.sqrt(np.clip(np.diag(fit.vcov_free), 0, None))
    for position in fit._active_positions():
        se_free[position - 1] = np.nan
    se_defined = fit._delta_se(fit._defined, x) if fit.table.definitions else np.zeros(0)
    se = np.concatenate([se_free, se_defined])
    z = stats.norm.ppf(0.5 + level / 2)
    lo, hi = f"{100 * (1 - level) / 2:g} %", f"{100 * (1 + level) / 2:g} %"
    return pd.DataFrame({"estimate": estimate, lo: estimate - z * se, hi: estimate + z * se},
                        index=estimate.index)
