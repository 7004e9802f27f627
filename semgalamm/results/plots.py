"""Diagnostic plots of a FitResult (matplotlib, the optional extra ``plot``).

``plot_diagnostics``: Pearson residuals against fitted values, a normal QQ plot of them, and
their spread by the levels of a grouping factor (lme4's ``plot(fit)``, ``qqnorm(resid(fit))``,
``plot(fit, group ~ resid(.))``). ``plot_ranef``: caterpillar plots of the conditional modes
with ``level`` intervals mode +- z sd from the conditional variances (lme4's
``dotplot(ranef(fit, condVar = TRUE))``; results.conditional_variance). Each returns the
Figure; its Axes carry the data (``ax.collections``, ``ax.lines``, tick labels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import norm

from semgalamm.errors import SpecError, nearest
from semgalamm.results.checks import check_level, pyplot
from semgalamm.results.conditional_variance import ranef_table

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult


MAX_LABELLED = 60  # more levels than this: no level names on the axis


def _grouping(fit: FitResult, group: str | None):
    """The random block named ``group`` (default: the first that is not a smooth)."""
    blocks = [b for b in fit.design.blocks if not b.scalar]
    if not blocks:
        raise SpecError("The model has no random effects, so there are no groups to plot "
                        "the residuals by: call plot_diagnostics() without group=.")
    if group is None:
        return blocks[0]
    names = [b.group for b in blocks]
    if group not in names:
        raise SpecError(f"The model has no grouping factor {group!r}.{nearest(group, names)} "
                        f"Its grouping factors: {', '.join(dict.fromkeys(names))}.")
    return blocks[names.index(group)]


def plot_diagnostics(fit: FitResult, group: str | None = None):
    """Three panels of the Pearson residuals: against the fitted means, a normal QQ plot, and
    a strip of them per level of ``group`` (default: the first grouping factor; no third panel for a
    model without random effects). Returns the matplotlib Figure."""
    plt = pyplot("plot_diagnostics()")
    resid = fit.residuals("pearson")
    fitted = fit.fitted()
    has_groups = any(not b.scalar for b in fit.design.blocks)
    block = _grouping(fit, group) if has_groups or group is not None else None
    fig, axes = plt.subplots(1, 3 if has_groups else 2, figsize=(13 if has_groups else 9, 4))
    ax = axes[0]
    ax.scatter(fitted, resid, s=8, alpha=0.6)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xlabel("fitted values")
    ax.set_ylabel("Pearson residuals")
    ax.set_title("Residuals vs fitted")
    ax = axes[1]
    ordered = np.sort(resid)
    theoretical = norm.ppf((np.arange(1, ordered.size + 1) - 0.5) / ordered.size)
    ax.scatter(theoretical, ordered, s=8, alpha=0.6)
    q = np.quantile(ordered, [0.25, 0.75])  # R's qqline: through the quartiles
    slope = (q[1] - q[0]) / (norm.ppf(0.75) - norm.ppf(0.25))
    ax.plot(theoretical, q[0] + slope * (theoretical - norm.ppf(0.25)), color="grey", lw=1)
    ax.set_xlabel("normal quantiles")
    ax.set_ylabel("ordered Pearson residuals")
    ax.set_title("Normal Q-Q")
    if block is not None:
        ax = axes[2]
        ax.scatter(resid, block.index, s=8, alpha=0.6)
        ax.set_yticks(np.arange(block.n_levels), [str(v) for v in block.levels])
        ax.axvline(0.0, color="grey", lw=1)
        ax.set_xlabel("Pearson residuals")
        ax.set_ylabel(block.group)
        ax.set_title(f"Residuals by {block.group}")
    fig.tight_layout()
    return fig


def plot_ranef(fit: FitResult, group: str | None = None, level: float = 0.95):
    """Caterpillar plot of one grouping factor's random effects (default: the first), one
    panel per term: levels sorted by the first term's mode, a point at each conditional mode
    and a line over mode +- z sd (z the normal quantile of ``level``); levels are named on
    the axis up to MAX_LABELLED of them. Returns the Figure."""
    level = check_level(level)
    plt = pyplot("plot_ranef()")
    table = ranef_table(fit)
    if table.empty:
        raise SpecError("The model has no random effects to plot.")
    name = group if group is not None else table.group.iloc[0]
    if name not in set(table.group):
        names = list(dict.fromkeys(table.group))
        raise SpecError(f"The model has no grouping factor {name!r}.{nearest(name, names)} "
                        f"Its grouping factors: {', '.join(names)}.")
    rows = table[table.group == name]
    terms = list(dict.fromkeys(rows.term))
    first = rows[rows.term == terms[0]]
    order = list(first.sort_values("estimate").level)
    z = norm.ppf(0.5 + level / 2)
    labelled = len(order) <= MAX_LABELLED
    fig, axes = plt.subplots(1, len(terms), squeeze=False, sharey=True,
                             figsize=(4 * len(terms), min(1.0 + 0.2 * len(order), 10.0)))
    for ax, term in zip(axes[0], terms):
        part = rows[rows.term == term].set_index("level").loc[order]
        position = np.arange(len(order))
        ax.hlines(position, part.estimate - z * part.std_error,
                  part.estimate + z * part.std_error, color="grey")
        ax.scatter(part.estimate, position, s=14, zorder=3)
        ax.axvline(0.0, color="grey", lw=1, ls=":")
        ax.set_title(term)
        if labelled:
            ax.set_yticks(position, order)
        else:
            ax.set_yticks([])
    axes[0][0].set_ylabel(name if labelled else f"{name} ({len(order)} levels, sorted)")
    fig.suptitle(f"Random effects of {name} with {100 * level:g}% intervals")
    fig.tight_layout()
    return fig
