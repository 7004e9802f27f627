"""Correct or refused, never silently wrong: fits that once stopped at a wrong point reported as
converged, and degenerate data, which get a clear semgalamm error or a named warning
(docs/errors.md lists every case with its test)."""

from __future__ import annotations

import random
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.design import checks
from semgalamm.design.frame import equal_rows
from semgalamm.errors import (
    ConvergenceWarning,
    DataError,
    DataWarning,
    FitWarning,
    ScaleWarning,
    SeparationWarning,
    SingularFitWarning,
    SpecError,
    StandardErrorWarning,
)
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


def test_an_objective_infinite_everywhere_is_not_converged():
    result = minimize_deviance(lambda x: np.inf, np.array([1.0, 2.0]), _LAYOUT)
    assert not result.converged
    assert "the deviance is not finite at any point tried" in result.message


def test_non_finite_starting_values_are_refused(counts):
    with pytest.raises(SpecError, match=r"start\['theta'\] must be finite numbers"):
        semgalamm.fit("cnt ~ x + (1 | g)", counts, family="poisson", start={"theta": [np.nan]})


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


# ------------------------------------------------------------------ degenerate data


@pytest.fixture
def d(counts) -> pd.DataFrame:
    """y, x, z normal; item 1..4; g 20 groups of 20 rows; b 0/1 (issue 10's minimal cases)."""
    return counts[["y", "x", "z", "item", "g", "b"]].copy()


def _fit_unchanged(model: str, data: pd.DataFrame, **options):
    """Fit, and check that the user's data frame is not changed (also when the fit fails)."""
    before = data.copy(deep=True)
    try:
        return semgalamm.fit(model, data, **options)
    finally:
        pd.testing.assert_frame_equal(data, before)


def test_constant_gaussian_response_is_refused(d):
    with pytest.raises(DataError, match=r"The response 'c' is constant \(3\) in all 400 "
                                        r"Gaussian rows.*Check the response column"):
        _fit_unchanged("c ~ x + (1 | g)", d.assign(c=3.0))


def test_response_fitted_exactly_by_the_fixed_effects_is_refused(d):
    with pytest.raises(DataError, match=r"The fixed effects reproduce the response 'c' exactly"
                                        r".*Is the response among the covariates"):
        _fit_unchanged("c ~ x + (1 | g)", d.assign(c=2 * d.x + 1))


@pytest.mark.parametrize("family, value, message", [
    ("binomial", 0, r"The binomial response 'r' is 0 in all 400 binomial rows"),
    ("binomial", 1, r"The binomial response 'r' is a success in all 400 binomial rows"),
    ("poisson", 0, r"The Poisson response 'r' is 0 in all 400 Poisson rows"),
])
def test_all_zero_or_all_one_responses_are_refused(d, family, value, message):
    """lme4: 'Response is constant'; today's intercept -31.5 was a point on the way to
    minus infinity."""
    with pytest.raises(DataError, match=message + r".*Response is constant"):
        _fit_unchanged("r ~ x + (1 | g)", d.assign(r=value), family=family)


@pytest.mark.parametrize("family", ["gaussian", "binomial"])
def test_one_row_per_level_is_refused(d, family):
    """lme4: 'number of levels of each grouping factor must be < number of observations'. A
    Gaussian or binary random intercept per row is the residual (or nothing) under another
    name: its variance stayed at its start value."""
    data = d.assign(id=[f"r{i}" for i in range(len(d))])
    with pytest.raises(DataError, match=r"grouping factor 'id' of \(1 \| id\) has as many "
                                        r"levels \(400\) as observations \(400\)"):
        _fit_unchanged(f"{'y' if family == 'gaussian' else 'b'} ~ x + (1 | id)", data,
                       family=family)


def test_three_rows_that_the_model_reproduces_are_refused():
    """Three rows of two subjects, an intercept, a slope and a random intercept reproduce the
    data exactly: the likelihood grows without bound as the residual variance goes to 0 (lme4
    reports a logLik of 2.1 there, semgalamm stopped at theta = 6.7e5, "converged")."""
    sleep = semgalamm.load_dataset("sleepstudy")
    with pytest.raises(DataError, match=r"The fixed effects and the random effects of Subject "
                                        r"together reproduce the response exactly \(3 rows; "
                                        r"2 fixed and 2 random effects\)"):
        _fit_unchanged("Reaction ~ Days + (1 | Subject)", sleep.iloc[[0, 1, 11]])
    fit = _fit_unchanged("Reaction ~ 1 + (1 | Subject)", sleep.iloc[[0, 1, 11]])
    assert fit.loglik == pytest.approx(-12.86173, abs=1e-4)  # lmer's logLik


def test_response_measured_once_per_group_is_refused():
    """A subject-level response repeated on every row of the subject is the random
    intercept itself, with no residual."""
    sleep = semgalamm.load_dataset("sleepstudy")
    means = sleep.assign(m=sleep.groupby("Subject", observed=True).Reaction.transform("mean"))
    with pytest.raises(DataError, match=r"together reproduce the response exactly"):
        _fit_unchanged("m ~ Days + (1 | Subject)", means)
    rng = np.random.default_rng(3)
    noisy = means.assign(m=means.m + 1e-3 * rng.normal(size=len(means)))
    fit = _fit_unchanged("m ~ Days + (1 | Subject)", noisy)  # a tiny residual is fine
    assert fit.converged
    assert fit.sigma == pytest.approx(1e-3, rel=0.2)


def test_observation_level_random_effect_of_counts_is_allowed(counts):
    """An observation-level random effect of Poisson rows models overdispersion and is
    identified (glmer fits it too)."""
    data = counts.assign(id=[f"r{i}" for i in range(len(counts))])
    fit = _fit_unchanged("cnt1000 ~ x + (1 | id)", data, family="poisson")
    assert fit.converged
    assert np.all(np.isfinite(fit.fixef)) and np.isfinite(fit.loglik)


def test_more_random_effects_than_observations_is_refused():
    """lme4 refuses (period | herd) on cbpp: 60 random effects for 56 rows."""
    cbpp = semgalamm.load_dataset("cbpp")
    with pytest.raises(DataError, match=r"The term \(period \| herd\) has 60 random effects "
                                        r"\(4 per level of 'herd' x 15 levels\) for 56 "
                                        r"observations.*Simplify the term"):
        _fit_unchanged("cbind(incidence, size - incidence) ~ period + (period | herd)", cbpp,
                       family="binomial")


def test_as_many_gaussian_random_effects_as_observations_is_refused():
    """lmer's rule is n <= q (the residual variance is one more effect per row): two days
    per subject and a random slope give 36 random effects for 36 rows."""
    sleep = semgalamm.load_dataset("sleepstudy")
    two_days = sleep[sleep["Days"].isin([0, 1])]
    with pytest.raises(DataError, match=r"\(Days \| Subject\) has 36 random effects .* for 36 "
                                        r"observations.*number of observations \(=36\) <= "):
        _fit_unchanged("Reaction ~ Days + (Days | Subject)", two_days)


def test_covariates_on_very_different_scales_warn_and_fit_as_lmer(d):
    """1e8 x beside 1e-8 z: not rank deficient (the rank is judged on columns scaled to unit
    length); lme4's warning, naming the columns; lmer's fit."""
    ref = fixture("degenerate_glmer")["lmer_scales"]
    data = d.assign(xb=1e8 * d.x, xs=1e-8 * d.z)
    with pytest.warns(ScaleWarning, match=r"very different scales: xb \(SD 1.05e\+08\), "
                                          r"xs \(SD 1.02e-08\)\. Consider rescaling"):
        fit = _fit_unchanged("y ~ xb + xs + (1 | g)", data)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    np.testing.assert_allclose(fit.fixef, ref["fixef"], rtol=1e-4)


def test_random_slope_in_huge_units_starts_where_the_deviance_is_finite(counts):
    """lme4's start theta = 1 makes H = A'A + I numerically singular for a slope of 1e8 x
    (lmer stops with an error): the start is shrunk until the deviance is finite, and the fit
    comes within 1e-2 of the one in natural units, with lme4's advice to rescale."""
    natural = _fit_unchanged("y ~ x + (x | g)", counts)
    with pytest.warns(ScaleWarning, match=r"xb \(SD"):
        huge = _fit_unchanged("y ~ xb + (xb | g)", counts.assign(xb=1e8 * counts.x))
    assert huge.loglik == pytest.approx(natural.loglik, abs=1e-2)


def test_overflowing_trial_points_are_infeasible_not_runtime_warnings(counts):
    """exp(nu) overflows at trial points of a Poisson slope of 1e8 x: those points are
    infeasible (no RuntimeWarning); the fit converges or says that it did not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = _fit_unchanged("cnt ~ xb + (xb | g)", counts.assign(xb=1e8 * counts.x),
                             family="poisson")
    kinds = {w.category for w in caught}
    assert RuntimeWarning not in kinds and ScaleWarning in kinds
    assert fit.converged or ConvergenceWarning in kinds


def test_collinear_columns_are_named(d):
    with pytest.raises(SpecError, match=r"rank deficient \(rank 2 < 3 columns.*'x2' = a "
                                        r"combination of x\..*remove redundant terms"):
        _fit_unchanged("y ~ x + x2 + (1 | g)", d.assign(x2=2 * d.x))


@pytest.mark.parametrize("bs", ["cr", "tp"])
def test_smooth_beside_its_own_linear_term_is_named(d, bs):
    """Today NaN estimates with only a ConvergenceWarning: the smooth's unpenalized column is
    the linear trend in x."""
    with pytest.raises(SpecError, match=r"'s\(x\)Fx1' = a combination of \(Intercept\), x\. .*"
                                        r"the smooth s\(x\) contains its own linear trend: "
                                        r"remove x"):
        _fit_unchanged(f'y ~ s(x, bs="{bs}") + x', d)


def test_infinite_fixed_loading_is_refused(d):
    with pytest.raises(SpecError, match=r"The loading of 'f' on 'item\[2\]' is fixed to inf"):
        _fit_unchanged("f =~ item[1] + 1e999*item[2]\nf ~ (1 | g)\ny ~ 0 + item", d)


def test_duplicated_indicator_is_refused(d):
    with pytest.raises(SpecError, match=r"The indicator 'item\[2\]' appears twice among the "
                                        r"loadings of 'f'"):
        _fit_unchanged("f =~ item[1] + item[2] + item[2]\nf ~ (1 | g)\ny ~ item", d)


def test_complete_separation_warns_naming_the_column(d):
    """w > 0 exactly where b = 1: glm's estimate of w is infinite (today: 991 and 10,088
    with NaN standard errors, "converged")."""
    data = d.assign(w=2 * d.b - 1 + 0.01 * d.x)
    with pytest.warns(SeparationWarning, match=r"Complete separation: the binomial response "
                                               r"'b' is predicted perfectly by w: "):
        fit = _fit_unchanged("b ~ x + w + (1 | g)", data, family="binomial")
    assert np.all(np.isfinite(fit.fixef))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        se = fit.fixef_se
    named = " ".join(str(w.message) for w in caught if w.category is StandardErrorWarning)
    for name in se.index[se.isna()]:  # no NaN standard error without a warning naming it
        assert f"standard errors of {name}" in named or f", {name}" in named


def test_quasi_complete_separation_warns_naming_the_level(d):
    """A category whose rows are all 0: its coefficient goes to minus infinity."""
    data = d.assign(lvl=np.where(d.index % 7 == 0, "a", "b"), b=np.where(d.index % 7 == 0, 0, d.b))
    with pytest.warns(SeparationWarning, match=r"Quasi-complete separation: .* predicted "
                                               r"perfectly by lvlb in part of the rows"):
        _fit_unchanged("b ~ x + lvl + (1 | g)", data, family="binomial")


@pytest.mark.parametrize("distinct", [True, False])
def test_separation_by_factors_found_on_distinct_rows(d, monkeypatch, distinct):
    """Factor columns repeat a few rows; the linear programs run on the distinct rows with
    their counts (or, when ``equal_rows`` cannot tell them apart, on all rows): the same
    warning either way."""
    if not distinct:
        monkeypatch.setattr(checks, "equal_rows", lambda table: None)
    data = d.assign(lvl=np.where(d.index % 7 == 0, "a", "b"), b=np.where(d.index % 7 == 0, 0, d.b))
    with pytest.warns(SeparationWarning, match=r"Quasi-complete separation: .* predicted "
                                               r"perfectly by lvlb in part of the rows"):
        _fit_unchanged("b ~ lvl + (1 | g)", data, family="binomial")


def test_equal_rows_labels_equal_rows_alike():
    table = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [3.0, 4.5]])
    label = equal_rows(table)
    assert label[0] == label[2] and len(set(label)) == 3
    assert equal_rows(np.array([[1.0, np.nan]])) is None


def test_no_separation_no_warning(d):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        _fit_unchanged("b ~ x + (1 | g)", d, family="binomial")


def test_binomial_smooth_by_a_factor_fits(d):
    """Today LinAlgError: 20 smooths of 4 columns, one per group, on binary rows."""
    fit = _fit_unchanged("b ~ s(x, k=4, by=g)", d, family="binomial")
    assert fit.converged
    assert np.all(np.isfinite(fit.fixef)) and np.all(np.isfinite(fit.fixef_se))
    assert fit.loglik < 0 and np.isfinite(fit.loglik)


def test_binomial_model_without_fixed_effects_equals_glmer(d):
    """Today a zero-size array ValueError."""
    ref = fixture("degenerate_glmer")["glmer_no_fixed"]
    fit = _fit_unchanged("b ~ 0 + (1 | g)", d, family="binomial")
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.optimizer.x[0] == pytest.approx(ref["theta"][0] if isinstance(ref["theta"], list)
                                               else ref["theta"], rel=1e-3)


def test_residual_variances_by_item_beside_group_means_equal_gls(d):
    """Today a ValueError from cho_factor: Gaussian residual SDs by item with 20 fixed group
    means and no random effects, nlme's gls with varIdent."""
    ref = fixture("degenerate_glmer")["gls_varident_groups"]
    fit = _fit_unchanged("y ~~ (1 | item)\ny ~ C(g)", d)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    np.testing.assert_allclose(fit.fixef, ref["coef"], atol=1e-4)  # SEs about 0.2
    np.testing.assert_allclose(fit.residual_sd()["sd_ratio"].to_numpy()[1:], ref["sd_ratios"],
                               rtol=1e-3)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)


# ------------------------------------------------------------ generated fits

_MUTATIONS = {
    "none": lambda d, r: d,
    "constant y": lambda d, r: d.assign(y=3.0),
    "b all 0": lambda d, r: d.assign(b=0),
    "counts 100": lambda d, r: d.assign(cnt=r.poisson(100, len(d))),
    "counts x1000": lambda d, r: d.assign(cnt=r.poisson(2, len(d)) * 1000),
    "x 1e8": lambda d, r: d.assign(x=1e8 * d.x),
    "z 1e-8": lambda d, r: d.assign(z=1e-8 * d.z),
    "z = 2x": lambda d, r: d.assign(z=2 * d.x),
    "g per row": lambda d, r: d.assign(g=[f"r{i}" for i in range(len(d))]),
    "separated b": lambda d, r: d.assign(b=(d.x > 0).astype(int)),
    "h one level": lambda d, r: d.assign(h="a"),
    "3 rows": lambda d, r: d.iloc[:3],
    "12 rows": lambda d, r: d.iloc[:12],
    "y = 2x + 1": lambda d, r: d.assign(y=d.x * 2 + 1),
}
_FIXED = ["x", "x + z", "0 + x", "1", "0", "x + h", "x * z", "s(x)", "s(x, k=4)",
          's(x, bs="cr")', "s(x) + x", "t2(x)", "s(x, by=h)", "C(g)", "poly(x, 2)"]
_RANDOM = ["(1 | g)", "(x | g)", "(1 | g) + (1 | h)", "(1 | g/h)", "(x || g)", "(1 | h)"]
_MEASUREMENT = ["f =~ item[1] + item[2] + item[3] + item[4]\nf ~ (1 | g)\n{y} ~ 0 + item",
                "f =~ item[1] + item[2]\nf ~ (1 | g)\n{y} ~ item + x"]


def _generated_cases(count: int, seed: int):
    rnd = random.Random(seed)
    for _ in range(count):
        mutation = rnd.choice(list(_MUTATIONS))
        response, family = rnd.choice([("y", "gaussian"), ("b", "binomial"), ("cnt", "poisson")])
        if rnd.random() < 0.2:
            model = rnd.choice(_MEASUREMENT).format(y=response)
        else:
            model = f"{response} ~ {rnd.choice(_FIXED)} + {rnd.choice(_RANDOM)}"
        yield model, family, mutation, rnd.choice([40, 80, 200]), rnd.randrange(10**6)


@pytest.mark.slow
def test_generated_fits_are_right_or_say_why():
    """Generated models on synthetic data with degenerate twists: every fit ends with finite
    estimates and standard errors, or a warning (FitWarning) for each that is not, or a
    SemgalammError; nothing else escapes (no numpy or scipy error, no RuntimeWarning)."""
    outcomes = []
    for model, family, mutation, n, seed in _generated_cases(60, seed=10):
        rng = np.random.default_rng(seed)
        data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                             "z": rng.normal(size=n), "item": np.tile(["1", "2", "3", "4"], n // 4),
                             "g": np.repeat([f"g{i}" for i in range(20)], n // 20),
                             "h": rng.integers(0, 5, n).astype(str), "b": rng.integers(0, 2, n)})
        data["cnt"] = rng.poisson(np.exp(1 + 0.3 * data.x))
        data = _MUTATIONS[mutation](data, rng)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = semgalamm.fit(model, data, family=family)
                se = fit.fixef_se
            except semgalamm.SemgalammError:
                outcomes.append("error")
                continue
        where = f"{model!r} ({family}, {mutation}, {n} rows)"
        assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], where
        said = {w.category for w in caught if issubclass(w.category, FitWarning)}
        if not (np.all(np.isfinite(fit.fixef)) and np.isfinite(fit.loglik)):
            assert said - {SingularFitWarning}, where
        if not np.all(np.isfinite(se)):
            assert StandardErrorWarning in said, where
        if not fit.converged:
            assert ConvergenceWarning in said, where
        outcomes.append("fit")
    assert outcomes.count("fit") > 20 and outcomes.count("error") > 5


@pytest.mark.parametrize("family, values, message", [
    ("poisson", {5: -2}, r"The response 'r' of 1 poisson row\(s\) \(index 5\) is outside the "
                         r"family's support: non-negative integer counts\. Check the column "
                         r"'r' at those rows"),
    ("poisson", {7: 1.5, 9: 2.5}, r"The response 'r' of 2 poisson row\(s\) \(index 7, 9\)"),
    ("binomial", {2: 2}, r"The response 'r' of 1 binomial row\(s\) \(index 2\) .* between 0 "
                         r"and the number of trials"),
])
def test_responses_outside_the_support_name_column_and_rows(family, values, message):
    sleep = semgalamm.load_dataset("sleepstudy")
    r = np.ones(180)
    for row, value in values.items():
        r[row] = value
    with pytest.raises(DataError, match=message):
        _fit_unchanged("r ~ Days + (1 | Subject)", sleep.assign(r=r), family=family)


def test_wide_indicator_outside_the_support_names_the_indicator():
    """A binary indicator of a model on wide data (fitted on stacked long data) with a 2."""
    hs = semgalamm.load_dataset("HolzingerSwineford1939")
    data = hs.assign(x1b=(hs.x1 > hs.x1.median()).astype(int))
    data.loc[3, "x1b"] = 2
    with pytest.raises(DataError, match=r"The indicator 'x1b' has 1 value\(s\) outside the "
                                        r"binomial family's support \(row\(s\) 3 of the data"):
        _fit_unchanged("visual =~ x1b + x2 + x3", data, family={"x1b": "binomial"})


def test_integer_coded_indicator_column_is_categorical_everywhere():
    """'time' holds 1..4; named as time[1] .. time[4] it is an indicator column, so
    'esteem ~ time' has one intercept per level (not a slope), as with the column as text."""
    kyps = semgalamm.load_dataset("KYPSsim")
    model = ("ms =~ 1*time[1] + time[2] + time[3] + time[4]\nms ~ (1 | mid)\n"
             "esteem ~ time + (1 | sid)")
    as_int = _fit_unchanged(model, kyps.assign(time=kyps.time.astype(int)))
    as_text = _fit_unchanged(model, kyps.assign(time=kyps.time.astype(int).astype(str)))
    assert list(as_int.fixef.index) == ["(Intercept)", "time2", "time3", "time4"]
    assert list(as_text.fixef.index) == list(as_int.fixef.index)
    assert as_int.loglik == pytest.approx(as_text.loglik, abs=1e-6)


def test_every_catalogue_case_is_a_test():
    """docs/errors.md names a test for every case: each one exists."""
    text = (Path(__file__).parents[1] / "docs" / "errors.md").read_text()
    named = 0
    for cell in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`((?:, `::\w+`)*)", text):
        path, first, more = cell
        source = (Path(__file__).parents[1] / path).read_text()
        for name in [first, *re.findall(r"::(\w+)", more)]:
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name}"
            named += 1
    assert named > 50
