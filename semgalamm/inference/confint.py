"""``fit.confint(level, method, parm)``: Wald, profile-likelihood or bootstrap intervals.

Wald intervals are FitResult's own (estimate +- z SE of the fixed effects and loadings);
profile intervals are semgalamm.inference.profile's; bootstrap intervals are the percentile
(or basic) intervals of semgalamm.bootstrap's default statistic, which has the same rows as
the profile intervals. A wide-data SEM (SemFit) has Wald and bootstrap intervals of its free
and ``:=`` parameters (semgalamm.inference.sem_confint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from semgalamm.errors import SpecError, UnsupportedError, nearest
from semgalamm.results.checks import check_choice
from semgalamm.results.sem_result import SemFit

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


def confint(fit: FitResult | SemFit, level: float, method: str = "wald", parm=None,
            **boot_options) -> pd.DataFrame:
    check_choice(method, METHODS, "method")
    if boot_options and method != "boot":
        raise SpecError(f"{', '.join(boot_options)}: options of method='boot' "
                        "(n, seed, executor, progress, boot_type).")
    sem = isinstance(fit, SemFit)
    if method == "wald":
        if sem:
            from semgalamm.inference.sem_confint import sem_wald_intervals

            return _select(sem_wald_intervals(fit, level), parm)
        return _select(fit.confint(level), parm)
    if method == "profile" and sem:
        raise UnsupportedError("Profile intervals of a wide-data SEM (cfa/sem/growth) are not "
                               "available; use method='wald' or method='boot'.")
    if method == "profile":
        from semgalamm.inference.profile import profile_confint

        return profile_confint(fit, level, parm)
    from semgalamm.inference.bootstrap import bootstrap

    boot_type = boot_options.pop("boot_type", "percentile")
    boot_options.setdefault("n", 200)
    if sem:
        from semgalamm.inference.sem_confint import free_and_defined

        boot_options.setdefault("statistic", free_and_defined)
    result = bootstrap(fit, **boot_options)
    return _select(result.intervals(level, boot_type), parm)
