"""Response families and links, evaluated row by row, and the per-row derivatives the Laplace
engine needs.

A leaf module: it imports no other stage. ``RowFamilies`` holds a family code per row, so that
models with mixed response types use the same vectorized code as single-family models.

Per-row contract (every family implements it; the engine builds PIRLS, log|H| and the exact
gradient of the Laplace deviance from these numbers only). For a row with linear predictor
(nonlinear predictor, in GALAMM terms) nu, response y, prior weight w, trials N and family
parameters psi = (psi_0, psi_1) on the optimizer's scale (unused columns are ignored):

    loglik           l = log f(y | nu, psi), with all normalizing constants
    constant         c = the part of l that depends on the data (y, w, N) only: w log choose(N, y)
                     for binomial rows, -w log y! for counts, 0 otherwise (``loglik_constant``);
                     ``RowFamilies`` computes it once per design's arrays, not at every step
    score            dl/dnu
    weight           d, the weight put into H = A' D A + I and into PIRLS: the Fisher weight
                     w (dmu/dnu)^2 / (phi V(mu)) (lme4's choice) or the observed weight
                     -d2l/dnu2 (TMB's and ordinal::clmm's), as ``Family.laplace_weight`` says;
                     the two are equal for canonical links
    weight_nu        dd/dnu
    observed_weight  -d2l/dnu2
    loglik_psi, score_psi, weight_psi
                     d/dpsi of l, dl/dnu and d, each (m, 2) (column j: d/dpsi_j)

``RowTerms`` carries these arrays for the rows of one family (``Family.terms``) or of all rows
(``RowFamilies.terms``).

Family parameters psi: each row has up to two, gathered from the outer parameter vector by an
integer index (n, 2) (-1 = unused, psi = 0 there):

- Gaussian rows in the Laplace GLMM objective: psi_0 = log sigma of the row's residual
  variance group (the profiled Gaussian objective has no psi).
- negative binomial (NB2, Var y = mu + mu^2 / s): psi_0 = log s, the size.
- Gamma (Var y = phi mu^2, shape 1 / phi): psi_0 = log phi, the dispersion.
- ordinal (cumulative link, F(theta_j - nu) = P(y <= j)): psi_0 = theta_{y-1} and psi_1 =
  theta_y, the thresholds below and above the observed category, y coded 0..K-1 with
  trials = K - 1 (the number of thresholds); the first category has no threshold below
  (theta_{-1} = -inf), the last none above (theta_{K-1} = +inf).

Two mechanisms implement every family: a *cumulative link* F (logit, probit, cloglog) for
binomial and ordinal rows, where l is a sum of log F and log (1 - F) terms; and a *mean link*
mu = g^{-1}(nu) (log, identity, inverse) composed with a family written on the mean scale
(Poisson, negative binomial, Gamma): with l_k = d^k l / dmu^k and m_k = d^k mu / dnu^k,

    dl/dnu = l_1 m_1,   -d2l/dnu2 = -(l_2 m_1^2 + l_1 m_2),   Fisher = I(mu) m_1^2,
    I(mu) = -E l_2 = w / (phi V(mu)).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.special import digamma, expit, gammaln, log_ndtr, ndtri

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

#: The links each family accepts; the first is the default.
LINKS: dict[str, tuple[str, ...]] = {
    "gaussian": ("identity",),
    "binomial": ("logit", "probit", "cloglog"),
    "poisson": ("log", "identity"),
    "negative_binomial": ("log",),
    "gamma": ("log", "inverse", "identity"),
    "ordinal": ("logit", "probit", "cloglog"),
}

#: The canonical link of the families whose Fisher weight is their observed weight.
_CANONICAL = {"gaussian": "identity", "binomial": "logit", "poisson": "log"}

#: Other spellings of family names (R's and statsmodels').
_ALIASES = {"normal": "gaussian", "negbin": "negative_binomial", "nbinom2": "negative_binomial",
            "negative.binomial": "negative_binomial", "nb": "negative_binomial",
            "cumulative": "ordinal", "logistic": "logit"}


@dataclass(frozen=True)
class Family:
    """A response family with its link.

    ``has_dispersion``: a Gaussian residual variance (the design's variance groups).
    ``laplace_weight``: the weight in H = A' D A + I, "fisher" (lme4's glmer) or "observed"
    (the exact Hessian: glmmTMB, ordinal::clmm); equal for canonical links.
    ``parameter``: the name of psi_0 for families with one parameter per family ("log(size)",
    "log(dispersion)"); ordinal thresholds are named by the design.
    """

    name: str
    link: str
    has_dispersion: bool = False
    laplace_weight: str = "fisher"
    parameter: str | None = None

    def __post_init__(self) -> None:
        if self.link not in LINKS[self.name]:
            raise ValueError(
                f'The {self.name} family has no link "{self.link}". Use one of '
                f'{", ".join(repr(k) for k in LINKS[self.name])}.'
            )
        if self.laplace_weight not in ("fisher", "observed"):
            raise ValueError('laplace_weight is "fisher" or "observed".')

    @property
    def weight_is_observed(self) -> bool:
        """Whether the Laplace weight d equals -d2l/dnu2 at every nu: the observed weight,
        or the Fisher weight of a canonical link (identity, logit, log)."""
        return self.laplace_weight == "observed" or _CANONICAL.get(self.name) == self.link

    @property
    def spelling(self) -> str:
        """R's spelling: "binomial(link = 'probit')", or the name for the default link."""
        if self.link == LINKS[self.name][0]:
            return self.name
        return f"{self.name}(link = '{self.link}')"

    def check_response(self, y: FloatArray, trials: FloatArray) -> NDArray[np.bool_]:
        """Return a mask of rows whose response lies outside the family's support."""
        finite = np.isfinite(y)
        whole = np.isclose(y, np.round(y))
        if self.name == "binomial":
            return ~finite | (y < 0) | (y > trials) | ~whole
        if self.name in ("poisson", "negative_binomial"):
            return ~finite | (y < 0) | ~whole
        if self.name == "gamma":
            return ~finite | ~(y > 0)
        if self.name == "ordinal":
            return ~finite | (y < 0) | (y > trials) | ~whole
        return ~finite | ~np.isclose(trials, 1.0)

    def support_text(self) -> str:
        return {
            "binomial": "counts between 0 and the number of trials (0/1 for binary data)",
            "poisson": "non-negative integer counts",
            "negative_binomial": "non-negative integer counts",
            "gamma": "positive numbers",
            "ordinal": "ordered categories (an ordered categorical or integer column)",
        }.get(self.name, "finite numbers (and, with cbind(successes, failures), successes + "
                          "failures = 1, so that the first column is the Gaussian response)")

    def loglik(self, y, nu, w, trials, psi) -> FloatArray:
        """log f(y | nu, psi) for rows of this family."""
        return self.variable_loglik(y, nu, w, trials, psi) + self.loglik_constant(y, w, trials)

    def terms(self, y, nu, w, trials, psi) -> RowTerms:
        """The per-row contract (module docstring) for rows of this family."""
        terms = self.variable_terms(y, nu, w, trials, psi)
        return replace(terms, loglik=terms.loglik + self.loglik_constant(y, w, trials))

    def loglik_constant(self, y, w, trials) -> FloatArray:
        """c(y, w, N), the part of log f free of nu and psi (module docstring)."""
        return _CONSTANT[self.name](y, w, trials)

    def variable_loglik(self, y, nu, w, trials, psi) -> FloatArray:
        """log f(y | nu, psi) - c(y, w, N)."""
        return _LOGLIK[self.name](self, y, nu, w, trials, psi)

    def variable_terms(self, y, nu, w, trials, psi) -> RowTerms:
        """The per-row contract with loglik - c(y, w, N) in place of the loglik."""
        return _TERMS[self.name](self, y, nu, w, trials, psi)

    def mean(self, nu: FloatArray, trials: FloatArray) -> FloatArray:
        """mu = g^{-1}(nu) on the response scale (binomial: counts; ordinal: nan, see
        ``semgalamm.results.ordinal`` for category probabilities)."""
        if self.name == "gaussian":
            return nu.copy()
        if self.name == "binomial":
            return trials * np.exp(_CDF_LINKS[self.link].log_cdf(nu))
        if self.name == "ordinal":
            return np.full_like(nu, np.nan)
        return _MEAN_LINKS[self.link](nu)[0]

    def initial_predictor(self, y: FloatArray, trials: FloatArray) -> FloatArray:
        """g(mustart) as R's ``glm()``: y for Gaussian, (y + 0.5) / (N + 1) for binomial,
        y + 0.1 for counts, y for Gamma; 0 for ordinal rows (the thresholds carry the
        level)."""
        if self.name == "gaussian":
            return np.asarray(y, dtype=float).copy()
        if self.name == "binomial":
            return _CDF_LINKS[self.link].quantile((y + 0.5) / (trials + 1.0))
        if self.name == "ordinal":
            return np.zeros_like(y, dtype=float)
        mu = y + 0.1 if self.name != "gamma" else np.asarray(y, dtype=float)
        return {"log": np.log, "identity": np.asarray, "inverse": np.reciprocal}[self.link](mu)

    def cdf(self, x: FloatArray) -> FloatArray:
        """F(x) of a cumulative link (binomial and ordinal families)."""
        return np.exp(_CDF_LINKS[self.link].log_cdf(np.asarray(x, dtype=float)))

    def initial_threshold(self, cumulative: FloatArray) -> FloatArray:
        """Ordinal thresholds F^{-1}(P(y <= j)) at cumulative proportions (kept inside (0, 1)),
        the start of ordinal::clm."""
        return _CDF_LINKS[self.link].quantile(np.clip(cumulative, 1e-4, 1 - 1e-4))

    def variance(self, nu: FloatArray, trials: FloatArray) -> FloatArray:
        """V(mu) per row (times trials for binomial; Gamma: mu^2; negative binomial: mu, its
        Poisson part): Var y / phi. 1 for Gaussian and ordinal rows."""
        if self.name in ("gaussian", "ordinal"):
            return np.ones_like(nu)
        mu = self.mean(nu, trials)
        if self.name == "binomial":
            return mu * (1.0 - mu / trials)
        return mu**2 if self.name == "gamma" else mu


def gaussian() -> Family:
    return GAUSSIAN


def binomial(link: str = "logit") -> Family:
    """Binomial responses; link "logit" (canonical), "probit" or "cloglog"."""
    return Family("binomial", link)


def poisson(link: str = "log") -> Family:
    """Poisson counts; link "log" (canonical) or "identity"."""
    return Family("poisson", link)


def negative_binomial(link: str = "log", laplace_weight: str = "observed") -> Family:
    """NB2 counts (glmmTMB's nbinom2, lme4's glmer.nb): Var y = mu + mu^2 / size, size
    estimated. ``laplace_weight="fisher"`` reproduces glmer.nb's Laplace log-determinant."""
    return Family("negative_binomial", link, laplace_weight=laplace_weight,
                  parameter="log(size)")


def gamma(link: str = "log", laplace_weight: str = "observed") -> Family:
    """Gamma responses (glmmTMB's Gamma): Var y = phi mu^2, dispersion phi = 1 / shape."""
    return Family("gamma", link, laplace_weight=laplace_weight, parameter="log(dispersion)")


def ordinal(link: str = "logit") -> Family:
    """Ordered categories by a cumulative link (ordinal::clmm's): F(theta_j - nu) =
    P(y <= j), thresholds theta estimated, no intercept."""
    return Family("ordinal", link, laplace_weight="observed")


GAUSSIAN = Family("gaussian", "identity", has_dispersion=True)
BINOMIAL = binomial()
POISSON = poisson()

#: The families by name, each with its default link.
FAMILIES: dict[str, Family] = {
    f.name: f for f in (GAUSSIAN, BINOMIAL, POISSON, negative_binomial(), gamma(), ordinal())
}

_SPELLING = re.compile(
    r"""^\s*([A-Za-z_.]+)\s*(?:\(\s*(?:link\s*=\s*)?["']?([A-Za-z_]*)["']?\s*\))?\s*$""")


def get_family(name: str | Family) -> Family:
    """A family object from its name or R's spelling with a link: "ordinal",
    "binomial(link = 'probit')", "gamma(link='log')", "poisson(identity)" (case-insensitive).
    Raise ValueError naming the known families or the family's links."""
    if isinstance(name, Family):
        return name
    match = _SPELLING.match(str(name).lower())
    key = _ALIASES.get(match.group(1), match.group(1)) if match else None
    if key not in FAMILIES:
        known = ", ".join(f'"{k}"' for k in FAMILIES)
        raise ValueError(
            f'Unknown family "{name}". Use one of {known}, optionally with a link as R writes '
            "it: \"binomial(link = 'probit')\".")
    link = match.group(2)
    if not link:
        return FAMILIES[key]
    return replace(FAMILIES[key], link=_ALIASES.get(link, link))


def is_family(name: object) -> bool:
    """Whether ``name`` is a family object or a valid family spelling (with a valid link)."""
    try:
        get_family(name)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ThresholdSet:
    """The thresholds of one set of ordinal rows (an indicator level, or all ordinal rows):
    ``key`` ("item[2]", "" for one set), the category labels (K of them) and the position of
    the first of the K - 1 thresholds in the family-parameter vector."""

    key: str
    categories: tuple[str, ...]
    first: int


@dataclass(frozen=True)
class FamilyParameters:
    """The family parameters of a design beyond Gaussian residual SDs: ``names`` and ``start``
    of the parameter vector, and ``index`` (n, 2): the position in it of each row's psi_0 and
    psi_1 (-1 = unused). Ordinal rows: ``sets`` and each row's set ``row_set`` (-1 for rows
    of other families)."""

    names: tuple[str, ...]
    start: FloatArray
    index: IntArray
    sets: tuple[ThresholdSet, ...] = ()
    row_set: IntArray | None = None


@dataclass(frozen=True)
class RowFamilies:
    """A family per row: ``codes[i]`` indexes ``families``; ``parameters``: the family
    parameters (NB size, Gamma dispersion, ordinal thresholds) and where each row finds
    them, set by the design (None: none)."""

    families: tuple[Family, ...]
    codes: NDArray[np.intp]
    parameters: FamilyParameters | None = None
    #: [(y, weights, trials, c)] of the last arrays seen (``constant``)
    _constant_memo: list = field(default_factory=list, init=False, repr=False, compare=False)

    @staticmethod
    def single(family: Family, n: int) -> RowFamilies:
        return RowFamilies((family,), np.zeros(n, dtype=np.intp))

    @property
    def is_single(self) -> bool:
        return len(self.families) == 1

    def mask(self, name: str) -> NDArray[np.bool_]:
        """Rows of family ``name`` (any link)."""
        out = np.zeros(self.codes.shape, dtype=bool)
        for code, fam in enumerate(self.families):
            if fam.name == name:
                out |= self.codes == code
        return out

    @cached_property
    def _rows(self) -> tuple[tuple[Family, slice | NDArray[np.intp]], ...]:
        """Per family present, its rows as an index: ``slice(None)`` when it has every row
        (a view, no copy), else their positions. Computed once: evaluated in every step."""
        if self.is_single:
            return ((self.families[0], slice(None)),)
        return tuple((f, np.flatnonzero(self.codes == code))
                     for code, f in enumerate(self.families))

    @property
    def weight_is_observed(self) -> bool:
        """Every row's Laplace weight is its observed weight (``Family.weight_is_observed``):
        H = A' D A + I is then also the Hessian of the penalized log-likelihood."""
        return all(f.weight_is_observed for f in self.families)

    @property
    def all_gaussian(self) -> bool:
        return all(f.name == "gaussian" for f in self.families)

    def _by_family(self, method: str, nu: FloatArray, trials: FloatArray) -> FloatArray:
        out = np.empty_like(nu, dtype=float)
        for family, rows in self._rows:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out[rows] = getattr(family, method)(nu[rows], trials[rows])
        return out

    def mean(self, nu: FloatArray, trials: FloatArray) -> FloatArray:
        """mu = g^{-1}(nu), on the response (count) scale."""
        return self._by_family("mean", nu, trials)

    def initial_predictor(self, y: FloatArray, trials: FloatArray) -> FloatArray:
        """R's ``glm()`` start, ``g(mustart)`` (``Family.initial_predictor``): close to the
        data on every scale, so that IRLS from it never overflows."""
        return self._by_family("initial_predictor", np.asarray(y, dtype=float), trials)

    def variance(self, nu: FloatArray, trials: FloatArray) -> FloatArray:
        """V(mu) per row (``Family.variance``)."""
        return self._by_family("variance", nu, trials)

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
        for family, rows in self._rows:
            out[rows] = family.variable_loglik(y[rows], nu[rows], weights[rows], trials[rows],
                                               psi[rows])
        return out + self.constant(y, weights, trials)

    def constant(self, y: FloatArray, weights: FloatArray, trials: FloatArray) -> FloatArray:
        """c(y_i, w_i, N_i) per row (``Family.loglik_constant``), computed once for the same
        arrays (a design's, which are never changed in place) and reused at every step."""
        entry = self._constant_memo[0] if self._constant_memo else None  # read once: threads
        if entry is not None and entry[0] is y and entry[1] is weights and entry[2] is trials:
            return entry[3]
        out = np.empty(y.shape[0])
        for family, rows in self._rows:
            out[rows] = family.loglik_constant(y[rows], weights[rows], trials[rows])
        self._constant_memo[:] = [(y, weights, trials, out)]
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
        constant = self.constant(y, weights, trials)
        if self.is_single:
            out = self.families[0].variable_terms(y, nu, weights, trials, psi)
            return replace(out, loglik=out.loglik + constant)
        n = nu.shape[0]
        out = RowTerms(*(np.zeros(n) for _ in range(5)), *(np.zeros((n, 2)) for _ in range(3)))
        for family, rows in self._rows:
            part = family.variable_terms(y[rows], nu[rows], weights[rows], trials[rows],
                                         psi[rows])
            for name in _ROW_TERM_NAMES:
                getattr(out, name)[rows] = getattr(part, name)
        out.loglik[:] += constant
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


_ROW_TERM_NAMES = tuple(f.name for f in fields(RowTerms))


def _no_constant(y, w, trials) -> FloatArray:
    return np.zeros(y.shape[0])


def _binomial_constant(y, w, trials) -> FloatArray:
    """w log choose(N, y)."""
    return w * (gammaln(trials + 1.0) - gammaln(y + 1.0) - gammaln(trials - y + 1.0))


def _count_constant(y, w, trials) -> FloatArray:
    """-w log y!."""
    return -w * gammaln(y + 1.0)


# ------------------------------------------------------------------------------ Gaussian


def _gaussian_loglik(family, y, nu, w, trials, psi) -> FloatArray:
    """-(y - nu)^2 w / (2 phi) - log(2 pi phi / w) / 2, phi = exp(2 psi_0)."""
    log_var = 2.0 * psi[:, 0] - np.log(w)
    return -0.5 * ((y - nu) ** 2 * np.exp(-log_var) + np.log(2.0 * np.pi) + log_var)


def _gaussian_terms(family, y, nu, w, trials, psi) -> RowTerms:
    weight = w * np.exp(-2.0 * psi[:, 0])
    resid = y - nu
    score = weight * resid
    zero = np.zeros_like(nu)
    return RowTerms(
        loglik=_gaussian_loglik(family, y, nu, w, trials, psi), score=score, weight=weight,
        weight_nu=zero, observed_weight=weight,
        loglik_psi=np.column_stack([score * resid - 1.0, zero]),
        score_psi=np.column_stack([-2.0 * score, zero]),
        weight_psi=np.column_stack([-2.0 * weight, zero]),
    )


# ---------------------------------------------------------------- cumulative links F(x)


@dataclass(frozen=True)
class CdfLink:
    """A cumulative link: F(x) through log F, log(1 - F) and log f (stable in both tails),
    and g1 = f'/f, g2 = f''/f."""

    log_cdf: Callable[[FloatArray], FloatArray]
    log_sf: Callable[[FloatArray], FloatArray]
    log_pdf: Callable[[FloatArray], FloatArray]
    g1: Callable[[FloatArray], FloatArray]
    g2: Callable[[FloatArray], FloatArray]
    quantile: Callable[[FloatArray], FloatArray]
    logistic: bool = False  # f = F (1 - F): f/F, f/(1 - F), g1, g2 follow from F
    log_tails: Callable[[FloatArray], tuple[FloatArray, FloatArray]] | None = None

    def tails(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(log F(x), log(1 - F(x))), by one shared computation where the link has one."""
        if self.log_tails is not None:
            return self.log_tails(x)
        return self.log_cdf(x), self.log_sf(x)

    def density(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """f, f', f'' at x, 0 where x is infinite (the missing thresholds of ordinal rows)."""
        finite = np.isfinite(x)
        xs = np.where(finite, x, 0.0)
        f = np.where(finite, np.exp(self.log_pdf(xs)), 0.0)
        return f, f * self.g1(xs), f * self.g2(xs)


def _logit_tails(x):
    """-log(1 + e^-x) and -log(1 + e^x) from one exp and one log1p (np.logaddexp's formula)."""
    shared = np.log1p(np.exp(-np.abs(x)))
    return -(np.maximum(-x, 0.0) + shared), -(np.maximum(x, 0.0) + shared)


def _logit_g2(x):
    s = np.tanh(x / 2.0)  # 1 - 2F = -tanh(x/2)
    return s**2 - 2.0 * expit(x) * expit(-x)


_CDF_LINKS = {
    "logit": CdfLink(
        log_cdf=lambda x: -np.logaddexp(0.0, -x), log_sf=lambda x: -np.logaddexp(0.0, x),
        log_pdf=lambda x: -np.logaddexp(0.0, -x) - np.logaddexp(0.0, x),
        g1=lambda x: -np.tanh(x / 2.0), g2=_logit_g2,
        quantile=lambda p: np.log(p) - np.log1p(-p), logistic=True,
        log_tails=_logit_tails),
    "probit": CdfLink(
        log_cdf=log_ndtr, log_sf=lambda x: log_ndtr(-x),
        log_pdf=lambda x: -0.5 * x**2 - 0.5 * np.log(2.0 * np.pi),
        g1=lambda x: -x, g2=lambda x: x**2 - 1.0,
        quantile=ndtri),
    "cloglog": CdfLink(
        log_cdf=lambda x: np.log(-np.expm1(-np.exp(x))), log_sf=lambda x: -np.exp(x),
        log_pdf=lambda x: x - np.exp(x),
        g1=lambda x: 1.0 - np.exp(x), g2=lambda x: (1.0 - np.exp(x)) ** 2 - np.exp(x),
        quantile=lambda p: np.log(-np.log1p(-p))),
}


def _binomial_loglik(family, y, nu, w, trials, psi) -> FloatArray:
    """w (y log F(nu) + (N - y) log(1 - F(nu))), R's wt * dbinom() without the constant
    w log choose(N, y)."""
    link = _CDF_LINKS[family.link]
    with np.errstate(over="ignore", divide="ignore"):
        return _binomial_value(y, w, trials, *link.tails(nu))


def _binomial_value(y, w, trials, log_cdf, log_sf) -> FloatArray:
    """w (y log F + (N - y) log(1 - F)) from log F and log(1 - F); a term with count 0 is 0
    also where its log is -inf (nu = -inf or +inf)."""
    with np.errstate(invalid="ignore"):
        value = y * log_cdf + (trials - y) * log_sf
        if not np.isfinite(value).all():
            value = (np.where(y > 0, y * log_cdf, 0.0)
                     + np.where(trials > y, (trials - y) * log_sf, 0.0))
    return w * value


def _binomial_terms(family, y, nu, w, trials, psi) -> RowTerms:
    """With r1 = f/F, r2 = f/(1 - F): dl/dnu = w (y r1 - (N - y) r2), Fisher weight
    w N r1 r2, dr1/dnu = r1 (g1 - r1), dr2/dnu = r2 (g1 + r2)."""
    link = _CDF_LINKS[family.link]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_cdf, log_sf = link.tails(nu)
        if link.logistic:  # r1 = 1 - F, r2 = F, g1 = 1 - 2F, g2 = g1^2 - 2 F (1 - F)
            r1, r2 = np.exp(log_sf), np.exp(log_cdf)
            g1 = r1 - r2
            g2 = g1**2 - 2.0 * r1 * r2
        else:
            log_f = link.log_pdf(nu)
            r1 = np.exp(log_f - log_cdf)
            r2 = np.exp(log_f - log_sf)
            g1, g2 = link.g1(nu), link.g2(nu)
        fail = trials - y
        score = w * (y * r1 - fail * r2)
        fisher = w * trials * r1 * r2
        fisher_nu = fisher * (2.0 * g1 - r1 + r2)
        dr1, dr2, dg1 = r1 * (g1 - r1), r2 * (g1 + r2), g2 - g1**2
        observed = -w * (y * dr1 - fail * dr2)
        observed_nu = -w * (y * (dr1 * g1 + r1 * dg1 - 2.0 * r1 * dr1)
                            - fail * (dr2 * g1 + r2 * dg1 + 2.0 * r2 * dr2))
    loglik = _binomial_value(y, w, trials, log_cdf, log_sf)
    return _choose_weight(family, loglik, score, fisher, fisher_nu, observed, observed_nu)


def _choose_weight(family, loglik, score, fisher, fisher_nu, observed, observed_nu,
                   psi_terms=None) -> RowTerms:
    """RowTerms with the family's Laplace weight (and its psi derivatives: a tuple
    (loglik_psi, score_psi, fisher_psi, observed_psi) of (m,) arrays for psi_0)."""
    use_observed = family.laplace_weight == "observed"
    zero = np.zeros((loglik.shape[0], 2))
    if psi_terms is None:
        derivatives = (zero, zero, zero)
    else:
        l_psi, s_psi, fisher_psi, observed_psi = psi_terms
        column = np.zeros_like(l_psi)
        derivatives = tuple(np.column_stack([v, column]) for v in (
            l_psi, s_psi, observed_psi if use_observed else fisher_psi))
    return RowTerms(loglik, score, observed if use_observed else fisher,
                    observed_nu if use_observed else fisher_nu, observed, *derivatives)


# ------------------------------------------------------------------------ ordinal rows


def _ordinal_bounds(family, y, nu, trials, psi):
    """x_lo = theta_{y-1} - nu and x_hi = theta_y - nu (-inf / +inf beyond the end
    categories) and p = F(x_hi) - F(x_lo), from whichever tail is accurate."""
    lo = np.where(y > 0, psi[:, 0] - nu, -np.inf)
    hi = np.where(y < trials, psi[:, 1] - nu, np.inf)
    link = _CDF_LINKS[family.link]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        upper = lo > 0  # both in the upper tail: 1 - F(x_lo) - (1 - F(x_hi))
        p = np.where(upper, np.exp(link.log_sf(lo)) - np.exp(link.log_sf(hi)),
                     np.exp(link.log_cdf(hi)) - np.exp(link.log_cdf(lo)))
    return lo, hi, p


def _ordinal_loglik(family, y, nu, w, trials, psi) -> FloatArray:
    """w log(F(theta_y - nu) - F(theta_{y-1} - nu)); -inf where the thresholds are not
    increasing."""
    _, _, p = _ordinal_bounds(family, y, nu, trials, psi)
    with np.errstate(divide="ignore", invalid="ignore"):
        return w * np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf)


def _ordinal_terms(family, y, nu, w, trials, psi) -> RowTerms:
    """With a = theta_{y-1} - nu, b = theta_y - nu, p = F(b) - F(a), D = f(a) - f(b) = dp/dnu,
    D2 = f'(b) - f'(a) = dD/dnu, D3 = f''(a) - f''(b):

        dl/dnu = D / p,   -d2l/dnu2 = D^2/p^2 - D2/p,   d/dnu of that: 3 D D2/p^2 - 2 D^3/p^3 - D3/p

    and by the thresholds psi_0 = theta_{y-1} (da = dpsi_0), psi_1 = theta_y; all times w. The
    Laplace weight is the observed one (clmm's)."""
    lo, hi, p = _ordinal_bounds(family, y, nu, trials, psi)
    link = _CDF_LINKS[family.link]
    fa, fa1, fa2 = link.density(lo)
    fb, fb1, fb2 = link.density(hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(p > 0, 1.0 / p, np.nan)
        D, D2, D3 = fa - fb, fb1 - fa1, fa2 - fb2
        score = D * inv
        observed = score**2 - D2 * inv
        observed_nu = 3.0 * D * D2 * inv**2 - 2.0 * score**3 - D3 * inv
        loglik_psi = np.column_stack([-fa * inv, fb * inv])
        score_psi = np.column_stack([fa1 * inv + D * fa * inv**2, -fb1 * inv - D * fb * inv**2])
        weight_psi = np.column_stack([
            2.0 * D * fa1 * inv**2 + 2.0 * D**2 * fa * inv**3 + fa2 * inv - D2 * fa * inv**2,
            -2.0 * D * fb1 * inv**2 - 2.0 * D**2 * fb * inv**3 - fb2 * inv + D2 * fb * inv**2,
        ])
    loglik = _ordinal_loglik(family, y, nu, w, trials, psi)
    wc = w[:, None]
    return RowTerms(loglik, w * score, w * observed, w * observed_nu, w * observed,
                    wc * loglik_psi, wc * score_psi, wc * weight_psi)


# ------------------------------------------------------- mean links mu = g^{-1}(nu)


def _log_link(nu):
    with np.errstate(over="ignore"):
        mu = np.exp(nu)
    return mu, nu, mu, mu, mu


def _identity_link(nu):
    one, zero = np.ones_like(nu), np.zeros_like(nu)
    with np.errstate(divide="ignore", invalid="ignore"):
        return nu, np.log(nu), one, zero, zero


def _inverse_link(nu):
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = 1.0 / nu
        return mu, -np.log(nu), -mu**2, 2.0 * mu**3, -6.0 * mu**4


#: link name -> nu -> (mu, log mu, dmu/dnu, d2mu/dnu2, d3mu/dnu3)
_MEAN_LINKS = {"log": _log_link, "identity": _identity_link, "inverse": _inverse_link}


@dataclass(frozen=True)
class MeanScale:
    """A family on the mean scale at one (y, mu, psi_0): l (``loglik``, without the constant
    c(y, w, N)) and l_k = d^k l / dmu^k, the Fisher information I(mu) = -E l_2 and dI/dmu,
    and the psi_0 derivatives of l, l_1, l_2, I."""

    loglik: FloatArray
    l1: FloatArray
    l2: FloatArray
    l3: FloatArray
    info: FloatArray
    info_mu: FloatArray
    l_psi: FloatArray
    l1_psi: FloatArray
    l2_psi: FloatArray
    info_psi: FloatArray


def _poisson_mean_scale(y, mu, log_mu, psi) -> MeanScale:
    """l = y log mu - mu (- log y!, the constant)."""
    zero = np.zeros_like(mu)
    with np.errstate(invalid="ignore"):
        ylog = np.where(y > 0, y * log_mu, 0.0)
    return MeanScale(ylog - mu, y / mu - 1.0, -y / mu**2, 2.0 * y / mu**3,
                     1.0 / mu, -1.0 / mu**2, zero, zero, zero, zero)


def _nb_mean_scale(y, mu, log_mu, psi) -> MeanScale:
    """NB2 with size s = exp(psi_0): l = log Gamma(y + s) - log Gamma(s) - log y! +
    s log(s / (mu + s)) + y log(mu / (mu + s)) (without the constant - log y!);
    I = s / (mu (mu + s))."""
    s = np.exp(psi[:, 0])
    ms = mu + s
    log_ms = np.logaddexp(log_mu, psi[:, 0])
    ylog = np.where(y > 0, y * (log_mu - log_ms), 0.0)
    value = gammaln(y + s) - gammaln(s) + s * (psi[:, 0] - log_ms) + ylog
    return MeanScale(
        loglik=value, l1=y / mu - (y + s) / ms, l2=-y / mu**2 + (y + s) / ms**2,
        l3=2.0 * y / mu**3 - 2.0 * (y + s) / ms**3,
        info=s / (mu * ms), info_mu=-s * (2.0 * mu + s) / (mu * ms) ** 2,
        l_psi=s * (digamma(y + s) - digamma(s) + psi[:, 0] + 1.0 - log_ms - (y + s) / ms),
        l1_psi=s * (y - mu) / ms**2, l2_psi=s * (mu - s - 2.0 * y) / ms**3,
        info_psi=s / ms**2)


def _gamma_mean_scale(y, mu, log_mu, psi) -> MeanScale:
    """Shape k = exp(-psi_0): l = k log(k y / mu) - k y / mu - log y - log Gamma(k);
    I = k / mu^2."""
    k = np.exp(-psi[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        log_y = np.log(y)
        ratio = y / mu
        value = k * (-psi[:, 0] + log_y - log_mu) - k * ratio - log_y - gammaln(k)
        l1 = k * (y - mu) / mu**2
        l2 = k * (1.0 / mu**2 - 2.0 * y / mu**3)
        return MeanScale(
            loglik=value, l1=l1, l2=l2, l3=k * (6.0 * y / mu**4 - 2.0 / mu**3),
            info=k / mu**2, info_mu=-2.0 * k / mu**3,
            l_psi=-k * (-psi[:, 0] + log_y - log_mu + 1.0 - ratio - digamma(k)),
            l1_psi=-l1, l2_psi=-l2, info_psi=-k / mu**2)


_MEAN_SCALE = {"poisson": _poisson_mean_scale, "negative_binomial": _nb_mean_scale,
               "gamma": _gamma_mean_scale}


def _mean_scale(family, y, nu, psi):
    mu, log_mu, m1, m2, m3 = _MEAN_LINKS[family.link](nu)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _MEAN_SCALE[family.name](y, mu, log_mu, psi), mu, m1, m2, m3


def _mean_link_loglik(family, y, nu, w, trials, psi) -> FloatArray:
    """w l(y, g^{-1}(nu)); -inf where the mean leaves (0, inf) (identity, inverse links)."""
    parts, mu, *_ = _mean_scale(family, y, nu, psi)
    return np.where(mu > 0, w * parts.loglik, -np.inf)


def _mean_link_terms(family, y, nu, w, trials, psi) -> RowTerms:
    """The chain rule through mu = g^{-1}(nu) (module docstring)."""
    parts, mu, m1, m2, m3 = _mean_scale(family, y, nu, psi)
    q = parts
    with np.errstate(over="ignore", invalid="ignore"):
        score = w * q.l1 * m1
        observed = -w * (q.l2 * m1**2 + q.l1 * m2)
        observed_nu = -w * (q.l3 * m1**3 + 3.0 * q.l2 * m1 * m2 + q.l1 * m3)
        fisher = w * q.info * m1**2
        fisher_nu = w * (q.info_mu * m1**3 + 2.0 * q.info * m1 * m2)
        psi_terms = None
        if family.parameter is not None:
            psi_terms = (w * q.l_psi, w * q.l1_psi * m1,
                         w * q.info_psi * m1**2, -w * (q.l2_psi * m1**2 + q.l1_psi * m2))
    loglik = np.where(mu > 0, w * q.loglik, -np.inf)
    return _choose_weight(family, loglik, score, fisher, fisher_nu, observed, observed_nu,
                          psi_terms)


_CONSTANT = {"gaussian": _no_constant, "binomial": _binomial_constant, "ordinal": _no_constant,
             "poisson": _count_constant, "negative_binomial": _count_constant,
             "gamma": _no_constant}
_LOGLIK = {"gaussian": _gaussian_loglik, "binomial": _binomial_loglik,
           "ordinal": _ordinal_loglik, "poisson": _mean_link_loglik,
           "negative_binomial": _mean_link_loglik, "gamma": _mean_link_loglik}
_TERMS = {"gaussian": _gaussian_terms, "binomial": _binomial_terms,
          "ordinal": _ordinal_terms, "poisson": _mean_link_terms,
          "negative_binomial": _mean_link_terms, "gamma": _mean_link_terms}
