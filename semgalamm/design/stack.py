"""Wide data with non-Gaussian indicators -> the same model on long data (a GLLAMM).

A covariance-structure model needs Gaussian indicators. When ``family=`` makes some indicator
binomial or Poisson, the wide model is rewritten for the Laplace engine: one row per unit and
indicator (missing cells are simply absent rows, full information as in FIML), the indicator
named by ``sg_item``, the unit by ``sg_unit``:

    visual =~ x1 + x2 + x3        ->   visual =~ sg_item[x1] + sg_item[x2] + sg_item[x3]
    visual ~ ageyr                ->   visual ~ ageyr + (1 | sg_unit)
    (each indicator's intercept)  ->   sg_value ~ 0 + sg_item
    (each indicator's variance)   ->   sg_value ~~ (1 | sg_item)      (Gaussian rows)

Modifiers (``1*``, ``NA*``, labels, ``start()``) carry over, so do latent regressions (B) and
``f1 ~~ 0*f2``. lavaan's threshold statements ``y1 | t1 + t2 + t3`` make ``y1`` an ordinal
indicator (cumulative logit, one threshold per statement term; docs/families.md); its
thresholds are estimated per indicator, and its own intercept column is left to them. The
likelihood is the Laplace approximation of the same GLLAMM; with Gaussian indicators only it
is exact and equals the covariance-structure fit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from semgalamm.design.sample_moments import numeric_block
from semgalamm.errors import DataError, UnsupportedError
from semgalamm.syntax.nodes import (
    Covariance,
    CovarianceTerm,
    Definition,
    FixedTerm,
    Intercept,
    Measurement,
    ModelSyntax,
    Modifier,
    Regression,
    Response,
    Unsupported,
)

VALUE, ITEM, UNIT = "sg_value", "sg_item", "sg_unit"


def _prefix(mod: Modifier) -> str:
    parts = []
    if mod.fixed is not None:
        parts.append(f"{mod.fixed:g}*")
    if mod.free:
        parts.append("NA*")
    if mod.label:
        parts.append(f"{mod.label}*")
    if mod.start is not None:
        parts.append(f"start({mod.start:g})*")
    return "".join(parts)


def stack_wide(syntax: ModelSyntax, data: pd.DataFrame, family: Mapping[str, str]
               ) -> tuple[str, pd.DataFrame, dict]:
    """The long model string, the long data and the family mapping of a wide GLLAMM.

    ``family`` maps indicator columns to family names; ``"default"`` (Gaussian unless given)
    is the family of the others.
    """
    latents = [s.latent for s in syntax.statements if isinstance(s, Measurement)]
    lines: list[str] = []
    indicators: list[str] = []
    latent_terms: dict[str, list[str]] = {lat: [] for lat in latents}
    covariates: list[str] = []
    for s in syntax.statements:
        if isinstance(s, Measurement):
            terms = []
            for ind in s.indicators:
                if ind.variable in latents:
                    raise UnsupportedError(
                        f"'{s.latent} =~ {ind.variable}': a latent indicator (second-order "
                        "factor) with non-Gaussian indicators is not supported yet."
                    )
                terms.append(f"{_prefix(ind.modifier)}{ITEM}[{ind.variable}]")
                indicators.append(ind.variable)
            lines.append(f"{s.latent} =~ " + " + ".join(terms))
        elif isinstance(s, Regression) and isinstance(s.lhs, Response) \
                and s.lhs.name in latents:
            for term in s.terms:
                if isinstance(term, Intercept):
                    continue
                if not isinstance(term, FixedTerm):
                    raise UnsupportedError(f"'{term.text}' in a wide model.")
                latent_terms[s.lhs.name].append(term.text)
                name = term.text.split("*")[-1].strip()
                if name not in latents:
                    covariates.append(name)
        elif isinstance(s, Covariance) and s.lhs in latents and all(
                isinstance(t, CovarianceTerm) and t.variable in latents and t.modifier.fixed == 0
                for t in s.terms):
            lines.append(f"{s.lhs} ~~ " + " + ".join(f"0*{t.variable}" for t in s.terms))
        elif isinstance(s, Covariance) and all(
                isinstance(t, CovarianceTerm) and t.variable == s.lhs and t.modifier.is_empty
                for t in s.terms):
            continue  # a variance that is free anyway
        elif isinstance(s, Unsupported) and s.operator == "|":
            continue  # thresholds: threshold_indicators() made the indicator ordinal
        elif isinstance(s, Definition):
            raise UnsupportedError("':=' with non-Gaussian indicators is not supported yet.")
        else:
            raise UnsupportedError(
                f"'{s}' cannot be fitted with non-Gaussian indicators yet: such models support "
                "loadings, latent regressions, latent covariates and 'f1 ~~ 0*f2'."
            )
    for lat in latents:
        lines.append(f"{lat} ~ " + " + ".join([*latent_terms[lat], f"(1 | {UNIT})"]))
    lines.append(f"{VALUE} ~ 0 + {ITEM}")
    default = family.get("default", "gaussian")
    family = {k: v for k, v in family.items() if k != "default"}
    unknown = [k for k in family if k not in indicators]
    if unknown:
        raise DataError(
            f"family= names {', '.join(repr(k) for k in unknown)}, which "
            f"{'is not an indicator' if len(unknown) == 1 else 'are not indicators'} of the "
            f"model ({', '.join(indicators)}); name indicator columns."
        )
    gaussian = [v for v in indicators if family.get(v, default) == "gaussian"]
    if len(gaussian) > 1:
        lines.append(f"{VALUE} ~~ (1 | {ITEM})")
    mapping = {ITEM: {v: family.get(v, default) for v in indicators}}
    return "\n".join(lines), _long_data(data, indicators, list(dict.fromkeys(covariates))), \
        mapping


def _long_data(data: pd.DataFrame, indicators: list[str], covariates: list[str]
               ) -> pd.DataFrame:
    """One row per unit and observed indicator, indicator by indicator (the column-major
    order of the (units, indicators) block), with the unit's covariates. The unit is a
    categorical of the row numbers in the data's order (coded once here: as text the
    design would sort 301 labels as strings, 1.8 ms of HolzingerSwineford's 30 ms fit)."""
    values = numeric_block(data, tuple(indicators))
    n = values.shape[0]
    flat = values.T.ravel()
    rows = np.flatnonzero(~np.isnan(flat))
    unit = rows % n
    long = pd.DataFrame({
        UNIT: pd.Categorical.from_codes(unit, categories=[str(i) for i in range(n)]),
        ITEM: pd.Categorical.from_codes(rows // n, categories=indicators),
        VALUE: flat[rows],
    })
    covariate_values = numeric_block(data, tuple(covariates))
    if np.isnan(covariate_values[np.unique(unit)]).any():
        raise DataError("A latent's covariate has missing values; drop those rows first.")
    for j, name in enumerate(covariates):
        long[name] = covariate_values[unit, j]
    return long


def threshold_indicators(syntax: ModelSyntax, data: pd.DataFrame) -> dict[str, str]:
    """lavaan's ``y1 | t1 + t2 + t3``: the indicators with threshold statements, each mapped
    to the ordinal family. The number of thresholds must be the number of categories of the
    column minus 1; labels and fixed values of thresholds are not supported."""
    out: dict[str, str] = {}
    for s in syntax.statements:
        if not (isinstance(s, Unsupported) and s.operator == "|"):
            continue
        lhs, _, rhs = s.text.partition("|")
        name, terms = lhs.strip(), [t.strip() for t in rhs.split("+")]
        if any(not re.fullmatch(r"t\d+", t) for t in terms):
            raise UnsupportedError(
                f"'{s.text}': thresholds are estimated freely, one per term t1, t2, ...; "
                "labels and fixed values of thresholds are not supported.")
        if name not in data.columns:
            raise DataError(f"'{s.text}' names '{name}', which is not a column of the data.")
        categories = pd.unique(data[name].dropna())
        if len(categories) - 1 != len(terms):
            raise DataError(
                f"'{s.text}' gives {len(terms)} threshold(s), but column '{name}' has "
                f"{len(categories)} categories, so it has {len(categories) - 1}.")
        out[name] = "ordinal"
    return out
