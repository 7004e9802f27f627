"""Outer optimization of a Laplace deviance: bounded quasi-Newton over the packed parameters.

``ParameterLayout`` is the only place that knows how theta, beta, lambda and dispersion
parameters are packed into the optimizer's vector. The gradient is the exact one of the
model when given (``LaplaceModel.value_and_gradient``), else central finite differences
(one-sided at a bound); every evaluation is cheap because CHOLMOD's symbolic analysis is
reused and PIRLS is warm-started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from threadpoolctl import ThreadpoolController

FloatArray = NDArray[np.float64]


@cache
def _threadpools() -> ThreadpoolController:
    """The loaded thread pools, found once (a search of the loaded libraries: 1.7 ms)."""
    return ThreadpoolController()


def single_threaded_blas() -> AbstractContextManager:
    """A context in which BLAS runs on one thread. The engine's dense products are small
    (n x k by n x k, p x p, L-BFGS-B's own): waking BLAS threads for them costs more than
    they save, and several times more on a busy machine (KYPSsim's fit: 0.5 s instead of
    1.7 s; the selected inverse of InstEval: 0.26 s instead of 1.7 s, with other processes
    on the 2 cores)."""
    return _threadpools().limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class ParameterLayout:
    """Names and bounds of the packed outer parameter vector, by kind."""

    kinds: tuple[tuple[str, int], ...]  # (kind, size) in packing order
    names: tuple[str, ...]
    lower: FloatArray
    upper: FloatArray

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for kind, size in self.kinds:
            out[kind] = slice(start, start + size)
            start += size
        return out

    def unpack(self, x: FloatArray) -> dict[str, FloatArray]:
        return {kind: x[s] for kind, s in self.slices().items()}


@dataclass
class OptResult:
    """What the optimizer did: final parameters and deviance, counts, a log of evaluations."""

    x: FloatArray
    deviance: float
    n_evaluations: int
    converged: bool
    message: str
    seconds: float
    fitlog: list[tuple[float, float]] = field(default_factory=list)


#: What ``minimize_deviance`` gives the optimizer for a point where the deviance is not
#: finite (an infeasible point: I - B singular, H not positive definite, exp overflow).
INFEASIBLE = 1e300


def finite_difference_gradient(
    f: Callable[[FloatArray], float], x: FloatArray, f0: float,
    lower: FloatArray, upper: FloatArray, rel_step: float = 1e-6,
) -> FloatArray:
    """Central differences, one-sided where a bound is within the step or where the point
    on one side is infeasible (f >= INFEASIBLE: a difference with it is not a derivative);
    0 where both sides are infeasible."""
    grad = np.zeros_like(x)
    if not f0 < INFEASIBLE:
        return grad
    for j in range(x.size):
        h = rel_step * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        f_up = f(up) if up[j] <= upper[j] else INFEASIBLE
        f_down = f(down) if down[j] >= lower[j] else INFEASIBLE
        if f_up < INFEASIBLE and f_down < INFEASIBLE:
            grad[j] = (f_up - f_down) / (2 * h)
        elif f_up < INFEASIBLE:
            grad[j] = (f_up - f0) / h
        elif f_down < INFEASIBLE:
            grad[j] = (f0 - f_down) / h
    return grad


def gradient_difference_hessian(
    gradient: Callable[[FloatArray], FloatArray], x: FloatArray, rel_step: float = 1e-4
) -> FloatArray:
    """Symmetric Hessian of f at x by central differences of its exact gradient (2 gradients
    per coordinate): H[:, j] = (g(x + h e_j) - g(x - h e_j)) / 2h, then (H + H') / 2."""
    h = rel_step * np.maximum(1.0, np.abs(x))
    H = np.zeros((x.size, x.size))
    for j in range(x.size):
        step = np.zeros(x.size)
        step[j] = h[j]
        H[:, j] = (gradient(x + step) - gradient(x - step)) / (2 * h[j])
    return 0.5 * (H + H.T)


def coordinate_curvatures(f: Callable[[FloatArray], float], x: FloatArray, f0: float,
                          lower: FloatArray, upper: FloatArray,
                          grad: FloatArray | None = None) -> FloatArray:
    """d^2 f / dx_j^2 per coordinate with step s = 1e-4 max(1, |x_j|), away from a bound
    within the step. With the exact gradient g one evaluation per coordinate suffices:
    c_j = 2 (f(x + s e_j) - f0 - s g_j) / s^2 (error O(s) from the third derivative, as
    the rounding of f / s^2); without it, second differences: central, or one-sided
    (x, x + s, x + 2s) at a bound."""
    curvature = np.zeros(x.size)
    for j in range(x.size):
        h = 1e-4 * max(1.0, abs(x[j]))
        step = h if x[j] - h < lower[j] else -h if x[j] + h > upper[j] else 0.0
        one, two = x.copy(), x.copy()
        if grad is not None:
            one[j] += step or h
            curvature[j] = 2.0 * (f(one) - f0 - (step or h) * grad[j]) / h**2
        elif step:
            one[j] += step
            two[j] += 2 * step
            curvature[j] = (f(two) - 2 * f(one) + f0) / h**2
        else:
            one[j] += h
            two[j] -= h
            curvature[j] = (f(one) - 2 * f0 + f(two)) / h**2
    return curvature


def predicted_decrease(grad: FloatArray, curvature: FloatArray, x: FloatArray,
                       lower: FloatArray, upper: FloatArray, flat_tol: float = 1e-2
                       ) -> FloatArray:
    """Per coordinate, how much a Newton step along it would lower f (the gradient relative
    to the curvature, g_j^2 / (2 c_j)), the step cut at the bounds; 0 where the projected
    gradient is 0 (at a bound, pointing out). Invariant to the scale of each coordinate, so
    that a parameter known to 1e-8 and one known to 10 are judged alike. Where the curvature
    is not positive (a flat or concave direction), the projected gradient itself when it is
    above ``flat_tol`` (no minimum along it), else 0."""
    out = np.zeros(x.size)
    for j in range(x.size):
        g = grad[j]
        if not np.isfinite(g):
            out[j] = np.inf
            continue
        room = (x[j] - lower[j]) if g > 0 else (upper[j] - x[j])
        if room <= 1e-10 or g == 0:
            continue
        c = curvature[j]
        if not (np.isfinite(c) and c > 0):
            out[j] = abs(g) if abs(g) > flat_tol else 0.0
            continue
        t = min(abs(g) / c, room)
        out[j] = abs(g) * t - 0.5 * c * t * t
    return out


def _curvature_scales(curvature: FloatArray, relative: bool = True) -> FloatArray:
    """1 / sqrt(curvature) per coordinate, 1 where the curvature is not positive: relative
    to their median and within [1e-3, 1e3], or (``relative=False``) as they are, within
    [1e-12, 1e12], which makes every coordinate's curvature 1 (a unit step changes the
    deviance by about 1/2)."""
    good = np.isfinite(curvature) & (curvature > 0)
    factors = np.ones(curvature.size)
    factors[good] = 1.0 / np.sqrt(curvature[good])
    if not relative:
        return np.clip(factors, 1e-12, 1e12)
    factors[good] /= np.median(factors[good])
    return np.clip(factors, 1e-3, 1e3)


#: A point is an optimum when Newton steps along the free coordinates would lower the
#: deviance by less than this in all (summed): 1e-4 in log-likelihood, far below the 1e-3 to
#: which we compare with lme4 and galamm, and above finite-difference noise.
DECREASE_TOL = 2e-4


#: Rows up to which L-BFGS-B's relative tolerance is 1e-13 (``minimize_deviance``).
ROUNDING_ROWS = 100_000


def minimize_deviance(
    deviance: Callable[[FloatArray], float],
    x0: FloatArray,
    layout: ParameterLayout,
    max_iter: int = 2000,
    verbose: bool = False,
    scale: FloatArray | None = None,
    warmup: int = 50,
    gradient: Callable[[FloatArray], tuple[float, FloatArray]] | None = None,
    rows: int = 0,
) -> OptResult:
    """Minimize ``deviance`` with L-BFGS-B, with the exact gradient when ``gradient`` (x ->
    (deviance, gradient)) is given, else with finite-difference gradients.

    The optimizer works on x / scale, so that parameters on very different scales (fixed
    effects of covariates in their own units) get steps of comparable size. When the first
    ``warmup`` iterations do not converge, each coordinate is rescaled by its curvature
    there (a diagonal preconditioner: loadings known to 1e-3 beside variances known to 10%
    make the problem ill-conditioned) and the optimization continues.

    ``rows``: the number of rows the deviance sums over. L-BFGS-B stops when an iteration
    lowers the deviance by less than ``ftol`` relative; the deviance's own rounding grows
    with the rows (1e-6 in 2.6e6 at 10^6 rows, 4e-13 relative), and a tolerance below it
    leaves the line search probing noise (30 extra evaluations at 10^6 rows), so ftol is
    1e-13 up to ``ROUNDING_ROWS`` rows and grows in proportion beyond."""
    started = time.perf_counter()
    ftol = 1e-13 * max(1.0, rows / ROUNDING_ROWS)
    log: list[tuple[float, float]] = []
    scale = np.ones(len(layout.names)) if scale is None else np.array(scale, dtype=float)

    def value(z: FloatArray) -> float:
        if not np.all(np.isfinite(z)):
            return INFEASIBLE
        d = deviance(z * scale)
        log.append((time.perf_counter() - started, d))
        return d if np.isfinite(d) else INFEASIBLE

    def exact(z: FloatArray) -> tuple[float, FloatArray]:
        if not np.all(np.isfinite(z)):
            return INFEASIBLE, np.zeros(z.size)
        d, grad = gradient(z * scale)
        log.append((time.perf_counter() - started, d))
        if not (np.isfinite(d) and np.all(np.isfinite(grad))):
            return INFEASIBLE, np.zeros(z.size)
        grad = grad * scale
        # On a lower bound the deviance may be even in the coordinate (a variance factor
        # theta = 0: the exact gradient is 0 there, also when the deviance falls inward);
        # the one-sided difference sees the curvature and lets the optimizer leave 0.
        for j in np.flatnonzero(z <= lower + 1e-10):
            h = 1e-6 * max(1.0, abs(z[j]))
            up = z.copy()
            up[j] += h
            f_up = value(up)
            if f_up < INFEASIBLE:
                grad[j] = (f_up - d) / h
        return d, grad

    def value_and_gradient(x: FloatArray) -> tuple[float, FloatArray]:
        if gradient is None:
            f0 = value(x)
            grad = finite_difference_gradient(value, x, f0, lower, upper)
        else:
            f0, grad = exact(x)
        if verbose:
            print(f"  evaluation {len(log):5d}  {time.perf_counter() - started:8.2f} s  "
                  f"deviance {f0:.6f}  |grad| {np.abs(grad).max():.2e}")
        return f0, grad

    def run(x: FloatArray, iterations: int):
        bounds = list(zip(np.where(np.isfinite(lower), lower, None),
                          np.where(np.isfinite(upper), upper, None)))
        return minimize(value_and_gradient, x, jac=True, method="L-BFGS-B", bounds=bounds,
                        options={"maxiter": iterations, "maxcor": 20, "ftol": ftol,
                                 "gtol": 1e-7})

    def precondition(x: FloatArray, factors: FloatArray
                     ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Rescale every coordinate by ``factors`` (the optimizer then works on x / scale)."""
        np.multiply(scale, factors, out=scale)
        return x / factors, layout.lower / scale, layout.upper / scale

    lower, upper = layout.lower / scale, layout.upper / scale
    x = np.clip(np.asarray(x0, dtype=float) / scale, lower, upper)
    result = run(x, min(warmup, max_iter))
    x = result.x
    if result.nit >= warmup and not result.success:
        x, lower, upper = precondition(x, _curvature_scales(
            coordinate_curvatures(value, x, float(result.fun), lower, upper,
                                  None if gradient is None else result.jac)))
    for _ in range(2 if not result.success else 0):  # restart from where it stopped
        result = run(x, max_iter)
        moved = np.max(np.abs(result.x - x)) if result.nit > 0 else 0.0
        x = result.x
        if result.success and moved < 1e-6:
            break
    # The final check: the optimizer's own stopping rules (a small gradient or a small
    # relative change of the deviance) depend on the scale of the parameters, so a point
    # where the gradient is far from 0 can pass them (fixed effects scaled by 1e-21 stopped
    # a Poisson fit at an intercept of 75). A point is accepted only when Newton steps along
    # the free coordinates would lower the deviance by less than DECREASE_TOL; otherwise the
    # coordinates are rescaled by their curvature there and the optimizer goes on.
    converged = False
    decrease = np.full(x.size, np.inf)
    for attempt in range(4):
        f0 = float(result.fun)
        if not f0 < INFEASIBLE:  # no point with a finite deviance was found
            break
        curvature = coordinate_curvatures(value, x, f0, lower, upper,
                                          None if gradient is None else result.jac)
        decrease = predicted_decrease(result.jac, curvature, x, lower, upper)
        if np.sum(decrease) < DECREASE_TOL:
            converged = True
            break
        if attempt == 3:
            break
        x, lower, upper = precondition(x, _curvature_scales(curvature, relative=False))
        result = run(x, max_iter)
        x = result.x
    message = str(result.message)
    if verbose:
        print(f"  {'converged' if converged else 'stopped'} after {len(log)} evaluations in "
              f"{time.perf_counter() - started:.2f} s: deviance {float(result.fun):.6f}")
    if not float(result.fun) < INFEASIBLE:
        message += "; the deviance is not finite at any point tried"
    elif not converged:
        worst = int(np.argmax(decrease))
        message += (f"; not stationary: a Newton step along {layout.names[worst]} would "
                    f"lower the deviance by {decrease[worst]:.3g}")
    return OptResult(
        x=x * scale, deviance=float(result.fun), n_evaluations=len(log),
        converged=converged, message=message,
        seconds=time.perf_counter() - started, fitlog=log,
    )
