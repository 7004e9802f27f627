"""Response families with their canonical links, evaluated row by row.

A leaf module: it imports no other stage. Every family is an exponential family with the
canonical link, so for a row with linear predictor (nonlinear predictor, in GALAMM terms)
nu, prior weight w, dispersion phi and trials N (binomial):

    log f(y | nu) = w (y nu - N b(nu)) / phi + c(y, phi)
    d log f / d nu      = w (y - mu) / phi,           mu = N b'(nu)
    -d^2 log f / d nu^2 = w N b''(nu) / phi

``RowFamilies`` holds a family code per row, so that models with mixed response types use the
same vectorized code as single-family models.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit, gammaln

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Family:
    """A response family: its name, canonical link and whether it has a free dispersion."""

    name: str
    link: str
    has_dispersion: bool

    def check_response(self, y: FloatArray, trials: FloatArray) -> NDArray[np.bool_]:
        """Return a mask of rows whose response lies outside the family's support."""
        finite = np.isfinite(y)
        if self.name == "binomial":
            return ~finite | (y < 0) | (y > trials) | ~np.isclose(y, np.round(y))
        if self.name == "poisson":
            return ~finite | (y < 0) | ~np.isclose(y, np.round(y))
        return ~finite | ~np.isclose(trials, 1.0)

    def support_text(self) -> str:
        return {
            "binomial": "counts between 0 and the number of trials (0/1 for binary data)",
            "poisson": "non-negative integer counts",
        }.get(self.name, "finite numbers (and, with cbind(successes, failures), successes + "
                          "failures = 1, so that the first column is the Gaussian response)")


GAUSSIAN = Family("gaussian", "identity", True)
BINOMIAL = Family("binomial", "logit", False)
POISSON = Family("poisson", "log", False)

FAMILIES: dict[str, Family] = {f.name: f for f in (GAUSSIAN, BINOMIAL, POISSON)}


def get_family(name: str) -> Family:
    """Look a family up by name (case-insensitive); raise ValueError naming the known ones."""
    key = str(name).strip().lower()
    if key not in FAMILIES:
        known = ", ".join(f'"{k}"' for k in FAMILIES)
        raise ValueError(f'Unknown family "{name}". Use one of {known}.')
    return FAMILIES[key]


@dataclass(frozen=True)
class RowFamilies:
    """A family per row: ``codes[i]`` indexes ``families``.

    Gaussian rows may carry a dispersion phi_i (residual variance); other rows have phi = 1.
    """

    families: tuple[Family, ...]
    codes: NDArray[np.intp]

    @staticmethod
    def single(family: Family, n: int) -> RowFamilies:
        return RowFamilies((family,), np.zeros(n, dtype=np.intp))

    @property
    def is_single(self) -> bool:
        return len(self.families) == 1

    def mask(self, name: str) -> NDArray[np.bool_]:
        """Rows of family ``name``."""
        out = np.zeros(self.codes.shape, dtype=bool)
        for code, fam in enumerate(self.families):
            if fam.name == name:
                out |= self.codes == code
        return out

    @cached_property
    def _rows(self) -> dict[str, slice | NDArray[np.intp]]:
        """Per family present, its rows as an index: ``slice(None)`` when it has every row
        (a view, no copy), else their positions. Computed once: evaluated in every step."""
        if self.is_single:
            return {self.families[0].name: slice(None)}
        return {f.name: np.flatnonzero(self.mask(f.name)) for f in self.families}

    @property
    def all_gaussian(self) -> bool:
        return all(f.name == "gaussian" for f in self.families)

    def mean(self, nu: FloatArray, trials: FloatArray) -> FloatArray:
        """mu = g^{-1}(nu), on the response (count) scale."""
        mu = nu.copy()
        if (b := self._rows.get("binomial")) is not None:
            mu[b] = trials[b] * expit(nu[b])
        if (p := self._rows.get("poisson")) is not None:
            with np.errstate(over="ignore"):  # inf at a trial point: the point is infeasible
                mu[p] = np.exp(nu[p])
        return mu

    def initial_predictor(self, y: FloatArray, trials: FloatArray) -> FloatArray:
        """R's ``glm()`` start, ``g(mustart)``: y for Gaussian rows, log(y + 0.1) for Poisson
        rows, logit((y + 0.5) / (N + 1)) for binomial rows (y successes of N trials). Close
        to the data on every scale, so that IRLS from it never overflows (a start at nu = 0
        puts Poisson counts of 1000 a thousand standard errors away)."""
        nu = np.asarray(y, dtype=float).copy()
        if (b := self._rows.get("binomial")) is not None:
            p = (y[b] + 0.5) / (trials[b] + 1.0)
            nu[b] = np.log(p) - np.log1p(-p)
        if (p := self._rows.get("poisson")) is not None:
            nu[p] = np.log(y[p] + 0.1)
        return nu

    def variance(self, nu: FloatArray, trials: FloatArray) -> FloatArray:
        """b''(nu) per row (times trials for binomial): the Fisher weight before w/phi."""
        v = np.ones_like(nu)
        if (b := self._rows.get("binomial")) is not None:
            pb = expit(nu[b])
            v[b] = trials[b] * pb * (1.0 - pb)
        if (p := self._rows.get("poisson")) is not None:
            with np.errstate(over="ignore"):
                v[p] = np.exp(nu[p])
        return v

    def loglik(
        self,
        y: FloatArray,
        nu: FloatArray,
        weights: FloatArray,
        trials: FloatArray,
        phi: FloatArray,
    ) -> FloatArray:
        """log f(y_i | nu_i) per row, with all normalizing constants."""
        out = np.empty_like(nu)
        if (g := self._rows.get("gaussian")) is not None:
            var = phi[g] / weights[g]
            out[g] = -0.5 * ((y[g] - nu[g]) ** 2 / var + np.log(2.0 * np.pi * var))
        if (b := self._rows.get("binomial")) is not None:
            yb, nb, eb = y[b], trials[b], nu[b]
            log1pexp = np.logaddexp(0.0, eb)
            const = gammaln(nb + 1.0) - gammaln(yb + 1.0) - gammaln(nb - yb + 1.0)
            out[b] = weights[b] * (yb * eb - nb * log1pexp + const)  # R: wt * dbinom()
        if (p := self._rows.get("poisson")) is not None:
            yp, ep = y[p], nu[p]
            with np.errstate(over="ignore"):
                out[p] = weights[p] * (yp * ep - np.exp(ep) - gammaln(yp + 1.0))  # wt * dpois()
        return out
