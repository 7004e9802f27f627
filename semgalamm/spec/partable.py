"""ModelSyntax -> ParameterTable: lavaan's parameter table for models on wide data.

One row per parameter of the covariance-structure model (lavaan's ``lavaanify``): every
loading (``=~``), regression (``~``), (residual) variance or covariance (``~~``) and intercept
or mean (``~1``) of every block (group x level), written by the user (``user=1``) or added by
a default rule (``user=0``). ``free`` is the parameter's position in the free vector (1-based,
0 for a fixed parameter); rows with the same label share one position (equality by label), and
``group_equal=`` shares them across groups. The optimizer's vector, start values, bounds,
constraints and every results table are read from this one table.

Default rules (lavaan's ``cfa()``/``sem()``/``growth()``; ``SemOptions`` names them):

* the first indicator of each latent has its loading fixed to 1 (``std_lv``: latent variances
  fixed to 1 instead, all loadings free); ``NA*`` frees a loading, a number fixes it;
* every observed variable and latent gets a free (residual) variance;
* exogenous latents (not regressed on anything, not an indicator) covary (``orthogonal``:
  covariances fixed to 0); so do pure outcomes (regressed, never a predictor), observed or latent;
* exogenous observed covariates (``fixed_x``): their variances, covariances and means are fixed
  at the sample values, as lavaan's ``fixed.x``;
* with a mean structure, observed intercepts are free and latent means fixed to 0 (``growth``:
  observed intercepts fixed to 0 and latent means free; equal intercepts across groups free the
  latent means of groups 2, 3, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from semgalamm.errors import SpecError, UnsupportedError, nearest
from semgalamm.syntax.nodes import (
    BinaryOp,
    Block,
    Constraint,
    Covariance,
    CovarianceTerm,
    Definition,
    FixedTerm,
    Intercept,
    Measurement,
    ModelSyntax,
    Modifier,
    Name,
    RandomTerm,
    Regression,
    Response,
    SmoothTerm,
    SourceSpan,
    Unsupported,
    expression_names,
)

#: group_equal= keywords -> (op, kind of row) as lavaan names them.
GROUP_EQUAL = (
    "loadings", "intercepts", "means", "residuals", "residual.covariances", "lv.variances",
    "lv.covariances", "regressions",
)


@dataclass(frozen=True)
class SemOptions:
    """lavaan's modelling options, in snake case (``std_lv`` is lavaan's ``std.lv``)."""

    meanstructure: bool | None = None  # None: lavaan's "default"
    std_lv: bool = False
    orthogonal: bool = False
    fixed_x: bool = True
    int_ov_free: bool = True
    int_lv_free: bool = False
    auto_cov_y: bool = True
    group_equal: tuple[str, ...] = ()
    group_partial: tuple[str, ...] = ()  # "visual=~x2": left free across groups
    missing: str = "listwise"


@dataclass(frozen=True)
class ParameterRow:
    """One parameter: ``lhs op rhs`` in a block.

    ``op`` is lavaan's: ``=~`` loading (rhs measured by lhs), ``~`` regression (lhs on rhs),
    ``~~`` (residual) (co)variance, ``~1`` intercept or mean. ``free``: position in the free
    vector, 1-based (0: fixed at ``value``). ``exo``: a moment of a fixed exogenous covariate,
    set from the sample. ``user``: 1 written by the user, 0 added by a default.
    """

    id: int
    lhs: str
    op: str
    rhs: str
    block: int
    group: int
    level: int
    user: int
    free: int
    value: float
    label: str
    start: float | None = None
    lower: float = -math.inf
    upper: float = math.inf
    exo: bool = False


@dataclass(frozen=True)
class BlockVariables:
    """The variables of one block (a group, or a level of a group).

    ``observed``: the observed variables in lavaan's order (indicators first, then other
    variables as they appear); ``latent``: latent variables in the order defined;
    ``exogenous``: observed covariates whose moments are fixed (fixed.x).
    """

    group: int
    group_label: str
    level: int
    level_label: str
    observed: tuple[str, ...]
    latent: tuple[str, ...]
    exogenous: tuple[str, ...]


@dataclass(frozen=True)
class ParameterTable:
    """lavaan's parameter table: the rows, the variables of each block, ``:=`` and constraints.

    ``n_free`` is the length of the free vector; ``meanstructure`` says whether intercepts and
    means are modelled (else the sample means are fitted exactly).
    """

    rows: tuple[ParameterRow, ...]
    blocks: tuple[BlockVariables, ...]
    definitions: tuple[Definition, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    meanstructure: bool = False
    options: SemOptions = field(default_factory=SemOptions)

    @property
    def n_free(self) -> int:
        return max((r.free for r in self.rows), default=0)

    @property
    def n_groups(self) -> int:
        return max(b.group for b in self.blocks)

    @property
    def n_levels(self) -> int:
        return max(b.level for b in self.blocks)

    def free_rows(self) -> list[ParameterRow]:
        """The first row of every free position, in position order."""
        first: dict[int, ParameterRow] = {}
        for row in self.rows:
            if row.free and row.free not in first:
                first[row.free] = row
        return [first[k] for k in sorted(first)]

    def label_positions(self) -> dict[str, int]:
        """User label -> free position (0 for a fixed parameter)."""
        return {r.label: r.free for r in self.rows if r.label}

    def to_frame(self):
        """The table as a pandas DataFrame, one row per parameter (lavaan's ``parTable``)."""
        import pandas as pd

        return pd.DataFrame([r.__dict__ for r in self.rows])


# --------------------------------------------------------------------------- building


def _where(span: SourceSpan) -> str:
    return f"line {span.line}, column {span.column}"


@dataclass
class _Draft:
    """A row before positions are assigned."""

    lhs: str
    op: str
    rhs: str
    block: int
    user: int
    fixed: float | None
    label: str = ""
    start: float | None = None
    lower: float = -math.inf
    upper: float = math.inf
    exo: bool = False
    span: SourceSpan | None = None

    @property
    def key(self) -> tuple[str, str, str, int]:
        lhs, rhs = (self.lhs, self.rhs)
        if self.op == "~~" and rhs < lhs:
            lhs, rhs = rhs, lhs
        return (lhs, self.op, rhs, self.block)


def _modifier_fields(mod: Modifier, default_fixed: float | None) -> dict:
    """Fixed value, label, start and bounds from lavaan's modifiers."""
    if mod.fixed is not None:
        fixed: float | None = mod.fixed
    elif mod.free:
        fixed = None
    else:
        fixed = default_fixed
    return {
        "fixed": fixed,
        "label": mod.label or "",
        "start": mod.start,
        "lower": -math.inf if mod.lower is None else mod.lower,
        "upper": math.inf if mod.upper is None else mod.upper,
    }


def _regression_term(term: FixedTerm) -> tuple[str, Modifier]:
    """``x``, ``0.5*x``, ``b1*x`` (a label written as a product) -> (name, modifier)."""
    expr, mod = term.expr, term.modifier
    if isinstance(expr, BinaryOp) and expr.op == "*" and isinstance(expr.left, Name) \
            and isinstance(expr.right, Name) and mod.is_empty:
        return expr.right.name, Modifier(label=expr.left.name)
    if isinstance(expr, Name):
        return expr.name, mod
    raise UnsupportedError(
        f"'{term.text}' ({_where(term.span)}) is not a variable: in a model on wide data the "
        "right of '~' lists variables, each optionally with a label or value ('b1*x', '0.5*x'). "
        "Compute transformed or interaction columns in the DataFrame first."
    )


def _split_blocks(syntax: ModelSyntax) -> list[tuple[str, str, list]]:
    """Statements per ``group:``/``level:`` block, as (group label, level label, statements)."""
    out: list[tuple[str, str, list]] = []
    group, level = "", ""
    current: list = []
    started = False
    for statement in syntax.statements:
        if isinstance(statement, Block):
            if statement.kind not in ("level", "group"):
                raise UnsupportedError(
                    f"'{statement.text}' ({_where(statement.span)}): only 'level:' and "
                    "'group:' blocks are supported."
                )
            if started or current:
                out.append((group, level, current))
            current = []
            started = True
            if statement.kind == "group":
                group, level = statement.value, ""
            else:
                level = statement.value
            continue
        current.append(statement)
    out.append((group, level, current))
    return out


class _BlockBuilder:
    """Applies the statements and the default rules to one block."""

    def __init__(self, block: int, statements: list, columns: set[str],
                 options: SemOptions, growth: bool) -> None:
        self.block = block
        self.options = options
        self.growth = growth
        self.drafts: list[_Draft] = []
        measurements = [s for s in statements if isinstance(s, Measurement)]
        self.latent = tuple(dict.fromkeys(m.latent for m in measurements))
        self.statements = statements
        self.columns = columns

    # names ------------------------------------------------------------------------------
    def _check_name(self, name: str, span: SourceSpan) -> None:
        if name in self.latent or name in self.columns:
            return
        candidates = list(self.columns) + list(self.latent)
        hint = nearest(name, candidates, cutoff=0.6)
        raise SpecError(
            f"'{name}' ({_where(span)}) is neither a column of the data nor a latent variable "
            f"(latents are defined with '=~').{hint}"
        )

    def build(self) -> tuple[list[_Draft], BlockVariables]:
        b = self.block
        indicators: list[str] = []
        eqs_y: list[str] = []
        eqs_x: list[str] = []
        mentioned: list[str] = []
        for s in self.statements:
            if isinstance(s, Measurement):
                for position, ind in enumerate(s.indicators):
                    if ind.level is not None or ind.covariate is not None:
                        raise SpecError(
                            f"The indicator '{ind.variable}[{ind.level}]' of '{s.latent}' "
                            f"({_where(ind.span)}) is a long-data indicator, but the model is "
                            "written for wide data (one column per indicator). Do not mix the "
                            "two in one model: write every indicator as a column name, or "
                            "every indicator as 'column[level]' with a long response."
                        )
                    self._check_name(ind.variable, ind.span)
                    first = position == 0
                    default = None if (self.options.std_lv or not first) else 1.0
                    fields = _modifier_fields(ind.modifier, default)
                    if first and not self.options.std_lv and ind.modifier.label \
                            and ind.modifier.fixed is None and not ind.modifier.free:
                        fields["fixed"] = 1.0  # lavaan: a label alone keeps the marker fixed
                    self.drafts.append(_Draft(s.latent, "=~", ind.variable, b, 1, span=ind.span,
                                              **fields))
                    indicators.append(ind.variable)
                    mentioned.append(ind.variable)
            elif isinstance(s, Regression):
                if not isinstance(s.lhs, Response):
                    raise UnsupportedError(
                        f"cbind() responses ({_where(s.span)}) belong to long-data models."
                    )
                lhs = s.lhs.name
                self._check_name(lhs, s.lhs.span)
                mentioned.append(lhs)
                for term in s.terms:
                    if isinstance(term, Intercept):
                        if term.present:
                            self.drafts.append(_Draft(lhs, "~1", "", b, 1, span=term.span,
                                                      **_modifier_fields(term.modifier, None)))
                        continue
                    if isinstance(term, (RandomTerm, SmoothTerm)):
                        raise UnsupportedError(
                            f"'{term.text}' ({_where(term.span)}): random and smooth terms "
                            "belong to long-data models (one row per response); on wide data "
                            "use 'cluster=' and 'level:' blocks for two-level models."
                        )
                    name, mod = _regression_term(term)
                    self._check_name(name, term.span)
                    mentioned.append(name)
                    eqs_y.append(lhs)
                    eqs_x.append(name)
                    self.drafts.append(_Draft(lhs, "~", name, b, 1, span=term.span,
                                              **_modifier_fields(mod, None)))
            elif isinstance(s, Covariance):
                self._check_name(s.lhs, s.span)
                mentioned.append(s.lhs)
                for term in s.terms:
                    if not isinstance(term, CovarianceTerm):
                        raise UnsupportedError(
                            f"'{s.lhs} ~~ {term.text}' ({_where(s.span)}): residual variances "
                            "by group belong to long-data models."
                        )
                    self._check_name(term.variable, term.span)
                    mentioned.append(term.variable)
                    self.drafts.append(_Draft(s.lhs, "~~", term.variable, b, 1, span=term.span,
                                              **_modifier_fields(term.modifier, None)))

        latent = self.latent
        observed = tuple(dict.fromkeys(v for v in indicators + mentioned if v not in latent))
        ov_ind = set(indicators) - set(latent)
        y_set, x_set = set(eqs_y), set(eqs_x)
        ov_x = tuple(v for v in observed
                     if v in x_set and v not in y_set and v not in ov_ind)
        if self.options.fixed_x:
            # a covariate the user gave a (co)variance with a non-covariate is modelled
            user_cov = {(d.lhs, d.rhs) for d in self.drafts if d.op == "~~"}
            ov_x = tuple(v for v in ov_x if not any(
                (v in pair) and (set(pair) - set(ov_x)) for pair in user_cov))
        lv_ind = set(indicators) & set(latent)
        lv_x = [v for v in latent if v not in y_set and v not in lv_ind]
        pure_y = [v for v in observed + latent
                  if v in y_set and v not in x_set and v not in ov_ind and v not in lv_ind]
        self._defaults(observed, latent, ov_x, lv_x, pure_y)
        exogenous = ov_x if self.options.fixed_x else ()
        return self.drafts, BlockVariables(0, "", 0, "", observed, latent, exogenous)

    def _has(self, lhs: str, op: str, rhs: str) -> bool:
        key = _Draft(lhs, op, rhs, self.block, 0, None).key
        return any(d.key == key for d in self.drafts)

    def _add(self, lhs: str, op: str, rhs: str, fixed: float | None, exo: bool = False) -> None:
        if not self._has(lhs, op, rhs):
            self.drafts.append(_Draft(lhs, op, rhs, self.block, 0, fixed, exo=exo))

    def _defaults(self, observed, latent, ov_x, lv_x, pure_y) -> None:
        opts = self.options
        fixed_x = opts.fixed_x
        for v in observed:
            if v in ov_x:
                continue
            self._add(v, "~~", v, None)
        for v in latent:
            self._add(v, "~~", v, 1.0 if opts.std_lv else None)
        for i, a in enumerate(lv_x):
            for c in lv_x[i + 1:]:
                self._add(a, "~~", c, 0.0 if opts.orthogonal else None)
        if opts.auto_cov_y:
            for i, a in enumerate(pure_y):
                for c in pure_y[i + 1:]:
                    if (a in latent) == (c in latent):
                        self._add(a, "~~", c, 0.0 if opts.orthogonal and a in latent else None)
        for i, a in enumerate(ov_x):
            for c in ov_x[i:]:
                self._add(a, "~~", c, math.nan if fixed_x else None, exo=fixed_x)


def build_partable(
    syntax: ModelSyntax,
    columns: list[str],
    options: SemOptions,
    group_labels: tuple[str, ...] = ("",),
    level_labels: tuple[str, ...] = ("",),
    meanstructure: bool = False,
) -> ParameterTable:
    """Build the parameter table of a wide-data model for the given groups and levels.

    ``columns`` are the data's column names (any other name must be a latent variable).
    ``meanstructure`` is the resolved lavaan option (intercepts and means modelled).
    """
    for statement in syntax.statements:
        if isinstance(statement, Unsupported):
            raise UnsupportedError(
                f"The operator '{statement.operator}' ({_where(statement.span)}: "
                f"'{statement.text}') is part of lavaan's syntax but semgalamm cannot estimate "
                "it yet. Remove the statement."
            )
    parts = _split_blocks(syntax)
    columns_set = set(columns)
    group_blocks = [p for p in parts if p[0]]
    if group_blocks:
        raise UnsupportedError(
            "'group:' blocks are not supported; write the model once and pass group=, with "
            "labels (or group_equal=) for equality across groups."
        )
    level_parts = [p for p in parts if p[1] or p[2]]
    if len(level_labels) > 1:
        if len(level_parts) != len(level_labels) or any(not p[1] for p in level_parts):
            raise SpecError(
                "A two-level model needs one 'level:' block per level ('level: 1' then "
                "'level: 2'), every statement inside a block."
            )
    elif any(p[1] for p in parts):
        raise SpecError(
            "The model has 'level:' blocks but no cluster variable. Pass cluster='column' "
            "(the column that identifies the clusters), as lavaan's cluster= argument."
        )
    level_statements = [p[2] for p in level_parts] if len(level_labels) > 1 else \
        [[s for p in parts for s in p[2]]]
    all_statements = [s for p in parts for s in p[2]]
    definitions = tuple(s for s in all_statements if isinstance(s, Definition))
    constraints = tuple(s for s in all_statements if isinstance(s, Constraint))

    growth = not options.int_ov_free
    drafts: list[_Draft] = []
    blocks: list[BlockVariables] = []
    block = 0
    for g, glabel in enumerate(group_labels, start=1):
        for lev, (llabel, statements) in enumerate(zip(level_labels, level_statements),
                                                   start=1):
            block += 1
            builder = _BlockBuilder(block, statements, columns_set, options, growth)
            block_drafts, variables = builder.build()
            if not variables.observed:
                raise SpecError("The model has no observed variables.")
            drafts.extend(block_drafts)
            blocks.append(replace(variables, group=g, group_label=glabel, level=lev,
                                  level_label=llabel))
            if meanstructure:
                _mean_defaults(block_drafts, drafts, variables, block, options, g, lev)
    if len(level_labels) > 1 and meanstructure:
        _within_intercepts(drafts, blocks)
    rows = _positions(drafts, blocks, options)
    table = ParameterTable(tuple(rows), tuple(blocks), definitions, constraints,
                           meanstructure, options)
    _check_labels(table)
    _check_identified(table)
    return table


def _mean_defaults(block_drafts, drafts, variables, block, options, group, level) -> None:
    have = {(d.lhs, d.block) for d in drafts if d.op == "~1"}

    def add(name: str, fixed: float | None, exo: bool = False) -> None:
        if (name, block) not in have:
            drafts.append(_Draft(name, "~1", "", block, 0, fixed, exo=exo))

    for v in variables.observed:
        if v in variables.exogenous:
            add(v, math.nan, exo=True)
        else:
            add(v, None if options.int_ov_free else 0.0)
    lv_means_free = options.int_lv_free or (
        group > 1 and ("intercepts" in options.group_equal)
        and "means" not in options.group_equal)
    for v in variables.latent:
        add(v, None if lv_means_free else 0.0)


def _within_intercepts(drafts: list[_Draft], blocks: list[BlockVariables]) -> None:
    """Two levels (lavaan): a variable observed at the within level and also at the between
    level has its mean at the between level, so its default within intercept is fixed at 0."""
    for d in drafts:
        variables = blocks[d.block - 1]
        if d.op != "~1" or d.user or variables.level != 1 or d.lhs in variables.latent:
            continue
        if any(b.group == variables.group and b.level > 1 and d.lhs in b.observed
               for b in blocks):
            d.fixed = 0.0


def _kind(d: _Draft, variables: BlockVariables) -> str | None:
    """lavaan's group.equal category of a row."""
    latent = set(variables.latent)
    if d.op == "=~":
        return "loadings"
    if d.op == "~":
        return "regressions"
    if d.op == "~1":
        return "means" if d.lhs in latent else "intercepts"
    if d.op == "~~":
        both_latent = d.lhs in latent and d.rhs in latent
        if d.lhs == d.rhs:
            return "lv.variances" if both_latent else "residuals"
        return "lv.covariances" if both_latent else "residual.covariances"
    return None


def _positions(drafts: list[_Draft], blocks: list[BlockVariables],
               options: SemOptions) -> list[ParameterRow]:
    """Assign free positions: one per free row, shared by a label and by group_equal."""
    for keyword in options.group_equal:
        if keyword not in GROUP_EQUAL:
            hint = nearest(keyword, GROUP_EQUAL, cutoff=0.6)
            raise SpecError(
                f"group_equal='{keyword}' is not one of {', '.join(GROUP_EQUAL)}.{hint}"
            )
    by_block = {i + 1: b for i, b in enumerate(blocks)}
    partial = {p.replace(" ", "") for p in options.group_partial}
    position: dict[object, int] = {}
    rows: list[ParameterRow] = []
    for i, d in enumerate(drafts, start=1):
        variables = by_block[d.block]
        free = 0
        if d.fixed is None:
            if d.label:
                key: object = ("label", d.label)
            elif variables.group > 1 and _kind(d, variables) in options.group_equal \
                    and f"{d.lhs}{d.op}{d.rhs}" not in partial:
                key = ("equal", d.lhs, d.op, d.rhs, variables.level)
            else:
                key = ("row", i)
            if key not in position:
                position[key] = len(position) + 1
                if key[0] == "row" and variables.group == 1:
                    position[("equal", d.lhs, d.op, d.rhs, variables.level)] = position[key]
            free = position[key]
        value = math.nan if d.fixed is None else d.fixed
        rows.append(ParameterRow(
            id=i, lhs=d.lhs, op=d.op, rhs=d.rhs, block=d.block, group=variables.group,
            level=variables.level, user=d.user, free=free, value=value, label=d.label,
            start=d.start, lower=d.lower, upper=d.upper, exo=d.exo,
        ))
    # renumber so that positions are 1..K in order of first use
    order: dict[int, int] = {}
    for r in rows:
        if r.free and r.free not in order:
            order[r.free] = len(order) + 1
    return [replace(r, free=order.get(r.free, 0)) for r in rows]


def _check_labels(table: ParameterTable) -> None:
    labels = {r.label for r in table.rows if r.label}
    names = labels | {d.name for d in table.definitions}
    for item in (*table.definitions, *table.constraints):
        exprs = [item.expr] if isinstance(item, Definition) else [item.lhs, item.rhs]
        for expr in exprs:
            for name in expression_names(expr):
                if name not in names:
                    hint = nearest(name, sorted(names), cutoff=0.6)
                    raise SpecError(
                        f"'{item.text}' uses '{name}', which is not a parameter label. Label "
                        f"a parameter by writing '{name}*' before it (e.g. 'y ~ {name}*x')."
                        f"{hint}"
                    )
        if isinstance(item, Definition):
            names = names | {item.name}


def _check_identified(table: ParameterTable) -> None:
    """A latent needs a scale: a fixed loading or a fixed variance."""
    for variables in table.blocks:
        block = [r for r in table.rows if r.group == variables.group
                 and r.level == variables.level]
        for latent in variables.latent:
            loadings = [r for r in block if r.op == "=~" and r.lhs == latent]
            variance = next(r for r in block if r.op == "~~" and r.lhs == latent
                            and r.rhs == latent)
            if loadings and all(r.free for r in loadings) and variance.free:
                raise SpecError(
                    f"The latent variable '{latent}' has no fixed loading and a free variance, "
                    "so its scale is not identified. Fix one loading (e.g. '1*x1', or drop "
                    "'NA*'), fix its variance ('" + latent + " ~~ 1*" + latent + "'), or pass "
                    "std_lv=True."
                )
            if len(loadings) == 1 and loadings[0].free == 0 and variance.free:
                ind = loadings[0].rhs
                resid = next((r for r in block if r.op == "~~" and r.lhs == ind
                              and r.rhs == ind), None)
                if resid is not None and resid.free and ind not in variables.latent:
                    raise SpecError(
                        f"The latent variable '{latent}' has one indicator ('{ind}') with a "
                        "free residual variance and a free latent variance: the two are not "
                        f"identified. Fix the residual variance ('{ind} ~~ 0*{ind}') or add "
                        "indicators."
                    )
