"""The per-row contract of every family and link (semgalamm/families.py) against finite
differences: score = dl/dnu, observed weight = -d2l/dnu2, weight_nu = d(weight)/dnu, and the
derivatives by the family parameters psi; the Fisher weight against its expectation."""

from __future__ import annotations

import numpy as np
import pytest

from semgalamm import families as F

CASES = [
    F.binomial("logit"), F.binomial("probit"), F.binomial("cloglog"),
    F.poisson("log"), F.poisson("identity"),
    F.negative_binomial(), F.negative_binomial(laplace_weight="fisher"),
    F.gamma("log"), F.gamma("inverse"), F.gamma("identity"),
    F.ordinal("logit"), F.ordinal("probit"), F.ordinal("cloglog"), F.GAUSSIAN,
]


def _rows(family: F.Family, rng: np.random.Generator, n: int = 40):
    """Responses, predictors, weights, trials and psi in the family's support."""
    w = rng.uniform(0.5, 2.0, n)
    psi = np.column_stack([rng.normal(0.3, 0.3, n), np.zeros(n)])
    trials = np.ones(n)
    if family.name == "binomial":
        trials = rng.integers(1, 6, n).astype(float)
        nu = rng.normal(0, 1.5, n)
        y = rng.binomial(trials.astype(int), 0.4).astype(float)
    elif family.name in ("poisson", "negative_binomial"):
        nu = rng.uniform(0.2, 2.5, n) if family.link == "identity" else rng.normal(0.5, 1, n)
        y = rng.poisson(2.0, n).astype(float)
    elif family.name == "gamma":
        nu = rng.uniform(0.3, 2.0, n) if family.link != "log" else rng.normal(0, 1, n)
        y = rng.gamma(2.0, 1.0, n)
    elif family.name == "ordinal":
        thresholds = np.array([-1.0, 0.2, 1.5])
        trials = np.full(n, 3.0)
        y = rng.integers(0, 4, n).astype(float)
        psi = np.column_stack([thresholds[np.maximum(y.astype(int) - 1, 0)],
                               thresholds[np.minimum(y.astype(int), 2)]])
        psi[y == 0, 0] = 0.0
        psi[y == 3, 1] = 0.0
        nu = rng.normal(0, 1.5, n)
    else:
        nu, y = rng.normal(0, 1, n), rng.normal(0, 1, n)
    return y, nu, w, trials, psi


@pytest.mark.parametrize("family", CASES, ids=lambda f: f"{f.name}-{f.link}-{f.laplace_weight}")
def test_derivatives_equal_finite_differences(family):
    rng = np.random.default_rng(13)
    y, nu, w, trials, psi = _rows(family, rng)
    h = 1e-5
    t = family.terms(y, nu, w, trials, psi)
    up, down = (family.terms(y, nu + s, w, trials, psi) for s in (h, -h))
    assert np.allclose(t.loglik, family.loglik(y, nu, w, trials, psi))
    assert np.all(np.isfinite(t.loglik))
    assert np.allclose(t.score, (up.loglik - down.loglik) / (2 * h), rtol=1e-6, atol=1e-7)
    assert np.allclose(t.observed_weight, -(up.score - down.score) / (2 * h), rtol=1e-6,
                       atol=1e-7)
    assert np.allclose(t.weight_nu, (up.weight - down.weight) / (2 * h), rtol=1e-5, atol=1e-6)
    used = [0, 1] if family.name == "ordinal" else [0] if family.name != "binomial" and \
        family.name != "poisson" else []
    for j in used:
        if family.name == "ordinal":  # the end categories do not use one of the thresholds
            active = (y > 0) if j == 0 else (y < 3)
        else:
            active = np.ones(y.size, dtype=bool)
        step = np.zeros_like(psi)
        step[:, j] = h
        plus, minus = (family.terms(y, nu, w, trials, psi + s) for s in (step, -step))
        for name in ("loglik", "score", "weight"):
            numeric = (getattr(plus, name) - getattr(minus, name)) / (2 * h)
            exact = getattr(t, f"{name}_psi")[:, j]
            assert np.allclose(exact[active], numeric[active], rtol=1e-5, atol=1e-6), name
            assert np.allclose(exact[~active], 0.0)


@pytest.mark.parametrize("family", [f for f in CASES if f.name in
                                    ("binomial", "poisson", "negative_binomial", "gamma")],
                         ids=lambda f: f"{f.name}-{f.link}")
def test_fisher_weight_is_expected_observed_weight(family):
    """E[-d2l/dnu2] over y = the Fisher weight, by simulation of y at each row's mean."""
    rng = np.random.default_rng(5)
    _, nu, w, trials, psi = _rows(family, rng, n=6)
    fisher = F.replace(family, laplace_weight="fisher")
    mu = family.mean(nu, trials)
    draws = 200_000
    for i in range(nu.size):
        if family.name == "binomial":
            y = rng.binomial(int(trials[i]), mu[i] / trials[i], draws).astype(float)
        elif family.name == "poisson":
            y = rng.poisson(mu[i], draws).astype(float)
        elif family.name == "negative_binomial":
            size = np.exp(psi[i, 0])
            y = rng.negative_binomial(size, size / (size + mu[i]), draws).astype(float)
        else:
            shape = np.exp(-psi[i, 0])
            y = rng.gamma(shape, mu[i] / shape, draws)
        ones = np.ones(draws)
        t = fisher.terms(y, nu[i] * ones, w[i] * ones, trials[i] * ones,
                         np.tile(psi[i], (draws, 1)))
        assert t.observed_weight.mean() == pytest.approx(t.weight[0], rel=0.03)


def test_spelling():
    assert F.get_family("binomial(link='probit')") == F.binomial("probit")
    assert F.get_family('binomial(link = "cloglog")') == F.binomial("cloglog")
    assert F.get_family("ordinal(link='probit')") == F.ordinal("probit")
    assert F.get_family("Gamma(link='log')") == F.gamma()
    assert F.get_family("poisson(identity)") == F.poisson("identity")
    assert F.get_family("negative_binomial") == F.negative_binomial()
    assert F.get_family(F.gamma("inverse")).link == "inverse"
    with pytest.raises(ValueError, match="'logit', 'probit', 'cloglog'"):
        F.get_family("binomial(link='logt')")
    with pytest.raises(ValueError, match='Unknown family "tweedie"'):
        F.get_family("tweedie")


def test_canonical_binomial_and_poisson_unchanged():
    """The logit and log links through the general code equal the canonical formulas."""
    rng = np.random.default_rng(1)
    nu = rng.normal(0, 2, 30)
    trials = rng.integers(1, 8, 30).astype(float)
    y = rng.binomial(trials.astype(int), 0.3).astype(float)
    t = F.BINOMIAL.terms(y, nu, np.ones(30), trials, np.zeros((30, 2)))
    p = 1 / (1 + np.exp(-nu))
    assert np.allclose(t.score, y - trials * p)
    assert np.allclose(t.weight, trials * p * (1 - p))
    counts = rng.poisson(3, 30).astype(float)
    t = F.POISSON.terms(counts, nu, np.ones(30), np.ones(30), np.zeros((30, 2)))
    assert np.allclose(t.score, counts - np.exp(nu))
    assert np.allclose(t.weight, np.exp(nu))
