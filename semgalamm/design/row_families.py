"""The family of every row: ``fit``'s ``family=`` argument resolved against the data.

Mixed response types (a Gaussian fiber intake and a binary heart-disease indicator tied by
one latent trait) need a family per row; ``resolve_families`` accepts one family, one per
row, a column of names, or a mapping from an indicator column's levels to families. A family
is a name ("ordinal"), R's spelling with a link ("binomial(link = 'probit')") or a family
object of ``semgalamm.families`` (``families.gamma(link="log")``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from semgalamm.design.design import Design
from semgalamm.design.frame import check_columns
from semgalamm.errors import DataError, nearest
from semgalamm.families import FAMILIES, Family, RowFamilies, get_family, is_family
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
            return _row_families(data[family].astype(str).tolist(), f"column '{family}'")
        if "(" in family:
            _row_families([family], "family")  # raises: a known family, an unknown link
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
    return _row_families(names, "family")


def _row_families(names: list[str | Family], source: str) -> RowFamilies:
    """One family per distinct spelling; spellings of the same family and link share it."""
    try:
        resolved = {name: get_family(name) for name in dict.fromkeys(names)}
    except ValueError as exc:
        raise DataError(f"{exc} (in {source})") from None
    families = tuple(dict.fromkeys(resolved.values()))
    codes = np.array([families.index(resolved[name]) for name in names], dtype=np.intp)
    return RowFamilies(families, codes)


def _families_by_level(
    family: Mapping[str, Any], data: pd.DataFrame, spec: ModelSpec
) -> list[str | Family]:
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
    values = data[column].astype(str).to_numpy()
    known = set(values)
    for level in levels:
        if str(level) not in known:
            raise DataError(
                f"The family mapping names level '{level}' of column '{column}', which the data "
                f"do not have.{nearest(str(level), known)}"
            )
    names = [levels.get(v, levels.get(_number(v), default)) for v in values]
    unmapped = [v for v, name in zip(values, names) if name is None]
    if unmapped:
        missing = ", ".join(sorted(set(unmapped))[:5])
        raise DataError(
            f"The family mapping gives no family for level(s) {missing} of column '{column}'. "
            'Add them, or a "default" family.'
        )
    return names


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
    rows = []
    for code, fam in enumerate(families.families):
        mask = families.codes == code
        indicators = [
            f"{column}[{level}]"
            for column in spec.indicator_variables
            for level in pd.unique(data.loc[mask, column].astype(str))
        ]
        rows.append((fam.name, fam.link, int(mask.sum()), " ".join(indicators)))
    return pd.DataFrame(rows, columns=["family", "link", "rows", "indicators"])
