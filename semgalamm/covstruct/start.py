"""Starting values of the free parameters and the sample values of fixed exogenous moments.

Starts follow lavaan's "simple" rule, with the loadings of each latent scaled to its marker:
loadings 1 (or, when a latent has a fixed marker, the ratio of sample covariances with the
marker's partner), residual variances half the sample variance, latent variances 0.05,
regressions and covariances 0, intercepts the sample means. A user's ``start()`` wins.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from semgalamm.design.sample_moments import GroupSample
from semgalamm.spec.partable import ParameterTable

FloatArray = NDArray[np.float64]


def fixed_values(table: ParameterTable, samples: list[GroupSample]) -> FloatArray:
    """Every row's fixed value; fixed exogenous moments (fixed.x) from their group's sample."""
    values = np.array([r.value for r in table.rows], dtype=float)
    for r, row in enumerate(table.rows):
        if not row.exo:
            continue
        variables = table.blocks[row.block - 1]
        sample = samples[row.group - 1]
        index = {v: i for i, v in enumerate(variables.observed)}
        if row.op == "~1":
            values[r] = sample.mean[index[row.lhs]]
        else:
            values[r] = sample.cov[index[row.lhs], index[row.rhs]]
    return values


def _marker_scales(table: ParameterTable, samples: list[GroupSample]
                   ) -> dict[tuple[int, str], tuple[str, float]]:
    """(block, latent) -> (marker indicator, start of the latent's variance): half the
    marker's sample variance, for latents whose first loading is fixed on an observed column."""
    out: dict[tuple[int, str], tuple[str, float]] = {}
    for row in table.rows:
        if row.op != "=~" or (row.block, row.lhs) in out or row.free:
            continue
        variables = table.blocks[row.block - 1]
        if row.rhs not in variables.observed or row.value == 0:
            continue
        i = variables.observed.index(row.rhs)
        variance = samples[row.group - 1].cov[i, i] / row.value**2
        out[(row.block, row.lhs)] = (row.rhs, 0.5 * variance)
    return out


def start_values(table: ParameterTable, samples: list[GroupSample]) -> FloatArray:
    """A start for the free vector (one value per free position, the first row's).

    A loading starts at cov(y, marker) / psi0 where psi0, the latent's start variance, is half
    the marker's variance (with std_lv, at sqrt(var(y) / 2)); so the implied covariances start
    near the sample's.
    """
    x = np.zeros(table.n_free)
    markers = _marker_scales(table, samples)
    seen: set[int] = set()
    for row in table.rows:
        if not row.free or row.free in seen:
            continue
        seen.add(row.free)
        variables = table.blocks[row.block - 1]
        sample = samples[row.group - 1] if row.group - 1 < len(samples) else None
        index = {v: i for i, v in enumerate(variables.observed)}
        observed = set(variables.observed)
        if row.start is not None:
            value = row.start
        elif row.op == "=~":
            value = 1.0
            if row.rhs in observed and sample is not None:
                i = index[row.rhs]
                if (row.block, row.lhs) in markers:
                    marker, psi0 = markers[(row.block, row.lhs)]
                    value = sample.cov[i, index[marker]] / psi0
                elif table.options.std_lv:
                    value = float(np.sqrt(0.5 * sample.cov[i, i]))
        elif row.op == "~~" and row.lhs == row.rhs:
            if row.lhs in observed and sample is not None:
                value = 0.5 * sample.cov[index[row.lhs], index[row.lhs]]
            elif (row.block, row.lhs) in markers:
                value = markers[(row.block, row.lhs)][1]
            else:
                value = 0.05
        elif row.op == "~1" and row.lhs in observed and sample is not None:
            value = float(sample.mean[index[row.lhs]])
        else:
            value = 0.0
        x[row.free - 1] = value if math.isfinite(value) else 0.0
    return x
