"""SemFit: the result of a covariance-structure fit, read as lavaan users read one.

Everything is computed from the parameter table and the estimate: ``parameter_estimates()``
(lavaan's parameterEstimates), ``standardized_solution()``, ``fit_measures()``,
``modification_indices()`` and ``summary()``.

The accessors follow the rule of FitResult (docs/results.md): properties hold numbers and
flags (``loglik``, ``aic``, ``bic``, ``nobs``, ``npar``, ``converged``), methods compute or
lay out tables on request (``vcov()``, ``confint(level)``, ``parameter_estimates()``, ...);
the names FitResult and SemFit share mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from semgalamm.covstruct.estimate import MlEstimate, label_env
from semgalamm.design.ram import BlockMoments, RamModel
from semgalamm.design.sample_moments import GroupSample
from semgalamm.results.checks import check_choice, check_level
from semgalamm.spec.expressions import evaluate
from semgalamm.spec.partable import ParameterTable
from semgalamm.syntax.nodes import ModelSyntax

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class SemFit:
    """A fitted covariance-structure model (wide data).

    ``table``: the parameter table; ``ram``: its matrices; ``samples``: per group sample
    moments; ``estimate``: the optimum; ``vcov_free``: covariance of the free vector;
    ``information``: "expected" or "observed"; ``function``: "cfa", "sem" or "growth".

    Properties: loglik, aic, bic, nobs, npar, converged. Methods: parameter_estimates(level),
    vcov(), confint(level), fit_measures(), standardized_solution(type, level),
    modification_indices(), summary() (docs/results.md).
    """

    model: str
    syntax: ModelSyntax = field(repr=False)
    table: ParameterTable = field(repr=False)
    ram: RamModel = field(repr=False)
    samples: tuple[GroupSample, ...] = field(repr=False)
    estimate: MlEstimate = field(repr=False)
    vcov_free: FloatArray = field(repr=False)
    information: str = "expected"
    function: str = "sem"
    group: str | None = None
    missing: str = "listwise"
    loglik_function: object = field(default=None, repr=False)
    extra: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- basic figures
    @property
    def loglik(self) -> float:
        """The log-likelihood as lavaan reports it (``logl``): the joint likelihood of all
        observed variables, fixed exogenous covariates included."""
        return float(self.estimate.loglik)

    @property
    def loglik_joint(self) -> float:
        """The joint log-likelihood of all observed variables, the fixed exogenous covariates'
        marginal part included (lavaan 0.6's ``logl`` leaves that part out)."""
        return float(self.extra.get("loglik_joint", self.loglik))

    @property
    def aic(self) -> float:
        """Akaike's criterion -2 loglik + 2 npar (lavaan's AIC(fit), fitMeasures "aic")."""
        return -2.0 * self.loglik + 2.0 * self.npar

    @property
    def bic(self) -> float:
        """Schwarz's criterion -2 loglik + npar log(nobs) (lavaan's BIC(fit), fitMeasures
        "bic"; nobs over all groups)."""
        return -2.0 * self.loglik + self.npar * float(np.log(self.nobs))

    @property
    def converged(self) -> bool:
        return bool(self.estimate.converged)

    @property
    def nobs(self) -> int:
        return int(sum(s.n for s in self.samples))

    @property
    def npar(self) -> int:
        """Free parameters minus the equality constraints on them (lavaan's npar); an
        inequality held at its bound still counts, as in lavaan."""
        return int(self.estimate.constraints.K.shape[1]) + len(self.estimate.active)

    @cached_property
    def row_estimates(self) -> FloatArray:
        """Every table row's estimate."""
        return self.ram.row_values(self.estimate.x)

    @cached_property
    def row_se(self) -> FloatArray:
        se_free = np.sqrt(np.clip(np.diag(self.vcov_free), 0, None))
        out = np.zeros(len(self.table.rows))
        active = self._active_positions()
        for r, row in enumerate(self.table.rows):
            if row.free:
                out[r] = np.nan if row.free in active else se_free[row.free - 1]
        return out

    def _active_positions(self) -> set[int]:
        labels = self.table.label_positions()
        out = set()
        for text in self.estimate.active:
            for label, position in labels.items():
                if text.split()[0] == label and position:
                    out.add(position)
        return out

    @cached_property
    def implied(self) -> list[BlockMoments]:
        """Implied moments (Sigma, mu) of every block at the estimate."""
        return self.ram.moments(self.estimate.x, derivatives=False)

    # ----------------------------------------------------------------- defined parameters
    def _defined(self, x: FloatArray) -> FloatArray:
        env = label_env(self.table, x)
        return np.array([env[d.name] for d in self.table.definitions])

    def _delta_se(self, function, x: FloatArray) -> FloatArray:
        """Delta-method SEs of function(x) (a vector) with the free vector's covariance."""
        base = function(x)
        J = np.zeros((len(base), len(x)))
        for k in range(len(x)):
            h = 1e-6 * max(1.0, abs(x[k]))
            step = np.zeros(len(x))
            step[k] = h
            J[:, k] = (function(x + step) - function(x - step)) / (2 * h)
        return np.sqrt(np.clip(np.einsum("ik,kl,il->i", J, self.vcov_free, J), 0, None))

    # ----------------------------------------------------------------- tables
    def parameter_estimates(self, level: float = 0.95) -> pd.DataFrame:
        """lavaan's parameterEstimates(): one row per parameter (and per ``:=``), with
        ``level`` (a proportion: 0.95, not 95) Wald intervals."""
        level = check_level(level)
        table = self.table
        records = []
        multi_group = table.n_groups > 1
        multi_level = table.n_levels > 1
        for r, row in enumerate(table.rows):
            record = {"lhs": row.lhs, "op": row.op, "rhs": row.rhs}
            if multi_level:
                record["level"] = table.blocks[row.block - 1].level_label
            if multi_group:
                record["group"] = row.group
            record["label"] = row.label
            record["est"] = self.row_estimates[r]
            record["se"] = self.row_se[r] if row.free else 0.0
            records.append(record)
        if table.definitions:
            values = self._defined(self.estimate.x)
            ses = self._delta_se(self._defined, self.estimate.x)
            for d, value, se in zip(table.definitions, values, ses):
                record = {"lhs": d.name, "op": ":=", "rhs": d.text.replace(" ", "")}
                if multi_level:
                    record["level"] = ""
                if multi_group:
                    record["group"] = 0
                record.update(label=d.name, est=value, se=se)
                records.append(record)
        frame = pd.DataFrame.from_records(records)
        z_crit = stats.norm.ppf(0.5 + level / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            se = frame["se"].to_numpy(dtype=float)
            est = frame["est"].to_numpy(dtype=float)
            z = np.where(se > 0, est / se, np.nan)
        frame["z"] = z
        frame["pvalue"] = 2 * stats.norm.sf(np.abs(z))
        frame["ci_lower"] = est - z_crit * np.nan_to_num(se)
        frame["ci_upper"] = est + z_crit * np.nan_to_num(se)
        return frame

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the free parameters, named as lavaan's vcov() names them:
        the label, else lhs op rhs with ".g2" for the second group and ".l2" for the second
        level. Parameters constrained equal (a label used twice, ``group_equal``) are one
        parameter with one row, where lavaan repeats them."""
        names = []
        for row in self.table.free_rows():
            name = row.label or f"{row.lhs}{row.op}{row.rhs}"
            if not row.label:
                level = self.table.blocks[row.block - 1].level
                name += (f".g{row.group}" if row.group > 1 else "") + \
                    (f".l{level}" if level > 1 else "")
            names.append(name)
        return pd.DataFrame(self.vcov_free, index=names, columns=names)

    def confint(self, level: float = 0.95, method: str = "wald", parm=None,
                **boot_options) -> pd.DataFrame:
        """Confidence intervals of the free parameters (labelled as vcov()) and the ``:=``
        parameters (by name); ``level`` a proportion. ``method="wald"``: columns estimate and
        the two bounds (lavaan's parameterEstimates(level=) ci.lower, ci.upper); a parameter
        held at an inequality bound has none. ``"boot"``: percentile intervals over a
        parametric bootstrap (options n=200, seed=, executor=, progress=,
        boot_type="percentile"|"basic"), columns the two bounds and the estimate. ``parm``: a
        name or list of names. See semgalamm.inference.sem_confint."""
        from semgalamm.inference.confint import confint

        return confint(self, check_level(level), method, parm, **boot_options)

    def __repr__(self) -> str:
        return (f"<SemFit {self.function}(): {self.nobs} observations, {self.npar} parameters, "
                f"logLik {self.loglik:.4f}>")

    def defined_value(self, name: str) -> float:
        """The estimate of a ``:=`` parameter or a label."""
        return float(evaluate(next(d.expr for d in self.table.definitions if d.name == name),
                              label_env(self.table, self.estimate.x)))

    # ----------------------------------------------------------------- lavaan's results
    @cached_property
    def reference(self) -> list:
        """Per group: the user, saturated (h1) and independence (baseline) log-likelihoods and
        the h1 moments (semgalamm.results.sem_fit_measures)."""
        from semgalamm.results.sem_fit_measures import reference_models

        return reference_models(self)

    def fit_measures(self) -> pd.Series:
        """lavaan's fitMeasures(): chi-square, baseline, CFI, TLI, RMSEA, SRMR, AIC, BIC."""
        from semgalamm.results.sem_fit_measures import fit_measures

        return fit_measures(self)

    def standardized_solution(self, type: str = "std.all", level: float = 0.95,
                              constraints: bool = False) -> pd.DataFrame:
        """lavaan's standardizedSolution(): ``type`` "std.all", "std.lv" or "std.nox", with
        delta-method standard errors; ``constraints=True`` adds the constraint rows."""
        from semgalamm.results.sem_standardized import TYPES, standardized_solution

        check_choice(type, TYPES, "type")
        level = check_level(level)
        return standardized_solution(self, type=type, level=level, constraints=constraints)

    def modification_indices(self, sort: bool = True, minimum_value: float = 0.0
                             ) -> pd.DataFrame:
        """lavaan's modindices(): score tests of the parameters the model leaves fixed."""
        from semgalamm.results.sem_modindices import modification_indices

        return modification_indices(self, sort=sort, minimum_value=minimum_value)

    def summary(self, fit_measures: bool = False, standardized: bool = False):
        """lavaan's summary(fit, fit.measures=, standardized=): a str (SummaryText) that
        prints, and shows at the prompt, as lavaan's summary."""
        from semgalamm.results.sem_summary import SemSummary

        return SemSummary(self, fit_measures=fit_measures, standardized=standardized)

    # ----------------------------------------------------------------- output (docs/output.md)
    def tidy(self, conf_int: bool = False, conf_level: float = 0.95) -> pd.DataFrame:
        """broom's tidy.lavaan: term, op, estimate, std_error, statistic, p_value, std_lv,
        std_all, std_nox (results.tidy.tidy_sem)."""
        from semgalamm.results.tidy import tidy_sem

        return tidy_sem(self, conf_int, conf_level)

    def glance(self) -> pd.DataFrame:
        """broom's glance.lavaan: AIC, BIC, cfi, chisq, npar, rmsea, srmr, tli, nobs, ..."""
        from semgalamm.results.tidy import glance_sem

        return glance_sem(self)

    def path_diagram(self, **options):
        """The model as a graphviz.Digraph (``pip install semgalamm[diagram]``); options in
        results.path_diagram.sem_diagram."""
        from semgalamm.results.path_diagram import sem_diagram

        return sem_diagram(self, **options)
