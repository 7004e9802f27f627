"""The front door: ``fit(model, data, family)`` connects the stages and does nothing else.

    parse -> build_spec -> build_design -> objective -> minimize_deviance -> FitResult
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from semgalamm.design.build import build_design
from semgalamm.design.design import Design
from semgalamm.errors import ConvergenceWarning, DataError, SingularFitWarning, SpecError
from semgalamm.families import RowFamilies, get_family
from semgalamm.laplace.model import LaplaceModel
from semgalamm.optimize import minimize_deviance
from semgalamm.results.fit_result import FitResult
from semgalamm.spec.build import build_spec
from semgalamm.syntax import parse

FamilyArg = str | Sequence[str] | pd.Series


def resolve_families(family: FamilyArg, n: int) -> RowFamilies:
    """``family`` as a name, or one name per row (mixed response types)."""
    try:
        if isinstance(family, str):
            return RowFamilies.single(get_family(family), n)
        names = [str(f) for f in family]
        if len(names) != n:
            raise DataError(
                f"family has {len(names)} entries but the data have {n} rows. Give one family "
                "name, or one name per row."
            )
        unique = list(dict.fromkeys(names))
        fams = tuple(get_family(name) for name in unique)
    except ValueError as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(str(exc)) from None
    codes = np.array([unique.index(name) for name in names], dtype=np.intp)
    return RowFamilies(fams, codes)


def check_response(design: Design) -> None:
    """Every row's response must lie in its family's support."""
    for code, family in enumerate(design.families.families):
        rows = design.families.codes == code
        bad = family.check_response(design.y, design.trials) & rows
        if bad.any():
            where = np.flatnonzero(bad)
            shown = ", ".join(str(i) for i in where[:5])
            raise DataError(
                f"The response of {bad.sum()} {family.name} row(s) (positions {shown}"
                f"{' ...' if where.size > 5 else ''}) is outside the family's support: "
                f"{family.support_text()}. Check the response column or the family."
            )


def fit(
    model: str,
    data: pd.DataFrame,
    family: FamilyArg = "gaussian",
    *,
    reml: bool = False,
    start: dict[str, Sequence[float]] | None = None,
    verbose: bool = False,
) -> FitResult:
    """Fit a GALAMM written in semgalamm's model syntax by maximum marginal likelihood.

    Parameters
    ----------
    model: the model string, e.g. ``"y ~ x + (1 | id)"`` (see docs/syntax.md).
    data: a pandas DataFrame in long format (one row per observed response).
    family: ``"gaussian"``, ``"binomial"`` or ``"poisson"`` (canonical links), or one name per
        row for mixed response types.
    reml: restricted maximum likelihood (Gaussian models without loadings only).
    start: optional starting values by kind: ``{"theta": [...], "beta": [...], "lambda": [...]}``.
    verbose: print the deviance at each gradient evaluation.
    """
    syntax = parse(model)
    spec = build_spec(syntax)
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    families = resolve_families(family, data.shape[0])
    design = build_design(spec, data, families)
    check_response(design)
    if reml and (not families.all_gaussian or design.loadings is not None):
        raise SpecError(
            "REML is available for Gaussian models without loadings only. Use reml=False."
        )
    laplace = LaplaceModel.create(design, reml=reml)
    x0 = laplace.start(start)
    opt = minimize_deviance(laplace.deviance, x0, laplace.layout, verbose=verbose,
                            scale=laplace.scale)
    result = FitResult.from_fit(model, syntax, spec, laplace, opt)
    _warn(result)
    return result


def _warn(result: FitResult) -> None:
    if not result.converged:
        warnings.warn(
            f"The optimizer did not converge ({result.optimizer.message}). Try other starting "
            "values (start=...), rescale covariates, or simplify the random effects.",
            ConvergenceWarning, stacklevel=3,
        )
    if result.is_singular:
        warnings.warn(
            "The fit is singular: a random-effect variance is estimated as 0 (or a correlation "
            "as +-1). The model is likely overparameterized; consider removing that term.",
            SingularFitWarning, stacklevel=3,
        )


__all__ = ["fit"]
