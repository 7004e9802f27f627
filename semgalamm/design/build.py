"""ModelSpec + DataFrame -> Design: X(lambda), Z(lambda) blocks and the loading map.

Fixed-effect columns come from patsy with R's treatment contrasts and R-like names
("period2", "(Intercept)"); columns named as indicators (``item[3]``) are categorical with
their natural level order.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import patsy
import scipy.sparse as sp

from semgalamm.design.design import Design, LoadingMap, RandomBlock, StructuralEntry
from semgalamm.design.frame import (
    as_categorical,
    check_columns,
    check_frame,
    formula_variables,
    nearest,
)
from semgalamm.design.smooth_terms import build_smooths, smooth_columns
from semgalamm.errors import DataError, SpecError, UnsupportedError
from semgalamm.families import RowFamilies
from semgalamm.spec.model_spec import LoadingSpec, ModelSpec, RandomSpec, ResidualGroups
from semgalamm.syntax.nodes import BinaryOp, Expr, Name, Number, Paren

_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}
_LEADING_NAME = re.compile(r"(?:C\()?([A-Za-z_.][\w.]*)")
_PATSY_LEVEL = re.compile(r"(?:C\()?([A-Za-z_.][\w.]*)\)?\[(?:T\.)?([^\]]*)\]")


def r_names(names: list[str]) -> list[str]:
    """patsy column names -> R's: 'Intercept' -> '(Intercept)', 'period[T.2]' -> 'period2'."""
    return ["(Intercept)" if n == "Intercept" else _PATSY_LEVEL.sub(r"\1\2", n) for n in names]


def used_columns(spec: ModelSpec) -> list[str]:
    """Every data column the model reads."""
    cols: list[str] = []
    if spec.response.is_binomial_pair:
        cols += _expr_names(spec.response.successes) + _expr_names(spec.response.failures)
    else:
        cols.append(spec.response.name)
    for part in spec.fixed:
        cols += formula_variables(part.formula)
    for block in spec.random:
        cols += list(block.group)
        for formula, _ in block.parts:
            cols += formula_variables(formula)
    for loading in spec.loadings:
        cols.append(loading.variable)
        if loading.covariate:
            cols.append(loading.covariate)
    if spec.residual is not None:
        cols += list(spec.residual.group)
        if spec.residual.selector is not None:
            cols.append(spec.residual.selector)
    cols += smooth_columns(spec)
    return list(dict.fromkeys(cols))


def build_design(spec: ModelSpec, data: pd.DataFrame, families: RowFamilies) -> Design:
    """Build the design of ``spec`` on ``data`` (validated, categoricals fixed)."""
    data = check_frame(data)
    check_columns(data, used_columns(spec), "variable")
    frame = data.copy()
    for variable in spec.indicator_variables:
        frame[variable] = as_categorical(frame[variable])
    n = frame.shape[0]
    latent_index = {name: k for k, name in enumerate(spec.latents)}

    y, trials = _response(spec, frame)
    X_parts, names, fixed_latent = [], [], []
    for part in spec.fixed:
        matrix, columns = _model_matrix(part.formula, frame)
        prefix = f"{part.latent}:" if part.latent else ""
        X_parts.append(matrix)
        names += [prefix + c for c in columns]
        fixed_latent += [latent_index.get(part.latent)] * matrix.shape[1]
    blocks = [_random_block(b, frame, latent_index) for b in spec.random]
    smooths = build_smooths(spec, frame, latent_index, len(names), len(blocks))
    X0 = np.hstack([*X_parts, smooths.X]) if X_parts or smooths.names else np.zeros((n, 0))
    names += smooths.names
    fixed_latent += smooths.fixed_latent
    loadings = _loading_map(spec, frame) if spec.latents else None
    dispersion_group, dispersion_levels = _dispersion_groups(spec.residual, frame, families)
    design = Design(
        y=y, trials=trials, weights=np.ones(n), offset=np.zeros(n), X0=X0,
        fixed_names=tuple(names), fixed_latent=tuple(fixed_latent),
        blocks=(*blocks, *smooths.blocks), families=families,
        dispersion_group=dispersion_group, dispersion_levels=dispersion_levels,
        loadings=loadings,
        dispersion_by=None if spec.residual is None else spec.residual.group_name,
        smooths=tuple(smooths.smooths), frame=frame,
    )
    start = loadings.lambda_start if loadings is not None else np.zeros(0)
    _check_rank(design.X(design.row_loadings(start)), names)
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
    R's column names; at the rows of ``newdata`` (coded as ``frame`` was) when given."""
    try:
        matrix = patsy.dmatrix(formula, frame, NA_action="raise", return_type="matrix")
        if newdata is not None:
            matrix = patsy.build_design_matrices([matrix.design_info], newdata,
                                                 NA_action="raise")[0]
    except patsy.PatsyError as exc:
        raise DataError(f"The terms '{formula}' cannot be built from the data: {exc.message}") \
            from None
    written = patsy.ModelDesc.from_formula(formula).rhs_termlist
    slices = matrix.design_info.term_slices
    order = sorted(slices, key=lambda t: (len(t.factors), written.index(t)))
    columns = np.concatenate([np.arange(slices[t].start, slices[t].stop) for t in order]
                             or [np.zeros(0, dtype=int)])
    names = _r_interaction_order(r_names(matrix.design_info.column_names),
                                 formula_variables(formula))
    return np.asarray(matrix)[:, columns], [names[j] for j in columns]


def _r_interaction_order(names: list[str], variables: list[str]) -> list[str]:
    """Name interaction columns as R does, their variables in order of first appearance in
    the formula: '(age*bus):chd' after 'chd' gives 'chd:age', not 'age:chd'."""
    rank = {v: i for i, v in enumerate(variables)}

    def position(part: str) -> int:
        match = _LEADING_NAME.match(part)
        return rank.get(match.group(1), len(rank)) if match else len(rank)

    return [":".join(sorted(n.split(":"), key=position)) if ":" in n else n for n in names]


def new_rows(spec: ModelSpec, frame: pd.DataFrame, newdata: pd.DataFrame
             ) -> tuple[np.ndarray, LoadingMap | None, pd.DataFrame]:
    """The parametric fixed columns and the loading map at ``newdata``, coded as the fitted
    ``frame`` (same factor levels and contrasts), and ``newdata`` so coded."""
    newdata = check_frame(newdata).copy()
    for column in frame.columns:
        if column in newdata.columns and isinstance(frame[column].dtype, pd.CategoricalDtype):
            newdata[column] = pd.Categorical(newdata[column],
                                             categories=frame[column].cat.categories)
    parts = [_model_matrix(part.formula, frame, newdata)[0] for part in spec.fixed]
    X = np.hstack(parts) if parts else np.zeros((newdata.shape[0], 0))
    loadings = _loading_map(spec, newdata) if spec.latents else None
    return X, loadings, newdata


def _check_rank(X: np.ndarray, names: list[str]) -> None:
    if X.shape[1] == 0:
        return
    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        _, r = np.linalg.qr(X)
        weak = [names[j] for j in np.flatnonzero(np.abs(np.diag(r)) < 1e-8 * np.abs(r).max())]
        raise SpecError(
            f"The fixed-effects matrix is rank deficient (rank {rank} < {X.shape[1]} columns); "
            f"these columns are linear combinations of others: {', '.join(weak) or '?'}. Remove "
            "redundant terms (or the intercept with '0 +')."
        )


def _interaction_levels(
    frame: pd.DataFrame, columns: tuple[str, ...], rows: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Level codes (of ``rows``, default all) and labels ("a:b") of the interaction of
    ``columns``, its levels sorted in the columns' natural order and limited to those present."""
    keys = [as_categorical(frame[c]) for c in columns]
    key_codes = np.column_stack([np.asarray(k.codes) for k in keys])
    if rows is not None:
        key_codes = key_codes[rows]
    used, codes = np.unique(key_codes, axis=0, return_inverse=True)
    labels = tuple(":".join(str(k.categories[c]) for k, c in zip(keys, row)) for row in used)
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
        matrix, cols = _model_matrix(formula, frame)
        if latent is not None:
            cols = [latent if c == "(Intercept)" else f"{latent}:{c}" for c in cols]
        z_parts.append(matrix)
        columns += cols
        latents += [latent_index.get(latent)] * matrix.shape[1]
    return RandomBlock(
        group=block.group_name, levels=levels, index=index, columns=tuple(columns),
        z0=np.hstack(z_parts), latent=tuple(latents), correlated=block.correlated,
    )


def _indicator_rows(loading: LoadingSpec, frame: pd.DataFrame) -> np.ndarray:
    column = frame[loading.variable]
    levels = [str(c) for c in column.cat.categories]
    if loading.level not in levels:
        raise SpecError(
            f"The indicator '{loading.indicator}' of latent '{loading.latent}' names level "
            f"'{loading.level}', but column '{loading.variable}' has levels "
            f"{', '.join(levels[:10])}{' ...' if len(levels) > 10 else ''}."
            f"{nearest(loading.level, levels)}"
        )
    return (column.astype(str) == loading.level).to_numpy()


def _loading_map(spec: ModelSpec, frame: pd.DataFrame) -> LoadingMap:
    """ell_k(i) = offset_k(i) + basis_k[i, :] @ lambda, and the entries of B; equal labels
    share one parameter."""
    n = frame.shape[0]
    parameters = spec.free_parameters()
    free_labels = list(parameters)
    offsets, bases = [], []
    for latent in spec.latents:
        offset = np.zeros(n)
        rows_idx, cols_idx, vals = [], [], []
        for loading in (ld for ld in spec.loadings if ld.latent == latent):
            rows = _indicator_rows(loading, frame)
            value = np.where(rows, 1.0, 0.0)
            if loading.covariate is not None:
                value = value * frame[loading.covariate].to_numpy(dtype=float)
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
