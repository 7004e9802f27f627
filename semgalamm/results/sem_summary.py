"""The text of lavaan's ``summary(fit, fit.measures = TRUE, standardized = TRUE)`` for a
covariance-structure fit.

Laid out as lavaan 0.6 lays it out: a header (estimator, optimizer, number of parameters and
observations), the user model's chi-square test, with ``fit_measures`` the baseline model,
CFI/TLI, log-likelihoods and information criteria, RMSEA and SRMR, then the parameter
estimates by group in lavaan's sections (Latent Variables, Regressions, Covariances,
Intercepts, Variances), then Defined Parameters and Constraints. Every figure comes from the
fit's tables; this module only formats them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from semgalamm.errors import UnsupportedError
from semgalamm.results.sem_fit_measures import group_chisq
from semgalamm.results.sem_standardized import expression_text, standardized_values
from semgalamm.results.summary import SummaryText
from semgalamm.spec.expressions import evaluate

if TYPE_CHECKING:
    import pandas as pd

    from semgalamm.results.sem_result import SemFit

WIDTH = 54  # lavaan's width of the fit section
NAME_WIDTH = 18  # lavaan's (minimum) width of the name column of the parameter tables
COLUMN = 9


def _line(label: str, value: str, indent: int = 2) -> str:
    text = " " * indent + label
    if not value:
        return text
    return text + " " * max(WIDTH - len(text) - len(value), 1) + value


def _f3(value: float) -> str:
    return "NA" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _int(value: float) -> str:
    return str(int(round(value)))


class SemSummary(SummaryText):
    """lavaan's summary of a SemFit: a str (``print()`` it) that shows itself as the text at
    the prompt and in notebooks, like FitResult.summary().

    ``text`` is the whole summary (a plain str); ``measures`` the fit measures (with
    ``fit_measures``); ``fit`` the SemFit.
    """

    def __new__(cls, fit: SemFit, fit_measures: bool = False, standardized: bool = False):
        measures: pd.Series | None = None
        if fit_measures:
            try:
                measures = fit.fit_measures()
            except UnsupportedError:
                measures = None
        self = super().__new__(cls, format_summary(fit, measures, standardized))
        self.fit = fit
        self.standardized = standardized
        self.measures = measures
        return self

    def _repr_html_(self) -> str:
        """HTML tables: the model's figures (and fit measures), then lavaan's parameter
        sections per group and level."""
        return html_summary(self.fit, self.measures, self.standardized)


# --------------------------------------------------------------------------- HTML (Jupyter)

SECTIONS = (("Latent Variables", "=~"), ("Regressions", "~"), ("Covariances", "~~cov"),
            ("Intercepts", "~1"), ("Variances", "~~var"), ("Defined Parameters", ":="))
MEASURES = (("chisq", "Test statistic (chi-square)"), ("df", "Degrees of freedom"),
            ("pvalue", "P-value (chi-square)"), ("cfi", "Comparative Fit Index (CFI)"),
            ("tli", "Tucker-Lewis Index (TLI)"), ("logl", "Loglikelihood user model (H0)"),
            ("aic", "Akaike (AIC)"), ("bic", "Bayesian (BIC)"), ("rmsea", "RMSEA"),
            ("srmr", "SRMR"))


def html_summary(fit: SemFit, measures: pd.Series | None, standardized: bool) -> str:
    """The summary as HTML: a table of the model's figures, one table per parameter section
    (columns Estimate, Std.Err, z-value, P(>|z|), and Std.lv, Std.all when standardized)."""
    import html

    import pandas as pd

    figures = [("Estimator", "ML"), ("Number of model parameters", str(fit.npar)),
               ("Number of observations", str(fit.nobs)),
               ("Converged", "yes" if fit.converged else "NO")]
    if measures is not None:
        figures += [(label, _f3(float(measures[key])) if key != "df" else
                     _int(float(measures[key]))) for key, label in MEASURES if key in measures]
    parts = [pd.DataFrame(figures, columns=["", "value"]).to_html(index=False, border=0)]
    table = fit.parameter_estimates()
    kind = table.op.where(table.op != "~~", np.where(table.lhs == table.rhs, "~~var",
                                                     "~~cov"))
    columns = {"est": "Estimate", "se": "Std.Err", "z": "z-value", "pvalue": "P(>|z|)"}
    if standardized:
        from semgalamm.results.tidy import standardized_estimates

        table["Std.lv"] = standardized_estimates(fit, table, "std.lv")
        table["Std.all"] = standardized_estimates(fit, table, "std.all")
        columns.update({"Std.lv": "Std.lv", "Std.all": "Std.all"})
    keys = [key for key in ("group", "level") if key in table]
    for block, rows in (table.groupby(keys, sort=False) if keys else [((), table)]):
        block = block if isinstance(block, tuple) else (block,)
        if keys:
            title = ", ".join(f"{key} {value}" for key, value in zip(keys, block))
            parts.append(f"<h4>{html.escape(title)}</h4>")
        for name, op in SECTIONS:
            section = rows[kind[rows.index] == op]
            if section.empty:
                continue
            labels = section.rhs if op in ("=~", "~", "~1") else section.lhs
            if op in ("=~", "~", "~~cov"):
                labels = section.lhs + " " + section.op + " " + section.rhs
            frame = section[list(columns)].rename(columns=columns).set_axis(list(labels))
            parts.append(f"<p><b>{name}:</b></p>")
            parts.append(frame.to_html(na_rep="", border=0, float_format=lambda v: f"{v:.3f}"))
    return '<div class="semgalamm-summary">\n' + "\n".join(parts) + "\n</div>"


# --------------------------------------------------------------------------- header and tests


def _counts(fit: SemFit) -> tuple[int, int, int]:
    """(free parameters counted per row as lavaan counts them, equality constraints,
    inequality constraints)."""
    free_rows = sum(1 for r in fit.table.rows if r.free)
    active = len(fit.estimate.active)
    equalities = free_rows - int(fit.estimate.constraints.K.shape[1]) - active
    inequalities = sum(1 for c in fit.table.constraints if c.op in ("<", ">"))
    return free_rows, equalities, inequalities


def _header(fit: SemFit) -> list[str]:
    from semgalamm import __version__

    state = "ended normally" if fit.converged else "did NOT end normally"
    lines = [f"semgalamm {__version__} {state} after {fit.estimate.iterations} iterations", ""]
    lines.append(_line("Estimator", "ML"))
    lines.append(_line("Optimization method", "FISHER SCORING"))
    n_par, n_eq, n_ineq = _counts(fit)
    lines.append(_line("Number of model parameters", str(n_par)))
    if n_eq:
        lines.append(_line("Number of equality constraints", str(n_eq)))
    if n_ineq:
        lines.append(_line("Number of inequality constraints", str(n_ineq)))
    lines.append("")
    samples = fit.samples
    fiml = fit.missing == "ml"
    if len(samples) == 1:
        lines.append(_line("Number of observations", str(samples[0].n)))
        if fiml:
            lines.append(_line("Number of missing patterns", str(len(samples[0].patterns))))
    else:
        lines.append(_line("Number of observations per group:", ""))
        lines += [_line(s.label, str(s.n), 4) for s in samples]
        if fiml:
            lines.append(_line("Number of missing patterns per group:", ""))
            lines += [_line(s.label, str(len(s.patterns)), 4) for s in samples]
    return lines


def _model_test(fit: SemFit, measures: pd.Series) -> list[str]:
    lines = ["", "Model Test User Model:", ""]
    lines.append(_line("Test statistic", _f3(measures["chisq"])))
    lines.append(_line("Degrees of freedom", _int(measures["df"])))
    if measures["df"] > 0:
        lines.append(_line("P-value (Chi-square)", _f3(measures["pvalue"])))
    if len(fit.samples) > 1:
        lines.append(_line("Test statistic for each group:", ""))
        lines += [_line(s.label, _f3(v), 4) for s, v in zip(fit.samples, group_chisq(fit))]
    return lines


def _fit_sections(measures: pd.Series) -> list[str]:
    m = measures
    lines = ["", "Model Test Baseline Model:", ""]
    lines.append(_line("Test statistic", _f3(m["baseline.chisq"])))
    lines.append(_line("Degrees of freedom", _int(m["baseline.df"])))
    lines.append(_line("P-value", _f3(m["baseline.pvalue"])))
    lines += ["", "User Model versus Baseline Model:", ""]
    lines.append(_line("Comparative Fit Index (CFI)", _f3(m["cfi"])))
    lines.append(_line("Tucker-Lewis Index (TLI)", _f3(m["tli"])))
    lines += ["", "Loglikelihood and Information Criteria:", ""]
    lines.append(_line("Loglikelihood user model (H0)", _f3(m["logl"])))
    lines.append(_line("Loglikelihood unrestricted model (H1)", _f3(m["unrestricted.logl"])))
    lines.append("")
    lines.append(_line("Akaike (AIC)", _f3(m["aic"])))
    lines.append(_line("Bayesian (BIC)", _f3(m["bic"])))
    lines.append(_line("Sample-size adjusted Bayesian (SABIC)", _f3(m["bic2"])))
    lines += ["", "Root Mean Square Error of Approximation:", ""]
    lines.append(_line("RMSEA", _f3(m["rmsea"])))
    lines.append(_line("90 Percent confidence interval - lower", _f3(m["rmsea.ci.lower"])))
    lines.append(_line("90 Percent confidence interval - upper", _f3(m["rmsea.ci.upper"])))
    lines.append(_line("P-value H_0: RMSEA <= 0.050", _f3(m["rmsea.pvalue"])))
    lines.append(_line("P-value H_0: RMSEA >= 0.080", _f3(m["rmsea.notclose.pvalue"])))
    lines += ["", "Standardized Root Mean Square Residual:", ""]
    lines.append(_line("SRMR", _f3(m["srmr"])))
    return lines


def _estimates_header(fit: SemFit) -> list[str]:
    lines = ["", "Parameter Estimates:", ""]
    lines.append(_line("Standard errors", "Standard"))
    lines.append(_line("Information", fit.information.capitalize()))
    if fit.information == "observed":
        lines.append(_line("Observed information based on", "Hessian"))
    else:
        lines.append(_line("Information saturated (h1) model", "Structured"))
    return lines


# --------------------------------------------------------------------------- parameter tables


def _dependent(fit: SemFit, block: int) -> set[str]:
    """Variables with an arrow into them (indicators, outcomes): lavaan marks their
    (residual) variances, covariances and intercepts with a dot."""
    rows = [r for r in fit.table.rows if r.block == block]
    return {r.rhs for r in rows if r.op == "=~"} | {r.lhs for r in rows if r.op == "~"}


def _labels(fit: SemFit) -> list[str]:
    """A row's label as lavaan prints it: the user's label, or for a parameter shared across
    groups (group_equal) lavaan's ``.pN.`` of its first row."""
    first: dict[int, int] = {}
    shared: dict[int, int] = {}
    for row in fit.table.rows:
        if row.free:
            shared[row.free] = shared.get(row.free, 0) + 1
            first.setdefault(row.free, row.id)
    out = []
    for row in fit.table.rows:
        if row.label:
            out.append(row.label)
        elif row.free and shared[row.free] > 1:
            out.append(f".p{first[row.free]}.")
        else:
            out.append("")
    return out


class _Table:
    """Rows of one parameter section with lavaan's columns."""

    def __init__(self, standardized: bool):
        self.standardized = standardized
        self.items: list[tuple] = []  # (name, label, est, se, z, p, std_lv, std_all) or header

    def group(self, text: str) -> None:
        self.items.append(("header", text))

    def row(self, name: str, label: str, est: float, se: float | None, std_lv: float,
            std_all: float) -> None:
        self.items.append(("row", name, label, est, se, std_lv, std_all))

    def width(self) -> int:
        width = NAME_WIDTH
        for item in self.items:
            if item[0] == "row":
                label = f" ({item[2]})" if item[2] else ""
                width = max(width, len(item[1]) + len(label) + 1)
            else:
                width = max(width, len(item[1]) + 1)
        return width

    def render(self, title: str, width: int) -> list[str]:
        columns = ["Estimate", "Std.Err", "z-value", "P(>|z|)"]
        if self.standardized:
            columns += ["Std.lv", "Std.all"]
        lines = [title, " " * width + "".join(f"{c:>{COLUMN}}" for c in columns)]
        for item in self.items:
            if item[0] == "header":
                lines.append(item[1])
                continue
            _, name, label, est, se, std_lv, std_all = item
            text = name
            if label:
                tag = f"({label})"
                text = name + " " * max(width - len(name) - len(tag), 1) + tag
            cells = [_f3(est)]
            if se is None or (np.isfinite(se) and se == 0):
                cells += ["", "", ""]
            elif not np.isfinite(se):
                cells += ["NA", "", ""]
            else:
                z = est / se
                p = math.erfc(abs(z) / math.sqrt(2))
                cells += [_f3(se), _f3(z), _f3(p)]
            if self.standardized:
                cells += [_f3(std_lv) if np.isfinite(std_lv) else "",
                          _f3(std_all) if np.isfinite(std_all) else ""]
            line = f"{text:<{width}}" + "".join(f"{c:>{COLUMN}}" for c in cells)
            lines.append(line.rstrip())
        return lines


def _group_sections(fit: SemFit, block: int, std_lv, std_all, labels, standardized
                    ) -> list[tuple[str, _Table]]:
    table = fit.table
    dependent = _dependent(fit, block)
    indices = [r for r, row in enumerate(table.rows) if row.block == block and not row.exo]

    def dot(name: str, deep: bool) -> str:
        prefix = "   ." if deep else "  ."
        plain = "    " if deep else "  "
        return (prefix if name in dependent else plain) + name

    def entry(t: _Table, r: int, name: str) -> None:
        row = table.rows[r]
        se = float(fit.row_se[r]) if row.free else None
        t.row(name, labels[r], float(fit.row_estimates[r]), se, std_lv[r], std_all[r])

    sections = []
    specs = [
        ("Latent Variables:", lambda row: row.op == "=~", "=~"),
        ("Regressions:", lambda row: row.op == "~", "~"),
        ("Covariances:", lambda row: row.op == "~~" and row.lhs != row.rhs, "~~"),
    ]
    for title, keep, op in specs:
        t = _Table(standardized)
        current = None
        for r in indices:
            row = table.rows[r]
            if not keep(row):
                continue
            residual = op == "~~"  # lavaan marks residual covariances, not regressions
            if row.lhs != current:
                current = row.lhs
                head = dot(row.lhs, False) if residual else "  " + row.lhs
                t.group(f"{head} {op}")
            entry(t, r, dot(row.rhs, True) if residual else "    " + row.rhs)
        if t.items:
            sections.append((title, t))
    for title, keep in (("Intercepts:", lambda row: row.op == "~1"),
                        ("Variances:", lambda row: row.op == "~~" and row.lhs == row.rhs)):
        t = _Table(standardized)
        for r in indices:
            row = table.rows[r]
            if keep(row):
                entry(t, r, dot(row.lhs, True))
        if t.items:
            sections.append((title, t))
    return sections


def _parameter_sections(fit: SemFit, standardized: bool) -> list[str]:
    table = fit.table
    x = fit.estimate.x
    lv_rows, lv_def, _ = standardized_values(fit, x, "std.lv")
    all_rows, all_def, _ = standardized_values(fit, x, "std.all")
    labels = _labels(fit)
    groups = []
    for b, variables in enumerate(table.blocks, start=1):
        groups.append((variables, _group_sections(fit, b, lv_rows, all_rows, labels,
                                                  standardized)))
    defined = None
    if table.definitions:
        estimates = fit.parameter_estimates()
        rows = estimates[estimates["op"] == ":="]
        defined = _Table(standardized)
        for (_, row), d, v_lv, v_all in zip(rows.iterrows(), table.definitions, lv_def,
                                             all_def):
            defined.row("    " + d.name, "", float(row["est"]), float(row["se"]), v_lv, v_all)
    tables = [t for _, sections in groups for _, t in sections]
    if defined is not None:
        tables.append(defined)
    width = max([t.width() for t in tables] + [NAME_WIDTH])
    lines: list[str] = []
    multi_group = table.n_groups > 1
    multi_level = table.n_levels > 1
    for variables, sections in groups:
        if multi_group and variables.level == 1:
            lines += ["", "", f"Group {variables.group} [{variables.group_label}]:"]
        if multi_level:
            lines += ["", f"Level {variables.level} [{variables.level_label}]:"]
        for title, t in sections:
            lines.append("")
            lines += t.render(title, width)
    if defined is not None:
        lines.append("")
        lines += defined.render("Defined Parameters:", width)
    if table.constraints:
        from semgalamm.covstruct.estimate import label_env

        env = label_env(table, x)
        lines += ["", "Constraints:", _line("", "|Slack|", 0)]
        for c in table.constraints:
            slack = abs(evaluate(c.lhs, env) - evaluate(c.rhs, env))
            text = f"{expression_text(c.lhs)} - ({expression_text(c.rhs)})"
            lines.append(_line(text, _f3(slack), 4))
    return lines


def format_summary(fit: SemFit, measures: pd.Series | None = None,
                   standardized: bool = False) -> str:
    """The summary text (``measures``: the fit measures, to add lavaan's fit sections)."""
    lines = _header(fit)
    try:
        test = measures if measures is not None else fit.fit_measures()
    except UnsupportedError:  # no reference models for this fit (two-level)
        test = None
    if test is not None:
        lines += _model_test(fit, test)
    if measures is not None:
        lines += _fit_sections(measures)
    lines += _estimates_header(fit)
    lines += _parameter_sections(fit, standardized)
    return "\n".join(lines) + "\n"
