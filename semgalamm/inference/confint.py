"""``fit.confint(level, method, parm)``: Wald, profile-likelihood or bootstrap intervals.

Wald intervals are FitResult's own (estimate +- z SE of the fixed effects and loadings);
profile intervals are semgalamm.inference.profile's; bootstrap intervals are the percentile
(or basic) intervals of semgalamm.bootstrap's default statistic, which has the same rows as
the profile intervals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from semgalamm.errors import SpecError, nearest
from semgalamm.results.checks import check_choice

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult

METHODS = ("wald", "profile", "boot")


def _select(table: pd.DataFrame, parm) -> pd.DataFrame:
    if parm is None:
        return table
    chosen = [parm] if isinstance(parm, str) else list(parm)
    names = list(table.index)
    for name in chosen:
        if name not in names:
            raise SpecError(f"parm: the fit has no parameter '{name}'.{nearest(name, names)} "
                            f"Its parameters are {', '.join(names)}.")
    return table.loc[chosen]


def confint(fit: FitResult, level: float, method: str = "wald", parm=None,
            **boot_options) -> pd.DataFrame:
    check_choice(method, METHODS, "method")
    if boot_options and method != "boot":
        raise SpecError(f"{', '.join(boot_options)}: options of method='boot' "
                        "(n, seed, executor, progress, boot_type).")
    if method == "wald":
        return _select(fit.confint(level), parm)
    if method == "profile":
        from semgalamm.inference.profile import profile_confint

        return profile_confint(fit, level, parm)
    from semgalamm.inference.bootstrap import bootstrap

    boot_type = boot_options.pop("boot_type", "percentile")
    boot_options.setdefault("n", 200)
    result = bootstrap(fit, **boot_options)
    return _select(result.intervals(level, boot_type), parm)
