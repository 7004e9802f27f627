"""Turn Lark's parse tree into the nodes of :mod:`semgalamm.syntax.nodes`.

One method per grammar rule (or alias), named after it. The methods only rename, unquote and
check shapes that the grammar leaves open (what may stand on the left of an operator, which
terms a random term may hold); they add no defaults and look at no data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lark import Token, Transformer_NonRecursive, v_args
from lark.tree import Meta

from semgalamm.errors import ModelSyntaxError
from semgalamm.syntax.diagnostics import caret_context, error_at
from semgalamm.syntax.nodes import (
    BinaryOp,
    BinomialResponse,
    Block,
    Boolean,
    Call,
    Constraint,
    Covariance,
    CovarianceTerm,
    Definition,
    Expr,
    FixedTerm,
    Indicator,
    Intercept,
    Measurement,
    Missing,
    Modifier,
    Name,
    Number,
    Paren,
    RandomTerm,
    Regression,
    Response,
    SmoothTerm,
    SourceSpan,
    Statement,
    String,
    Term,
    UnaryOp,
    Unsupported,
)

BLOCKS = ("group", "level", "block", "class")
#: The deepest expression a model may hold: each bracket, call, sign and operator is one level
#: (``a + b + c`` is 2 deep, ``-(x)`` 2, a name 0). Far beyond a written model, and Python's
#: own limit of nested brackets; it keeps the later stages, whose walks over expressions are
#: recursive, well inside Python's recursion limit. Statements, terms and indicators are lists,
#: not nesting: ``y ~ x1 + ... + x5000`` is no deeper than ``y ~ x1``.
MAX_DEPTH = 200
_KINDS = {
    "fixed": "a fixed value (or NA)",
    "label": "a label",
    "start": "a start value",
    "lower": "a lower bound",
    "upper": "an upper bound",
}
_COMMENT_OR_BREAK = re.compile(
    r"""(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    r"|(?P<comment>[ \t]*[#!][^\n]*)|(?P<break>\s*\n\s*)"
)


# --------------------------------------------------------------------------- internal values


@dataclass(frozen=True)
class _Located:
    """An expression with the text and span it was written as."""

    expr: Expr
    text: str
    span: SourceSpan


@dataclass(frozen=True)
class _ModifierPart:
    """One prefix of a term: ``kind`` is a field of :class:`Modifier`."""

    kind: str
    value: float | str | bool
    span: SourceSpan


@dataclass(frozen=True)
class _Removed:
    """A formula term written after ``-``."""

    term: Term
    span: SourceSpan


@dataclass(frozen=True)
class _Keyword:
    """A keyword argument ``name = value``."""

    name: str
    value: Expr


def _one_line(match: re.Match[str]) -> str:
    """Keep a string, drop a comment, turn a line break into one space."""
    return {"string": match.group(), "comment": "", "break": " "}[match.lastgroup or ""]


def _span(meta: Meta) -> SourceSpan:
    return SourceSpan(meta.line, meta.column, meta.end_line, meta.end_column - 1)


def _token_span(token: Token) -> SourceSpan:
    return SourceSpan(token.line, token.column, token.end_line, token.end_column - 1)


def _unquote(token: Token) -> str:
    if token.type != "STRING":
        return str(token)
    return re.sub(r"\\(.)", r"\1", str(token)[1:-1])


# --------------------------------------------------------------------------- the transformer


@v_args(meta=True, inline=True)
class ModelTransformer(Transformer_NonRecursive):
    """Transformer for one model string (it needs the source for texts and messages).

    Lark's non-recursive transformer, so that a long chain (``x1 + x2 + ... + x5000``, whose
    tree is as deep as it is long) needs no recursion; the depth of every expression is
    counted as it is built and limited to :data:`MAX_DEPTH`.
    """

    def __init__(self, source: str) -> None:
        super().__init__()
        self._source = source
        # id(expression) -> (expression, depth) for every composite expression built; leaves
        # (names, numbers, strings) are 0 deep. Holding the expression keeps its id unique.
        self._depths: dict[int, tuple[Expr, int]] = {}

    # ----------------------------------------------------------------- helpers

    def _text(self, meta: Meta) -> str:
        """The source of a node; comments and line breaks inside it become single spaces."""
        text = self._source[meta.start_pos : meta.end_pos]
        if "\n" not in text:
            return text
        return _COMMENT_OR_BREAK.sub(_one_line, text).strip()

    def _error(self, span: SourceSpan, message: str) -> Exception:
        return error_at(self._source, span, message)

    def _depth(self, expr: Any) -> int:
        entry = self._depths.get(id(expr))
        return entry[1] if entry is not None and entry[0] is expr else 0

    def _nested(self, meta: Meta, expr: Expr, *children: Any) -> Expr:
        """``expr`` (written at ``meta``), one level deeper than the deepest of ``children``."""
        depth = 1 + max((self._depth(child) for child in children), default=0)
        if depth > MAX_DEPTH:
            message = (
                f"Nesting deeper than {MAX_DEPTH} levels: the expression that starts here "
                f"holds more than {MAX_DEPTH} levels of brackets, calls, signs and operators "
                "(each operator of a chain such as a + b + c counts one); simplify it or split "
                "it into shorter expressions."
            )
            context = caret_context(self._source, meta.line, meta.column)
            raise ModelSyntaxError(message, meta.line, meta.column, context)
        self._depths[id(expr)] = (expr, depth)
        return expr

    def _names(self, lhs: _Located, operator: str, what: str) -> tuple[str, ...]:
        """The names of a left-hand side ``a`` or ``a + b`` (lavaan expands the product)."""
        names: list[str] = []
        expr = lhs.expr
        while isinstance(expr, BinaryOp) and expr.op == "+" and isinstance(expr.right, Name):
            names.append(expr.right.name)
            expr = expr.left
        if not isinstance(expr, Name):
            raise self._error(
                lhs.span,
                f"The left-hand side of '{operator}' must be {what} (or several joined by '+'), "
                f"not '{lhs.text}'.",
            )
        return (expr.name, *reversed(names))

    def _modifier(self, parts: Iterable[_ModifierPart]) -> Modifier:
        values: dict[str, Any] = {}
        for part in parts:
            kind = "fixed" if part.kind == "free" else part.kind
            if kind in values:
                raise self._error(
                    part.span,
                    f"This term is given {_KINDS[kind]} twice; keep only one of the modifiers.",
                )
            values[kind] = part.value
        if "fixed" in values and values["fixed"] is True:
            values["free"] = values.pop("fixed")
        return Modifier(**values)

    # ----------------------------------------------------------------- statements

    def start(self, meta: Meta, *statements: tuple[Statement, ...] | None) -> tuple[Statement, ...]:
        """The statements in the order written (a cross product ``a + b =~ x`` gives two)."""
        return tuple(s for group in statements if group is not None for s in group)

    def lhs(self, meta: Meta, expr: Expr) -> _Located:
        return _Located(expr, self._text(meta), _span(meta))

    expression = lhs
    formula_expression = lhs

    def measurement(self, meta: Meta, lhs: _Located, indicators: tuple) -> tuple[Measurement, ...]:
        latents = self._names(lhs, "=~", "a latent variable's name")
        return tuple(Measurement(name, indicators, _span(meta)) for name in latents)

    def regression(self, meta: Meta, lhs: _Located, terms: tuple) -> tuple[Regression, ...]:
        formula = tuple(self._formula_terms(terms))
        expr = lhs.expr
        if isinstance(expr, Call) and expr.func == "cbind":
            if len(expr.args) != 2 or expr.kwargs:
                raise self._error(
                    lhs.span,
                    "cbind() on the left of '~' takes two arguments, successes and failures, "
                    "as in 'cbind(y, n - y) ~ x'.",
                )
            response = BinomialResponse(*expr.args, text=lhs.text, span=lhs.span)
            return (Regression(response, formula, _span(meta)),)
        names = self._names(lhs, "~", "a variable's name or cbind(successes, failures)")
        return tuple(Regression(Response(n, lhs.span), formula, _span(meta)) for n in names)

    def covariance(self, meta: Meta, lhs: _Located, terms: tuple) -> tuple[Covariance, ...]:
        names = self._names(lhs, "~~", "a variable's name")
        return tuple(Covariance(name, terms, _span(meta)) for name in names)

    def definition(self, meta: Meta, lhs: _Located, rhs: _Located) -> tuple[Definition]:
        if not isinstance(lhs.expr, Name):
            raise self._error(
                lhs.span,
                f"The left-hand side of ':=' must be the new parameter's name, not '{lhs.text}'.",
            )
        return (Definition(lhs.expr.name, rhs.expr, rhs.text, _span(meta)),)

    def constraint(
        self, meta: Meta, lhs: _Located, op: Token, rhs: _Located
    ) -> tuple[Constraint]:
        return (Constraint(str(op), lhs.expr, rhs.expr, self._text(meta), _span(meta)),)

    def unsupported(
        self, meta: Meta, lhs: _Located, op: Token, rhs: _Located
    ) -> tuple[Unsupported]:
        return (Unsupported(str(op), self._text(meta), _span(meta)),)

    def block(self, meta: Meta, lhs: _Located, rhs: _Located) -> tuple[Block]:
        if not (isinstance(lhs.expr, Name) and lhs.expr.name.lower() in BLOCKS):
            raise self._error(
                lhs.span,
                f"'{lhs.text}:' is not a block line; blocks start with group:, level:, block: "
                "or class:. For an interaction 'a:b' write it on the right of '~'.",
            )
        value = rhs.text.strip().strip("\"'")
        return (Block(lhs.expr.name.lower(), value, self._text(meta), _span(meta)),)

    # ----------------------------------------------------------------- =~ and ~~

    def indicators(self, meta: Meta, *indicators: Indicator) -> tuple[Indicator, ...]:
        return indicators

    def indicator(self, meta: Meta, *children: Any) -> Indicator:
        *parts, variable, level, covariate = children
        if isinstance(covariate, Call):
            # a formula term of covariates (I(x^2), poly(x, 2)): kept as written
            start = (level if level is not None else variable).end_pos
            text = self._source[start: meta.end_pos]
            text = _COMMENT_OR_BREAK.sub(_one_line, text).strip().lstrip("]").strip()
            covariate = text[1:].strip() if text.startswith(":") else text
        return Indicator(
            variable=str(variable),
            level=None if level is None else _unquote(level),
            covariate=None if covariate is None else str(covariate),
            modifier=self._modifier(parts),
            span=_span(meta),
        )

    covariance_terms = indicators

    def covariance_term(self, meta: Meta, *children: Any) -> CovarianceTerm | RandomTerm:
        *parts, variable = children
        if isinstance(variable, RandomTerm):
            return variable
        return CovarianceTerm(str(variable), self._modifier(parts), _span(meta))

    # ----------------------------------------------------------------- modifiers

    def fixed_value(self, meta: Meta, value: Token) -> _ModifierPart:
        return _ModifierPart("fixed", float(value), _span(meta))

    def negative_fixed_value(self, meta: Meta, value: Token) -> _ModifierPart:
        return _ModifierPart("fixed", -float(value), _span(meta))

    def free_value(self, meta: Meta, token: Token) -> _ModifierPart:
        return _ModifierPart("free", True, _span(meta))

    def label_value(self, meta: Meta, label: Token) -> _ModifierPart:
        return _ModifierPart("label", _unquote(label), _span(meta))

    def start_value(self, meta: Meta, value: Token) -> _ModifierPart:
        return _ModifierPart("start", float(value), _span(meta))

    def negative_start_value(self, meta: Meta, value: Token) -> _ModifierPart:
        return _ModifierPart("start", -float(value), _span(meta))

    def modifier_call(self, meta: Meta, function: Token, value: Any) -> _ModifierPart:
        kind = {"equal": "label"}.get(str(function), str(function))
        if kind == "label":
            if not isinstance(value, Token):
                raise self._error(
                    _span(meta), f'{function}() takes a quoted label, as in {function}("a").'
                )
            return _ModifierPart(kind, _unquote(value), _span(meta))
        if not isinstance(value, Number):
            raise self._error(_span(meta), f"{function}() takes a number, as in {function}(1).")
        return _ModifierPart(kind, value.value, _span(meta))

    # ----------------------------------------------------------------- formulas

    def terms(self, meta: Meta, *terms: Term | _Removed) -> tuple[Term | _Removed, ...]:
        return terms

    def removed_term(self, meta: Meta, term: Term) -> _Removed:
        return _Removed(term, _span(meta))

    def intercept(self, meta: Meta, value: Token) -> Intercept:
        if float(value) not in (0.0, 1.0):
            raise self._error(
                _span(meta),
                f"A number alone in a formula must be 1 (keep the intercept) or 0 (drop it), "
                f"not {value}; to fix a coefficient write {value}*x.",
            )
        return Intercept(float(value) == 1.0, _span(meta))

    def modified_intercept(self, meta: Meta, *children: Any) -> Intercept:
        *parts, value = children
        if float(value) != 1.0:
            raise self._error(
                _span(meta),
                f"A modifier applies to the intercept '1' (as in 0*1 or NA*1), not to {value}.",
            )
        return Intercept(True, _span(meta), self._modifier(parts))

    def _formula_terms(self, terms: Iterable[Term | _Removed]) -> Iterable[Term]:
        """Resolve ``- 1`` into a dropped intercept; other removals are errors."""
        for term in terms:
            if not isinstance(term, _Removed):
                yield term
            elif isinstance(term.term, Intercept) and term.term.present:
                yield Intercept(False, term.span)
            else:
                raise self._error(
                    term.span,
                    "Only the intercept can be removed with '-' (write '- 1' or start with "
                    "'0 +'); to fix a coefficient to a negative value write fixed(-1)*x.",
                )

    def fixed_term(self, meta: Meta, *children: Any) -> FixedTerm:
        *parts, located = children
        return FixedTerm(located.expr, located.text, self._modifier(parts), _span(meta))

    def parenthesized_terms(self, meta: Meta, terms: tuple[Term | _Removed, ...]) -> Paren:
        expr: Expr | None = None
        for item in terms:
            sign = "-" if isinstance(item, _Removed) else "+"
            term = item.term if isinstance(item, _Removed) else item
            if isinstance(term, Intercept):
                operand: Expr = Number(1.0 if term.present else 0.0)
            elif isinstance(term, FixedTerm) and term.modifier.is_empty:
                operand = term.expr
            else:
                raise self._error(
                    _span(meta),
                    "Inside parentheses a formula may only combine variables, as in "
                    "(a + b):c; write random terms, smooths and modifiers as separate terms "
                    "joined by '+'.",
                )
            if expr is None and sign == "+":
                expr = operand
            elif expr is None:
                expr = self._nested(meta, UnaryOp("-", operand), operand)
            else:
                expr = self._nested(meta, BinaryOp(sign, expr, operand), expr, operand)
        assert expr is not None  # the grammar asks for at least one term
        return self._nested(meta, Paren(expr), expr)

    def random_term(
        self, meta: Meta, terms: tuple[Term | _Removed, ...], groups: tuple, correlated: bool = True
    ) -> RandomTerm:
        intercept: bool | None = None
        fixed: list[FixedTerm] = []
        for term in self._formula_terms(terms):
            if isinstance(term, Intercept):
                intercept = term.present
            elif isinstance(term, FixedTerm) and term.modifier.is_empty:
                fixed.append(term)
            else:
                raise self._error(
                    term.span,
                    "Before '|' in a random term write the intercept and variables whose "
                    "effects vary by group, as in (1 + x | g); smooths, random terms and "
                    "modifiers cannot stand there.",
                )
        text = self._text(meta)
        return RandomTerm(tuple(fixed), intercept, groups, correlated, text, _span(meta))

    def uncorrelated_random_term(
        self, meta: Meta, terms: tuple[Term | _Removed, ...], groups: tuple
    ) -> RandomTerm:
        return self.random_term(meta, terms, groups, correlated=False)

    def grouping(self, meta: Meta, *nested: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
        """``a/b`` means the levels ``a`` and ``a:b``."""
        return tuple(sum(nested[: i + 1], ()) for i in range(len(nested)))

    def interaction(self, meta: Meta, *names: Token) -> tuple[str, ...]:
        return tuple(str(n) for n in names)

    def smooth_term(self, meta: Meta, function: Token, *arguments: Any) -> SmoothTerm:
        variables: list[str] = []
        options: list[tuple[str, Expr]] = []
        for argument in arguments:
            if isinstance(argument, _Keyword):
                options.append((argument.name, argument.value))
            elif isinstance(argument, Name) and not options:
                variables.append(argument.name)
            elif argument is not None:
                raise self._error(
                    _span(meta),
                    f"{function}() takes variable names first, then options written "
                    f"name=value, as in {function}(x, k=10).",
                )
        if not variables:
            raise self._error(
                _span(meta), f"{function}() needs at least one variable, as in {function}(x)."
            )
        return SmoothTerm(
            str(function), tuple(variables), tuple(options), self._text(meta), _span(meta)
        )

    # ----------------------------------------------------------------- expressions

    def binary(self, meta: Meta, left: Expr, op: Token, right: Expr) -> Expr:
        return self._nested(meta, BinaryOp(str(op), left, right), left, right)

    def unary(self, meta: Meta, op: Token, operand: Expr) -> Expr:
        return self._nested(meta, UnaryOp(str(op), operand), operand)

    def name(self, meta: Meta, token: Token) -> Name:
        return Name(str(token))

    def number(self, meta: Meta, token: Token) -> Number:
        return Number(float(token))

    def negative_number(self, meta: Meta, token: Token) -> Number:
        return Number(-float(token))

    def string(self, meta: Meta, token: Token) -> String:
        return String(_unquote(token))

    def missing(self, meta: Meta, token: Token) -> Missing:
        return Missing()

    def boolean(self, meta: Meta, token: Token) -> Boolean:
        return Boolean(str(token) in ("TRUE", "True"))

    def parenthesized(self, meta: Meta, expr: Expr) -> Expr:
        return self._nested(meta, Paren(expr), expr)

    def call(self, meta: Meta, function: Token, *arguments: Any) -> Expr:
        args = tuple(a for a in arguments if a is not None and not isinstance(a, _Keyword))
        kwargs = tuple((a.name, a.value) for a in arguments if isinstance(a, _Keyword))
        values = args + tuple(value for _, value in kwargs)
        return self._nested(meta, Call(str(function), args, kwargs), *values)

    def keyword_argument(self, meta: Meta, name: Token, value: Expr) -> _Keyword:
        return _Keyword(str(name), value)
