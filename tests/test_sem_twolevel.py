"""Two-level SEMs (``cluster=`` with ``level:`` blocks) against lavaan 0.6.14
(tests/fixtures/lavaan/twolevel*.json, written by tests/reference/lavaan_fits.R).

Matched: logl (1e-3), npar, every estimate, SEs from the observed information (lavaan's default
for two levels) to 2e-3 relative, the model-implied moments, and fitMeasures() (chisq, df,
baseline, CFI, TLI, RMSEA and its interval, SRMR within/between, AIC, BIC).

On the estimates: our likelihood evaluated at lavaan's estimates reproduces lavaan's logl to
1e-8 (:func:`test_likelihood_at_lavaans_estimates`), and our maximum is higher than lavaan's.
lavaan's nlminb stops at a relative tolerance on a likelihood that is very flat in the
between-level intercepts (SE 0.05 to 0.07 for values of 0.02 to 0.04), so those few estimates
differ from lavaan's by about 1e-4, 1e-3 of their SE; every other estimate agrees to 1e-3
relative. With ``control = list(rel.tol = 1e-14)`` lavaan's intercepts move by as much.
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, SpecError, UnsupportedError
from tests.conftest import FIXTURES

CASES = ("twolevel", "twolevel_simple")

SIMPLE = """
level: 1
  fw =~ y1 + y2 + y3
level: 2
  fb =~ y1 + y2 + y3
"""


def reference(case: str) -> dict:
    return json.loads((FIXTURES / "lavaan" / f"{case}.json").read_text())


@cache
def demo() -> pd.DataFrame:
    return semgalamm.load_dataset("Demo.twolevel")


@cache
def fitted(case: str):
    ref = reference(case)
    return semgalamm.sem(ref["model"], demo(), **ref["options"])


def matched(case: str) -> pd.DataFrame:
    ref = pd.DataFrame(reference(case)["parameter_estimates"])
    ours = fitted(case).parameter_estimates()
    assert len(ours) == len(ref)
    assert list(ours["lhs"]) == list(ref["lhs"])
    assert list(ours["op"]) == list(ref["op"])
    assert list(ours["rhs"]) == list(ref["rhs"])
    assert list(ours["level"]) == [str(v) for v in ref["level"]]
    return ours.assign(ref_est=ref["est"].to_numpy(float), ref_se=ref["se"].to_numpy(float),
                       free=ref["free"].to_numpy(int))


@pytest.mark.parametrize("case", CASES)
def test_loglik_and_npar(case):
    ref = reference(case)
    fit = fitted(case)
    assert fit.converged
    assert fit.npar == ref["npar"]
    assert fit.loglik == pytest.approx(ref["logl"], abs=1e-3)
    assert fit.loglik >= ref["logl"] - 1e-8  # our maximum is at least lavaan's
    assert fit.nobs == ref["nobs"]
    assert fit.extra["nclusters"] == ref["nclusters"]


@pytest.mark.parametrize("case", CASES)
def test_estimates(case):
    rows = matched(case)
    diff = (rows["est"] - rows["ref_est"]).abs()
    close = diff <= 1e-3 * rows["ref_est"].abs() + 1e-12
    # the between intercepts: within 2e-3 of their SE (lavaan's stopping tolerance)
    flat = (rows["op"] == "~1") & (diff <= 2e-3 * rows["ref_se"])
    assert (close | flat).all(), rows[~(close | flat)]
    assert (close | (rows["op"] == "~1")).all()


@pytest.mark.parametrize("case", CASES)
def test_standard_errors(case):
    rows = matched(case)
    free = rows[rows["free"] > 0]
    np.testing.assert_allclose(free["se"], free["ref_se"], rtol=2e-3)
    assert (rows.loc[rows["free"] == 0, "se"] == 0).all()
    assert fitted(case).information == "observed"


@pytest.mark.parametrize("case", CASES)
def test_likelihood_at_lavaans_estimates(case):
    fit = fitted(case)
    ref = reference(case)
    x = np.zeros(fit.npar)
    for row, est in zip(fit.table.rows, pd.DataFrame(ref["parameter_estimates"])["est"]):
        if row.free:
            x[row.free - 1] = est
    at_lavaan = fit.loglik_function(x, False, False).loglik - fit.extra["loglik_x"]
    assert at_lavaan == pytest.approx(ref["logl"], abs=1e-6)
    assert fit.loglik >= at_lavaan


def test_gradient_is_exact():
    fit = fitted("twolevel")
    x = fit.estimate.x + 0.01
    value = fit.loglik_function(x, True, True)
    numeric = np.zeros_like(x)
    for k in range(len(x)):
        step = np.zeros_like(x)
        step[k] = 1e-6
        numeric[k] = (fit.loglik_function(x + step, False, False).loglik
                      - fit.loglik_function(x - step, False, False).loglik) / 2e-6
    np.testing.assert_allclose(value.gradient, numeric, rtol=1e-5, atol=1e-4)
    assert np.all(np.linalg.eigvalsh(value.information) > 0)


@pytest.mark.parametrize("case", CASES)
def test_implied_moments(case):
    fit = fitted(case)
    for block, ref in zip(fit.implied, reference(case)["implied"]):
        variables = fit.table.blocks[ref["block"] - 1].observed
        idx = [variables.index(v) for v in ref["cov"]["variables"]]
        np.testing.assert_allclose(block.sigma[np.ix_(idx, idx)], ref["cov"]["values"],
                                   atol=1e-4)
        idx = [variables.index(v) for v in ref["mean"]["variables"]]
        np.testing.assert_allclose(block.mu[idx], ref["mean"]["values"], atol=2e-4)


@pytest.mark.parametrize("case", CASES)
def test_unrestricted_moments(case):
    """The h1 (saturated two-level) covariances; lavaan's EM stops at a 1e-4 change of logl."""
    fit = fitted(case)
    h1 = fit.extra["h1"]
    for sigma, ref in zip((h1.sigma1, h1.sigma2), reference(case)["sample"]):
        variables = fit.table.blocks[ref["block"] - 1].observed
        idx = [variables.index(v) for v in ref["cov"]["variables"]]
        np.testing.assert_allclose(sigma[np.ix_(idx, idx)], ref["cov"]["values"], atol=5e-4)


@pytest.mark.parametrize("case", CASES)
def test_fit_measures(case):
    ref = reference(case)["fit_measures"]
    ours = fitted(case).extra["fit_measures"]
    assert ours["npar"] == ref["npar"]
    assert ours["df"] == ref["df"]
    assert ours["baseline.df"] == ref["baseline.df"]
    # lavaan's h1 is an EM fit stopped at a 1e-4 change in logl; ours is its maximum
    assert ours["unrestricted.logl"] == pytest.approx(ref["unrestricted.logl"], abs=2e-4)
    for key in ("chisq", "baseline.chisq"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-3), key
    for key in ("logl", "aic", "bic", "bic2"):
        assert ours[key] == pytest.approx(ref[key], abs=2e-3), key
    for key in ("cfi", "tli", "rmsea", "rmsea.ci.lower", "rmsea.ci.upper", "pvalue",
                "rmsea.pvalue"):
        if ref[key] is None:
            assert np.isnan(ours[key]), key
        else:
            assert ours[key] == pytest.approx(ref[key], rel=1e-3, abs=1e-6), key
    if ref["df"] > 0:
        for key in ("srmr", "srmr_within", "srmr_between"):
            assert ours[key] == pytest.approx(ref[key], rel=1e-3), key
    else:  # a saturated model: lavaan's 1.6e-4 is its EM's distance from the optimum
        assert ours["srmr"] < ref["srmr"]


def test_level_names_within_between():
    model = SIMPLE.replace("level: 1", "level: within").replace("level: 2", "level: between")
    fit = semgalamm.sem(model, demo(), cluster="cluster")
    assert fit.loglik == pytest.approx(fitted("twolevel_simple").loglik, abs=1e-8)
    assert set(fit.parameter_estimates()["level"]) == {"within", "between"}


def test_expected_information_option():
    fit = semgalamm.sem(SIMPLE, demo(), cluster="cluster", information="expected")
    rows = matched("twolevel_simple")
    se = fit.parameter_estimates()["se"].to_numpy()
    free = rows["free"].to_numpy() > 0
    # expected and observed information agree closely at a well-fitting optimum
    np.testing.assert_allclose(se[free], rows["ref_se"].to_numpy()[free], rtol=5e-2)


def test_listwise_and_singleton_clusters():
    data = demo().copy()
    first = data.index[data["cluster"] == data["cluster"].iloc[0]]
    data = data.drop(first[1:])  # the first cluster keeps a single row
    data.loc[data.index[-3:], "y1"] = np.nan  # rows with a missing value are dropped
    fit = semgalamm.sem(SIMPLE, data, cluster="cluster")
    assert fit.converged
    assert fit.nobs == len(data) - 3
    assert fit.extra["nclusters"] == 200
    assert fit.extra["cluster_sample"].sizes.min() == 1


# --------------------------------------------------------------------------- errors


def test_levels_without_cluster():
    with pytest.raises(SpecError, match="cluster="):
        semgalamm.sem(SIMPLE, demo())


def test_cluster_column_missing():
    with pytest.raises(DataError, match="Did you mean 'cluster'"):
        semgalamm.sem(SIMPLE, demo(), cluster="clustr")


def test_too_few_clusters():
    data = demo()
    with pytest.raises(DataError, match="at least two clusters"):
        semgalamm.sem(SIMPLE, data[data["cluster"] == data["cluster"].iloc[0]],
                      cluster="cluster")


def test_group_with_cluster():
    data = demo().assign(g=np.arange(len(demo())) % 2)
    with pytest.raises(UnsupportedError, match="group="):
        semgalamm.sem(SIMPLE, data, cluster="cluster", group="g")


def test_fiml_with_cluster():
    with pytest.raises(UnsupportedError, match="missing='ml'"):
        semgalamm.sem(SIMPLE, demo(), cluster="cluster", missing="ml")


def test_between_level_block_first():
    model = "level: 2\n fb =~ y1 + y2 + y3\nlevel: 1\n fw =~ y1 + y2 + y3"
    with pytest.raises(SpecError, match="within level"):
        semgalamm.sem(model, demo(), cluster="cluster")


def test_between_only_variable_varies_within_clusters():
    model = "level: 1\n fw =~ y2 + y3 + y4\nlevel: 2\n fb =~ y1 + y2 + y3"
    with pytest.raises(DataError, match="'y1'.*constant within each cluster"):
        semgalamm.sem(model, demo(), cluster="cluster")


def test_covariate_on_both_levels():
    model = ("level: 1\n fw =~ y1 + y2 + y3\n fw ~ x1\n"
             "level: 2\n fb =~ y1 + y2 + y3\n fb ~ x1 + w1")
    with pytest.raises(UnsupportedError, match="'x1'.*both levels"):
        semgalamm.sem(model, demo(), cluster="cluster")
