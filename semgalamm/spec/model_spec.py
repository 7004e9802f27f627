"""The model spec (IR): what the model string means, before any data is seen.

``build_spec(ModelSyntax) -> ModelSpec`` applies the defaults (first loading fixed to 1, latents
at the same level correlated) and the checks that need no data; ``design`` turns a ModelSpec
and a DataFrame into matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semgalamm.syntax.nodes import Expr, SmoothTerm


@dataclass(frozen=True)
class LoadingSpec:
    """One loading: latent ``latent`` on the rows where ``variable == level``, optionally times
    the covariate ``covariate``, any formula term of the data's columns (patsy text: ``x``,
    ``I(x**2)``, ``poly(x, 2)``). ``fixed`` is its value when fixed; free loadings with the
    same ``label`` are one parameter; ``start`` is an optional starting value.

    ``covariate_name`` is the covariate as written (``I(x^2)``) when that differs from the
    patsy text. A covariate term with several columns (``poly(x, 2)``) is one loading per
    column once the data are seen (``design.build.expand_loadings``): ``covariate_column`` is
    the column (0-based) and ``covariate_name`` its R name (``poly(x, 2)1``)."""

    latent: str
    variable: str
    level: str | None
    covariate: str | None
    fixed: float | None
    label: str
    start: float | None = None
    covariate_column: int | None = None
    covariate_name: str | None = None

    @property
    def indicator(self) -> str:
        text = self.variable if self.level is None else f"{self.variable}[{self.level}]"
        if self.covariate is None:
            return text
        return f"{text}:{self.covariate_name or self.covariate}"


@dataclass(frozen=True)
class StructuralSpec:
    """One entry of B in eta = B eta + h(w) + zeta: latent ``lhs`` regressed on latent ``rhs``
    (``lhs ~ rhs``). ``fixed`` is its value when fixed; free entries with the same ``label``
    are one parameter (also with a loading of that label); ``start`` is an optional starting
    value (default 0)."""

    lhs: str
    rhs: str
    fixed: float | None
    label: str
    start: float | None = None

    @property
    def name(self) -> str:
        return f"{self.lhs}~{self.rhs}"


@dataclass(frozen=True)
class RandomSpec:
    """A random-effects block: its columns at one grouping factor.

    ``group`` is the tuple of columns whose interaction is the grouping factor; ``parts`` are
    (patsy formula of columns, latent or None) pairs — a latent's part has its columns
    multiplied by the row loadings of the latent; ``correlated`` is False for ``||``.
    """

    group: tuple[str, ...]
    parts: tuple[tuple[str, str | None], ...]
    correlated: bool
    text: str

    @property
    def group_name(self) -> str:
        return ":".join(self.group)


@dataclass(frozen=True)
class ResponseSpec:
    """The observed response: a column, or ``cbind(successes, failures)`` expressions."""

    name: str
    successes: Expr | None = None
    failures: Expr | None = None

    @property
    def is_binomial_pair(self) -> bool:
        return self.successes is not None


@dataclass(frozen=True)
class FixedPart:
    """A fixed-effects formula (patsy right-hand side); ``latent`` multiplies its columns by
    the latent's row loadings (a latent's structural regression, h(w) in the seed)."""

    formula: str
    latent: str | None


@dataclass(frozen=True)
class ResidualGroups:
    """Residual variances of Gaussian rows that differ by group (nlme's ``varIdent``, galamm's
    ``dispformula``), written ``y ~~ (1 | item)``.

    ``group``: the columns whose interaction defines the groups; ``selector``: a column whose
    nonzero rows carry the groups (galamm's ``(0 + isgauss | grp)``), or None for all Gaussian
    rows.
    """

    group: tuple[str, ...]
    selector: str | None
    text: str

    @property
    def group_name(self) -> str:
        return ":".join(self.group)


@dataclass(frozen=True)
class ModelSpec:
    """The meaning of a model string.

    response: the observed response; fixed: fixed-effect formulas (the response's own and each
    latent's); random: random-effects blocks; loadings: every loading (fixed or free) of every
    latent; latents: latent names in the order defined; smooths: smooth terms (with the latent
    they belong to, or None); residual: residual variance groups (None: one residual variance);
    structural: the entries of B, regressions among latents (``lhs ~ rhs``); offsets: the
    expressions of the response's ``offset(...)`` terms (patsy text), summed into a known part
    of the linear predictor.
    """

    response: ResponseSpec
    fixed: tuple[FixedPart, ...]
    random: tuple[RandomSpec, ...]
    loadings: tuple[LoadingSpec, ...]
    latents: tuple[str, ...]
    smooths: tuple[tuple[SmoothTerm, str | None], ...] = ()
    residual: ResidualGroups | None = None
    structural: tuple[StructuralSpec, ...] = ()
    offsets: tuple[str, ...] = ()

    @property
    def indicator_variables(self) -> tuple[str, ...]:
        """Columns named as ``col[level]`` indicators (treated as categorical)."""
        seen: dict[str, None] = {}
        for loading in self.loadings:
            if loading.level is not None:
                seen[loading.variable] = None
        return tuple(seen)

    def free_parameters(self) -> dict[str, float]:
        """The free loadings and B entries by label, in packing order (loadings first), with
        their starting values: 1 for a loading, 0 for a B entry, unless ``start()`` says."""
        out: dict[str, float] = {}
        for loading in self.loadings:
            if loading.fixed is None:
                out.setdefault(loading.label, 1.0)
        for entry in self.structural:
            if entry.fixed is None:
                out.setdefault(entry.label, 0.0)
        for item in (*self.loadings, *self.structural):
            if item.fixed is None and item.start is not None:
                out[item.label] = item.start
        return out

    def structural_matrix(self, values: dict[str, float]) -> np.ndarray:
        """B (latents x latents, rows the regressed latent) at the free values ``values``
        (by label) and the fixed ones."""
        index = {name: k for k, name in enumerate(self.latents)}
        B = np.zeros((len(self.latents), len(self.latents)))
        for entry in self.structural:
            value = entry.fixed if entry.fixed is not None else values[entry.label]
            B[index[entry.lhs], index[entry.rhs]] += value
        return B
