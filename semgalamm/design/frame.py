"""Checks at the edge: the data frame a model is fitted to.

Every problem becomes a ``DataError`` that names the column and says how to fix it, before
any matrix is built.
"""

from __future__ import annotations

import ast
import builtins
import difflib
from collections.abc import Iterable

import numpy as np
import pandas as pd
import patsy

from semgalamm.errors import DataError

# Names a formula may call or use that are not columns.
_FORMULA_FUNCTIONS = {"I", "C", "Q", "log", "exp", "sqrt", "abs", "np", "center", "standardize",
                      "scale", "Treatment", "Sum", "Poly", "Helmert", "Diff", "bs", "cr", "cc",
                      "te", "Intercept"}


def nearest(name: str, choices: Iterable[str]) -> str:
    """A ' Did you mean ...?' hint, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def formula_variables(formula: str) -> list[str]:
    """The identifiers a patsy formula reads from the data (function names excluded)."""
    names: list[str] = []
    try:
        desc = patsy.ModelDesc.from_formula(formula)
    except patsy.PatsyError as exc:
        raise DataError(f"The formula '{formula}' cannot be read: {exc}.") from None
    for term in desc.rhs_termlist + desc.lhs_termlist:
        for factor in term.factors:
            code = factor.code if hasattr(factor, "code") else str(factor)
            names.extend(expression_variables(code))
    return list(dict.fromkeys(names))


def expression_variables(code: str) -> list[str]:
    """Identifiers in a Python/R expression that are not called as functions."""
    try:
        tree = ast.parse(code.replace("^", "**"), mode="eval")
    except SyntaxError:
        return []
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Name)}
    return [
        n.id for n in ast.walk(tree)
        if isinstance(n, ast.Name) and n.id not in called and n.id not in _FORMULA_FUNCTIONS
        and not hasattr(builtins, n.id)
    ]


def check_frame(data: object) -> pd.DataFrame:
    """The data must be a non-empty pandas DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"data must be a pandas DataFrame, not {type(data).__name__}. Convert it with "
            "pandas.DataFrame(...)."
        )
    if data.shape[0] == 0:
        raise DataError("The data frame is empty (0 rows). Pass the data to fit the model to.")
    return data


def check_columns(data: pd.DataFrame, columns: Iterable[str], role: str) -> None:
    """Every column must exist and have no missing or infinite values."""
    for column in columns:
        if column not in data.columns:
            raise DataError(
                f"The {role} '{column}' is not a column of the data.{nearest(column, data.columns)}"
            )
        values = data[column]
        missing = values.isna().to_numpy().copy()
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            missing |= ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if missing.any():
            rows = np.flatnonzero(missing)
            shown = ", ".join(str(data.index[i]) for i in rows[:5])
            more = "" if len(rows) <= 5 else f" and {len(rows) - 5} more"
            raise DataError(
                f"Column '{column}' has {len(rows)} missing or infinite value(s) (rows {shown}"
                f"{more}). Remove those rows (e.g. data.dropna(subset=['{column}'])) or impute "
                "them before fitting."
            )


def natural_levels(values: pd.Series) -> list:
    """Levels in R's order: a categorical's own order, else sorted (numbers numerically)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    return sorted(pd.unique(values), key=lambda v: (isinstance(v, str), v))


def as_categorical(values: pd.Series) -> pd.Categorical:
    """The column as a categorical with natural level order (levels matched as strings)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.remove_unused_categories().array
    return pd.Categorical(values, categories=natural_levels(values))
