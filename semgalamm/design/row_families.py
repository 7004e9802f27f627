"""The family of every row: ``fit``'s ``family=`` argument resolved against the data.

Mixed response types (a Gaussian fiber intake and a binary heart-disease indicator tied by
one latent trait) need a family per row; ``resolve_families`` accepts one family, one per
row, a column of names, or a mapping from an indicator column's levels to families. A family
is a name ("ordinal"), R's spelling with a link ("binomial(link = 'probit')") or a family
object of ``semgalamm.families`` (``families.gamma(link="log")``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from semgalamm.design.design import Design
from semgalamm.design.frame import check_columns
from semgalamm.design.stack import ITEM
from semgalamm.errors import DataError, nearest
from semgalamm.families import (
    FAMILIES,
    Family,
    FamilyParameters,
    RowFamilies,
    ThresholdSet,
    get_family,
    is_family,
)
from semgalamm.spec.model_spec import ModelSpec

FamilyArg = str | Family | Sequence[str | Family] | pd.Series | Mapping[str, Any]


def resolve_families(family: FamilyArg, data: pd.DataFrame, spec: ModelSpec) -> RowFamilies:
    """The family of every row, from any of the forms ``fit`` accepts for ``family``."""
    n = data.shape[0]
    if isinstance(family, Family):
        return RowFamilies.single(family, n)
    if isinstance(family, str):
        if is_family(family):
            return RowFamilies.single(get_family(family), n)
        if family in data.columns:
            return _row_families(data[family].astype(str).to_numpy(), f"column '{family}'")
        if "(" in family:
            _row_families(np.array([family], dtype=object), "family")  # raises: unknown link
        raise DataError(
            f'Unknown family "{family}". Use one of {", ".join(FAMILIES)} (with a link as R '
            "writes it: \"binomial(link = 'probit')\"), a column of the data naming each "
            "row's family, or a mapping such as "
            '{"item": {"chd": "binomial"}, "default": "gaussian"}.'
            f"{nearest(family, [*FAMILIES, *map(str, data.columns)])}"
        )
    if isinstance(family, Mapping):
        return _row_families(_families_by_level(family, data, spec), "the family mapping")
    names = [f if isinstance(f, Family) else str(f) for f in family]
    if len(names) != n:
        raise DataError(
            f"family has {len(names)} entries but the data have {n} rows. Give one family "
            "name, or one name per row."
        )
    return _row_families(np.array(names, dtype=object), "family")


def _row_families(names: np.ndarray, source: str) -> RowFamilies:
    """One family per distinct spelling (in order of first appearance); spellings of the
    same family and link share it."""
    row_spelling, spellings = pd.factorize(names)
    try:
        resolved = [get_family(name) for name in spellings]
    except ValueError as exc:
        raise DataError(f"{exc} (in {source})") from None
    families = tuple(dict.fromkeys(resolved))
    codes = np.array([families.index(f) for f in resolved], dtype=np.intp)
    return RowFamilies(families, codes[row_spelling])


def _families_by_level(
    family: Mapping[str, Any], data: pd.DataFrame, spec: ModelSpec
) -> np.ndarray:
    """``{"item": {"chd": "binomial"}, "default": "gaussian"}``, or ``{"a": "gaussian",
    "b": "binomial"}`` keyed by the levels of the model's one indicator column."""
    mapping = dict(family)
    default = mapping.pop("default", None)
    nested = {k: v for k, v in mapping.items() if isinstance(v, Mapping)}
    if nested:
        if len(nested) != len(mapping) or len(nested) != 1:
            raise DataError(
                "A family mapping names one column and maps its levels to families, e.g. "
                '{"item": {"chd": "binomial"}, "default": "gaussian"}.'
            )
        column, levels = next(iter(nested.items()))
    else:
        indicators = spec.indicator_variables
        if len(indicators) != 1:
            raise DataError(
                "A family mapping by level needs the column it refers to when the model has "
                f"{'no' if not indicators else 'several'} indicator columns; write "
                '{"column": {"level": "family", ...}}.'
            )
        column, levels = indicators[0], mapping
    check_columns(data, [column], "family column")
    row_level, distinct = _text_levels(data[column])
    known = set(distinct)
    for level in levels:
        if str(level) not in known:
            raise DataError(
                f"The family mapping names level '{level}' of column '{column}', which the data "
                f"do not have.{nearest(str(level), known)}"
            )
    names = [levels.get(v, levels.get(_number(v), default)) for v in distinct]
    unmapped = [v for v, name in zip(distinct, names) if name is None]
    if unmapped:
        missing = ", ".join(sorted(unmapped)[:5])
        raise DataError(
            f"The family mapping gives no family for level(s) {missing} of column '{column}'. "
            'Add them, or a "default" family.'
        )
    return np.array(names, dtype=object)[row_level]


def _text_levels(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The column's values as text, factorized: a code per row and the texts in order of
    appearance (a missing value is the level "nan"); only distinct values become text."""
    row_value, values = pd.factorize(column, use_na_sentinel=False)
    texts = np.asarray(values.astype(str), dtype=object)
    texts[np.asarray(pd.isna(values))] = "nan"
    row_text, distinct = pd.factorize(texts)
    return row_text[row_value], distinct


def _number(text: str) -> int | float | str:
    """'3' -> 3, so that mappings may use the numbers of numeric indicator columns."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() else value


def check_response(design: Design, rows: pd.Index) -> None:
    """Every row's response must lie in its family's support; the error names the rows by
    the data's index."""
    for code, family in enumerate(design.families.families):
        in_family = design.families.codes == code
        bad = family.check_response(design.y, design.trials) & in_family
        if bad.any():
            labels = [str(v) for v in rows[bad][:5]]
            raise DataError(
                f"The response of {bad.sum()} {family.name} row(s) (index {', '.join(labels)}"
                f"{' ...' if bad.sum() > 5 else ''}) is outside the family's support: "
                f"{family.support_text()}. Check the response column or the family."
            )


def family_table(families: RowFamilies, data: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """One row per family: its link, number of rows, and the indicator levels
    (``item[chd]``) whose rows it covers, for summaries of mixed-response fits."""
    levels = {column: _text_levels(data[column]) for column in spec.indicator_variables}
    rows = []
    for code, fam in enumerate(families.families):
        mask = families.codes == code
        indicators = [
            f"{column}[{distinct[j]}]"
            for column, (row_level, distinct) in levels.items()
            for j in pd.unique(row_level[mask])
        ]
        rows.append((fam.name, fam.link, int(mask.sum()), " ".join(indicators)))
    return pd.DataFrame(rows, columns=["family", "link", "rows", "indicators"])


# ------------------------------------------------------------------ family parameters


def ordinal_response(
    column: pd.Series, rows: pd.Index, families: RowFamilies, spec: ModelSpec,
    frame: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, tuple[str, ...]]]] | None:
    """The response of a model with ordinal rows: categories coded 0..K-1 with trials = K - 1
    (the number of thresholds) in ordinal rows, the values themselves elsewhere; and for each
    row its threshold set: (label, category labels). ``column`` is the response as the user
    gave it (an ordered categorical keeps its declared categories; numbers are ordered by
    value). One set of thresholds per ordinal family and level of the indicator columns (the
    graded response model's item-specific thresholds). None without ordinal rows."""
    ordinal = families.mask("ordinal")
    if not ordinal.any():
        return None
    name = str(column.name)
    declared = list(column.cat.categories) if isinstance(column.dtype, pd.CategoricalDtype) \
        else None
    if declared is None and not pd.api.types.is_numeric_dtype(column):
        raise DataError(
            f"The ordinal response '{name}' must be an ordered categorical "
            "(pd.Categorical(values, categories=[...], ordered=True)) or integer scores; it is "
            f"{column.dtype}, whose order is unknown."
        )
    if declared is None and not np.all(np.isfinite(column.to_numpy(dtype=float))):
        raise DataError(f"The response '{name}' has missing or infinite values; drop those rows.")
    n = column.shape[0]
    y = np.zeros(n)
    trials = np.ones(n)
    if (~ordinal).any():
        if declared is not None:
            raise DataError(
                f"The response '{name}' is categorical, but rows of other families than "
                "ordinal need numbers: code the categories as integer scores.")
        y[~ordinal] = column.to_numpy(dtype=float)[~ordinal]
    sets: list[tuple[str, tuple[str, ...]]] = [("", ())] * n
    keys = threshold_set_keys(families, spec, frame)
    for key in dict.fromkeys(keys[ordinal]):
        in_set = ordinal & (keys == key)
        values = column[in_set]
        if declared is not None:
            categories = declared
            seen = set(values.dropna())
            missing = [c for c in categories if c not in seen]
            if missing:
                where = f" in the rows of {key}" if key else ""
                raise DataError(
                    f"The ordinal response '{name}' declares the categor"
                    f"{'y' if len(missing) == 1 else 'ies'} {', '.join(map(repr, missing))}, "
                    f"never observed{where}: its thresholds are not identified. Drop the "
                    f"category (column.cat.remove_unused_categories()) or merge it with a "
                    "neighbour.")
            codes = pd.Categorical(values, categories=categories).codes.astype(float)
        else:
            categories = sorted(pd.unique(values.to_numpy(dtype=float)))
            codes = np.searchsorted(np.asarray(categories), values.to_numpy(dtype=float))
        if len(categories) < 2:
            where = f" in the rows of {key}" if key else ""
            raise DataError(
                f"The ordinal response '{name}' has one category "
                f"({_category_label(categories[0])}){where} "
                f"(rows {_labels(rows, in_set)}): an ordinal model needs at least 2.")
        labels = tuple(_category_label(c) for c in categories)
        y[in_set] = codes
        trials[in_set] = len(categories) - 1
        for i in np.flatnonzero(in_set):
            sets[i] = (key, labels)
    return y, trials, sets


def threshold_set_keys(families: RowFamilies, spec: ModelSpec, frame: pd.DataFrame
                        ) -> np.ndarray:
    """The label of each row's threshold set: the indicator levels ("item[2]"; "y2" for an
    indicator column of wide data), prefixed by the family when several ordinal families
    are present; "" for one set."""
    n = frame.shape[0]
    ordinal_codes = [c for c, f in enumerate(families.families) if f.name == "ordinal"]
    parts = [np.full(n, "", dtype=object)]
    if len(ordinal_codes) > 1:
        parts.append(np.array([families.families[c].spelling for c in families.codes],
                              dtype=object))
    for column in spec.indicator_variables:
        # wide data stacked to long (design/stack.py): the indicator column's own name
        label = "{}" if column == ITEM else f"{column}[{{}}]"
        parts.append(np.array([label.format(v) for v in frame[column].astype(str)],
                              dtype=object))
    return np.array([":".join(p for p in row if p) for row in zip(*parts)], dtype=object)


def _category_label(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _labels(rows: pd.Index, mask: np.ndarray, shown: int = 5) -> str:
    labels = [str(v) for v in rows[mask][:shown]]
    return ", ".join(labels) + (" ..." if mask.sum() > shown else "")


def with_family_parameters(
    families: RowFamilies, y: np.ndarray, threshold_sets: list | None
) -> RowFamilies:
    """``families`` with their parameters (``FamilyParameters``): one log size per negative
    binomial family, one log dispersion per Gamma family (psi_0), and per threshold set of
    ordinal rows K - 1 thresholds (psi_0 below, psi_1 above the observed category; -1 where
    the category is the first or the last). Starting values: the moments of the response
    (size mean^2 / (var - mean), dispersion var / mean^2) and thresholds at the cumulative
    proportions on the link's scale, F^{-1}(P(y <= j)), as ordinal::clm."""
    n = y.shape[0]
    index = np.full((n, 2), -1, dtype=np.intp)
    names: list[str] = []
    start: list[float] = []
    for code, family in enumerate(families.families):
        rows = families.codes == code
        if family.parameter is not None:
            values = y[rows]
            mean, var = float(np.mean(values)), float(np.var(values))
            if family.name == "negative_binomial":
                value = np.log(mean**2 / (var - mean)) if var > mean * 1.01 else np.log(10.0)
            else:
                value = np.log(max(var / mean**2, 1e-4))
            suffix = "" if sum(f.name == family.name for f in families.families) == 1 \
                else f" {family.spelling}"
            index[rows, 0] = len(names)
            names.append(family.parameter + suffix)
            start.append(float(value))
    sets: list[ThresholdSet] = []
    row_set = np.full(n, -1, dtype=np.intp)
    if threshold_sets is not None:
        keys = [s[0] for s in threshold_sets]
        ordinal = families.mask("ordinal")
        for key in dict.fromkeys(k for k, o in zip(keys, ordinal) if o):
            in_set = ordinal & np.array([k == key for k in keys])
            labels = threshold_sets[int(np.flatnonzero(in_set)[0])][1]
            family = families.families[families.codes[in_set][0]]
            codes = y[in_set].astype(np.intp)
            first = len(names)
            counts = np.bincount(codes, minlength=len(labels))
            cumulative = np.cumsum(counts)[:-1] / counts.sum()
            start += list(family.initial_threshold(cumulative))
            prefix = f"{key}:" if key else ""
            names += [f"{prefix}{a}|{b}" for a, b in zip(labels[:-1], labels[1:])]
            rows = np.flatnonzero(in_set)
            index[rows, 0] = np.where(codes > 0, first + codes - 1, -1)
            index[rows, 1] = np.where(codes < len(labels) - 1, first + codes, -1)
            row_set[rows] = len(sets)
            sets.append(ThresholdSet(key, labels, first))
    if not names:
        return families
    return replace(families, parameters=FamilyParameters(
        tuple(names), np.array(start), index, tuple(sets), row_set))

