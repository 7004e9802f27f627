"""Parametric bootstrap of a fitted GALAMM (lme4's ``bootMer``), on any executor.

Replicate r draws a response from the fitted model (semgalamm.inference.simulate, new random
effects), refits the same design to it (started at the original estimates, as lme4's
``refit``) and applies ``statistic`` to the refit. Replicate r's random numbers come from
``SeedSequence(seed).spawn(n)[r]``, so the replicates do not depend on the executor, the
number of workers or the order in which they finish.

Work goes out in chunks of replicates through ``executor.submit(function, *args)`` and comes
back through each future's ``result()``: a ``concurrent.futures`` executor and a
``dask.distributed.Client`` take the same path. The plan (design, start, statistic) is
serialized once with cloudpickle when it is installed (it comes with dask), so a lambda
works as the statistic; without it the statistic must be a module-level function.

Intervals from the replicates t_r of a statistic with estimate t: percentile
(q_{a/2}, q_{1-a/2}) and basic (2t - q_{1-a/2}, 2t - q_{a/2}).
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from semgalamm.errors import SemgalammError, SpecError
from semgalamm.inference.parameters import parameter_estimates
from semgalamm.inference.sem_bootstrap import SemRefitPlan, sem_parameter_estimates, sem_plan
from semgalamm.inference.simulate import SimulationBasis, draw_responses, simulation_basis
from semgalamm.results.checks import check_choice, check_level
from semgalamm.results.sem_result import SemFit

if TYPE_CHECKING:
    from semgalamm.design.design import Design
    from semgalamm.results.fit_result import FitResult

FloatArray = NDArray[np.float64]


class BootstrapWarning(UserWarning):
    """Some bootstrap replicates failed (their refit or statistic raised)."""


@dataclass(frozen=True)
class RefitPlan:
    """What a worker needs to simulate, refit and evaluate, without the fit's CHOLMOD factor
    (picklable): the fit's model, syntax, spec, rows, family table, REML flag and quadrature
    nodes (``n_agq``), its design
    and estimates x0 (the refit's start), the simulation basis and the statistic."""

    model: str
    syntax: Any
    spec: Any
    rows: pd.Index
    families: pd.DataFrame
    reml: bool
    design: Design
    x0: FloatArray
    basis: SimulationBasis | None = None
    statistic: Callable[[FitResult], Any] | None = None
    names: tuple[str, ...] = ()
    conditional: bool = False
    n_agq: int = 1

    @classmethod
    def of(cls, fit: FitResult, **extra) -> RefitPlan:
        extra.setdefault("n_agq", fit.laplace.n_agq)
        return cls(fit.model, fit.syntax, fit.spec, fit.rows, fit.families, fit.laplace.reml,
                   fit.design, fit.optimizer.x, **extra)

    def draw(self, rng: np.random.Generator) -> FloatArray:
        return draw_responses(self.basis, rng, self.conditional)

    def refit(self, y: FloatArray) -> FitResult:
        """The same model refitted to the response ``y`` (binomial rows: successes), started
        at the original estimates."""
        from semgalamm.api import _minimize
        from semgalamm.laplace.model import LaplaceModel
        from semgalamm.results.fit_result import FitResult

        laplace = LaplaceModel.create(with_response(self.design, np.asarray(y, dtype=float)),
                                      reml=self.reml, n_agq=self.n_agq)
        opt = _minimize(laplace, np.array(self.x0, dtype=float), False)
        return FitResult.from_fit(self.model, self.syntax, self.spec, laplace, opt, self.rows,
                                  self.families)


def with_response(design: Design, y: FloatArray) -> Design:
    """``design`` with the response ``y``; ordinal rows find their thresholds (psi) by their
    new categories (design.row_families.with_family_parameters)."""
    from semgalamm.design.row_families import with_family_parameters

    families = design.families
    parameters = families.parameters
    if parameters is not None and parameters.sets:
        sets = [(parameters.sets[r].key, parameters.sets[r].categories) if r >= 0 else ("", ())
                for r in parameters.row_set]
        families = with_family_parameters(replace(families, parameters=None), y, sets)
    return replace(design, y=y, families=families)


def statistic_values(output: Any) -> tuple[tuple[str, ...], FloatArray]:
    """A statistic's output as names and numbers: a Series or dict (its names), a number
    ("statistic") or a sequence (statistic_0, ...)."""
    if isinstance(output, pd.Series):
        return tuple(map(str, output.index)), output.to_numpy(dtype=float)
    if isinstance(output, dict):
        return tuple(map(str, output)), np.asarray(list(output.values()), dtype=float)
    values = np.atleast_1d(np.asarray(output, dtype=float))
    if values.ndim != 1:
        raise SpecError("A bootstrap statistic returns a number, a sequence of numbers, a dict "
                        f"or a pandas Series, not an array of shape {values.shape}.")
    if values.size == 1 and np.ndim(output) == 0:
        return ("statistic",), values
    return tuple(f"statistic_{i}" for i in range(values.size)), values


def refit(fit: FitResult, y: FloatArray) -> FitResult:
    """``fit``'s model refitted to the response ``y`` (binomial rows: successes)."""
    return RefitPlan.of(fit).refit(y)


def _replicate(plan: RefitPlan | SemRefitPlan, seed: np.random.SeedSequence
               ) -> tuple[FloatArray, bool]:
    refitted = plan.refit(plan.draw(np.random.default_rng(seed)))
    names, values = statistic_values(plan.statistic(refitted))
    if names != plan.names:
        raise SpecError(f"the statistic returned {list(names)}, on the original fit "
                        f"{list(plan.names)}")
    return values, refitted.converged


def run_chunk(payload: bytes, tasks: list[tuple[int, np.random.SeedSequence]]
              ) -> list[tuple[int, FloatArray | None, bool, str | None]]:
    """Replicates ``tasks`` (index, seed) of the serialized plan: (index, values, converged,
    error message or None). Runs in a worker process."""
    plan: RefitPlan | SemRefitPlan = pickle.loads(payload)
    out = []
    for index, seed in tasks:
        try:
            values, converged = _replicate(plan, seed)
            out.append((index, values, converged, None))
        except Exception as error:  # noqa: BLE001 - a failed replicate is reported, not raised
            out.append((index, None, False, f"{type(error).__name__}: {error}"))
    return out


def _serialize(plan: RefitPlan) -> bytes:
    try:
        import cloudpickle
    except ImportError:
        cloudpickle = None
    try:
        return cloudpickle.dumps(plan) if cloudpickle else pickle.dumps(plan)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise SpecError(
            f"The bootstrap statistic cannot be sent to worker processes ({error}). Use a "
            "function defined at module level, or install cloudpickle (pip install "
            "semgalamm[parallel])."
        ) from None


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="bootstrap", unit="replicate")


@dataclass(frozen=True)
class BootstrapResult:
    """Replicates of a statistic (one row per replicate, NaN rows for failed ones), its value
    on the original fit, the failures (replicate, error message) and the replicates whose
    refit did not converge (kept, as lme4's bootMer keeps them)."""

    replicates: pd.DataFrame
    estimate: pd.Series
    failures: pd.DataFrame
    not_converged: tuple[int, ...]
    seed: int | None

    @property
    def n(self) -> int:
        return self.replicates.shape[0]

    @property
    def n_failed(self) -> int:
        return self.failures.shape[0]

    def intervals(self, level: float = 0.95, method: str = "percentile") -> pd.DataFrame:
        """Bootstrap confidence intervals: ``method`` "percentile" or "basic"; columns lower
        and upper bound (named as lme4's "2.5 %", "97.5 %") and the estimate."""
        level = check_level(level)
        check_choice(method, ("percentile", "basic"), "method")
        alpha = 1 - level
        low_q = self.replicates.quantile(alpha / 2)
        high_q = self.replicates.quantile(1 - alpha / 2)
        if method == "percentile":
            lower, upper = low_q, high_q
        else:
            lower, upper = 2 * self.estimate - high_q, 2 * self.estimate - low_q
        lo, hi = f"{100 * alpha / 2:g} %", f"{100 * (1 - alpha / 2):g} %"
        return pd.DataFrame({lo: lower, hi: upper, "estimate": self.estimate})

    def __repr__(self) -> str:
        return (f"<BootstrapResult: {self.n} replicates of {self.replicates.shape[1]} "
                f"statistics, {self.n_failed} failed>")


def bootstrap(fit: FitResult | SemFit, n: int = 1000, statistic: Callable | None = None,
              seed: int | None = None, executor=None, progress: bool = True,
              conditional: bool = False, chunk_size: int | None = None) -> BootstrapResult:
    """Parametric bootstrap of ``fit``: ``n`` replicates of ``statistic(refit)`` (default:
    SDs and correlations of the random effects, residual SDs, fixed effects and loadings,
    as ``fit.confint()`` names them; for a wide-data SEM (a SemFit) its free and defined
    parameters, the data drawn from the implied moments, semgalamm.inference.sem_bootstrap).

    ``executor``: None (a local process pool, one worker per CPU), any
    ``concurrent.futures.Executor``, or a ``dask.distributed.Client``. ``progress``: a tqdm
    bar when tqdm is installed. ``conditional=True`` keeps the random effects at their
    conditional modes in the simulations (lme4's ``use.u = TRUE``). A replicate whose refit
    or statistic raises is counted in ``n_failed`` and listed in ``failures`` with its error
    (and a BootstrapWarning)."""
    from semgalamm.results.fit_result import FitResult

    if not isinstance(fit, (FitResult, SemFit)):
        raise SpecError("bootstrap() takes a fit of semgalamm.fit(), cfa(), sem() or growth(), "
                        f"not a {type(fit).__name__}.")
    if isinstance(fit, SemFit) and conditional:
        raise SpecError("conditional=True keeps random effects; a wide-data SEM has none.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"n is the number of bootstrap replicates, a whole number >= 1; got "
                        f"{n!r}.")
    if statistic is None:
        statistic = sem_parameter_estimates if isinstance(fit, SemFit) else parameter_estimates
    try:
        names, estimate = statistic_values(statistic(fit))
    except SemgalammError:
        raise
    except Exception as error:
        raise SpecError(f"The bootstrap statistic raised on the original fit, so it would "
                        f"fail on every replicate: {type(error).__name__}: {error}") from error
    if isinstance(fit, SemFit):
        plan = sem_plan(fit, statistic=statistic, names=names)
    else:
        plan = RefitPlan.of(fit, basis=simulation_basis(fit), statistic=statistic, names=names,
                            conditional=conditional)
    payload = _serialize(plan)
    seeds = np.random.SeedSequence(seed).spawn(n)
    size = chunk_size or max(1, math.ceil(n / 20))
    chunks = [[(i, seeds[i]) for i in range(start, min(start + size, n))]
              for start in range(0, n, size)]
    results = _run(payload, chunks, executor, _progress(n, progress))
    values = np.full((n, len(names)), np.nan)
    failures, not_converged = [], []
    for index, row, converged, error in results:
        if error is not None:
            failures.append((index, error))
            continue
        values[index] = row
        if not converged:
            not_converged.append(index)
    failures.sort()
    if failures:
        warnings.warn(f"{len(failures)} of {n} bootstrap replicates failed (see .failures); "
                      f"the first: {failures[0][1]}", BootstrapWarning, stacklevel=2)
    replicates = pd.DataFrame(values, columns=list(names))
    replicates.index.name = "replicate"
    return BootstrapResult(replicates, pd.Series(estimate, index=list(names), name="estimate"),
                           pd.DataFrame(failures, columns=["replicate", "error"]),
                           tuple(sorted(not_converged)), seed)


def _run(payload: bytes, chunks: list, executor, bar) -> list:
    """Submit every chunk and collect the results (a default pool is created and closed)."""
    own = executor is None
    if own:
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(max_workers=os.cpu_count() or 1)
    try:
        futures = [executor.submit(run_chunk, payload, chunk) for chunk in chunks]
        out = []
        for future in futures:
            part = future.result()
            out += part
            if bar is not None:
                bar.update(len(part))
        return out
    finally:
        if bar is not None:
            bar.close()
        if own:
            executor.shutdown()
