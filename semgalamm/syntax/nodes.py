"""The syntax tree of a model string: small frozen dataclasses, no semantics.

``parse(text) -> ModelSyntax`` produces these nodes. They record what was written and where
(``SourceSpan``); defaults, identification and data checks belong to the ``spec`` stage.

Expressions (``Expr``) are kept as trees so that later stages can tell a lavaan modifier
(``a*x`` with ``a`` a label) from an R/patsy interaction (``a*b`` with two columns), and every
node that stems from source text keeps that text (``text``) for messages and for patsy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceSpan:
    """Where a node was written: 1-based line and column of its first and last character."""

    line: int
    column: int
    end_line: int
    end_column: int


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Name:
    """An identifier: a column, a latent variable or a label (``x``, ``ability``, ``a``)."""

    name: str


@dataclass(frozen=True)
class Number:
    """A numeric literal (``1``, ``0.5``, ``-2.4``, ``1e-3``)."""

    value: float


@dataclass(frozen=True)
class String:
    """A quoted string literal (``"cr"``)."""

    value: str


@dataclass(frozen=True)
class Missing:
    """R's ``NA`` (frees a parameter when used as a modifier)."""


@dataclass(frozen=True)
class Boolean:
    """``TRUE``/``FALSE`` (also ``True``/``False``)."""

    value: bool


@dataclass(frozen=True)
class Call:
    """A function call ``func(args..., key=value...)``: ``I(x**2)``, ``C(x)``, ``c(1, 2)``."""

    func: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[tuple[str, Expr], ...] = ()


@dataclass(frozen=True)
class BinaryOp:
    """``left op right`` with op one of ``+ - * / : ^ **``."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class UnaryOp:
    """``-x`` or ``+x``."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Paren:
    """A parenthesised expression ``( expr )`` (kept so that text round-trips)."""

    expr: Expr


Expr = Name | Number | String | Missing | Boolean | Call | BinaryOp | UnaryOp | Paren


def expression_names(expr: Expr) -> list[str]:
    """Every identifier in an expression, in the order written (columns, latents, labels and
    the names in functions' arguments; not the functions' own names)."""
    if isinstance(expr, Name):
        return [expr.name]
    if isinstance(expr, BinaryOp):
        return expression_names(expr.left) + expression_names(expr.right)
    if isinstance(expr, (Paren, UnaryOp)):
        return expression_names(expr.expr if isinstance(expr, Paren) else expr.operand)
    if isinstance(expr, Call):
        return [n for arg in (*expr.args, *(v for _, v in expr.kwargs))
                for n in expression_names(arg)]
    return []


# --------------------------------------------------------------------------- modifiers


@dataclass(frozen=True)
class Modifier:
    """lavaan-style modifiers written before a term, ``mod*term`` (several may be chained).

    ``1*x`` fixed=1.0; ``NA*x`` free=True; ``a*x`` (in ``=~``/``~~``) label="a";
    ``start(0.5)*x`` start=0.5; ``lower(0)*x`` / ``upper(1)*x`` bounds; ``equal("a")*x`` label.
    """

    fixed: float | None = None
    free: bool = False
    label: str | None = None
    start: float | None = None
    lower: float | None = None
    upper: float | None = None

    @property
    def is_empty(self) -> bool:
        return self == Modifier()


# --------------------------------------------------------------------------- terms


@dataclass(frozen=True)
class Indicator:
    """Right-hand term of ``=~``.

    ``x1`` (wide data: a column or a latent), ``item[11]`` (long data: rows where column
    ``item`` equals ``11``; ``level`` is kept as written, a string), ``type[response]:x``
    (loading varies with covariate ``x``; ``covariate="x"``).
    """

    variable: str
    level: str | None
    covariate: str | None
    modifier: Modifier
    span: SourceSpan


@dataclass(frozen=True)
class FixedTerm:
    """A fixed-effect term on the right of ``~``: ``x``, ``a*b``, ``a:b``, ``I(x**2)``, ``C(g)``,
    ``(age*bus):chd``, ``item``, or a latent name.

    ``text`` is the term as written (R formula syntax). ``modifier`` is filled only when the
    prefix is unambiguously a modifier (number, ``NA``, string, ``start()``/``label()``/...);
    a bare-identifier product ``a*x`` stays an expression and the spec stage decides.
    """

    expr: Expr
    text: str
    modifier: Modifier
    span: SourceSpan


@dataclass(frozen=True)
class Intercept:
    """An explicit ``1`` (present=True) or ``0``/``-1`` (present=False) in a formula; lavaan's
    ``x1 ~ 0*1``, ``x1 ~ NA*1`` or ``x1 ~ label("a")*1`` carry a ``modifier``."""

    present: bool
    span: SourceSpan
    modifier: Modifier = Modifier()


@dataclass(frozen=True)
class RandomTerm:
    """An lme4 random-effects term ``(expr | group)`` or ``(expr || group)``.

    ``terms`` are the left-hand side's variables (``x`` in ``(1 + x | g)``), ``intercept`` is
    True for an explicit ``1``, False for ``0``/``-1`` and None when implicit (R: present).
    ``groups`` lists the grouping factors after expanding nesting, each one as the tuple of
    columns whose interaction defines it: ``g`` -> (("g",),), ``a:b`` -> (("a", "b"),),
    ``a/b`` -> (("a",), ("a", "b")). ``correlated`` is False for ``||``.
    """

    terms: tuple[FixedTerm, ...]
    intercept: bool | None
    groups: tuple[tuple[str, ...], ...]
    correlated: bool
    text: str
    span: SourceSpan


@dataclass(frozen=True)
class SmoothTerm:
    """An mgcv/gamm4 smooth: ``s(x, k=10, bs="cr", by=z, fx=TRUE)``, ``t2(x, z)``, ``te()``.

    ``options`` keeps the keyword arguments as expressions, in the order written.
    """

    kind: str
    variables: tuple[str, ...]
    options: tuple[tuple[str, Expr], ...]
    text: str
    span: SourceSpan


Term = FixedTerm | Intercept | RandomTerm | SmoothTerm


# --------------------------------------------------------------------------- left-hand sides


@dataclass(frozen=True)
class Response:
    """A single variable on the left of ``~`` (observed column or latent)."""

    name: str
    span: SourceSpan


@dataclass(frozen=True)
class BinomialResponse:
    """``cbind(successes, failures)`` on the left of ``~`` (R's binomial form).

    ``failures`` is an expression such as ``Name("f")`` or ``BinaryOp("-", Name("n"), Name("y"))``.
    """

    successes: Expr
    failures: Expr
    text: str
    span: SourceSpan


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Measurement:
    """``latent =~ indicator + indicator + ...``"""

    latent: str
    indicators: tuple[Indicator, ...]
    span: SourceSpan


@dataclass(frozen=True)
class Regression:
    """``lhs ~ term + term + ...`` (observed response or latent on the left)."""

    lhs: Response | BinomialResponse
    terms: tuple[Term, ...]
    span: SourceSpan


@dataclass(frozen=True)
class CovarianceTerm:
    """Right-hand term of ``~~``: a variable with its modifier."""

    variable: str
    modifier: Modifier
    span: SourceSpan


@dataclass(frozen=True)
class Covariance:
    """``lhs ~~ rhs + rhs``: a (residual) variance or covariance; a random-term right-hand
    side, ``y ~~ (1 | item)``, makes the residual variance of ``y`` differ by ``item``."""

    lhs: str
    terms: tuple[CovarianceTerm | RandomTerm, ...]
    span: SourceSpan


@dataclass(frozen=True)
class Definition:
    """``name := expression`` (a parameter defined as a function of labelled ones)."""

    name: str
    expr: Expr
    text: str
    span: SourceSpan


@dataclass(frozen=True)
class Constraint:
    """``lhs == rhs``, ``lhs < rhs``, ``lhs > rhs`` over labelled parameters."""

    op: str
    lhs: Expr
    rhs: Expr
    text: str
    span: SourceSpan


@dataclass(frozen=True)
class Block:
    """A block line, lavaan's ``level: 1`` / ``level: within`` or ``group: 2``: the statements
    that follow (up to the next block line of the same kind) belong to that block. ``kind`` is
    ``"level"``, ``"group"``, ``"block"`` or ``"class"``; ``value`` is the label as written."""

    kind: str
    value: str
    text: str
    span: SourceSpan


@dataclass(frozen=True)
class Unsupported:
    """A statement with an operator that parses but cannot be estimated:
    ``<~``, ``~*~``, ``|~``, ``|`` (thresholds), ``%``, ``:~``.
    """

    operator: str
    text: str
    span: SourceSpan


Statement = (
    Measurement | Regression | Covariance | Definition | Constraint | Block | Unsupported
)


@dataclass(frozen=True)
class ModelSyntax:
    """A parsed model string: its statements in the order written, and the source."""

    statements: tuple[Statement, ...]
    source: str = field(repr=False)
