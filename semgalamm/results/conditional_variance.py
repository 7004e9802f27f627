"""Conditional variances of the random effects, lme4's ``ranef(fit, condVar = TRUE)``.

Given the variance parameters, loadings and fixed effects, the spherical random effects u have
the conditional (posterior) covariance ``H^{-1}`` at the mode, with ``H = A'WA + I``,
``A = Z(lambda) Lambda_theta`` and W the working weights (exact for Gaussian responses, the
Laplace approximation otherwise). A block's random effects of level g are ``b_g = s T u_g``
(T the block's relative covariance factor, s = sigma for the profiled Gaussian objective and 1
otherwise), so their conditional covariance is ``s^2 T (H^{-1})_gg T'``: the ``postVar`` that
lme4 attaches to ``ranef()``, conditional on beta as lme4's is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from semgalamm.results.smooths import posterior

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult


def block_names(fit: FitResult) -> list[str]:
    """Each random block's name as lme4 names them: the grouping factor, with ".1", ".2" for
    a factor's second and third block (``(1 | Subject) + (0 + Days | Subject)``)."""
    names, seen = [], {}
    for block in fit.design.blocks:
        count = seen.get(block.group, 0)
        seen[block.group] = count + 1
        names.append(block.group if count == 0 else f"{block.group}.{count}")
    return names


def conditional_covariances(fit: FitResult) -> list[np.ndarray | None]:
    """Per random block, in the design's order: an array (levels, k, k) of the conditional
    covariance s^2 T (H^{-1})_gg T' of each level's random effects (None for a smooth's
    penalized block)."""
    d, state = fit.design, fit.state
    if not d.blocks:
        return []
    posterior(fit)  # factors H at the optimum with the working weights
    system = fit.laplace.objective.system
    scale = state.sigma if fit.laplace.profiled else 1.0
    out, start, theta_start = [], 0, 0
    for block in d.blocks:
        size = block.k * block.n_levels
        T = block.factor(state.theta[theta_start:theta_start + block.n_theta])
        out.append(None)
        if not block.scalar:
            unit = np.zeros((system.q, size))
            unit[start + np.arange(size), np.arange(size)] = 1.0
            h_inv = np.asarray(system.solve(unit))[start:start + size]
            per_level = np.stack([h_inv[g * block.k:(g + 1) * block.k,
                                        g * block.k:(g + 1) * block.k]
                                  for g in range(block.n_levels)])
            out[-1] = scale**2 * np.einsum("ij,gjk,lk->gil", T, per_level, T)
        start += size
        theta_start += block.n_theta
    return out


def ranef_table(fit: FitResult) -> pd.DataFrame:
    """One row per level and term of every (non-smooth) random block: group, level, term,
    the conditional mode (estimate) and its conditional SD (std_error)."""
    frames = []
    for name, cov, block_modes in zip(block_names(fit), conditional_covariances(fit),
                                      fit.ranef().values()):
        if cov is None:
            continue
        sd = np.sqrt(np.einsum("gii->gi", cov))
        for j, term in enumerate(block_modes.columns):
            frames.append(pd.DataFrame({
                "group": name, "level": [str(v) for v in block_modes.index], "term": term,
                "estimate": block_modes.iloc[:, j].to_numpy(), "std_error": sd[:, j]}))
    columns = ["group", "level", "term", "estimate", "std_error"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
