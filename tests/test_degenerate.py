"""Correct or refused, never silently wrong: fits that once stopped at a wrong point reported as
converged, and degenerate data, which get a clear semgalamm error or a named warning
(docs/errors.md lists every case with its test)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.optimize import ParameterLayout, minimize_deviance, predicted_decrease
from tests.conftest import fixture, load_csv


@pytest.fixture(scope="module")
def counts() -> pd.DataFrame:
    """Issue 10's synthetic data (tests/reference/degenerate_data.py)."""
    return load_csv("degenerate_poisson.csv", {"g": None})


# ------------------------------------------------------------------ the Poisson fit at mean 100


@pytest.mark.parametrize("case, response", [
    ("poisson_mean100", "cnt"),        # was: intercept 74.9, slope 9.97, "converged"
    ("poisson_times1000", "cnt1000"),  # was: LinAlgError (SVD) from the GLM start
    ("poisson_mean100_re", "cnt_re"),  # group effects with SD 0.3
])
def test_large_poisson_counts_equal_glmer(counts, case, response):
    """Counts of 100 to 10,000: the GLM start from R's mustart (log(y + 0.1)) and the final
    stationarity check give glmer's optimum (tests/reference/degenerate_glmer.R)."""
    ref = fixture("degenerate_glmer")[case]
    fit = semgalamm.fit(f"{response} ~ x + (1 | g)", counts, family="poisson")
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    np.testing.assert_allclose(fit.fixef, ref["fixef"], rtol=1e-5)
    np.testing.assert_allclose(fit.fixef_se, ref["fixef_se"], rtol=1e-3)
    assert fit.optimizer.x[0] == pytest.approx(ref["theta"], abs=1e-4)


@pytest.mark.parametrize("response", ["cnt", "cnt_re"])
def test_large_poisson_counts_recover_the_truth(counts, response):
    """Simulated with intercept log(100) and slope 0.1: both within two standard errors."""
    fit = semgalamm.fit(f"{response} ~ x + (1 | g)", counts, family="poisson")
    truth = np.array([np.log(100.0), 0.1])
    assert np.all(np.abs(fit.fixef.to_numpy() - truth) < 2 * fit.fixef_se.to_numpy())


def test_a_wrong_start_still_reaches_the_optimum(counts):
    """From the point the old fit stopped at (intercept 74.9, slope 9.97)."""
    ref = fixture("degenerate_glmer")["poisson_mean100"]
    fit = semgalamm.fit("cnt ~ x + (1 | g)", counts, family="poisson",
                        start={"beta": [74.9, 9.97], "theta": [5.0]})
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)


def _quadratic(x: np.ndarray) -> float:
    """Minimum 0 at (3, -2); curvatures 2e4 and 2."""
    return 1e4 * (x[0] - 3.0) ** 2 + (x[1] + 2.0) ** 2


_LAYOUT = ParameterLayout((("beta", 2),), ("a", "b"), np.full(2, -np.inf), np.full(2, np.inf))


@pytest.mark.parametrize("scale", [[1.0, 1.0], [1e-21, 1.0], [1e-3, 1e3], [1e6, 1e-6]])
def test_the_optimizer_reaches_the_minimum_whatever_the_scaling(scale):
    """A scaling that makes L-BFGS-B's own tests pass at once (a gradient of 1e-17 per unit
    of a coordinate scaled by 1e-21) no longer ends the fit there: the final check sees that a
    Newton step would lower the deviance and the optimizer goes on, rescaled by curvature."""
    result = minimize_deviance(_quadratic, np.array([10.0, 5.0]), _LAYOUT,
                               scale=np.array(scale))
    assert result.converged
    np.testing.assert_allclose(result.x, [3.0, -2.0], atol=1e-4)


def test_a_non_stationary_point_is_never_reported_converged():
    """An objective the optimizer cannot minimize in its iterations is reported as not
    converged, naming the parameter whose Newton step would lower the deviance."""
    def rosenbrock(x: np.ndarray) -> float:
        return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2

    result = minimize_deviance(rosenbrock, np.array([-1.2, 1.0]), _LAYOUT, max_iter=1,
                               warmup=1)
    assert not result.converged
    assert "not stationary: a Newton step along" in result.message


def test_predicted_decrease_is_invariant_to_scale():
    """g^2 / (2 c) is the same for a coordinate measured in any unit; at a bound the part
    of the step beyond it does not count, and a gradient pointing out of the bound is 0."""
    for unit in (1e-8, 1.0, 1e8):
        grad, curvature = np.array([2.0 * unit]), np.array([4.0 * unit**2])
        free = predicted_decrease(grad, curvature, np.zeros(1), np.full(1, -np.inf),
                                  np.full(1, np.inf))
        assert free[0] == pytest.approx(0.5)
    at_bound = predicted_decrease(np.array([1.0, -1.0]), np.array([1.0, 1.0]), np.zeros(2),
                                  np.zeros(2), np.full(2, np.inf))
    np.testing.assert_allclose(at_bound, [0.0, 0.5])
