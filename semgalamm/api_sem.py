"""lavaan's front doors, ``cfa()``, ``sem()`` and ``growth()``, for models on wide data.

    parse -> build_partable -> sample moments -> RamModel -> maximize (Fisher scoring)
          -> information -> SemFit

Options keep lavaan's names in snake case (``std.lv`` is ``std_lv``, ``group.equal`` is
``group_equal``) and lavaan's defaults for each function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from semgalamm.covstruct.estimate import covariance, maximize, observed_information
from semgalamm.covstruct.likelihood import loglik
from semgalamm.covstruct.start import fixed_values, start_values
from semgalamm.design.ram import RamModel
from semgalamm.design.sample_moments import GroupSample, group_sample, numeric_block
from semgalamm.errors import DataError, SemgalammError, SpecError, UnsupportedError, nearest
from semgalamm.results.sem_result import SemFit
from semgalamm.spec.partable import ParameterTable, SemOptions, build_partable
from semgalamm.syntax import parse
from semgalamm.syntax.nodes import Block, ModelSyntax, Regression

MISSING = {"listwise": "listwise", "ml": "ml", "fiml": "ml", "direct": "ml", "ml.x": "ml",
           "default": "listwise"}
INFORMATION = ("expected", "observed")


def _group_labels(data: pd.DataFrame, group: str | None) -> tuple[str, ...]:
    if group is None:
        return ("",)
    if group not in data.columns:
        raise DataError(f"group='{group}' is not a column of the data."
                        f"{nearest(group, data.columns, cutoff=0.6)}")
    column = data[group]
    if column.isna().any():
        raise DataError(f"The group column '{group}' has missing values; drop those rows.")
    return tuple(dict.fromkeys(column.astype(str)))  # lavaan: order of first appearance


def _resolve_meanstructure(syntax: ModelSyntax, options: SemOptions, n_groups: int,
                           missing: str, growth: bool) -> bool:
    if options.meanstructure is not None:
        return options.meanstructure
    has_intercepts = any(isinstance(s, Regression) and any(
        getattr(t, "present", False) for t in s.terms) for s in syntax.statements)
    return (growth or missing == "ml" or n_groups > 1 or has_intercepts
            or any(k in options.group_equal for k in ("intercepts", "means")))


def _samples(table: ParameterTable, data: pd.DataFrame, group: str | None,
             missing: str) -> tuple[list[GroupSample], pd.DataFrame]:
    """Per group sample moments over the block's observed variables."""
    observed = tuple(dict.fromkeys(v for b in table.blocks for v in b.observed))
    exogenous = tuple(dict.fromkeys(v for b in table.blocks for v in b.exogenous))
    values = numeric_block(data, observed)
    present = ~np.isnan(values)
    if missing == "listwise":
        keep = present.all(axis=1)
    else:
        exo_index = [observed.index(v) for v in exogenous]
        keep = present.any(axis=1) & present[:, exo_index].all(axis=1)
    used = data.loc[keep]
    values = values[keep]
    labels = _group_labels(data, group)
    samples = []
    for g, label in enumerate(labels, start=1):
        rows = np.ones(len(used), dtype=bool) if group is None else \
            (used[group].astype(str) == label).to_numpy()
        block = table.blocks[(g - 1) * table.n_levels]
        columns = [observed.index(v) for v in block.observed]
        group_values = values[rows][:, columns]
        if len(group_values) <= len(block.observed) and missing == "listwise":
            where = f" in group '{label}'" if group else ""
            raise DataError(
                f"There are {len(group_values)} complete rows{where} for "
                f"{len(block.observed)} observed variables: too few to estimate their "
                "covariance matrix. Use more data, fewer variables, or missing='ml'."
            )
        samples.append(group_sample(label, group_values))
    if not samples or sum(s.n for s in samples) == 0:
        raise DataError("No rows are left after removing rows with missing values.")
    return samples, used


def _x_marginal_loglik(table: ParameterTable, samples: list[GroupSample]) -> float:
    """The saturated log-likelihood of the fixed exogenous covariates (lavaan leaves it out
    of ``logl``)."""
    total = 0.0
    for g, sample in enumerate(samples):
        block = table.blocks[g * table.n_levels]
        if not block.exogenous:
            continue
        index = [block.observed.index(v) for v in block.exogenous]
        S = sample.cov[np.ix_(index, index)]
        q = len(index)
        total += -0.5 * sample.n * (q * np.log(2 * np.pi) + np.linalg.slogdet(S)[1] + q)
    return float(total)


def fit_wide(
    model: str,
    data: pd.DataFrame,
    *,
    function: str = "sem",
    group: str | None = None,
    group_equal: Sequence[str] | str = (),
    group_partial: Sequence[str] | str = (),
    cluster: str | None = None,
    missing: str = "default",
    std_lv: bool = False,
    orthogonal: bool = False,
    meanstructure: bool | None = None,
    fixed_x: bool = True,
    information: str | None = None,
    int_ov_free: bool | None = None,
    int_lv_free: bool | None = None,
    syntax: ModelSyntax | None = None,
) -> SemFit:
    """Fit a covariance-structure model to wide data (one row per unit), lavaan's way."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    if missing not in MISSING:
        raise SpecError(f"missing='{missing}' is not one of {', '.join(MISSING)}.")
    missing = MISSING[missing]
    if information is not None and information not in INFORMATION:
        raise SpecError(f"information='{information}' must be 'expected' or 'observed'.")
    growth = function == "growth"
    if isinstance(group_equal, str):
        group_equal = (group_equal,)
    if isinstance(group_partial, str):
        group_partial = (group_partial,)
    options = SemOptions(
        meanstructure=meanstructure, std_lv=std_lv, orthogonal=orthogonal, fixed_x=fixed_x,
        int_ov_free=(not growth) if int_ov_free is None else int_ov_free,
        int_lv_free=growth if int_lv_free is None else int_lv_free,
        group_equal=tuple(group_equal), group_partial=tuple(group_partial), missing=missing,
    )
    syntax = syntax or parse(model)
    has_levels = any(isinstance(s, Block) and s.kind == "level" for s in syntax.statements)
    if cluster is not None or has_levels:
        if cluster is None:
            raise SpecError(
                "The model has 'level:' blocks but no cluster variable. Pass cluster='column' "
                "(the column that identifies the clusters), as lavaan's cluster= argument."
            )
        return _fit_twolevel(model, data, syntax, options, cluster, group, missing,
                             information, function)
    groups = _group_labels(data, group)
    resolved = _resolve_meanstructure(syntax, options, len(groups), missing, growth)
    table = build_partable(syntax, [str(c) for c in data.columns], options, groups,
                           meanstructure=resolved)
    samples, _ = _samples(table, data, group, missing)
    ram = RamModel.create(table, fixed_values(table, samples))

    def evaluate_at(x, gradient=False, info=False):
        return loglik(ram.moments(x, derivatives=gradient or info), samples, resolved,
                      gradient, info)

    estimate = maximize(table, evaluate_at, start_values(table, samples))
    information = information or ("observed" if missing == "ml" else "expected")
    if information == "observed":
        info_matrix = observed_information(evaluate_at, estimate.x)
    else:
        info_matrix = evaluate_at(estimate.x, False, True).information
    vcov = covariance(info_matrix, estimate.constraints)
    x_part = _x_marginal_loglik(table, samples)
    fit = SemFit(model, syntax, table, ram, tuple(samples),
                 replace(estimate, loglik=estimate.loglik - x_part),
                 vcov, information, function, group, missing, evaluate_at,
                 {"loglik_joint": estimate.loglik, "loglik_x": x_part})
    return fit


def lavaan_options(options: dict) -> dict:
    """Check option names (nearest name for a typo); lavaan's ``estimator="ML"`` is accepted."""
    import inspect

    known = [name for name in inspect.signature(fit_wide).parameters
             if name not in ("model", "data", "function", "syntax")]
    out = {}
    for name, value in options.items():
        if name == "estimator":
            if str(value).upper() not in ("ML", "DEFAULT"):
                raise UnsupportedError(
                    f"estimator='{value}' is not available; semgalamm estimates by maximum "
                    "likelihood (estimator='ML')."
                )
            continue
        if name not in known:
            hint = nearest(name, known)
            raise SpecError(
                f"Unknown option '{name}'.{hint} The options are lavaan's in snake case: "
                f"{', '.join(known)}."
            )
        out[name] = value
    return out


def cfa(model: str, data: pd.DataFrame, ordered: Sequence[str] = (), **options) -> SemFit:
    """lavaan's ``cfa()``: a confirmatory factor model (same defaults as ``sem()``).

    Options (lavaan's, in snake case): ``group``, ``group_equal``, ``group_partial``,
    ``cluster``, ``missing`` ("listwise" or "ml"), ``std_lv``, ``orthogonal``,
    ``meanstructure``, ``fixed_x``, ``information`` ("expected" or "observed"),
    ``int_ov_free``, ``int_lv_free``. ``ordered``: indicator columns that are ordinal
    (lavaan's ``ordered=``); the model is then a graded response model fitted by maximum
    likelihood (Laplace) on the stacked long data, a FitResult (docs/families.md).
    """
    if ordered:
        return _fit_ordered(model, data, ordered, options)
    return fit_wide(model, data, function="cfa", **lavaan_options(options))


def sem(model: str, data: pd.DataFrame, ordered: Sequence[str] = (), **options) -> SemFit:
    """lavaan's ``sem()``: a structural equation model on wide data (options as ``cfa()``)."""
    if ordered:
        return _fit_ordered(model, data, ordered, options)
    return fit_wide(model, data, function="sem", **lavaan_options(options))


def _fit_ordered(model: str, data: pd.DataFrame, ordered: Sequence[str] | str,
                 options: dict):
    """``ordered=[...]``: those indicators ordinal, the others Gaussian, through
    ``semgalamm.fit`` (lavaan's options other than ``ordered`` are not available there)."""
    from semgalamm.api import fit

    names = [ordered] if isinstance(ordered, str) else list(ordered)
    return fit(model, data, family={name: "ordinal" for name in names},
               **lavaan_options(options))


def growth(model: str, data: pd.DataFrame, **options) -> SemFit:
    """lavaan's ``growth()``: observed intercepts fixed to 0, latent means free (options as
    ``cfa()``)."""
    return fit_wide(model, data, function="growth", **lavaan_options(options))


# --------------------------------------------------------------------------- two levels


def _level_labels(syntax: ModelSyntax) -> tuple[str, ...]:
    labels = tuple(s.value for s in syntax.statements
                   if isinstance(s, Block) and s.kind == "level")
    if len(labels) != 2:
        raise UnsupportedError(
            f"The model has {len(labels)} 'level:' block(s); two-level models need exactly "
            "two, 'level: 1' (within clusters) then 'level: 2' (between clusters)."
        )
    first, second = (str(v).lower() for v in labels)
    if first in ("2", "between") or second in ("1", "within"):
        raise SpecError(
            f"The 'level: {labels[0]}' block comes first, but the first block is the within "
            "level (lavaan reads blocks by position). Write 'level: 1' (or 'level: within') "
            "first, then 'level: 2' (or 'level: between')."
        )
    return labels


def _fit_twolevel(model: str, data: pd.DataFrame, syntax: ModelSyntax, options: SemOptions,
                  cluster: str, group: str | None, missing: str, information: str | None,
                  function: str) -> SemFit:
    """lavaan's two-level ML (cluster= with level: blocks), complete data (listwise)."""
    from semgalamm.covstruct import twolevel as tl
    from semgalamm.design.cluster_moments import cluster_sample

    if group is not None:
        raise UnsupportedError(
            "group= together with cluster= (multiple-group two-level models) is not "
            "supported yet. Fit each group separately."
        )
    if missing == "ml":
        raise UnsupportedError(
            "missing='ml' is not supported with cluster= yet; rows with missing values are "
            "dropped with missing='listwise' (the default)."
        )
    if cluster not in data.columns:
        raise DataError(f"cluster='{cluster}' is not a column of the data."
                        f"{nearest(cluster, data.columns, cutoff=0.6)}")
    labels = _level_labels(syntax)
    if options.meanstructure is False:
        raise SpecError("Two-level models always have a mean structure; drop "
                        "meanstructure=False.")
    options = SemOptions(**{**options.__dict__, "meanstructure": True})
    table = build_partable(syntax, [str(c) for c in data.columns], options, ("",), labels,
                           meanstructure=True)
    level1, level2 = table.blocks
    layout = tl.TwoLevelLayout.create(level1, level2)
    both_exo = [v for v in level1.exogenous if v in layout.between] + \
        [v for v in level2.exogenous if v in layout.within]
    if both_exo:
        raise UnsupportedError(
            f"{', '.join(repr(v) for v in dict.fromkeys(both_exo))}: a fixed covariate "
            "(fixed.x) observed at both levels is not supported yet. Keep each covariate "
            "at one level (a within-only covariate at level 1; its cluster means as a new "
            "column for level 2), or pass fixed_x=False to model its moments."
        )
    variables = tuple(dict.fromkeys(layout.within + layout.z))
    values = numeric_block(data, variables)
    ids = data[cluster]
    keep = ~np.isnan(values).any(axis=1) & ids.notna().to_numpy()
    codes = pd.factorize(ids[keep])[0]
    n_clusters = len(np.unique(codes))
    if n_clusters < 2:
        raise DataError(
            f"The complete rows form {n_clusters} cluster(s) of '{cluster}'; a two-level "
            "model needs at least two clusters."
        )
    values = values[keep]
    p1 = layout.p1
    sample = cluster_sample("", values[:, :p1], values[:, p1:], codes, layout.within,
                            layout.z)
    by_block = tl.table_by_block(table)
    samples = tl.block_samples(layout, sample)
    fixed = fixed_values(by_block, samples)
    ram = RamModel.create(table, fixed)

    def evaluate_at(x, gradient=False, info=False):
        m1, m2 = ram.moments(x, derivatives=gradient or info)
        return tl.loglik_twolevel(m1, m2, layout, sample, gradient, info)

    estimate = maximize(table, evaluate_at, start_values(by_block, samples))
    information = information or "observed"
    if information == "observed":
        info_matrix = observed_information(evaluate_at, estimate.x)
    else:
        info_matrix = evaluate_at(estimate.x, False, True).information
    vcov = covariance(info_matrix, estimate.constraints)
    x_part = tl.x_loglik(level1, level2, layout, sample)
    npar = int(estimate.constraints.K.shape[1])
    m1, m2 = ram.moments(estimate.x, derivatives=False)
    h1 = tl.fit_cells(tl.saturated_model(layout, sample), layout, sample)
    fixed_moments = (samples[0].cov, samples[0].mean, samples[1].cov, samples[1].mean)
    covariates = (level1.exogenous, level2.exogenous)
    if not options.fixed_x:  # lavaan's baseline frees the covariances among the covariates
        try:
            with_x = build_partable(syntax, [str(c) for c in data.columns],
                                    SemOptions(**{**options.__dict__, "fixed_x": True}),
                                    ("",), labels, meanstructure=True)
            covariates = (with_x.blocks[0].exogenous, with_x.blocks[1].exogenous)
        except SemgalammError:
            pass
    baseline = tl.fit_cells(
        tl.baseline_model(layout, sample, covariates,
                          fixed_moments if options.fixed_x else None), layout, sample)
    tl.warn_unconverged(h1, "saturated")
    tl.warn_unconverged(baseline, "baseline")
    measures = tl.fit_measures(
        loglik=estimate.loglik - x_part, npar=npar, n=sample.n,
        n_exo_fixed=sum(1 for r in table.rows if r.exo), x_part=x_part, h1=h1,
        baseline=baseline, implied=(m1.sigma, m2.sigma))
    extra = {"loglik_joint": estimate.loglik, "loglik_x": x_part, "cluster": cluster,
             "nclusters": sample.n_clusters, "cluster_sample": sample, "layout": layout,
             "block_samples": tuple(samples), "h1": h1, "baseline": baseline,
             "fit_measures": measures}
    return SemFit(model, syntax, table, ram, (samples[0],),
                  replace(estimate, loglik=estimate.loglik - x_part),
                  vcov, information, function, None, "listwise", evaluate_at, extra)
