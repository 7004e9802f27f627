"""DataFrame -> SampleMoments: what the normal likelihood of a wide-data model needs.

For complete Gaussian data the likelihood depends on the data only through each group's sample
size, mean vector and covariance matrix (divisor n, as lavaan's ML). With missing values
(``missing="ml"``, full information ML) the rows are grouped by their pattern of observed
variables, and each pattern contributes its own size, mean and covariance over the variables it
has: the likelihood is still exact, evaluated pattern by pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from semgalamm.errors import DataError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


@dataclass(frozen=True)
class Pattern:
    """Rows that observe the same variables: ``observed`` (indices into the block's observed
    variables), ``n`` rows, their mean and covariance (divisor n) over those variables."""

    observed: IntArray
    n: int
    mean: FloatArray
    cov: FloatArray


@dataclass(frozen=True)
class GroupSample:
    """One group's data: size n, patterns, and the moments over all rows (available cases)."""

    label: str
    n: int
    patterns: tuple[Pattern, ...]
    mean: FloatArray
    cov: FloatArray
    values: FloatArray  # the group's rows (n, p), NaN where missing

    @property
    def complete(self) -> bool:
        return len(self.patterns) == 1 and len(self.patterns[0].observed) == self.cov.shape[0]


def numeric_block(data: pd.DataFrame, variables: tuple[str, ...]) -> FloatArray:
    """The variables as a float array; a clear error for columns that are not numeric."""
    out = np.empty((len(data), len(variables)))
    for k, name in enumerate(variables):
        column = data[name]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object:
            converted = pd.to_numeric(column.astype(object), errors="coerce")
            bad = converted.isna() & column.notna()
            if bad.any():
                example = column[bad].iloc[0]
                raise DataError(
                    f"Column '{name}' is not numeric (e.g. the value {example!r}); a variable "
                    "of a model on wide data must hold numbers. Recode it (e.g. 0/1 dummies) "
                    "or use it as group=."
                )
            column = converted
        elif column.dtype == bool:
            column = column.astype(float)
        out[:, k] = column.to_numpy(dtype=float)
    return out


def group_sample(label: str, values: FloatArray) -> GroupSample:
    """Patterns and moments of one group's rows (NaN = missing)."""
    n, p = values.shape
    present = ~np.isnan(values)
    keys, inverse = np.unique(present, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    patterns = []
    for k, key in enumerate(keys):
        observed = np.flatnonzero(key)
        if observed.size == 0:
            continue
        rows = values[inverse == k][:, observed]
        mean = rows.mean(axis=0)
        centered = rows - mean
        patterns.append(Pattern(observed, rows.shape[0], mean,
                                centered.T @ centered / rows.shape[0]))
    mean = np.nanmean(values, axis=0) if n else np.zeros(p)
    cov = np.empty((p, p))
    for i in range(p):
        for j in range(i, p):
            both = present[:, i] & present[:, j]
            a = values[both, i] - mean[i]
            b = values[both, j] - mean[j]
            cov[i, j] = cov[j, i] = float(a @ b / max(both.sum(), 1))
    return GroupSample(label, n, tuple(patterns), mean, cov, values)
