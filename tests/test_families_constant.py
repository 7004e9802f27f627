"""RowFamilies computes the data-only part of the log-likelihood, c(y, w, N), once per set of
arrays: its rows' log-likelihoods equal each family's own (with every constant), also when the
arrays change (a bootstrap response), and R's dbinom/dpois constants are in them."""

from __future__ import annotations

import numpy as np
from scipy import stats

from semgalamm import families as F


def _mixed_rows(rng: np.random.Generator, n: int = 30):
    codes = np.arange(n) % 3  # binomial, Poisson, Gaussian rows
    trials = np.where(codes == 0, rng.integers(1, 6, n), 1).astype(float)
    y = np.where(codes == 0, rng.binomial(trials.astype(int), 0.4),
                 np.where(codes == 1, rng.poisson(2.0, n), rng.normal(0, 1, n))).astype(float)
    rows = F.RowFamilies((F.BINOMIAL, F.POISSON, F.GAUSSIAN), codes.astype(np.intp))
    return rows, y, rng.normal(0, 1, n), rng.uniform(0.5, 2.0, n), trials, codes


def test_row_logliks_equal_each_familys_own_also_after_new_arrays():
    rng = np.random.default_rng(5)
    rows, y, nu, w, trials, codes = _mixed_rows(rng)
    psi = np.zeros((y.size, 2))
    for response in (y, np.where(codes == 1, y + 1.0, y)):  # a second response: recomputed
        for _ in range(2):  # the second call reuses the constant
            value = rows.loglik(response, nu, w, trials, psi)
            terms = rows.terms(response, nu, w, trials, psi)
            for code, family in enumerate(rows.families):
                mask = codes == code
                own = family.loglik(response[mask], nu[mask], w[mask], trials[mask], psi[mask])
                assert np.allclose(value[mask], own, rtol=1e-13, atol=1e-13)
                assert np.allclose(terms.loglik[mask], own, rtol=1e-13, atol=1e-13)


def test_constants_are_rs_dbinom_and_dpois():
    rng = np.random.default_rng(6)
    rows, y, nu, w, trials, codes = _mixed_rows(rng)
    w = np.ones_like(w)
    mu = 1.0 / (1.0 + np.exp(-nu))
    expected = np.where(codes == 0, stats.binom.logpmf(y, trials.astype(int), mu),
                        np.where(codes == 1, stats.poisson.logpmf(y, np.exp(nu)),
                                 stats.norm.logpdf(y, nu, 1.0)))
    value = rows.loglik(y, nu, w, trials, np.zeros((y.size, 2)))
    assert np.allclose(value, expected, rtol=1e-12, atol=1e-12)
