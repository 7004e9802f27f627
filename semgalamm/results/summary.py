"""Summary of a fit, laid out like lme4's ``print(summary(merMod))``; it only formats the
tidy tables that FitResult returns.

``SummaryText`` is what every ``summary()`` returns (FitResult's and SemFit's): a str that
shows itself as text at the prompt. ``FitSummary`` (FitResult's) keeps the summary as a list
of ``Section``s, each a title, lines of text and a table, so that it renders both as lme4's
text and, in Jupyter, as HTML tables (``_repr_html_``).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.stats import norm

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult


class SummaryText(str):
    """The text of a summary. It is a str (``print()`` it, search it, write it to a file);
    at the prompt it shows as the formatted text rather than as a quoted string with escaped
    newlines, in notebooks as HTML."""

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


@dataclass(frozen=True)
class Section:
    """One part of a summary: a title ("Random effects:"), lines of text, a table with its
    text as lme4 lays it out (``table_text``; the table's own to_string() when empty), and
    lines after the table (``notes``)."""

    title: str | None = None
    lines: tuple[str, ...] = ()
    table: pd.DataFrame | None = None
    table_text: str = ""
    html_index: bool = True
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        parts = ([self.title] if self.title else []) + list(self.lines)
        if self.table is not None:
            parts.append(self.table_text or self.table.to_string())
        return "\n".join(parts + list(self.notes))

    def html(self) -> str:
        parts = [f"<p><b>{html.escape(self.title)}</b></p>"] if self.title else []
        if self.lines:
            parts.append(_paragraph(self.lines))
        if self.table is not None:
            parts.append(self.table.to_html(index=self.html_index, na_rep="",
                                            float_format=_number, border=0))
        if self.notes:
            parts.append(_paragraph(self.notes))
        return "\n".join(parts)


def _paragraph(lines: tuple[str, ...]) -> str:
    return "<p>" + "<br>".join(html.escape(line.strip()) for line in lines) + "</p>"


class FitSummary(SummaryText):
    """lme4's summary of a FitResult: a str (``print()`` it) that renders in notebooks as
    HTML tables. ``sections``: the parts it is made of; ``fit``: the FitResult."""

    def __new__(cls, fit: FitResult):
        sections = summary_sections(fit)
        self = super().__new__(cls, "\n\n".join(section.text() for section in sections))
        self.sections = sections
        self.fit = fit
        return self

    def _repr_html_(self) -> str:
        body = "\n".join(section.html() for section in self.sections)
        return f'<div class="semgalamm-summary">\n{body}\n</div>'


def _number(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else \
        f"{value:.{digits}f}"


def r_format(values, digits: int = 4) -> list[str]:
    """R's format(x, digits =): one number of decimals for the column, the fewest that show
    every value with ``digits`` significant digits (as VarCorr and anova print)."""
    finite = [abs(v) for v in values if np.isfinite(v) and v != 0]
    decimals = max([digits - 1 - math.floor(math.log10(v)) for v in finite] + [0])
    decimals = min(decimals, 10)
    return ["" if not np.isfinite(v) else f"{v:.{decimals}f}" for v in values]


P_COLUMNS = ("Pr(>|z|)", "Pr(>|t|)")


def _table(frame: pd.DataFrame, digits: int = 4) -> str:
    """The table's text; p-values below R's 2.2e-16 (the double precision machine epsilon)
    print as "<2e-16", as R's format.pval."""
    shown = frame.copy()
    for column in P_COLUMNS:
        if column in shown:
            shown[column] = ["" if not np.isfinite(p) else "<2e-16" if p < 2.2e-16
                             else _number(p, digits) for p in shown[column]]
    return shown.to_string(float_format=lambda v: _number(v, digits), na_rep="")


def _section(title: str, frame: pd.DataFrame, digits: int = 4) -> Section:
    return Section(title, (), frame, _table(frame, digits))


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


def summary_sections(fit: FitResult) -> list[Section]:
    """The parts of lme4's summary, in lme4's order (loadings and regressions among latents
    before the random effects, as galamm prints them)."""
    title = _title(fit).splitlines()
    data_name = fit.design.frame.attrs.get("name") if fit.design.frame is not None else None
    header = title + [f"Model: {fit.model.strip()}"] + ([f"   Data: {data_name}"]
                                                         if data_name else [])
    sections = [Section(None, tuple(header))]
    if fit.laplace.reml:
        sections.append(Section(None, (f"REML criterion at convergence: {fit.deviance:.1f}",)))
    else:
        stats = pd.DataFrame([[fit.aic, fit.bic, fit.loglik, fit.deviance, fit.nobs - fit.npar]],
                             columns=["AIC", "BIC", "logLik", "deviance", "df.resid"])
        sections.append(Section(None, (), stats, stats.to_string(
            index=False, float_format=lambda v: f"{v:.1f}"), html_index=False))
    scaled = fit.residuals("pearson", scaled=True)
    if np.isfinite(scaled).any():  # ordinal rows have none (clmm prints none)
        quant = pd.DataFrame([np.nanquantile(scaled, [0, 0.25, 0.5, 0.75, 1])],
                             columns=["Min", "1Q", "Median", "3Q", "Max"])
        sections.append(Section("Scaled residuals:", (), quant, quant.to_string(
            index=False, float_format=lambda v: f"{v:.4f}"), html_index=False))
    from semgalamm.results.tables import loading_table

    loadings = loading_table(fit)
    if loadings is not None:
        sections.append(_section("Loadings:", loadings))
    structural = fit.structural
    if structural is not None:
        table = structural.assign(Regression=structural.lhs + " ~ " + structural.rhs)
        table = table.set_index("Regression")[["estimate", "se", "z value", "Pr(>|z|)"]]
        table.index.name = None
        sections.append(_section("Regressions:", table.rename(columns={
            "estimate": "Estimate", "se": "Std. Error"})))
    if fit.design.blocks:
        counts = {b.group: b.n_levels for b in fit.design.blocks if not b.scalar}
        groups = ", ".join(f"{group}, {n}" for group, n in counts.items())
        table = random_effects_table(fit)
        sections.append(Section("Random effects:", (), table, _left_table(table),
                                html_index=False,
                                notes=(f"Number of obs: {fit.nobs}, groups:  {groups}",)))
    else:
        sections.append(Section(None, (f"Number of obs: {fit.nobs}",)))
    if fit.design.dispersion_by is not None:
        sections.append(_section(f"Residual standard deviation by {fit.design.dispersion_by}:",
                                 fit.residual_sd().drop(columns="rows")))
    sections.append(_section("Fixed effects:", coefficient_table(fit)))
    from semgalamm.results.ordinal import family_parameter_sections

    sections += [_section(title, table) for title, table in family_parameter_sections(fit)]
    correlation = fixef_correlation_table(fit)
    if correlation is not None:
        sections.append(Section("Correlation of Fixed Effects:", (), correlation,
                                 _matrix_text(correlation)))
    elif len(fit.design.fixed_names) > 1:
        sections.append(Section(None, (
            f"Correlation matrix not shown: p = {len(fit.design.fixed_names)} > 12; use "
            "fit.vcov() for it.",)))
    if fit.design.smooths:
        sections.append(_section("Smooth terms:", fit.smooths(), digits=3))
    notes = []
    if not fit.converged:
        notes.append(f"Warning: the optimizer did not converge ({fit.optimizer.message}).")
    if fit.is_singular:
        notes.append("Note: boundary (singular) fit: a random-effect variance is 0.")
    if notes:
        sections.append(Section(None, tuple(notes)))
    return sections


def random_effects_table(fit: FitResult) -> pd.DataFrame:
    """lme4's VarCorr print: one row per random-effect term, each random block its own group
    (a factor's second block named "Subject.1" as lme4 names it), correlations in the
    lower triangle, then the residual SD(s)."""
    from semgalamm.results.conditional_variance import block_names

    rows = []
    for name, block, cov in zip(block_names(fit), fit.design.blocks,
                                fit._block_covariances()):
        sd = np.sqrt(np.diag(cov))
        if block.scalar:  # a smooth's penalized coefficients: one variance
            rows.append([name, "", cov[0, 0], sd[0], ""])
            continue
        for i, term in enumerate(block.columns):
            corr = [f"{cov[i, j] / (sd[i] * sd[j]):.2f}" if sd[i] * sd[j] > 0 else "NaN"
                    for j in range(i)] if block.correlated else []
            rows.append([name if i == 0 else "", term, cov[i, i], sd[i], " ".join(corr)])
    by = fit.design.dispersion_by
    for level, sd in zip(fit.design.dispersion_levels, fit._group_sigma()):
        rows.append(["Residual", f"{by}={level}" if by else "", sd**2, sd, ""])
    frame = pd.DataFrame(rows, columns=["Groups", "Name", "Variance", "Std.Dev.", "Corr"])
    if not frame["Corr"].astype(bool).any():
        frame = frame.drop(columns="Corr")
    return frame


def _left_table(frame: pd.DataFrame) -> str:
    """Text columns left-aligned and numbers in R's format, as lme4 prints VarCorr."""
    columns = {}
    for name in frame.columns:
        values = frame[name]
        if values.dtype.kind == "f":  # R pads the numbers to one width, then left-aligns
            cells = r_format(values.to_numpy(float))
            cells = [c.rjust(max(map(len, cells))) for c in cells]
        else:
            cells = [str(v) for v in values]
        width = max(len(name), *(len(c) for c in cells))
        columns[name] = [name.ljust(width)] + [c.ljust(width) for c in cells]
    lines = zip(*columns.values())
    return "\n".join((" " + " ".join(line)).rstrip() for line in lines)


def _matrix_text(frame: pd.DataFrame) -> str:
    """Row names left-aligned, cells right-aligned, one space apart (R's print.matrix)."""
    width = max(len(str(name)) for name in frame.index)
    widths = [max(len(str(c)), *(len(v) for v in frame[c])) for c in frame.columns]
    lines = [" " * width + "".join(" " + str(c).rjust(w) for c, w in zip(frame.columns,
                                                                          widths))]
    for name, row in frame.iterrows():
        lines.append(str(name).ljust(width) + "".join(" " + v.rjust(w)
                                                      for v, w in zip(row, widths)))
    return "\n".join(lines)


def abbreviate(name: str, length: int = 6) -> str:
    """R's abbreviate(name, minlength = 6) as lme4 uses it for the correlation table: drop
    lower-case vowels from the end, then lower-case letters, then cut."""
    chars = list(name)
    for drop in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(chars) - 1
        while len(chars) > length and i > 0:
            if chars[i] in drop and chars[i - 1] != " ":
                del chars[i]
            i -= 1
    return "".join(chars[:max(length, 0)] if len(chars) > length else chars)


def fixef_correlation_table(fit: FitResult) -> pd.DataFrame | None:
    """lme4's "Correlation of Fixed Effects": the lower triangle of cov2cor(vcov), columns
    named by R's abbreviation; None with one fixed effect or more than 12 (as lme4)."""
    names = list(fit.design.fixed_names)
    if not 1 < len(names) <= 12:
        return None
    cov = fit.vcov().loc[names, names].to_numpy()
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    cells = [[f"{round(corr[i, j], 3) + 0.0:.3f}" if j < i else ""  # + 0.0: no "-0.000"
              for j in range(len(names) - 1)]
             for i in range(1, len(names))]
    return pd.DataFrame(cells, index=names[1:], columns=[abbreviate(n) for n in names[:-1]])
