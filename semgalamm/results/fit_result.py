"""FitResult: the estimates of a finished fit, as tidy pandas objects.

Derived quantities (standard errors, fitted values) are computed on first use and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import xlogy

from semgalamm.laplace.model import LaplaceModel
from semgalamm.laplace.objective import LaplaceState
from semgalamm.optimize import OptResult
from semgalamm.spec.model_spec import ModelSpec
from semgalamm.syntax.nodes import ModelSyntax


@dataclass
class FitResult:
    """A fitted GALAMM.

    Attributes
    ----------
    model: the model string.  spec: its meaning (ModelSpec).  optimizer: the OptResult.
    loglik, deviance (-2 loglik), aic, bic, nobs, df (number of estimated parameters).
    """

    model: str
    syntax: ModelSyntax = field(repr=False)
    spec: ModelSpec = field(repr=False)
    laplace: LaplaceModel = field(repr=False)
    optimizer: OptResult = field(repr=False)
    state: LaplaceState = field(repr=False)

    @classmethod
    def from_fit(cls, model: str, syntax: ModelSyntax, spec: ModelSpec,
                 laplace: LaplaceModel, opt: OptResult) -> FitResult:
        return cls(model, syntax, spec, laplace, opt, laplace.state(opt.x))

    # ------------------------------------------------------------------ fit statistics
    @property
    def design(self):
        return self.laplace.design

    @property
    def nobs(self) -> int:
        return self.design.n

    @property
    def deviance(self) -> float:
        """-2 log L at the optimum (the REML criterion for REML fits)."""
        return self.state.deviance

    @property
    def loglik(self) -> float:
        return -0.5 * self.state.deviance

    @property
    def df(self) -> int:
        d = self.design
        kinds = dict(self.laplace.layout.kinds)
        n_sigma = 1 if self.laplace.profiled else int("log_sigma" in kinds)
        return len(d.theta_names()) + d.p + d.n_lambda + n_sigma

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.df

    @property
    def bic(self) -> float:
        return self.deviance + np.log(self.nobs) * self.df

    @property
    def converged(self) -> bool:
        return bool(self.optimizer.converged and self.state.converged)

    @property
    def sigma(self) -> float:
        """Residual standard deviation of Gaussian rows (nan if there are none)."""
        if self.laplace.profiled:
            return self.state.sigma
        parts = self.laplace.layout.unpack(self.optimizer.x)
        return float(np.exp(parts["log_sigma"][0])) if "log_sigma" in parts else float("nan")

    @property
    def theta(self) -> pd.Series:
        """Relative covariance factor elements (lme4's theta)."""
        return pd.Series(self.state.theta, index=self.design.theta_names(), name="theta")

    @property
    def is_singular(self) -> bool:
        """A variance on its boundary; a smooth's variance at 0 is not (a smooth reduced to its
        unpenalized part, e.g. a straight line)."""
        lower = self.design.theta_lower()
        smooth = np.concatenate([np.full(b.n_theta, b.scalar) for b in self.design.blocks]
                                or [np.zeros(0, dtype=bool)])
        return bool(np.any((lower == 0) & ~smooth & (self.state.theta < 1e-6)))

    # ------------------------------------------------------------------ estimates
    @property
    def fixef(self) -> pd.Series:
        """Fixed effects beta."""
        return pd.Series(self.state.beta, index=list(self.design.fixed_names), name="estimate")

    @cached_property
    def _covariance(self) -> pd.DataFrame:
        names, cov = self.laplace.covariance(self.optimizer.x, self.state)
        return pd.DataFrame(cov, index=names, columns=names)

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects and free loadings (inverse observed
        information over all parameters, as galamm)."""
        return self._covariance.copy()

    @property
    def fixef_se(self) -> pd.Series:
        names = list(self.design.fixed_names)
        se = np.sqrt(np.diag(self._covariance.loc[names, names].to_numpy()))
        return pd.Series(se, index=names, name="se")

    @property
    def loadings(self) -> pd.DataFrame | None:
        """Loadings as an indicator x latent table, with a standard-error column per latent
        (None when the model has no latent variables)."""
        from semgalamm.results.tables import loading_table

        return loading_table(self)

    def loading_estimates(self) -> pd.DataFrame | None:
        """Loadings in tidy form: latent, indicator, estimate, se, free, label."""
        from semgalamm.results.tables import loading_estimates

        return loading_estimates(self)

    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Wald confidence intervals of the fixed effects and free loadings."""
        from scipy.stats import norm

        cov = self._covariance
        names = list(cov.index)
        estimate = np.concatenate([self.state.beta, self.state.lam])
        se = np.sqrt(np.diag(cov.to_numpy()))
        z = norm.ppf(0.5 + level / 2)
        lo, hi = f"{100 * (1 - level) / 2:g} %", f"{100 * (1 + level) / 2:g} %"
        return pd.DataFrame({"estimate": estimate, lo: estimate - z * se,
                             hi: estimate + z * se}, index=names)

    def _block_covariances(self) -> list[np.ndarray]:
        out, start = [], 0
        scale = self.state.sigma if self.laplace.profiled else 1.0
        for block in self.design.blocks:
            T = block.factor(self.state.theta[start:start + block.n_theta]) * scale
            start += block.n_theta
            out.append(T @ T.T)
        return out

    def varcorr(self) -> pd.DataFrame:
        """Variance components: one row per variance (sd filled) and per covariance
        (correlation filled), then the residual variance for Gaussian rows."""
        rows = []
        for block, cov in zip(self.design.blocks, self._block_covariances()):
            sd = np.sqrt(np.diag(cov))
            if block.scalar:  # a smooth's penalized coefficients: one variance
                rows.append((block.group, None, None, cov[0, 0], sd[0], np.nan))
                continue
            for i, term in enumerate(block.columns):
                rows.append((block.group, term, None, cov[i, i], sd[i], np.nan))
            for j in range(block.k):
                for i in range(j + 1, block.k):
                    corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else np.nan
                    rows.append((block.group, block.columns[j], block.columns[i], cov[i, j],
                                 np.nan, corr))
        if np.isfinite(self.sigma):
            rows.append(("Residual", None, None, self.sigma**2, self.sigma, np.nan))
        return pd.DataFrame(rows, columns=["group", "term1", "term2", "variance", "sd",
                                           "correlation"])

    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects b = Lambda_theta u, per grouping factor."""
        out, start, theta_start = {}, 0, 0
        scale = self.state.sigma if self.laplace.profiled else 1.0
        for block in self.design.blocks:
            size = block.k * block.n_levels
            u = self.state.u[start:start + size].reshape(block.n_levels, block.k)
            T = block.factor(self.state.theta[theta_start:theta_start + block.n_theta])
            start += size
            theta_start += block.n_theta
            frame = pd.DataFrame(scale * u @ T.T, index=list(block.levels),
                                 columns=list(block.columns))
            frame.index.name = block.group
            out[block.group if block.group not in out else f"{block.group}.{len(out)}"] = frame
        return out

    # ------------------------------------------------------------------ fitted values
    def linear_predictor(self) -> np.ndarray:
        """nu = X(lambda) beta + Z(lambda) b at the conditional modes."""
        return self.state.nu.copy()

    def fitted(self) -> np.ndarray:
        """Fitted means on the response scale (binomial: probabilities)."""
        d = self.design
        return d.families.mean(self.state.nu, np.ones(d.n))

    def residuals(self, type: str = "response") -> np.ndarray:
        """Residuals: "response" (y - mu, binomial on the proportion scale), "pearson" or
        "deviance"."""
        d = self.design
        fam = d.families
        y = d.y / d.trials
        mu = self.fitted()
        raw = y - mu
        if type == "response":
            return raw
        var = fam.variance(self.state.nu, np.ones(d.n)) / d.trials
        sigma2 = self.sigma**2 if np.isfinite(self.sigma) else 1.0
        var = np.where(fam.mask("gaussian"), sigma2, var)
        if type == "pearson":
            return raw / np.sqrt(var)
        if type == "deviance":
            return np.sign(raw) * np.sqrt(np.maximum(self._unit_deviance(y, mu), 0.0))
        raise ValueError(f'type must be "response", "pearson" or "deviance", not "{type}".')

    def _unit_deviance(self, y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        d = self.design
        fam = d.families
        dev = (y - mu) ** 2
        b = fam.mask("binomial")
        n = d.trials[b]
        dev[b] = 2 * n * (xlogy(y[b], y[b] / mu[b]) + xlogy(1 - y[b], (1 - y[b]) / (1 - mu[b])))
        p = fam.mask("poisson")
        dev[p] = 2 * (xlogy(y[p], y[p] / mu[p]) - (y[p] - mu[p]))
        return dev

    # ------------------------------------------------------------------ smooth terms
    def smooths(self) -> pd.DataFrame:
        """Each smooth's effective degrees of freedom, basis dimension and variance."""
        from semgalamm.results.smooths import smooth_table

        return smooth_table(self)

    def smooth(self, term: str | int = 0, at=None, n: int = 100) -> pd.DataFrame:
        """The estimated smooth ``term`` (label such as "s(x)", or position) at ``at`` (or n
        points over the data's range): estimate, se, and se_with_mean (mgcv's seWithMean)."""
        from semgalamm.results.smooths import smooth_values

        return smooth_values(self, term, at, n)

    def plot_smooth(self, term: str | int = 0, **options):
        """Plot a smooth with its confidence band (matplotlib); see results.smooths."""
        from semgalamm.results.smooths import plot_smooth

        return plot_smooth(self, term, **options)

    def predict(self, newdata: pd.DataFrame, type: str = "link") -> np.ndarray:
        """Population-level predictions at new data: fixed part and smooths, random effects
        at 0 ("link" scale, or "response")."""
        from semgalamm.results.smooths import predict

        return predict(self, newdata, type)

    def summary(self) -> str:
        from semgalamm.results.summary import format_summary

        return format_summary(self)

    def __repr__(self) -> str:
        return (f"<FitResult {self.model!r}: logLik {self.loglik:.3f}, {self.nobs} rows, "
                f"{'converged' if self.converged else 'NOT converged'}>")
