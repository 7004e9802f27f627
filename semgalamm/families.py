"""Response families, evaluated row by row, and the per-row derivatives the Laplace engine needs.

A leaf module: it imports no other stage. ``RowFamilies`` holds a family code per row, so that
models with mixed response types use the same vectorized code as single-family models.

Per-row contract (every family implements it; the engine builds PIRLS, log|H| and the exact
gradient of the Laplace deviance from these numbers only). For a row with linear predictor
(nonlinear predictor, in GALAMM terms) nu, response y, prior weight w, trials N and family
parameters psi = (psi_0, psi_1) on the optimizer's scale (unused columns are ignored):

    loglik           l = log f(y | nu, psi), with all normalizing constants
    score            dl/dnu
    weight           d, the weight put into H = A' D A + I and into PIRLS: the Fisher weight
                     w (dmu/dnu)^2 / (phi V(mu)) (= -d2l/dnu2 for canonical links)
    weight_nu        dd/dnu
    observed_weight  -d2l/dnu2 (differs from ``weight`` only for non-canonical links)
    loglik_psi, score_psi, weight_psi
                     d/dpsi of l, dl/dnu and d, each (m, 2) (column j: d/dpsi_j)

``RowTerms`` carries these arrays for the rows of one family (``row_terms``) or of all rows
(``RowFamilies.terms``). A new family supplies ``loglik`` and ``terms`` functions in
``_ROW_FUNCTIONS``.

Family parameters psi: each row has up to two, gathered from the outer parameter vector by an
integer index (n, 2) held by the design (-1 = unused, psi = 0 there). Gaussian rows in the
Laplace GLMM objective: psi_0 = log sigma of the row's residual variance group, phi =
exp(2 psi_0). (The profiled Gaussian objective has no psi: its residual SD ratios enter as
weights.)

Canonical links, as implemented here (w prior weight, phi dispersion):

    log f(y | nu) = w (y nu - N b(nu)) / phi + c(y, phi)
    d log f / d nu      = w (y - mu) / phi,           mu = N b'(nu)
    -d^2 log f / d nu^2 = w N b''(nu) / phi
"""


from __future__ import annotations

from dataclasses import dataclass, fields
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
        psi: FloatArray,
    ) -> FloatArray:
        """log f(y_i | nu_i, psi_i) per row, with all normalizing constants; psi is (n, 2)."""
        out = np.empty_like(nu)
        for name, rows in self._rows.items():
            loglik = _ROW_FUNCTIONS[name][0]
            out[rows] = loglik(y[rows], nu[rows], weights[rows], trials[rows], psi[rows])
        return out

    def terms(
        self,
        y: FloatArray,
        nu: FloatArray,
        weights: FloatArray,
        trials: FloatArray,
        psi: FloatArray,
    ) -> RowTerms:
        """The per-row contract (module docstring) for all rows."""
        if self.is_single:
            return _ROW_FUNCTIONS[self.families[0].name][1](y, nu, weights, trials, psi)
        n = nu.shape[0]
        out = RowTerms(*(np.zeros(n) for _ in range(5)), *(np.zeros((n, 2)) for _ in range(3)))
        for name, rows in self._rows.items():
            part = _ROW_FUNCTIONS[name][1](y[rows], nu[rows], weights[rows], trials[rows],
                                           psi[rows])
            for field in fields(RowTerms):
                getattr(out, field.name)[rows] = getattr(part, field.name)
        return out


@dataclass(frozen=True)
class RowTerms:
    """Per-row log-likelihood and derivatives (module docstring), arrays over rows."""

    loglik: FloatArray
    score: FloatArray
    weight: FloatArray
    weight_nu: FloatArray
    observed_weight: FloatArray
    loglik_psi: FloatArray
    score_psi: FloatArray
    weight_psi: FloatArray


def _gaussian_loglik(y, nu, w, trials, psi) -> FloatArray:
    """-(y - nu)^2 w / (2 phi) - log(2 pi phi / w) / 2, phi = exp(2 psi_0)."""
    log_var = 2.0 * psi[:, 0] - np.log(w)
    return -0.5 * ((y - nu) ** 2 * np.exp(-log_var) + np.log(2.0 * np.pi) + log_var)


def _gaussian_terms(y, nu, w, trials, psi) -> RowTerms:
    weight = w * np.exp(-2.0 * psi[:, 0])
    resid = y - nu
    score = weight * resid
    zero = np.zeros_like(nu)
    return RowTerms(
        loglik=_gaussian_loglik(y, nu, w, trials, psi), score=score, weight=weight,
        weight_nu=zero, observed_weight=weight,
        loglik_psi=np.column_stack([score * resid - 1.0, zero]),
        score_psi=np.column_stack([-2.0 * score, zero]),
        weight_psi=np.column_stack([-2.0 * weight, zero]),
    )


def _binomial_loglik(y, nu, w, trials, psi) -> FloatArray:
    """w (y nu - N log(1 + e^nu) + log choose(N, y)): R's wt * dbinom()."""
    const = gammaln(trials + 1.0) - gammaln(y + 1.0) - gammaln(trials - y + 1.0)
    return w * (y * nu - trials * np.logaddexp(0.0, nu) + const)


def _binomial_terms(y, nu, w, trials, psi) -> RowTerms:
    p = expit(nu)
    weight = w * trials * p * (1.0 - p)
    return _no_parameter_terms(_binomial_loglik(y, nu, w, trials, psi),
                               w * (y - trials * p), weight, weight * (1.0 - 2.0 * p))


def _poisson_loglik(y, nu, w, trials, psi) -> FloatArray:
    """w (y nu - e^nu - log y!): R's wt * dpois()."""
    with np.errstate(over="ignore"):  # -inf at a trial point: the point is infeasible
        return w * (y * nu - np.exp(nu) - gammaln(y + 1.0))


def _poisson_terms(y, nu, w, trials, psi) -> RowTerms:
    with np.errstate(over="ignore"):
        weight = w * np.exp(nu)
    return _no_parameter_terms(_poisson_loglik(y, nu, w, trials, psi), w * y - weight,
                               weight, weight)


def _no_parameter_terms(loglik, score, weight, weight_nu) -> RowTerms:
    """Terms of a canonical-link family without family parameters."""
    zero = np.zeros((loglik.shape[0], 2))
    return RowTerms(loglik, score, weight, weight_nu, weight, zero, zero, zero)


#: Per family name: (loglik, terms), functions of (y, nu, weights, trials, psi) for its rows.
_ROW_FUNCTIONS = {
    "gaussian": (_gaussian_loglik, _gaussian_terms),
    "binomial": (_binomial_loglik, _binomial_terms),
    "poisson": (_poisson_loglik, _poisson_terms),
}
