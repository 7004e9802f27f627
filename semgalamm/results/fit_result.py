"""FitResult: the estimates of a finished fit, as tidy pandas objects.

Properties hold what the fit is (numbers, flags, named estimates: ``fit.loglik``,
``fit.fixef``); methods compute or lay out something on request and are always called
(``fit.varcorr()``, ``fit.confint(0.9)``): the rule is in docs/results.md. Derived quantities
(standard errors, fitted values) are computed on first use and cached.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from semgalamm.laplace.model import LaplaceModel
from semgalamm.laplace.objective import LaplaceState
from semgalamm.optimize import OptResult
from semgalamm.results.checks import check_level, estimate_frame, estimate_series
from semgalamm.results.summary import SummaryText
from semgalamm.spec.model_spec import ModelSpec
from semgalamm.syntax.nodes import ModelSyntax


@dataclass
class FitResult:
    """A fitted GALAMM.

    Attributes
    ----------
    model: the model string.  spec: its meaning (ModelSpec).  optimizer: the OptResult.
    loglik, deviance (-2 loglik), aic, bic, nobs, npar (number of estimated parameters).
    rows: the index of the data rows used.  families: each family with its link, number of
    rows and the indicators it covers.

    Properties (no parentheses) hold numbers, flags and named estimates: loglik, deviance,
    aic, bic, nobs, npar, converged, is_singular, sigma, fixef, fixef_se, theta, loadings,
    structural. Methods compute on request: vcov(), confint(level, method), varcorr(), ranef(),
    residual_sd(), loading_estimates(), fitted(), residuals(type), smooths(), smooth(term),
    plot_smooth(term), predict(newdata), simulate(n), summary(), tidy(), glance(), augment(data),
    plot_diagnostics(), plot_ranef(), path_diagram() (docs/results.md, docs/output.md).
    """

    model: str
    syntax: ModelSyntax = field(repr=False)
    spec: ModelSpec = field(repr=False)
    laplace: LaplaceModel = field(repr=False)
    optimizer: OptResult = field(repr=False)
    state: LaplaceState = field(repr=False)
    rows: pd.Index = field(repr=False)
    families: pd.DataFrame = field(repr=False)

    @classmethod
    def from_fit(cls, model: str, syntax: ModelSyntax, spec: ModelSpec, laplace: LaplaceModel,
                 opt: OptResult, rows: pd.Index, families: pd.DataFrame) -> FitResult:
        """``rows``: the index of the data rows the model was fitted to; ``families``: the
        family table (family, link, rows, indicators)."""
        return cls(model, syntax, spec, laplace, opt, laplace.state(opt.x), rows, families)

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
    def npar(self) -> int:
        """Number of estimated parameters: variance parameters, fixed effects, free loadings
        and regressions among latents, residual variances (lme4's logLik df)."""
        d = self.design
        family = d.families.parameters  # NB size, Gamma dispersion, ordinal thresholds
        return len(d.theta_names()) + d.p + d.n_lambda + d.n_dispersion + \
            (0 if family is None else len(family.names))

    @property
    def df(self) -> int:
        """Deprecated spelling of ``npar`` (for SEMs "df" means the model's degrees of
        freedom, so the number of parameters is ``npar`` for every fit)."""
        warnings.warn("FitResult.df is deprecated: use fit.npar (the number of estimated "
                      "parameters, the name SemFit uses too).", DeprecationWarning,
                      stacklevel=2)
        return self.npar

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.npar

    @property
    def bic(self) -> float:
        return self.deviance + np.log(self.nobs) * self.npar

    @property
    def converged(self) -> bool:
        return bool(self.optimizer.converged and self.state.converged)

    @property
    def sigma(self) -> float:
        """Residual standard deviation of Gaussian rows, of the reference (first) group when
        it differs by group (nan if there are no Gaussian rows)."""
        sds = self._group_sigma()
        return float(sds[0]) if sds.size else float("nan")

    def _group_sigma(self) -> np.ndarray:
        """Residual SD of each variance group of Gaussian rows."""
        parts = self.laplace.layout.unpack(self.optimizer.x)
        if "log_sigma" in parts:
            return np.exp(parts["log_sigma"])
        if not self.laplace.profiled:
            return np.zeros(0)
        ratios = np.exp(parts.get("log_sd_ratio", np.zeros(0)))
        return self.state.sigma * np.concatenate([[1.0], ratios])

    def _row_sigma(self) -> np.ndarray:
        """Residual SD of every row (nan for rows of families without one)."""
        groups = self.design.dispersion_group
        sds = self._group_sigma()
        return np.where(groups >= 0, sds[np.maximum(groups, 0)] if sds.size else np.nan, np.nan)

    def residual_sd(self) -> pd.DataFrame:
        """Residual SD of Gaussian rows by variance group (``y ~~ (1 | item)``): the SD, and
        the SD and variance ratios to the first (reference) group, as nlme's varIdent."""
        sds = self._group_sigma()
        d = self.design
        frame = pd.DataFrame({
            "sd": sds,
            "sd_ratio": sds / sds[0] if sds.size else sds,
            "variance_ratio": (sds / sds[0]) ** 2 if sds.size else sds,
            "rows": np.bincount(d.dispersion_group[d.dispersion_group >= 0],
                                minlength=sds.size),
        }, index=pd.Index(list(d.dispersion_levels), name=d.dispersion_by or "group"))
        return frame

    @property
    def theta(self) -> pd.Series:
        """Relative covariance factor elements (lme4's theta)."""
        return estimate_series(pd.Series(self.state.theta, index=self.design.theta_names(),
                                         name="theta"), "theta")

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
        return estimate_series(pd.Series(self.state.beta, index=list(self.design.fixed_names),
                                         name="estimate"), "fixef")

    @cached_property
    def _covariance(self) -> pd.DataFrame:
        names, cov = self.laplace.covariance(self.optimizer.x, self.state)
        return pd.DataFrame(cov, index=names, columns=names)

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects, free loadings and free regressions among
        latents (inverse observed information over all parameters, as galamm)."""
        return self._covariance.copy()

    @property
    def fixef_se(self) -> pd.Series:
        names = list(self.design.fixed_names)
        se = np.sqrt(np.diag(self._covariance.loc[names, names].to_numpy()))
        return estimate_series(pd.Series(se, index=names, name="se"), "fixef_se")

    @property
    def loadings(self) -> pd.DataFrame | None:
        """Loadings as an indicator x latent table, with a standard-error column per latent
        (None when the model has no latent variables)."""
        from semgalamm.results.tables import loading_table

        return estimate_frame(loading_table(self), "loadings")

    def loading_estimates(self) -> pd.DataFrame | None:
        """Loadings in tidy form: latent, indicator, estimate, se, free, label."""
        from semgalamm.results.tables import loading_estimates

        return loading_estimates(self)

    @property
    def structural(self) -> pd.DataFrame | None:
        """Regressions among latent variables (the entries of B in eta = B eta + h(w) + zeta):
        lhs, op, rhs, estimate, se (nan when fixed), z value, Pr(>|z|), free, label (None
        without them)."""
        from scipy.stats import norm

        if not self.spec.structural:
            return None
        values = dict(zip(self.design.loadings.lambda_names, self.state.lam))
        cov = self._covariance
        rows = []
        for entry in self.spec.structural:
            free = entry.fixed is None
            estimate = values[entry.label] if free else entry.fixed
            se = float(np.sqrt(cov.loc[entry.label, entry.label])) if free else np.nan
            z = estimate / se if free and se > 0 else np.nan
            rows.append((entry.lhs, "~", entry.rhs, estimate, se, z, 2 * norm.sf(abs(z)), free,
                         entry.label))
        return estimate_frame(pd.DataFrame(rows, columns=[
            "lhs", "op", "rhs", "estimate", "se", "z value", "Pr(>|z|)", "free", "label"]),
            "structural")

    def confint(self, level: float = 0.95, method: str = "wald", parm=None,
                **boot_options) -> pd.DataFrame:
        """Confidence intervals; ``level`` is a proportion (0.95, not 95).

        ``method="wald"``: the fixed effects, free loadings and free regressions among latents
        (``lhs~rhs``), columns estimate and the two bounds. ``"profile"`` (lme4's profile
        intervals) and ``"boot"`` (percentile intervals of semgalamm.bootstrap; options n=,
        seed=, executor=, progress=, boot_type="percentile"|"basic") cover also the SDs and
        correlations of the random effects and sigma, columns the two bounds and the
        estimate. ``parm``: a name or list of names (default all). See
        semgalamm.inference.confint."""
        from scipy.stats import norm

        level = check_level(level)
        if method != "wald" or parm is not None or boot_options:
            from semgalamm.inference.confint import confint

            return confint(self, level, method, parm, **boot_options)
        cov = self._covariance
        names = list(cov.index)
        family = self.laplace.layout.unpack(self.optimizer.x).get("family", np.zeros(0))
        estimate = np.concatenate([self.state.beta, self.state.lam, family])
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
        (correlation filled), then the residual variance of Gaussian rows (one per variance
        group, term1 naming the group)."""
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
        grouped = self.design.dispersion_by is not None
        for level, sd in zip(self.design.dispersion_levels, self._group_sigma()):
            rows.append(("Residual", f"{self.design.dispersion_by}={level}" if grouped else None,
                         None, sd**2, sd, np.nan))
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
        """Fitted means on each row's response scale, through the inverse link of the row's
        family (binomial: probabilities; Poisson: counts; Gaussian: the mean)."""
        d = self.design
        return d.families.mean(self.state.nu, np.ones(d.n))

    def fitted_table(self) -> pd.DataFrame:
        """One row per observation, indexed like the data: its family, response (binomial as
        a proportion), fitted mean on the response scale, linear predictor and Pearson
        residual."""
        d = self.design
        names = np.array([f.name for f in d.families.families])[d.families.codes]
        return pd.DataFrame({
            "family": names, "response": d.y / d.trials, "fitted": self.fitted(),
            "linear_predictor": self.linear_predictor(), "pearson": self.residuals("pearson"),
        }, index=self.rows)

    def simulate(self, n: int = 1, seed=None, conditional: bool = False) -> pd.DataFrame:
        """lme4's simulate(): ``n`` new responses (columns sim_1, ...) indexed like the data,
        random effects drawn anew (or kept at their modes: ``conditional=True``); see
        semgalamm.inference.simulate."""
        from semgalamm.inference.simulate import simulate

        return simulate(self, n, seed, conditional)

    def residuals(self, type: str = "response", scaled: bool = False) -> np.ndarray:
        """R's residuals(fit, type=): "response" (y - mu, binomial on the proportion scale),
        "pearson", "deviance" or "working"; ``scaled=True`` divides Gaussian rows by their
        residual SD (lme4's scaled residuals). See semgalamm.inference.residuals."""
        from semgalamm.inference.residuals import residuals

        return residuals(self, type, scaled)

    # ------------------------------------------------------------------ smooth terms
    def smooths(self) -> pd.DataFrame:
        """Each smooth's effective degrees of freedom, basis dimension and variance (no rows
        for a model without smooths)."""
        from semgalamm.results.smooths import smooth_table

        return smooth_table(self)

    def smooth(self, term: str | int = 0, at=None, n: int = 100) -> pd.DataFrame:
        """The estimated smooth ``term`` (label such as "s(x)", or position) at ``at`` (or n
        points over the data's range): estimate, se, and se_with_mean (mgcv's seWithMean).
        A model without smooths, or a term it does not have, raises a SpecError naming the
        model's smooths."""
        from semgalamm.results.smooths import smooth_values

        return smooth_values(self, term, at, n)

    def plot_smooth(self, term: str | int = 0, **options):
        """Plot a smooth with its confidence band (needs matplotlib: ``pip install
        semgalamm[plot]``); see results.smooths.plot_smooth for the options."""
        from semgalamm.results.smooths import plot_smooth

        return plot_smooth(self, term, **options)

    def predict(self, newdata: pd.DataFrame | None = None, *, conditional: bool = True,
                allow_new_levels: bool = False, type: str = "response",
                se_fit: bool = False) -> np.ndarray | pd.DataFrame:
        """Predictions at ``newdata`` (None: the fitted rows) given the random effects'
        conditional modes, or at the population level (``conditional=False``, lme4's
        ``re.form = NA``); ``type`` "response", "link" or "probs" (ordinal fits: a DataFrame
        of category probabilities); new levels at 0 with
        ``allow_new_levels=True``; ``se_fit=True`` (population, link scale) returns a
        DataFrame of fit and se_fit. See semgalamm.inference.predict."""
        from semgalamm.inference.predict import predict

        return predict(self, newdata, conditional=conditional,
                       allow_new_levels=allow_new_levels, type=type, se_fit=se_fit)

    def summary(self) -> SummaryText:
        """lme4's summary(): a str that prints as the summary and shows in notebooks as HTML
        tables (semgalamm.results.summary.FitSummary)."""
        from semgalamm.results.summary import FitSummary

        return FitSummary(self)

    # ------------------------------------------------------------------ output (docs/output.md)
    def tidy(self, effects=None, conf_int: bool = False, conf_level: float = 0.95
             ) -> pd.DataFrame:
        """broom.mixed's tidy(): one row per estimate (effects "fixed", "ran_pars",
        "ran_vals", "loading", "regression"); see results.tidy.tidy_fit."""
        from semgalamm.results.tidy import tidy_fit

        return tidy_fit(self, effects, conf_int, conf_level)

    def glance(self) -> pd.DataFrame:
        """broom.mixed's glance(): nobs, sigma, logLik, AIC, BIC, deviance, df_residual."""
        from semgalamm.results.tidy import glance_fit

        return glance_fit(self)

    def augment(self, data: pd.DataFrame | None = None) -> pd.DataFrame:
        """broom.mixed's augment(): the data with .fitted, .mu, .fixed, .resid, .wtres."""
        from semgalamm.results.tidy import augment_fit

        return augment_fit(self, data)

    def plot_diagnostics(self, group: str | None = None):
        """Fitted vs residuals, normal QQ of the residuals and residuals by group (matplotlib
        Figure; ``pip install semgalamm[plot]``)."""
        from semgalamm.results.plots import plot_diagnostics

        return plot_diagnostics(self, group)

    def plot_ranef(self, group: str | None = None, level: float = 0.95):
        """Caterpillar plot of the random effects with conditional-variance intervals (lme4's
        dotplot(ranef(condVar = TRUE)); matplotlib Figure)."""
        from semgalamm.results.plots import plot_ranef

        return plot_ranef(self, group, level)

    def path_diagram(self, **options):
        """The model as a graphviz.Digraph (``pip install semgalamm[diagram]``); options in
        results.path_diagram.fit_diagram."""
        from semgalamm.results.path_diagram import fit_diagram

        return fit_diagram(self, **options)

    def __repr__(self) -> str:
        return (f"<FitResult {self.model!r}: logLik {self.loglik:.3f}, {self.nobs} rows, "
                f"{'converged' if self.converged else 'NOT converged'}>")
