"""ModelSpec + DataFrame -> Design: X(lambda), Z(lambda) blocks and the loading map.

Fixed-effect columns come from patsy with R's treatment contrasts and R-like names
("period2", "(Intercept)"); columns named as indicators (``item[3]``) are categorical with
their natural level order. Formula terms are evaluated safely (design/formulas.py): only the
data's columns and a fixed set of functions, never the caller's namespace. ``offset(expr)``
terms give the known part of the linear predictor and ``weights`` the prior weights, as in
lme4.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import patsy
import scipy.sparse as sp

from semgalamm.design.checks import check_design, check_spec
from semgalamm.design.design import Design, LoadingMap, RandomBlock, StructuralEntry
from semgalamm.design.formulas import (
    environment,
    factor_variables,
    formula_factors,
    quote_columns,
    unquote,
)
from semgalamm.design.frame import (
    as_categorical,
    check_columns,
    check_frame,
    check_text_numbers,
    coded_frame,
    formula_variables,
)
from semgalamm.design.row_families import ordinal_response, with_family_parameters
from semgalamm.design.smooth_terms import build_smooths, smooth_columns
from semgalamm.errors import DataError, SpecError, UnsupportedError, nearest
from semgalamm.families import RowFamilies
from semgalamm.spec.model_spec import (
    LoadingSpec,
    ModelSpec,
    RandomSpec,
    ResidualGroups,
)
from semgalamm.syntax.nodes import BinaryOp, Expr, Name, Number, Paren

_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_LEADING_NAME = re.compile(r"(?:C\()?([A-Za-z_.][\w.]*)")
_PATSY_LEVEL = re.compile(r"(?:C\()?([A-Za-z_.][\w.]*)\)?\[(?:T\.)?([^\]]*)\]")
_MATRIX_COLUMN = re.compile(r"(?!C\()([A-Za-z_.][\w.]*\(.*\))\[(\d+)\]")
_R_LOGICAL = {"True": "TRUE", "False": "FALSE"}


def _r_level(match: re.Match[str]) -> str:
    return match.group(1) + _R_LOGICAL.get(match.group(2), match.group(2))


def _factors(name: str) -> list[str]:
    """The parts of an interaction column name, split at ':' outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(name):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == ":" and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    return [*parts, name[start:]]


def _r_part(part: str) -> str:
    matrix = _MATRIX_COLUMN.fullmatch(part)
    if matrix:  # a column of a matrix-valued term: poly(x, 2)[0] -> poly(x, 2)1
        return f"{matrix.group(1)}{int(matrix.group(2)) + 1}"
    return _PATSY_LEVEL.sub(_r_level, part)


def r_names(names: list[str]) -> list[str]:
    """patsy column names -> R's: 'Intercept' -> '(Intercept)', 'period[T.2]' -> 'period2',
    'Q("my.days")' -> 'my.days', 'b[T.True]' -> 'bTRUE', 'poly(x, 2)[0]' -> 'poly(x, 2)1'."""
    return ["(Intercept)" if name == "Intercept" else
            ":".join(_r_part(part) for part in _factors(unquote(name))) for name in names]


def used_columns(spec: ModelSpec, columns: list[str] | None = None) -> list[str]:
    """Every data column the model reads (``columns``: the data's, to read dotted names)."""
    cols: list[str] = []
    if spec.response.is_binomial_pair:
        cols += _expr_names(spec.response.successes) + _expr_names(spec.response.failures)
    else:
        cols.append(spec.response.name)
    for part in spec.fixed:
        cols += formula_variables(part.formula, columns)
    for offset in spec.offsets:
        cols += formula_variables(f"0 + I({offset})", columns)
    for block in spec.random:
        cols += list(block.group)
        for formula, _ in block.parts:
            cols += formula_variables(formula, columns)
    for loading in spec.loadings:
        cols.append(loading.variable)
        if loading.covariate:
            cols += formula_variables(f"0 + {loading.covariate}", columns)
    if spec.residual is not None:
        cols += list(spec.residual.group)
        if spec.residual.selector is not None:
            cols.append(spec.residual.selector)
    cols += smooth_columns(spec)
    return list(dict.fromkeys(cols))


def model_frame(spec: ModelSpec, data: pd.DataFrame) -> pd.DataFrame:
    """The data as the design reads them: checked (columns present, unique, finite), a copy
    with R's types (design/frame.py ``coded_frame``) and indicator columns categorical."""
    data = check_frame(data)
    used = used_columns(spec, list(data.columns))
    check_columns(data, used, "variable")
    frame = coded_frame(data, used)
    for variable in spec.indicator_variables:
        frame[variable] = as_categorical(frame[variable])
    return frame


def build_design(spec: ModelSpec, data: pd.DataFrame, families: RowFamilies,
                 weights: object = None) -> Design:
    """Build the design of ``spec`` on ``data`` (validated, categoricals fixed).

    ``weights``: prior weights as lme4's ``weights=``, a column name or one positive number
    per row (None: all 1)."""
    check_spec(spec)
    spec = expand_loadings(spec, data)
    frame = model_frame(spec, data)
    n = frame.shape[0]
    latent_index = {name: k for k, name in enumerate(spec.latents)}

    if spec.response.is_binomial_pair and families.mask("ordinal").any():
        raise DataError(
            "cbind(successes, failures) is a binomial response; ordinal rows need the column of "
            "categories itself as the response (binomial rows can give a proportion with "
            "weights= the number of trials, as lme4).")
    ordinal = None if spec.response.is_binomial_pair else ordinal_response(
        data[spec.response.name], frame.index, families, spec, frame)
    y, trials = _response(spec, frame) if ordinal is None else ordinal[:2]
    prior = prior_weights(weights, frame)
    y, trials, prior = _binomial_weights(spec, y, trials, prior, families, frame)
    families = with_family_parameters(families, y, None if ordinal is None else ordinal[2])
    offset = _offsets(spec, frame)
    X_parts, names, fixed_latent = [], [], []
    for part in spec.fixed:
        matrix, columns = _model_matrix(part.formula, frame)
        prefix = f"{part.latent}:" if part.latent else ""
        X_parts.append(matrix)
        names += [prefix + c for c in columns]
        fixed_latent += [latent_index.get(part.latent)] * matrix.shape[1]
    X_par = np.hstack(X_parts) if X_parts else np.zeros((n, 0))
    keep = _not_threshold_aliases(X_par, families)
    X_par, names, fixed_latent = X_par[:, keep], [names[j] for j in keep], \
        [fixed_latent[j] for j in keep]
    blocks = [_random_block(b, frame, latent_index) for b in spec.random]
    smooths = build_smooths(spec, frame, latent_index, len(names), len(blocks))
    X0 = np.hstack([X_par, smooths.X]) if names or smooths.names else np.zeros((n, 0))
    names += smooths.names
    fixed_latent += smooths.fixed_latent
    loadings = _loading_map(spec, frame) if spec.latents else None
    dispersion_group, dispersion_levels = _dispersion_groups(spec.residual, frame, families)
    design = Design(
        y=y, trials=trials, weights=prior, offset=offset, X0=X0,
        fixed_names=tuple(names), fixed_latent=tuple(fixed_latent),
        blocks=(*blocks, *smooths.blocks), families=families,
        dispersion_group=dispersion_group, dispersion_levels=dispersion_levels,
        loadings=loadings,
        dispersion_by=None if spec.residual is None else spec.residual.group_name,
        smooths=tuple(smooths.smooths), frame=frame,
    )
    check_design(design, spec)
    return design


def _dispersion_groups(
    residual: ResidualGroups | None, frame: pd.DataFrame, families: RowFamilies
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Residual-variance group codes of the Gaussian rows (-1 elsewhere) and their labels."""
    gaussian = families.mask("gaussian")
    codes = np.where(gaussian, 0, -1).astype(np.intp)
    if residual is None:
        return codes, ("Residual",) if gaussian.any() else ()
    if not gaussian.any():
        raise SpecError(
            f"Residual variance groups '{residual.text}' apply to Gaussian rows, but the model "
            "has none. Remove the '~~' statement (binomial and Poisson rows have no residual "
            "variance)."
        )
    if residual.selector is not None:
        selected = frame[residual.selector].to_numpy(dtype=float) != 0
        missing = gaussian & ~selected
        if missing.any():
            raise DataError(
                f"{missing.sum()} Gaussian row(s) (index {_row_labels(frame, missing)}) have "
                f"'{residual.selector}' = 0 in '{residual.text}', so they would have no residual "
                "variance. Mark every Gaussian row, or write '(1 | "
                f"{residual.group_name})'."
            )
    codes[gaussian], level_labels = _interaction_levels(frame, residual.group, gaussian)
    return codes, level_labels


def _row_labels(frame: pd.DataFrame, mask: np.ndarray, shown: int = 5) -> str:
    """The DataFrame index labels of the first rows in ``mask``, for error messages."""
    labels = [str(v) for v in frame.index[mask][:shown]]
    return ", ".join(labels) + (" ..." if mask.sum() > shown else "")


def _expr_names(expr: Expr | None) -> list[str]:
    if isinstance(expr, Name):
        return [expr.name]
    if isinstance(expr, BinaryOp):
        return _expr_names(expr.left) + _expr_names(expr.right)
    if isinstance(expr, Paren):
        return _expr_names(expr.expr)
    return []


def _evaluate(expr: Expr, frame: pd.DataFrame) -> np.ndarray:
    """Value of a simple arithmetic expression over columns (for ``cbind(y, n - y)``)."""
    if isinstance(expr, Name):
        return frame[expr.name].to_numpy(dtype=float)
    if isinstance(expr, Number):
        return np.full(frame.shape[0], expr.value)
    if isinstance(expr, Paren):
        return _evaluate(expr.expr, frame)
    if isinstance(expr, BinaryOp) and expr.op in _ARITHMETIC:
        return _ARITHMETIC[expr.op](_evaluate(expr.left, frame), _evaluate(expr.right, frame))
    raise UnsupportedError(
        "cbind() takes column names and arithmetic (+ - * /) on them, e.g. cbind(y, n - y)."
    )


def _response(spec: ModelSpec, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    response = spec.response
    if response.is_binomial_pair:
        successes = _evaluate(response.successes, frame)
        failures = _evaluate(response.failures, frame)
        return successes, successes + failures
    values = frame[response.name]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        if pd.api.types.is_bool_dtype(values):
            return values.to_numpy(dtype=float), np.ones(frame.shape[0])
        raise DataError(
            f"The response '{response.name}' is not numeric ({values.dtype}). Code it as numbers "
            "(0/1 for a binary response)."
        )
    return values.to_numpy(dtype=float), np.ones(frame.shape[0])


def _model_matrix(formula: str, frame: pd.DataFrame, newdata: pd.DataFrame | None = None
                  ) -> tuple[np.ndarray, list[str]]:
    """patsy's design matrix with R's column order (terms by degree, then as written) and
    R's column names; at the rows of ``newdata`` (coded as ``frame`` was) when given.

    Every factor is checked first (formulas.py: columns, numbers, arithmetic and the allowed
    functions only) and evaluated in an environment holding only those functions."""
    columns = list(frame.columns)
    text = quote_columns(formula, columns)
    try:
        codes = formula_factors(text)
    except patsy.PatsyError as exc:
        raise SpecError(f"The terms '{formula}' cannot be read: {exc.message}") from None
    for code in codes:
        names = factor_variables(code, columns)
        check_columns(frame, names, "variable")
        if len(names) == 1 and code.strip() in (names[0], f'Q("{names[0]}")'):
            check_text_numbers(frame, names[0], unquote(code))
    try:
        with np.errstate(all="ignore"):
            matrix = patsy.dmatrix(text, frame, NA_action="raise", return_type="matrix",
                                   eval_env=environment(columns))
            if newdata is not None:
                matrix = patsy.build_design_matrices([matrix.design_info], newdata,
                                                     NA_action="raise")[0]
    except patsy.PatsyError as exc:
        raise DataError(f"The terms '{formula}' cannot be built from the data: {exc.message}") \
            from None
    except (TypeError, ValueError, ArithmeticError, NameError, np.linalg.LinAlgError) as exc:
        raise DataError(f"The terms '{formula}' cannot be built from the data: {exc}.") \
            from None
    written = patsy.ModelDesc.from_formula(text).rhs_termlist
    slices = matrix.design_info.term_slices
    order = sorted(slices, key=lambda t: (len(t.factors), written.index(t)))
    columns_order = np.concatenate([np.arange(slices[t].start, slices[t].stop) for t in order]
                                   or [np.zeros(0, dtype=int)])
    names = _r_interaction_order(r_names(matrix.design_info.column_names),
                                 formula_variables(formula, columns))
    values = np.asarray(matrix)[:, columns_order]
    _check_finite(values, [names[j] for j in columns_order], formula,
                  frame if newdata is None else newdata)
    return values, [names[j] for j in columns_order]


def _check_finite(values: np.ndarray, names: list[str], formula: str,
                  frame: pd.DataFrame) -> None:
    """A term may compute non-finite values from finite data (log(0), 1/0)."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    column = int(np.flatnonzero(bad.any(axis=0))[0])
    rows = bad[:, column]
    raise DataError(
        f"The term '{names[column]}' (in '{formula}') is not finite in {rows.sum()} row(s) "
        f"(index {_row_labels(frame, rows)}), e.g. log(0) or a division by 0. Remove those "
        "rows or change the term."
    )


def _r_interaction_order(names: list[str], variables: list[str]) -> list[str]:
    """Name interaction columns as R does, their variables in order of first appearance in
    the formula: '(age*bus):chd' after 'chd' gives 'chd:age', not 'age:chd'."""
    rank = {v: i for i, v in enumerate(variables)}

    def position(part: str) -> int:
        match = _LEADING_NAME.match(part)
        return rank.get(match.group(1), len(rank)) if match else len(rank)

    return [":".join(sorted(n.split(":"), key=position)) if ":" in n else n for n in names]


def _not_threshold_aliases(X: np.ndarray, families: RowFamilies) -> list[int]:
    """The parametric fixed columns to keep: not those that are 0 outside ordinal rows and constant
    within each set of thresholds (the intercept of an ordinal model, an ordinal item's own
    column in ``0 + item``): the thresholds carry them, as ordinal::clmm drops the intercept
    from its model matrix and keeps the contrasts of the other terms."""
    parameters = families.parameters
    if parameters is None or not parameters.sets:
        return list(range(X.shape[1]))
    row_set = parameters.row_set
    keep = []
    for j in range(X.shape[1]):
        column = X[:, j]
        outside = bool(np.any(column[row_set < 0] != 0))
        constant = all(np.ptp(column[row_set == s]) == 0 for s in range(len(parameters.sets)))
        if outside or not constant or not np.any(column != 0):
            keep.append(j)
    return keep


def new_rows(spec: ModelSpec, frame: pd.DataFrame, newdata: pd.DataFrame,
             fixed_names: tuple[str, ...] | None = None
             ) -> tuple[np.ndarray, LoadingMap | None, pd.DataFrame]:
    """The parametric fixed columns and the loading map at ``newdata``, coded as the fitted
    ``frame`` (same factor levels and contrasts), and ``newdata`` so coded; with
    ``fixed_names`` (the design's) only the columns the fit kept (an ordinal model has no
    intercept column)."""
    newdata = check_frame(newdata).copy()
    for column in frame.columns:
        if column in newdata.columns and isinstance(frame[column].dtype, pd.CategoricalDtype):
            newdata[column] = pd.Categorical(newdata[column],
                                             categories=frame[column].cat.categories)
    parts, names = [], []
    for part in spec.fixed:
        matrix, columns = _model_matrix(part.formula, frame, newdata)
        parts.append(matrix)
        names += [f"{part.latent}:{c}" if part.latent else c for c in columns]
    X = np.hstack(parts) if parts else np.zeros((newdata.shape[0], 0))
    if fixed_names is not None:
        X = X[:, [j for j, name in enumerate(names) if name in fixed_names]]
    loadings = _loading_map(spec, frame, newdata) if spec.latents else None
    return X, loadings, newdata


def new_offset(spec: ModelSpec, frame: pd.DataFrame, newdata: pd.DataFrame) -> np.ndarray:
    """The offset of the rows of ``newdata`` (``offset(log(size))`` evaluated there), for
    predictions on the link scale as R's ``predict(fit, newdata)``; zeros without offsets."""
    if not spec.offsets:
        return np.zeros(newdata.shape[0])
    _, _, coded = new_rows(spec, frame, newdata)
    return _offsets(spec, frame, coded)


def _interaction_levels(
    frame: pd.DataFrame, columns: tuple[str, ...], rows: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Level codes (of ``rows``, default all) and labels ("a:b") of the interaction of
    ``columns``, its levels sorted in the columns' natural order and limited to those present."""
    keys = [as_categorical(frame[c]) for c in columns]
    sizes = [len(k.categories) for k in keys]
    # one integer per combination (row-major in the columns' levels), then one sort of
    # integers: the order of np.unique over rows of codes, without its lexicographic sort
    key_codes = [np.asarray(k.codes, dtype=np.intp) for k in keys]
    if rows is not None:
        key_codes = [c[rows] for c in key_codes]
    combined = np.ravel_multi_index(key_codes, sizes)
    used, codes = np.unique(combined, return_inverse=True)
    names = [np.asarray(k.categories.astype(str), dtype=object) for k in keys]
    labels = tuple(":".join(parts) for parts in zip(*(
        name[level] for name, level in zip(names, np.unravel_index(used, sizes)))))
    return np.asarray(codes, dtype=np.intp).ravel(), labels


def _grouping(block: RandomSpec, frame: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Level codes and labels of the interaction of the grouping columns (sorted levels)."""
    codes, labels = _interaction_levels(frame, block.group)
    if len(labels) < 2:
        raise DataError(
            f"The grouping factor '{block.group_name}' has only one level ({labels[0]!r}), so "
            "its variance cannot be estimated. Remove the random term or check the column."
        )
    return codes, labels


def _random_block(block: RandomSpec, frame: pd.DataFrame, latent_index: dict) -> RandomBlock:
    index, levels = _grouping(block, frame)
    z_parts, columns, latents = [], [], []
    for formula, latent in block.parts:
        matrix, cols = (np.ones((frame.shape[0], 1)), ["(Intercept)"]) if formula == "1" \
            else _model_matrix(formula, frame)
        if latent is not None:
            cols = [latent if c == "(Intercept)" else f"{latent}:{c}" for c in cols]
        z_parts.append(matrix)
        columns += cols
        latents += [latent_index.get(latent)] * matrix.shape[1]
    return RandomBlock(
        group=block.group_name, levels=levels, index=index, columns=tuple(columns),
        z0=np.hstack(z_parts), latent=tuple(latents), correlated=block.correlated,
    )


def _indicator_rows(loading: LoadingSpec, frame: pd.DataFrame,
                    coded: dict[str, tuple[list[str], np.ndarray]]) -> np.ndarray:
    """The rows of the loading's indicator level; ``coded`` keeps each indicator column's
    level labels and codes, read once per column (not once per loading: 0.1 ms each)."""
    if loading.variable not in coded:
        column = frame[loading.variable]
        coded[loading.variable] = ([str(c) for c in column.cat.categories],
                                   column.cat.codes.to_numpy())
    levels, codes = coded[loading.variable]
    if loading.level not in levels:
        raise SpecError(
            f"The indicator '{loading.indicator}' of latent '{loading.latent}' names level "
            f"'{loading.level}', but column '{loading.variable}' has levels "
            f"{', '.join(levels[:10])}{' ...' if len(levels) > 10 else ''}."
            f"{nearest(loading.level, levels)}"
        )
    matching = [j for j, level in enumerate(levels) if level == loading.level]
    return np.isin(codes, matching)


def expand_loadings(spec: ModelSpec, data: pd.DataFrame) -> ModelSpec:
    """A loading whose covariate term has several columns (``type[b]:poly(x, 2)``, a factor)
    becomes one free loading per column, named as R names the columns (``poly(x, 2)1``):
    galamm's ``factor_interactions = ~ poly(x, 2)``. Idempotent."""
    if not any(ld.covariate is not None and ld.covariate_column is None
               for ld in spec.loadings):
        return spec
    frame = model_frame(spec, data)
    out: list[LoadingSpec] = []
    for loading in spec.loadings:
        if loading.covariate is None or loading.covariate_column is not None:
            out.append(loading)
            continue
        _, names = _model_matrix(f"0 + {loading.covariate}", frame)
        if len(names) == 1:
            out.append(loading)
            continue
        base = f"{loading.latent}=~{loading.variable}[{loading.level}]"
        written = loading.covariate_name or loading.covariate
        if loading.fixed is not None or loading.label != f"{base}:{written}":
            raise SpecError(
                f"The loading '{loading.indicator}' of latent '{loading.latent}' has a covariate "
                f"term with {len(names)} columns ({', '.join(names)}), one loading each; a fixed "
                "value or a label cannot apply to all of them. Remove the modifier, or write "
                "one indicator per column with precomputed columns."
            )
        out += [dataclasses.replace(loading, covariate_column=j, covariate_name=name,
                                    label=f"{base}:{name}")
                for j, name in enumerate(names)]
    return dataclasses.replace(spec, loadings=tuple(out))


def _loading_map(spec: ModelSpec, frame: pd.DataFrame, newdata: pd.DataFrame | None = None
                 ) -> LoadingMap:
    """ell_k(i) = offset_k(i) + basis_k[i, :] @ lambda, and the entries of B; equal labels
    share one parameter. At the rows of ``newdata`` (coded as ``frame``) when given."""
    target = frame if newdata is None else newdata
    n = target.shape[0]
    parameters = spec.free_parameters()
    free_labels = list(parameters)
    covariates: dict[str, np.ndarray] = {}
    coded: dict[str, tuple[list[str], np.ndarray]] = {}
    offsets, bases = [], []
    for latent in spec.latents:
        offset = np.zeros(n)
        rows_idx, cols_idx, vals = [], [], []
        for loading in (ld for ld in spec.loadings if ld.latent == latent):
            rows = _indicator_rows(loading, target, coded)
            value = np.where(rows, 1.0, 0.0)
            if loading.covariate is not None:
                value = value * _loading_covariate(loading, frame, newdata, covariates)
            if loading.fixed is not None:
                offset += loading.fixed * value
            else:
                nz = np.flatnonzero(value)
                rows_idx.append(nz)
                cols_idx.append(np.full(nz.size, free_labels.index(loading.label)))
                vals.append(value[nz])
        basis = sp.csr_matrix(
            (np.concatenate(vals or [np.zeros(0)]),
             (np.concatenate(rows_idx or [np.zeros(0, int)]),
              np.concatenate(cols_idx or [np.zeros(0, int)]))),
            shape=(n, len(free_labels)),
        )
        offsets.append(offset)
        bases.append(basis)
    latent_index = {name: k for k, name in enumerate(spec.latents)}
    structural = tuple(
        StructuralEntry(latent_index[e.lhs], latent_index[e.rhs],
                        None if e.fixed is not None else free_labels.index(e.label),
                        0.0 if e.fixed is None else e.fixed)
        for e in spec.structural
    )
    start = np.array(list(parameters.values()), dtype=float)
    return LoadingMap(tuple(spec.latents), tuple(offsets), tuple(bases), tuple(free_labels),
                      start, structural)


def _loading_covariate(loading: LoadingSpec, frame: pd.DataFrame,
                       newdata: pd.DataFrame | None, cache: dict[str, np.ndarray]
                       ) -> np.ndarray:
    """The values of a loading's covariate term (one column of it), evaluated safely."""
    text = loading.covariate
    if text not in cache:
        cache[text] = _model_matrix(f"0 + {text}", frame, newdata)[0]
    matrix = cache[text]
    if loading.covariate_column is not None:
        return matrix[:, loading.covariate_column]
    if matrix.shape[1] != 1:
        raise SpecError(
            f"The covariate '{text}' of loading '{loading.indicator}' has {matrix.shape[1]} "
            "columns; fit the model with semgalamm.fit, which gives each column a loading."
        )
    return matrix[:, 0]


def prior_weights(weights: object, frame: pd.DataFrame) -> np.ndarray:
    """lme4's prior weights: a column name or one positive finite number per row."""
    n = frame.shape[0]
    if weights is None:
        return np.ones(n)
    if isinstance(weights, str):
        if weights not in frame.columns:
            raise DataError(f"weights='{weights}' is not a column of the data."
                            f"{nearest(weights, frame.columns)}")
        check_columns(frame, [weights], "weights column")
        values, source = frame[weights], f"column '{weights}'"
    else:
        values, source = weights, "weights"
    try:
        w = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"The weights ({source}) must be numbers.") from None
    if w.ndim != 1 or w.size != n:
        raise DataError(
            f"weights has {w.size} values (shape {w.shape}) but the data have {n} rows. Give "
            "one weight per row, or the name of a column."
        )
    bad = ~np.isfinite(w) | (w <= 0)
    if bad.any():
        raise DataError(
            f"The weights ({source}) must be positive finite numbers; {bad.sum()} row(s) "
            f"(index {_row_labels(frame, bad)}) are not. Drop rows of weight 0 (they carry no "
            "information) and check missing values."
        )
    return w


def _binomial_weights(spec: ModelSpec, y: np.ndarray, trials: np.ndarray, prior: np.ndarray,
                      families: RowFamilies, frame: pd.DataFrame
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lme4's binomial response as a proportion with the trials as prior weights
    (``y = incidence / size``, ``weights = size``): successes y w out of w trials. A 0/1
    response keeps its weights (the same likelihood)."""
    binomial = families.mask("binomial")
    if spec.response.is_binomial_pair or not (binomial & (prior != 1.0)).any():
        return y, trials, prior
    rows = binomial
    if np.all(np.isin(y[binomial], (0.0, 1.0))):
        return y, trials, prior
    successes = y[rows] * prior[rows]
    whole = np.isclose(successes, np.round(successes)) & (y[rows] >= 0) & (y[rows] <= 1)
    if not whole.all():
        bad = np.zeros(y.size, dtype=bool)
        bad[np.flatnonzero(rows)[~whole]] = True
        raise DataError(
            f"The binomial response '{spec.response.name}' is read as a proportion of "
            f"weights trials (lme4's weights = number of trials), but in {bad.sum()} row(s) "
            f"(index {_row_labels(frame, bad)}) it is outside [0, 1] or response x weight is "
            "not a whole number of successes. Give the proportion and its number of trials, or "
            "write cbind(successes, failures)."
        )
    y, trials, prior = y.copy(), trials.copy(), prior.copy()
    y[rows], trials[rows], prior[rows] = np.round(successes), prior[rows], 1.0
    return y, trials, prior


def _offsets(spec: ModelSpec, frame: pd.DataFrame, newdata: pd.DataFrame | None = None
             ) -> np.ndarray:
    """The sum of the response's ``offset(expr)`` terms (0 without any), at the rows of
    ``newdata`` (coded as ``frame``) when given."""
    total = np.zeros((frame if newdata is None else newdata).shape[0])
    for code in spec.offsets:
        matrix, _ = _model_matrix(f"0 + I({code})", frame, newdata)
        if matrix.shape[1] != 1:
            raise DataError(f"offset({code}) must be one number per row, not a factor.")
        total += matrix[:, 0]
    return total
