"""confint(method="profile") against lme4's confint(fit, method = "profile") (1e-2, the
issue's tolerance; the largest difference seen is 1e-4), and the likelihood-ratio property
of a loading's interval, checked in the optimizer's own parameters."""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

import semgalamm
from semgalamm.errors import SpecError
from semgalamm.inference.profile import ProfileWarning
from semgalamm.optimize import minimize_deviance
from tests.conftest import fixture, load_csv

DATA = {"sleepstudy": lambda: semgalamm.load_dataset("sleepstudy"),
        "penicillin": lambda: load_csv("Penicillin.csv"),
        "cbpp": lambda: semgalamm.load_dataset("cbpp")}


@cache
def our_fit(case: str):
    ref = fixture("inference")[case]
    return semgalamm.fit(ref["model"], DATA[case](), family="binomial" if case == "cbpp"
                         else "gaussian")


def lme4_table(case: str) -> pd.DataFrame:
    ref = fixture("inference")[case]["profile"]
    return pd.DataFrame({"lower": ref["lower"], "upper": ref["upper"]},
                        index=ref["parameter"])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["sleepstudy", "penicillin", "cbpp"])
def test_profile_intervals_equal_lme4(case):
    """SDs and correlations of the random effects, sigma and fixed effects (cbpp: a binomial
    GLMM, where beta is an outer parameter)."""
    ours = our_fit(case).confint(method="profile")
    theirs = lme4_table(case)
    assert sorted(ours.index) == sorted(theirs.index)
    assert list(ours.columns) == ["2.5 %", "97.5 %", "estimate"]
    np.testing.assert_allclose(ours.loc[theirs.index, "2.5 %"], theirs["lower"], atol=1e-2)
    np.testing.assert_allclose(ours.loc[theirs.index, "97.5 %"], theirs["upper"], atol=1e-2)


def test_profile_of_one_parameter_and_level():
    """Penicillin's sigma (a fast single profile); 90% intervals lie inside 95% ones."""
    fit = our_fit("penicillin")
    ours = fit.confint(method="profile", parm="sigma")
    theirs = lme4_table("penicillin").loc["sigma"]
    assert ours.loc["sigma", "2.5 %"] == pytest.approx(theirs["lower"], abs=1e-2)
    assert ours.loc["sigma", "97.5 %"] == pytest.approx(theirs["upper"], abs=1e-2)
    narrow = fit.confint(0.9, method="profile", parm=["sigma"])
    assert ours.iloc[0, 0] < narrow.iloc[0, 0] < fit.sigma < narrow.iloc[0, 1] < ours.iloc[0, 1]


@pytest.mark.slow
def test_a_loading_interval_ends_where_the_lr_statistic_is_the_chi_square_quantile():
    """At each end v of a loading's interval, minimizing the deviance over all other
    parameters in the optimizer's own parametrization (theta, the other loading; the loading
    held at v by lower = upper in a copy of the layout) gives deviance - deviance_hat = 3.84."""
    data = load_csv("galamm_t_lmm_irtsub.csv")
    fit = semgalamm.fit("abil.sid =~ 1*item[1] + item[2] + item[3]; "
                        "abil.sid ~ (1 | school/sid); y ~ 0 + item", data)
    name = "abil.sid=~item[2]"
    interval = fit.confint(method="profile", parm=name)
    layout = fit.laplace.layout
    j = layout.names.index(name)
    q = chi2.ppf(0.95, 1)
    for end in interval.iloc[0, :2]:
        lower, upper = layout.lower.copy(), layout.upper.copy()
        lower[j] = upper[j] = end
        x0 = fit.optimizer.x.copy()
        x0[j] = end
        opt = minimize_deviance(fit.laplace.deviance, x0,
                                replace(layout, lower=lower, upper=upper))
        assert opt.deviance - fit.deviance == pytest.approx(q, abs=2e-3)
    assert interval.iloc[0, 0] < fit.state.lam[0] < interval.iloc[0, 1]


@pytest.mark.slow
def test_a_non_reference_residual_sd_interval_equals_it_as_the_reference_group():
    """Heteroscedastic Gaussian rows (y ~~ (1 | item)): item 2's residual SD, profiled through
    sigma exp(rho_2), has the interval it gets as the reference group (item relabelled to
    sort first), where it is the profiled sigma itself."""
    data = load_csv("hsced.csv")
    model = "y ~ x + (1 | id); y ~~ (1 | item)"
    fit = semgalamm.fit(model, data)
    relabelled = semgalamm.fit(model, data.assign(item=data["item"].map({1: "b", 2: "a"})))
    assert fit.residual_sd()["sd"].iloc[1] == pytest.approx(
        relabelled.residual_sd()["sd"].iloc[0], rel=1e-4)
    ours = fit.confint(method="profile", parm="sigma 2")
    reference = relabelled.confint(method="profile", parm="sigma a")
    np.testing.assert_allclose(ours.iloc[0, :2], reference.iloc[0, :2], rtol=2e-4)
    assert ours.iloc[0, 0] < ours.iloc[0, 2] < ours.iloc[0, 1]


@pytest.mark.slow
def test_a_fixed_effect_on_a_latent_interval_ends_where_the_lr_statistic_is_the_quantile():
    """abil.sid ~ x: the column x enters multiplied by the latent's row loadings. At each end
    v of its interval, the deviance with x ell(lambda) v in the offset, minimized over the
    optimizer's own parameters (theta, loadings; sigma profiled analytically), exceeds the
    fit's by 3.84; the interval is near the Wald one (300 rows)."""
    from semgalamm.laplace.model import LaplaceModel

    data = load_csv("galamm_t_lmm_irtsub.csv")
    data["x"] = np.random.default_rng(1).normal(size=len(data))
    fit = semgalamm.fit("abil.sid =~ 1*item[1] + item[2] + item[3]; "
                        "abil.sid ~ x + (1 | school/sid); y ~ 0 + item", data)
    name = "abil.sid:x"
    d = fit.design
    j = d.fixed_names.index(name)
    assert d.fixed_latent[j] == 0
    interval = fit.confint(method="profile", parm=name)
    reduced = replace(d, X0=np.delete(d.X0, j, axis=1), fixed_names=d.fixed_names[:j] +
                      d.fixed_names[j + 1:], fixed_latent=d.fixed_latent[:j] +
                      d.fixed_latent[j + 1:])
    layout = fit.laplace.layout
    for end in interval.iloc[0, :2]:
        def deviance(x, end=end):
            ell = d.row_loadings(layout.unpack(x)["lambda"])[:, 0]
            offset = d.offset + end * d.X0[:, j] * ell
            return LaplaceModel.create(replace(reduced, offset=offset)).deviance(x)

        opt = minimize_deviance(deviance, fit.optimizer.x.copy(), layout)
        assert opt.deviance - fit.deviance == pytest.approx(chi2.ppf(0.95, 1), abs=2e-3)
    wald = fit.confint().loc[name]
    np.testing.assert_allclose(interval.iloc[0, :2], wald[["2.5 %", "97.5 %"]],
                               atol=0.1 * (wald["97.5 %"] - wald["2.5 %"]))


def test_an_sd_at_zero_has_lower_end_zero_with_a_warning():
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"y": rng.normal(size=40), "g": np.repeat(np.arange(8), 5)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = semgalamm.fit("y ~ 1 + (1 | g)", data)
    assert fit.is_singular
    with pytest.warns(ProfileWarning, match="sd_\\(Intercept\\)\\|g .*bound 0"):
        table = fit.confint(method="profile", parm="sd_(Intercept)|g")
    assert table.iloc[0, 0] == 0.0 and table.iloc[0, 1] > 0.1


@pytest.mark.slow
def test_profile_of_a_reml_fit_equals_lme4():
    """lme4 profiles a REML fit on the deviance of its ML refit (devfun2's refitML); the
    estimate column keeps the REML estimates."""
    ref = fixture("inference")["sleepstudy_reml"]
    fit = semgalamm.fit(ref["model"], semgalamm.load_dataset("sleepstudy"), reml=True)
    assert fit.deviance == pytest.approx(ref["REMLcrit"], abs=2e-3)
    ours = fit.confint(method="profile")
    theirs = lme4_table("sleepstudy_reml")
    assert sorted(ours.index) == sorted(theirs.index)
    np.testing.assert_allclose(ours.loc[theirs.index, "2.5 %"], theirs["lower"], atol=1e-2)
    np.testing.assert_allclose(ours.loc[theirs.index, "97.5 %"], theirs["upper"], atol=1e-2)
    assert ours.loc["sigma", "estimate"] == pytest.approx(fit.sigma)


def test_profile_refuses_unknown_names():
    fit = our_fit("penicillin")
    with pytest.raises(SpecError, match="Did you mean 'sigma'"):
        fit.confint(method="profile", parm="sigm")
    with pytest.raises(SpecError, match="Did you mean 'profile'"):
        fit.confint(method="profil")
    # Wald stays the default, with today's columns
    assert list(fit.confint().columns) == ["estimate", "2.5 %", "97.5 %"]
    assert list(fit.confint(parm="(Intercept)").index) == ["(Intercept)"]
