"""simulate(): with many draws the simulated responses have the model's moments.

Tolerances are about five Monte Carlo standard errors (stated beside each check)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy.special import expit

import semgalamm
from semgalamm.errors import SpecError
from tests.conftest import load_csv

N_DRAWS = 4000


@cache
def sleep_fit(model: str = "Reaction ~ Days + (1 | Subject)"):
    return semgalamm.fit(model, semgalamm.load_dataset("sleepstudy"))


@cache
def cbpp_fit(family: str):
    cbpp = semgalamm.load_dataset("cbpp")
    model = ("cbind(incidence, size - incidence) ~ period + (1 | herd)" if family == "binomial"
             else "incidence ~ period + offset(np.log(size)) + (1 | herd)")
    return semgalamm.fit(model, cbpp, family=family)


def test_random_intercept_moments():
    """var(y) = sigma^2 + tau^2, cov within a subject = tau^2, 0 across subjects, mean X beta."""
    fit = sleep_fit()
    draws = fit.simulate(N_DRAWS, seed=1).to_numpy()
    tau2 = fit.varcorr()["variance"].iloc[0]
    sigma2 = fit.sigma**2
    mean = fit.predict(conditional=False)
    # the mean of 4000 draws has SE sqrt(var / 4000) ~ 0.9; 5 SE
    assert np.max(np.abs(draws.mean(axis=1) - mean)) < 5 * np.sqrt((tau2 + sigma2) / N_DRAWS) + 1
    cov = np.cov(draws)
    subject = fit.design.frame["Subject"].astype(str).to_numpy()
    same = (subject[:, None] == subject[None, :]) & ~np.eye(len(subject), dtype=bool)
    # averaged over rows the relative Monte Carlo error is about 1%; 5%
    assert np.mean(np.diag(cov)) == pytest.approx(tau2 + sigma2, rel=0.05)
    assert np.mean(cov[same]) == pytest.approx(tau2, rel=0.05)
    assert abs(np.mean(cov[~same & ~np.eye(len(subject), dtype=bool)])) < 0.05 * tau2


def test_random_slope_variance_grows_with_days():
    """var(y | Days = t) = sigma^2 + [1 t] Sigma [1 t]'."""
    fit = sleep_fit("Reaction ~ Days + (Days | Subject)")
    draws = fit.simulate(N_DRAWS, seed=2).to_numpy()
    vc = fit.varcorr()
    s0, s1 = vc["sd"].iloc[0], vc["sd"].iloc[1]
    c01 = vc["variance"].iloc[2]
    days = fit.design.frame["Days"].to_numpy(dtype=float)
    expected = fit.sigma**2 + s0**2 + 2 * days * c01 + days**2 * s1**2
    for t in (0, 9):
        rows = days == t
        assert np.mean(draws[rows].var(axis=1)) == pytest.approx(expected[rows][0], rel=0.06)


def test_conditional_draws_keep_the_modes():
    fit = sleep_fit()
    draws = fit.simulate(N_DRAWS, seed=3, conditional=True).to_numpy()
    np.testing.assert_allclose(draws.mean(axis=1), fit.fitted(),
                               atol=5 * fit.sigma / np.sqrt(N_DRAWS))
    assert np.mean(draws.var(axis=1)) == pytest.approx(fit.sigma**2, rel=0.03)


def test_binomial_and_poisson_moments():
    """Conditional draws: mean N p and variance N p (1 - p) (binomial successes), mean and
    variance mu (Poisson). New random effects: the mean integrates over b ~ N(0, tau^2)
    (Gauss-Hermite quadrature)."""
    binomial = cbpp_fit("binomial")
    trials = binomial.design.trials
    p = binomial.fitted()  # probabilities
    draws = binomial.simulate(N_DRAWS, seed=4, conditional=True).to_numpy()
    assert np.all(draws == np.round(draws)) and np.all((draws >= 0) & (draws.T <= trials).T)
    np.testing.assert_allclose(draws.mean(axis=1), trials * p, atol=0.1)
    np.testing.assert_allclose(draws.var(axis=1), trials * p * (1 - p), rtol=0.15, atol=0.05)
    draws = binomial.simulate(N_DRAWS, seed=5).to_numpy()
    tau = binomial.varcorr()["sd"].iloc[0]
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    nu = binomial.predict(conditional=False, type="link")
    marginal = expit(nu[:, None] + tau * nodes[None, :]) @ weights / weights.sum()
    np.testing.assert_allclose(draws.mean(axis=1), trials * marginal, atol=0.15)

    poisson = cbpp_fit("poisson")
    mu = poisson.fitted()
    draws = poisson.simulate(N_DRAWS, seed=6, conditional=True).to_numpy()
    np.testing.assert_allclose(draws.mean(axis=1), mu, atol=5 * np.sqrt(mu.max() / N_DRAWS))
    np.testing.assert_allclose(draws.var(axis=1), mu, rtol=0.15, atol=0.05)


def test_loadings_enter_the_variance():
    """abil ~ (1 | school/sid), item k loads lambda_k: var(y) = lambda_k^2 (tau_school^2 +
    tau_sid^2) + sigma^2, and two items of one student covary lambda_j lambda_k (...)."""
    data = load_csv("galamm_t_lmm_irtsub.csv")
    fit = semgalamm.fit("abil.sid =~ 1*item[1] + item[2] + item[3]; "
                        "abil.sid ~ (1 | school/sid); y ~ 0 + item", data)
    draws = fit.simulate(N_DRAWS, seed=7).to_numpy()
    lam = np.concatenate([[1.0], fit.state.lam])
    tau2 = fit.varcorr()["variance"].iloc[:2].sum()
    item = data["item"].to_numpy() - 1
    expected = lam[item] ** 2 * tau2 + fit.sigma**2
    assert np.mean(draws.var(axis=1)) == pytest.approx(np.mean(expected), rel=0.05)
    first = (data["item"] == 1).to_numpy()
    second = (data["item"] == 3).to_numpy() & data["sid"].isin(data.loc[first, "sid"]).to_numpy()
    one = data[first].reset_index().set_index("sid").loc[data.loc[second, "sid"], "index"]
    cov = np.mean([np.cov(draws[i], draws[j])[0, 1]
                   for i, j in zip(one.to_numpy(), np.flatnonzero(second))])
    assert cov == pytest.approx(lam[0] * lam[2] * tau2, rel=0.1)


def test_seeds_reproduce_and_bad_n_is_refused():
    fit = sleep_fit()
    a, b = fit.simulate(3, seed=11), fit.simulate(3, seed=11)
    assert a.equals(b) and list(a.columns) == ["sim_1", "sim_2", "sim_3"]
    assert a.index.equals(fit.rows)
    assert not a.equals(fit.simulate(3, seed=12))
    with pytest.raises(SpecError, match="whole number >= 1"):
        fit.simulate(0)


def test_prior_weights_scale_the_residual_variance():
    """Gaussian rows with prior weight w have residual variance sigma^2 / w (lme4)."""
    sleep = semgalamm.load_dataset("sleepstudy")
    weights = np.where(sleep["Days"].to_numpy() < 5, 1.0, 4.0)
    fit = semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep, weights=weights)
    draws = fit.simulate(N_DRAWS, seed=9, conditional=True).to_numpy()
    variance = draws.var(axis=1)
    assert np.mean(variance[weights == 1]) == pytest.approx(fit.sigma**2, rel=0.03)
    assert np.mean(variance[weights == 4]) == pytest.approx(fit.sigma**2 / 4, rel=0.03)


def test_regressions_among_latents_enter_predictions_and_draws():
    """ability ~ b*climate + (1 | school:pupil): a row of item a1 (loading 1 on ability) has
    variance b^2 tau_school^2 + tau_pupil^2 + sigma^2 (B through (I - B)^{-1}), and its
    conditional prediction at the fitted rows is the fitted linear predictor."""
    fit = semgalamm.fit("""
        climate =~ 1*item[c1] + item[c2] + item[c3]
        ability =~ 1*item[a1] + item[a2]
        climate ~ (1 | school)
        ability ~ climate + (1 | school:pupil)
        y ~ 0 + item
    """, semgalamm.load_dataset("schoolclimate"))
    np.testing.assert_allclose(fit.predict(), fit.linear_predictor(), atol=1e-10)
    b = fit.structural["estimate"].iloc[0]
    sd = fit.varcorr().set_index("group")["sd"]
    expected = b**2 * sd["school"] ** 2 + sd["school:pupil"] ** 2 + fit.sigma**2
    draws = fit.simulate(N_DRAWS, seed=10).to_numpy()
    rows = (fit.design.frame["item"] == "a1").to_numpy()
    assert np.mean(draws[rows].var(axis=1)) == pytest.approx(expected, rel=0.05)


def test_negative_binomial_and_gamma_moments():
    """Conditional draws: negative binomial mean mu and variance mu + mu^2 / size; Gamma mean
    mu and variance phi mu^2 (phi the dispersion, 1 / shape)."""
    ticks = load_csv("grouseticks.csv", {"YEAR": None, "BROOD": None})
    nb = semgalamm.fit("TICKS ~ YEAR + cHEIGHT + (1 | BROOD)", ticks,
                       family="negative_binomial")
    size = np.exp(nb.optimizer.x[-1])
    mu = nb.fitted()
    draws = nb.simulate(N_DRAWS, seed=12, conditional=True).to_numpy()
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    # relative Monte Carlo error of a variance with 4000 draws and overdispersion: ~5%
    assert np.mean(draws.mean(axis=1) / mu) == pytest.approx(1, abs=0.01)
    assert np.mean(draws.var(axis=1) / (mu + mu**2 / size)) == pytest.approx(1, abs=0.03)
    gamma = semgalamm.fit("y ~ x + (1 | g)", load_csv("gamma_sim.csv"), family="gamma")
    phi = np.exp(gamma.optimizer.x[-1])
    mu = gamma.fitted()
    draws = gamma.simulate(N_DRAWS, seed=13, conditional=True).to_numpy()
    assert draws.min() > 0
    assert np.mean(draws.mean(axis=1) / mu) == pytest.approx(1, abs=0.01)
    assert np.mean(draws.var(axis=1) / (phi * mu**2)) == pytest.approx(1, abs=0.03)


def test_ordinal_category_frequencies_are_the_model_probabilities():
    """wine (clmm's rating ~ temp + contact + (1 | judge)), draws with the random effects at
    their modes: each row's category frequencies over 4000 draws equal F's
    category_probabilities(fit) within 5 binomial SEs (360 row x category cells)."""
    from semgalamm.results.ordinal import category_probabilities

    wine = semgalamm.load_dataset("wine")
    fit = semgalamm.fit("rating ~ temp + contact + (1 | judge)", wine, family="ordinal")
    draws = fit.simulate(N_DRAWS, seed=3, conditional=True).to_numpy()
    probabilities = category_probabilities(fit).to_numpy()
    assert set(np.unique(draws)) == set(range(probabilities.shape[1]))  # codes 0..K-1
    frequencies = np.column_stack([(draws == k).mean(axis=1)
                                   for k in range(probabilities.shape[1])])
    se = np.sqrt(probabilities * (1 - probabilities) / N_DRAWS)
    assert np.all(np.abs(frequencies - probabilities) <= 5 * se + 1e-4)
