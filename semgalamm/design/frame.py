"""Checks at the edge: the data frame a model is fitted to.

Every problem becomes a ``DataError`` that names the column and says how to fix it, before
any matrix is built.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd
import patsy

from semgalamm.design.formulas import (
    factor_variables,
    formula_factors,
    quote_columns,
    quote_keywords,
)
from semgalamm.errors import DataError, SpecError, nearest


def formula_variables(formula: str, columns: Iterable[str] | None = None) -> list[str]:
    """The data columns a patsy formula reads (function names excluded); dotted R names
    (``my.days``) and keywords (``class``) count as columns. With ``columns`` (the data's),
    the formula is first quoted as the design will read it."""
    columns = list(columns) if columns is not None else None
    text = quote_columns(formula, columns) if columns is not None else quote_keywords(formula)
    try:
        codes = formula_factors(text)
    except patsy.PatsyError as exc:
        raise SpecError(f"The terms '{formula}' cannot be read: {exc.message}") from None
    names: list[str] = []
    for code in codes:
        names.extend(factor_variables(code, columns or ()))
    return list(dict.fromkeys(names))


def check_frame(data: object) -> pd.DataFrame:
    """The data must be a non-empty pandas DataFrame with unique, flat column names."""
    if not isinstance(data, pd.DataFrame):
        hint = {
            "dict": " Convert it with pandas.DataFrame(data).",
            "ndarray": " A numpy array has no column names; convert it with "
                       "pandas.DataFrame(array, columns=[...]) naming the columns the model "
                       "uses.",
        }.get(type(data).__name__, " Convert it with pandas.DataFrame(...).")
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}.{hint}")
    if isinstance(data.columns, pd.MultiIndex):
        raise DataError(
            "The data frame has MultiIndex (hierarchical) column names, which a model cannot "
            "name. Flatten them first, e.g. data.columns = ['_'.join(map(str, c)) for c in "
            "data.columns]."
        )
    if data.shape[0] == 0:
        raise DataError("The data frame is empty (0 rows). Pass the data to fit the model to.")
    return data


def check_unique_columns(data: pd.DataFrame, used: Iterable[str]) -> None:
    """A column the model reads must appear once in the data."""
    duplicated = set(data.columns[data.columns.duplicated()])
    clash = [c for c in used if c in duplicated]
    if clash:
        count = int(np.sum(data.columns == clash[0]))
        raise DataError(
            f"The data have {count} columns named '{clash[0]}', so the model cannot tell which "
            "to use. Rename or drop the duplicates, e.g. data.loc[:, "
            "~data.columns.duplicated()]."
        )


def check_columns(data: pd.DataFrame, columns: Iterable[str], role: str) -> None:
    """Every column must exist and have no missing or infinite values."""
    for column in columns:
        if column not in data.columns:
            hint = nearest(column, data.columns)
            if not hint and "." in column:
                hint = (f" A name with dots is read as written when the data have that column; "
                        f"otherwise check the spelling (or write Q(\"{column}\")).")
            raise DataError(f"The {role} '{column}' is not a column of the data.{hint}")
        check_unique_columns(data, [column])
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
    if values.dtype.kind in "iu" or (values.dtype.kind == "f" and not values.isna().any()):
        # numbers: sorted levels and codes in one np.unique (pandas' path is 10 times slower)
        levels, codes = np.unique(values.to_numpy(), return_inverse=True)
        return pd.Categorical.from_codes(codes.ravel(), categories=levels)
    return pd.Categorical(values, categories=natural_levels(values))


def coded_frame(data: pd.DataFrame, used: Iterable[str]) -> pd.DataFrame:
    """A copy of ``data`` with the used columns in the types the design reads, as R would:
    unused levels of categoricals dropped (R's ``drop.unused.levels``), pandas' nullable
    integers, floats and booleans as numpy ones (their missing values were refused before).
    ``data`` itself is never changed."""
    frame = data.copy()
    for column in dict.fromkeys(used):
        values = frame[column]
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            frame[column] = values.cat.remove_unused_categories()
        elif pd.api.types.is_bool_dtype(dtype):
            frame[column] = values.to_numpy(dtype=bool)
        elif isinstance(dtype, pd.api.extensions.ExtensionDtype) and \
                pd.api.types.is_numeric_dtype(dtype):
            kind = np.int64 if pd.api.types.is_integer_dtype(dtype) else float
            frame[column] = values.to_numpy(dtype=kind)
    return frame


def _looks_numeric(values: pd.Series) -> bool:
    """Every value a number (not bool), or a string that reads as one."""
    items = pd.unique(values.to_numpy(dtype=object))
    if all(isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_))
           for v in items):
        return True
    if not all(isinstance(v, str) for v in items):
        return False
    try:
        [float(v) for v in items]
    except ValueError:
        return False
    return True


def check_text_numbers(frame: pd.DataFrame, column: str, term: str) -> None:
    """A column of numbers stored as text or Python objects must not silently become a
    factor with one dummy per value: a ``DataError`` says how to convert it."""
    values = frame[column]
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_numeric_dtype(dtype) or \
            pd.api.types.is_bool_dtype(dtype):
        return
    if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        return
    if not _looks_numeric(values):
        return
    stored = "Python objects" if pd.api.types.is_object_dtype(dtype) and not all(
        isinstance(v, str) for v in pd.unique(values.to_numpy(dtype=object))) else "text"
    levels = pd.unique(values.to_numpy(dtype=object)).size
    raise DataError(
        f"Column '{column}' (in the term '{term}') holds numbers stored as {stored} (dtype "
        f"{dtype}), so the formula would make it a factor with {levels} levels. For a "
        f"number, convert it: data['{column}'] = pd.to_numeric(data['{column}']); for a "
        f"factor, write C({column}) or make the column categorical "
        f"(data['{column}'].astype('category'))."
    )


def equal_rows(table: np.ndarray) -> np.ndarray | None:
    """A label per row of the 2-d float ``table`` (0, 1, ... in the order of a random
    projection), equal for equal rows; None when the table has a nan or two different rows
    project alike (then the caller keeps all rows). Rows are told apart by the projection and
    the rows of each label checked against its first: np.unique over rows sorts them as
    byte strings, 20 times slower."""
    if not np.all(np.isfinite(table)):
        return None
    weights = np.random.default_rng(7).uniform(1.0, 2.0, table.shape[1])
    _, first, label = np.unique(table @ weights, return_index=True, return_inverse=True)
    label = label.ravel()
    if not np.array_equal(table, table[first[label]]):
        return None
    return label
