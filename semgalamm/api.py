"""The front door: ``fit(model, data, family)`` connects the stages and does nothing else.

    parse -> build_spec -> resolve_families, build_design -> objective -> minimize_deviance
          -> FitResult
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd

from semgalamm.api_sem import fit_wide, lavaan_options
from semgalamm.design.build import build_design, expand_loadings
from semgalamm.design.frame import check_frame
from semgalamm.design.row_families import (
    FamilyArg,
    check_response,
    family_table,
    resolve_families,
)
from semgalamm.design.stack import stack_wide, threshold_indicators
from semgalamm.errors import (
    ConvergenceWarning,
    SingularFitWarning,
    SpecError,
    UnsupportedError,
)
from semgalamm.families import get_family, is_family
from semgalamm.laplace.model import LaplaceModel
from semgalamm.optimize import OptResult, minimize_deviance, single_threaded_blas
from semgalamm.results.fit_result import FitResult
from semgalamm.results.sem_result import SemFit
from semgalamm.spec.build import build_spec, residual_groups
from semgalamm.spec.model_spec import ModelSpec
from semgalamm.syntax import parse
from semgalamm.syntax.nodes import (
    BinomialResponse,
    Block,
    Call,
    Covariance,
    FixedTerm,
    Intercept,
    Measurement,
    ModelSyntax,
    RandomTerm,
    Regression,
    SmoothTerm,
)


def _with_dispformula(spec: ModelSpec, dispformula: str | None) -> ModelSpec:
    """galamm's ``dispformula = "~ (1 | item)"``: the same as ``y ~~ (1 | item)`` in the model."""
    if dispformula is None:
        return spec
    if spec.residual is not None:
        raise SpecError(
            "Residual variance groups are given twice, in the model string and as dispformula; "
            "keep one."
        )
    text = dispformula.strip()
    if not text.startswith("~"):
        raise SpecError(f"dispformula must be written '~ (1 | group)', not '{dispformula}'.")
    statement = parse(f"{spec.response.name} ~~ {text[1:].strip()}").statements[0]
    return replace(spec, residual=residual_groups(statement))


def fit(
    model: str,
    data: pd.DataFrame,
    family: FamilyArg = "gaussian",
    *,
    dispformula: str | None = None,
    weights: str | Sequence[float] | None = None,
    reml: bool = False,
    start: dict[str, Sequence[float]] | None = None,
    verbose: bool = False,
    n_agq: int = 1,
    **sem_options,
) -> FitResult | SemFit:
    """Fit a GALAMM written in semgalamm's model syntax by maximum marginal likelihood.

    Parameters
    ----------
    model: the model string, e.g. ``"y ~ x + (1 | id)"`` (see docs/syntax.md).
    data: a pandas DataFrame in long format (one row per observed response).
    family: ``"gaussian"``, ``"binomial"`` or ``"poisson"`` (canonical links); for mixed
        response types one name per row (a sequence aligned with the data), the name of a
        column holding them, or a mapping from an indicator column's levels to families:
        ``{"item": {"chd": "binomial"}, "default": "gaussian"}`` (or ``{"chd": "binomial",
        "fiber": "gaussian"}`` when the model has one indicator column).
    dispformula: residual variances of Gaussian rows by group, galamm's ``"~ (1 | item)"``;
        the same as the statement ``y ~~ (1 | item)`` in the model.
    weights: prior weights as lme4's ``weights=``: a column name or one positive number per
        row. Gaussian rows have residual variance sigma^2 / w; a binomial response given as a
        proportion takes the numbers of trials as weights (``y = k / n``, ``weights = n``);
        other rows contribute w times their log-likelihood.
    reml: restricted maximum likelihood (Gaussian models without loadings only).
    start: optional starting values by kind: ``{"theta": [...], "beta": [...], "lambda": [...]}``.
    verbose: print, at each evaluation of the exact gradient, the elapsed time, the deviance
        and the largest gradient component (on the optimizer's scale), then a final line.
    n_agq: the number of adaptive Gauss-Hermite quadrature nodes per cluster (glmer's
        ``nAGQ``); 1 is the Laplace approximation. Above 1 for non-Gaussian models with one
        scalar random effect per cluster only (a single ``(1 | group)``, loadings allowed).
    sem_options: for models on wide data (one row per unit, indicators as columns), lavaan's
        options of :func:`semgalamm.sem` (``group=``, ``missing=``, ``std_lv=``, ...).

    A model on wide data (``visual =~ x1 + x2 + x3``, or regressions among columns without
    random terms) is fitted as lavaan's ``sem()`` does and returns a :class:`SemFit`; with
    non-Gaussian indicators (``family={"x1": "binomial"}``) it is a GLLAMM fitted on the
    stacked long data by the Laplace engine. One regression without random terms
    (``b ~ x``) with a non-Gaussian family, ``weights=`` or an ``offset()`` is a GLM (R's
    ``glm``), fitted by the same engine without random effects.
    """
    syntax = _parsed(model) if isinstance(model, str) else parse(model)
    if not isinstance(data, pd.DataFrame):
        check_frame(data)  # a DataError saying how to convert it
    if is_wide(syntax) and not _is_glm(syntax, family, weights):
        return _fit_wide_model(model, syntax, data, family, sem_options, verbose)
    if sem_options:
        raise SpecError(
            f"{', '.join(sem_options)}: options of models on wide data; this model is on long "
            "data (it has random terms, smooths, 'col[level]' indicators, weights or an "
            "offset, or is a GLM)."
        )
    spec = expand_loadings(_with_dispformula(build_spec(syntax), dispformula), data)
    families = resolve_families(family, data, spec)
    design = build_design(spec, data, families, weights=weights)
    check_response(design, data.index)
    if reml and (not families.all_gaussian or design.loadings is not None):
        raise SpecError(
            "REML is available for Gaussian models without loadings only. Use reml=False."
        )
    if n_agq != 1 and (families.all_gaussian or not design.blocks):
        raise UnsupportedError(
            f"n_agq={n_agq}: adaptive quadrature integrates non-Gaussian random effects; this "
            "model has " + ("Gaussian responses only (its likelihood is exact)."
                            if families.all_gaussian else "no random effects.") +
            " Use n_agq=1.")
    with single_threaded_blas():  # the GLM start's least squares: 0.5 ms threaded, 0.1 not
        laplace = LaplaceModel.create(design, reml=reml, n_agq=n_agq)
        x0 = laplace.start(start)
    opt = _minimize(laplace, x0, verbose)
    result = FitResult.from_fit(model, syntax, spec, laplace, opt, data.index,
                                family_table(families, data, spec))
    _warn(result)
    return result


@lru_cache(maxsize=64)
def _parsed(model: str) -> ModelSyntax:
    """``parse(model)`` once per model string (its tree is frozen): refits of one model
    (bootstrap, simulations, a wide model's stacked form) skip the parser."""
    return parse(model)


def _minimize(laplace: LaplaceModel, x0, verbose: bool) -> OptResult:
    """The optimizer, or nothing to optimize: a Gaussian model without random effects and
    loadings (weighted least squares, beta and sigma in closed form)."""
    if x0.size == 0:
        started = time.perf_counter()
        deviance = laplace.deviance(x0)
        return OptResult(x0, deviance, 1, bool(np.isfinite(deviance)),
                         "closed form (no parameters to optimize)",
                         time.perf_counter() - started)
    with single_threaded_blas():
        return minimize_deviance(laplace.deviance, x0, laplace.layout, verbose=verbose,
                                 scale=laplace.scale, gradient=laplace.exact_gradient,
                                 rows=laplace.design.n)


def is_wide(syntax: ModelSyntax) -> bool:
    """A lavaan-style model on wide data: no random or smooth terms, no cbind() response and
    no 'col[level]' indicators."""
    for statement in syntax.statements:
        if isinstance(statement, Block):
            return True
        if isinstance(statement, Measurement) and any(
                ind.level is not None or ind.covariate is not None
                for ind in statement.indicators):
            return False
        if isinstance(statement, Regression) and (
                isinstance(statement.lhs, BinomialResponse) or any(
                    isinstance(t, (RandomTerm, SmoothTerm)) for t in statement.terms)):
            return False
        if isinstance(statement, Covariance) and any(
                isinstance(t, RandomTerm) for t in statement.terms):
            return False
    return True


def _has_offset(syntax: ModelSyntax) -> bool:
    return any(isinstance(t, FixedTerm) and isinstance(t.expr, Call) and t.expr.func == "offset"
               for s in syntax.statements if isinstance(s, Regression) for t in s.terms)


def _is_glm(syntax: ModelSyntax, family: FamilyArg, weights: object) -> bool:
    """A model without random terms that is one regression of an observed response with a
    non-Gaussian family, ``weights=`` or ``offset()``: a GLM on long data (R's ``glm``),
    not a lavaan regression. Other wide models with weights or offsets are refused."""
    special = weights is not None or _has_offset(syntax)
    statements = syntax.statements
    single = len(statements) == 1 and isinstance(statements[0], Regression) and all(
        isinstance(t, (FixedTerm, Intercept)) for t in statements[0].terms)
    non_gaussian = is_family(family) and get_family(family).name != "gaussian"
    if single and (special or non_gaussian):
        return True
    if special:
        raise UnsupportedError(
            "weights= and offset() are available for regressions and mixed models on long data "
            "(lme4's and glm's prior weights and offsets); this model is a lavaan model on wide "
            "data, where they are not supported."
        )
    return False


def _fit_wide_model(model: str, syntax: ModelSyntax, data: pd.DataFrame, family: FamilyArg,
                    sem_options: dict, verbose: bool) -> FitResult | SemFit:
    """Gaussian indicators: lavaan's covariance-structure ML; otherwise the stacked GLLAMM."""
    check_frame(data)
    ordered = threshold_indicators(syntax, data)  # lavaan's 'y1 | t1 + t2': ordinal
    if isinstance(family, str) and family == "gaussian" and not ordered:
        return fit_wide(model, data, syntax=syntax, **lavaan_options(sem_options))
    if isinstance(family, str):
        family = {"default": family}
    if isinstance(family, Mapping) and ordered:
        family = {**ordered, **family}
    if not isinstance(family, Mapping) or any(isinstance(v, Mapping) for v in family.values()):
        raise SpecError(
            "For a model on wide data give one family for every indicator "
            '(family="binomial") or the families by indicator column, e.g. '
            'family={"x1": "binomial"} (the others are Gaussian).'
        )
    if sem_options:
        raise UnsupportedError(
            f"{', '.join(sem_options)}: not available for wide models with non-Gaussian "
            "indicators (fitted on stacked long data)."
        )
    long_model, long_data, mapping = stack_wide(syntax, data, family)
    return fit(long_model, long_data, family=mapping, verbose=verbose)


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


__all__ = ["fit", "is_wide"]
