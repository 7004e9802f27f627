"""semgalamm.bootstrap(): reproducible replicates on any executor, failures reported."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import SpecError
from semgalamm.inference.bootstrap import BootstrapWarning, bootstrap, refit


@cache
def sleep_fit():
    return semgalamm.fit("Reaction ~ Days + (1 | Subject)", semgalamm.load_dataset("sleepstudy"))


def days_slope(fit):
    return fit.fixef["Days"]


@pytest.mark.slow
def test_dask_cluster_and_default_pool_give_identical_replicates():
    """Per-replicate seeds from SeedSequence(seed).spawn: the same numbers on a Dask
    LocalCluster with 2 worker processes, the default process pool and a thread pool."""
    distributed = pytest.importorskip("dask.distributed")
    fit = sleep_fit()
    pool = bootstrap(fit, 10, seed=2026, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dask = bootstrap(fit, 10, seed=2026, executor=client, progress=False)
    with ThreadPoolExecutor(2) as threads:
        threaded = bootstrap(fit, 10, seed=2026, executor=threads, progress=False,
                             chunk_size=3)
    pd.testing.assert_frame_equal(pool.replicates, dask.replicates)
    pd.testing.assert_frame_equal(pool.replicates, threaded.replicates)
    assert pool.n_failed == 0 and pool.replicates.notna().all().all()
    assert list(pool.replicates.columns) == ["sd_(Intercept)|Subject", "sigma", "(Intercept)",
                                             "Days"]
    # different seeds, different replicates; every replicate differs from the others
    assert not pool.replicates.equals(bootstrap(fit, 10, seed=1, progress=False,
                                                executor=ThreadPoolExecutor(2)).replicates)
    assert pool.replicates["Days"].nunique() == 10


def test_failed_replicates_are_counted_and_reported():
    fit = sleep_fit()
    estimate = fit.fixef["Days"]

    def fragile(refit):
        if refit.fixef["Days"] > estimate:
            raise ValueError("slope above the estimate")
        return refit.fixef

    with ThreadPoolExecutor(2) as threads, pytest.warns(BootstrapWarning, match="failed"):
        result = bootstrap(fit, 12, statistic=fragile, seed=5, executor=threads,
                           progress=False)
    failed = result.replicates["Days"].isna()
    assert result.n_failed == failed.sum() > 0
    assert list(result.failures["replicate"]) == list(np.flatnonzero(failed))
    assert result.failures["error"].str.contains("ValueError: slope above").all()
    assert (result.replicates.loc[~failed, "Days"] <= estimate).all()


def test_a_statistic_that_fails_on_the_original_fit_is_an_error():
    with pytest.raises(SpecError, match="raised on the original fit.*KeyError"):
        bootstrap(sleep_fit(), 5, statistic=lambda fit: fit.fixef["days"], progress=False)
    with pytest.raises(SpecError, match="whole number >= 1"):
        bootstrap(sleep_fit(), 0)


def test_percentile_and_basic_intervals():
    with ThreadPoolExecutor(2) as threads:
        result = bootstrap(sleep_fit(), 20, statistic=days_slope, seed=3, executor=threads,
                           progress=False)
    t = result.replicates["statistic"]
    percentile = result.intervals(0.9)
    assert list(percentile.columns) == ["5 %", "95 %", "estimate"]
    assert percentile.iloc[0, 0] == pytest.approx(t.quantile(0.05))
    assert percentile.iloc[0, 1] == pytest.approx(t.quantile(0.95))
    basic = result.intervals(0.9, method="basic")
    estimate = sleep_fit().fixef["Days"]
    assert basic.iloc[0, 0] == pytest.approx(2 * estimate - t.quantile(0.95))
    assert basic.iloc[0, 1] == pytest.approx(2 * estimate - t.quantile(0.05))
    # the replicates' spread is the slope's standard error (20 replicates: within 45%)
    assert t.std() == pytest.approx(sleep_fit().fixef_se["Days"], rel=0.45)
    with pytest.raises(SpecError, match="Did you mean 'basic'"):
        result.intervals(method="basics")


def test_confint_boot_is_the_bootstrap_percentile_interval():
    """confint(method="boot") has the profile's rows and the bootstrap's percentile bounds
    for the same seed."""
    fit = sleep_fit()
    with ThreadPoolExecutor(2) as threads:
        table = fit.confint(0.9, method="boot", n=12, seed=8, executor=threads, progress=False)
        direct = bootstrap(fit, 12, seed=8, executor=threads, progress=False).intervals(0.9)
    pd.testing.assert_frame_equal(table, direct)
    assert list(table.index) == ["sd_(Intercept)|Subject", "sigma", "(Intercept)", "Days"]
    with pytest.raises(SpecError, match="options of method='boot'"):
        fit.confint(method="profile", n=10)


def test_conditional_bootstrap_keeps_the_random_effects():
    """With the random effects kept at their modes (lme4's use.u = TRUE) only the residuals
    vary: the subjects' SD varies far less than with new random effects, and the intercept
    by its least-squares SE (4.3) instead of its mixed-model SE (9.5)."""
    fit = sleep_fit()
    with ThreadPoolExecutor(2) as threads:
        kept = bootstrap(fit, 20, seed=4, executor=threads, progress=False, conditional=True)
        new = bootstrap(fit, 20, seed=4, executor=threads, progress=False)
    sd = "sd_(Intercept)|Subject"
    assert new.replicates[sd].std() > 2 * kept.replicates[sd].std()
    assert kept.replicates["(Intercept)"].std() < 0.75 * fit.fixef_se["(Intercept)"]


def test_sem_bootstrap_spread_matches_the_standard_errors():
    """A wide-data SEM: data drawn from the implied moments and refitted with the fit's
    options. With 100 replicates the replicates' SDs of the free parameters are the Wald SEs
    (expected information) within 25% (Monte Carlo error of an SD: 7%); a := parameter is a
    column too, and a multi-group fit names the groups."""
    democracy = semgalamm.load_dataset("PoliticalDemocracy")
    fit = semgalamm.sem("ind60 =~ x1 + x2 + x3; dem60 =~ y1 + y2 + y3 + y4; "
                        "dem60 ~ a*ind60; y1 ~ b*x1; ab := a*b", democracy)
    with ThreadPoolExecutor(2) as threads:
        result = bootstrap(fit, 100, seed=6, executor=threads, progress=False)
    assert result.n_failed == 0 and "ab:=a*b" in result.replicates.columns
    table = fit.parameter_estimates()
    estimated = table[table["se"] > 0]
    se = pd.Series(estimated["se"].to_numpy(),
                   index=(estimated["lhs"] + estimated["op"] + estimated["rhs"]).to_list())
    ratio = result.replicates.std() / se[result.replicates.columns]
    assert ratio.between(0.75, 1.25).all(), ratio[~ratio.between(0.75, 1.25)]
    hs = semgalamm.load_dataset("HolzingerSwineford1939")
    grouped = semgalamm.cfa("visual =~ x1 + x2 + x3", hs, group="school",
                            group_equal=["loadings"])
    with ThreadPoolExecutor(2) as threads:
        replicates = bootstrap(grouped, 4, seed=1, executor=threads, progress=False).replicates
    # equal loadings across groups stay equal in every refit
    np.testing.assert_allclose(replicates["visual=~x2.g1"], replicates["visual=~x2.g2"])


def test_models_without_random_effects_bootstrap():
    """A Poisson GLM and a weighted linear model (no outer parameters: refitted in closed
    form): no failures, one column per parameter."""
    cbpp = semgalamm.load_dataset("cbpp")
    glm = semgalamm.fit("incidence ~ period + offset(np.log(size))", cbpp, family="poisson")
    sleep = semgalamm.load_dataset("sleepstudy")
    lm = semgalamm.fit("Reaction ~ Days", sleep, weights=np.ones(len(sleep)))
    with ThreadPoolExecutor(2) as threads:
        for fit, columns in ((glm, ["(Intercept)", "period2", "period3", "period4"]),
                             (lm, ["sigma", "(Intercept)", "Days"])):
            result = bootstrap(fit, 4, seed=3, executor=threads, progress=False)
            assert result.n_failed == 0 and list(result.replicates.columns) == columns
            assert result.replicates.notna().all().all()


def test_ordinal_refit_reads_the_new_categories():
    """An ordinal model refitted to simulated categories (the bootstrap's refit) equals the
    model fitted to a data frame holding them: each row's thresholds follow its new
    category; a short bootstrap of it has no failures."""
    wine = semgalamm.load_dataset("wine")
    model = "rating ~ temp + contact + (1 | judge)"
    fit = semgalamm.fit(model, wine, family="ordinal")
    codes = fit.simulate(1, seed=5).iloc[:, 0].to_numpy()
    counts = np.bincount(codes.astype(int))
    assert counts.size == 5 and np.all(counts > 0)  # every category drawn: a valid data set
    again = refit(fit, codes)
    direct = semgalamm.fit(model, wine.assign(rating=codes + 1), family="ordinal")
    assert again.loglik == pytest.approx(direct.loglik, abs=1e-3)
    np.testing.assert_allclose(again.optimizer.x, direct.optimizer.x, rtol=1e-3, atol=1e-4)
    with ThreadPoolExecutor(2) as threads:
        result = bootstrap(fit, 6, seed=2, executor=threads, progress=False)
    assert result.n_failed == 0 and "1|2" in result.replicates.columns
