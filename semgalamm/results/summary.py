"""Text summary of a fit, laid out like lme4's ``summary(merMod)``; it only formats the
tidy tables that FitResult returns. ``SummaryText`` is what every ``summary()`` returns
(FitResult's and SemFit's): a str that shows itself as text."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import norm

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult


class SummaryText(str):
    """The text of a summary. It is a str (``print()`` it, search it, write it to a file);
    at the prompt and in notebooks it shows as the formatted text rather than as a quoted
    string with escaped newlines."""

    __slots__ = ()

    @property
    def text(self) -> str:
        """The plain text (a str)."""
        return str.__str__(self)

    def __repr__(self) -> str:
        return str.__str__(self)

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str.__str__(self)) + "</pre>"

    def __reduce__(self):
        return SummaryText, (str.__str__(self),)


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    return frame.to_string(float_format=lambda v: f"{v:.{digits}g}" if abs(v) < 1e-3 or
                           abs(v) >= 1e5 else f"{v:.{digits}f}", na_rep="")


def _title(fit: FitResult) -> str:
    fams = fit.design.families.families
    if len(fams) > 1:
        kind = "Mixed-response GALAMM"
    elif fams[0].name == "gaussian":
        kind = "Linear mixed model" if fit.design.loadings is None else "Linear GALAMM"
    elif not fit.design.blocks:
        kind = "Generalized linear model"
    else:
        kind = ("Generalized linear mixed model" if fit.design.loadings is None
                else "Generalized GALAMM")
    method = "REML" if fit.laplace.reml else "maximum likelihood"
    approx = "" if fit.laplace.profiled or not fit.design.blocks else " (Laplace approximation)"
    title = f"{kind} fit by {method}{approx}"
    if len(fams) == 1:
        return f"{title}\n Family: {fams[0].name} ({fams[0].link})"
    table = fit.families.rename(columns=str.capitalize).to_string(index=False)
    return f"{title}\n Families:\n" + "\n".join("  " + line for line in table.splitlines())


def coefficient_table(fit: FitResult) -> pd.DataFrame:
    """Estimate, standard error, Wald statistic and p-value of the fixed effects."""
    est, se = fit.fixef, fit.fixef_se
    stat = est / se
    table = pd.DataFrame({"Estimate": est, "Std. Error": se})
    if fit.laplace.profiled:
        table["t value"] = stat
    else:
        table["z value"] = stat
        table["Pr(>|z|)"] = 2 * norm.sf(np.abs(stat))
    return table


def format_summary(fit: FitResult) -> str:
    lines = [_title(fit), f"Model: {fit.model.strip()}", ""]
    stats = pd.DataFrame(
        [[fit.aic, fit.bic, fit.loglik, fit.deviance, fit.nobs - fit.npar]],
        columns=["AIC", "BIC", "logLik", "deviance", "df.resid"],
    )
    lines += [stats.to_string(index=False, float_format=lambda v: f"{v:.1f}"), ""]
    resid = fit.residuals("pearson", scaled=True)
    quant = np.quantile(resid, [0, 0.25, 0.5, 0.75, 1])
    lines += ["Scaled residuals:",
              pd.DataFrame([quant], columns=["Min", "1Q", "Median", "3Q", "Max"])
              .to_string(index=False, float_format=lambda v: f"{v:.4f}"), ""]
    from semgalamm.results.tables import loading_table

    loadings = loading_table(fit)
    if loadings is not None:
        lines += ["Loadings:", _table(loadings), ""]
    structural = fit.structural
    if structural is not None:
        table = structural.assign(Regression=structural.lhs + " ~ " + structural.rhs)
        table = table.set_index("Regression")[["estimate", "se", "z value", "Pr(>|z|)"]]
        table.index.name = None
        lines += ["Regressions:", _table(table.rename(columns={
            "estimate": "Estimate", "se": "Std. Error"})), ""]
    if fit.design.blocks:
        lines += ["Random effects:", _varcorr_text(fit.varcorr())]
        groups = ", ".join(f"{b.group}, {b.n_levels}" for b in fit.design.blocks
                           if not b.scalar)
        lines += [f"Number of obs: {fit.nobs}, groups:  {groups}", ""]
    else:
        lines += [f"Number of obs: {fit.nobs}", ""]
    if fit.design.dispersion_by is not None:
        lines += [f"Residual standard deviation by {fit.design.dispersion_by}:",
                  _table(fit.residual_sd().drop(columns="rows")), ""]
    lines += ["Fixed effects:", _table(coefficient_table(fit))]
    if fit.design.smooths:
        lines += ["", "Smooth terms:", _table(fit.smooths(), digits=3)]
    if not fit.converged:
        lines += ["", f"Warning: the optimizer did not converge ({fit.optimizer.message})."]
    if fit.is_singular:
        lines += ["", "Note: boundary (singular) fit: a random-effect variance is 0."]
    return "\n".join(lines)


def _varcorr_text(vc: pd.DataFrame) -> str:
    rows = []
    for group, block in vc.groupby("group", sort=False):
        variances = block[block["term2"].isna()]
        covs = block[block["term2"].notna()]
        terms = list(variances["term1"])
        for i, (_, row) in enumerate(variances.iterrows()):
            corr = []
            for j in range(i):
                match = covs[(covs.term1 == terms[j]) & (covs.term2 == terms[i])]
                corr.append(f"{match.correlation.iloc[0]:.2f}" if len(match) else "")
            rows.append([group if i == 0 else "", row.term1 if isinstance(row.term1, str) else "",
                         f"{row.variance:.4g}", f"{row.sd:.4g}", " ".join(corr)])
    frame = pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "Std.Dev.", "Corr"])
    return frame.to_string(index=False)
