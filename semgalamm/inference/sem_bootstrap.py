"""The parametric bootstrap of a wide-data SEM (lavaan's ``bootstrapLavaan(type =
"parametric")``): complete data drawn from the model-implied moments, refitted with the
fit's own options.

Group g's n_g rows are drawn from N(mu_g, Sigma_g), the implied mean and covariance of its
observed variables at the estimates (the sample means when the model has no mean structure:
its fit does not read them). Each replicate is refitted by ``fit_wide`` with the options
the parameter table keeps (group_equal, std_lv, fixed_x, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from semgalamm.errors import UnsupportedError
from semgalamm.results.sem_result import SemFit

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class GroupMoments:
    """One group's label, observed variables, implied mean and covariance and size."""

    label: str
    names: tuple[str, ...]
    mean: FloatArray
    cov: FloatArray
    n: int


@dataclass(frozen=True)
class SemRefitPlan:
    """What a worker needs to draw a data set and refit it: picklable."""

    model: str
    syntax: Any
    options: dict
    group: str | None
    groups: tuple[GroupMoments, ...]
    statistic: Callable[[SemFit], Any] | None = None
    names: tuple[str, ...] = ()

    def draw(self, rng: np.random.Generator) -> pd.DataFrame:
        frames = []
        for g in self.groups:
            frame = pd.DataFrame(rng.multivariate_normal(g.mean, g.cov, size=g.n,
                                                         method="cholesky"), columns=g.names)
            if self.group is not None:
                frame[self.group] = g.label
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def refit(self, data: pd.DataFrame) -> SemFit:
        from semgalamm.api_sem import fit_wide

        return fit_wide(self.model, data, syntax=self.syntax, **self.options)


def sem_plan(fit: SemFit, **extra) -> SemRefitPlan:
    table = fit.table
    if table.n_levels > 1:
        raise UnsupportedError("bootstrap() of a two-level SEM (cluster=) is not available.")
    options = table.options
    kwargs = dict(function=fit.function, group=fit.group, group_equal=options.group_equal,
                  group_partial=options.group_partial, missing=fit.missing,
                  std_lv=options.std_lv, orthogonal=options.orthogonal,
                  meanstructure=options.meanstructure, fixed_x=options.fixed_x,
                  information=fit.information, int_ov_free=options.int_ov_free,
                  int_lv_free=options.int_lv_free)
    has_means = any(row.op == "~1" for row in table.rows)
    moments = fit.ram.moments(fit.estimate.x, derivatives=False)
    groups = []
    for g, sample in enumerate(fit.samples):
        block = g * table.n_levels
        implied = moments[block]
        groups.append(GroupMoments(sample.label, tuple(table.blocks[block].observed),
                                   implied.mu if has_means else sample.mean,
                                   implied.sigma, sample.n))
    return SemRefitPlan(fit.model, fit.syntax, kwargs, fit.group, tuple(groups), **extra)


def sem_parameter_estimates(fit: SemFit) -> pd.Series:
    """The estimated parameters (free and ``:=``; those with a standard error), named
    "lhs op rhs" (".g2" for the second group's)."""
    table = fit.parameter_estimates()
    estimated = table[table["se"] > 0]
    names = (estimated["lhs"] + estimated["op"] + estimated["rhs"]).astype(str)
    if "group" in estimated.columns and estimated["group"].nunique() > 1:
        names = names + ".g" + estimated["group"].astype(str)
    return pd.Series(estimated["est"].to_numpy(dtype=float), index=names.to_list(),
                     name="estimate")
