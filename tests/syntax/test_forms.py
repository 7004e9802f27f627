"""Every statement form of the model language: model string -> expected nodes (a table).

Spans are checked in their own table (``SPANS``); the forms table compares nodes with their
spans removed so that each row stays readable.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from semgalamm.syntax import (
    BinaryOp,
    BinomialResponse,
    Block,
    Boolean,
    Call,
    Constraint,
    Covariance,
    CovarianceTerm,
    Definition,
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
    String,
    UnaryOp,
    Unsupported,
    parse,
)
from semgalamm.syntax.grammar import build_parser


def strip(node):
    """``node`` with every span set to None (recursively)."""
    if isinstance(node, tuple):
        return tuple(strip(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {
            f.name: None if f.name == "span" else strip(getattr(node, f.name))
            for f in dataclasses.fields(node)
            if f.init
        }
        return dataclasses.replace(node, **changes)
    return node


# ----------------------------------------------------------------- builders for expected nodes


def ind(variable, level=None, covariate=None, **modifier):
    return Indicator(variable, level, covariate, Modifier(**modifier), None)


def meas(latent, *indicators):
    return Measurement(latent, indicators, None)


def fx(expr, text, **modifier):
    if isinstance(expr, str):
        expr = Name(expr)
    return FixedTerm(expr, text, Modifier(**modifier), None)


def icpt(present, **modifier):
    return Intercept(present, None, Modifier(**modifier))


def rnd(text, groups, terms=(), intercept=None, correlated=True):
    return RandomTerm(tuple(terms), intercept, groups, correlated, text, None)


def smooth(text, kind, variables, **options):
    return SmoothTerm(kind, variables, tuple(options.items()), text, None)


def reg(lhs, *terms):
    if isinstance(lhs, str):
        lhs = Response(lhs, None)
    return Regression(lhs, terms, None)


def cov(lhs, *terms):
    return Covariance(lhs, terms, None)


def cvt(variable, **modifier):
    return CovarianceTerm(variable, Modifier(**modifier), None)


def unsup(operator, text):
    return Unsupported(operator, text, None)


def op(symbol, left, right):
    return BinaryOp(symbol, left, right)


N, Num = Name, Number
TWO = (meas("f", ind("x1")), meas("g", ind("x2")))

FORMS = [
    # ------------------------------------------------------------ statements and lines
    ("newline", "f =~ x1\ng =~ x2", TWO),
    ("semicolon", "f =~ x1; g =~ x2;", TWO),
    ("comments", "# a\nf =~ x1 # b\n! c\ng =~ x2 ! d", TWO),
    ("blank lines", "\n\n  f =~ x1\n\n\n  g =~ x2\n\n", TWO),
    ("crlf", "f =~ x1\r\ng =~ x2\r\n", TWO),
    ("empty model", "  # nothing\n", ()),
    ("line ends in +", "f =~ x1 +\n  x2", (meas("f", ind("x1"), ind("x2")),)),
    ("line ends in =~", "f =~\n  x1 + x2", (meas("f", ind("x1"), ind("x2")),)),
    ("line ends in ~", "y ~\n x", (reg("y", fx("x", "x")),)),
    ("line ends in ~~", "f ~~\n g", (cov("f", cvt("g")),)),
    ("line ends in *", "f =~ 1*\n x1", (meas("f", ind("x1", fixed=1.0)),)),
    ("line ends in comma", "y ~ s(x,\n k=5)",
     (reg("y", smooth("s(x, k=5)", "s", ("x",), k=Num(5))),)),
    ("line ends in (", "y ~ (\n1 | g)", (reg("y", rnd("( 1 | g)", (("g",),), intercept=True)),)),
    ("line starts with +", "f =~ x1\n  + x2 # c\n  + x3",
     (meas("f", ind("x1"), ind("x2"), ind("x3")),)),
    ("line starts with |", "y ~ (1\n | g)", (reg("y", rnd("(1 | g)", (("g",),), intercept=True)),)),
    ("comment before continuation", "f =~ x1 + # first\n # more\n x2",
     (meas("f", ind("x1"), ind("x2")),)),
    ("unicode tilde", "y \u02dc x\nf =\u02dc x1", (reg("y", fx("x", "x")), meas("f", ind("x1")))),
    ("r names", "abil.sid =~ x.1 + .x + x_2",
     (meas("abil.sid", ind("x.1"), ind(".x"), ind("x_2")),)),
    # ------------------------------------------------------------ =~
    ("measurement", "visual =~ x1 + x2 + x3", (meas("visual", ind("x1"), ind("x2"), ind("x3")),)),
    ("cross product lhs", "a1 + a2 =~ x1", (meas("a1", ind("x1")), meas("a2", ind("x1")))),
    ("level number", "ability =~ item[11]", (meas("ability", ind("item", "11")),)),
    ("level name", "level =~ itemgroup[a]", (meas("level", ind("itemgroup", "a")),)),
    ("level string", 'f =~ item["fiber 1"]', (meas("f", ind("item", "fiber 1")),)),
    ("covariate", "eta =~ type[response]:x", (meas("eta", ind("type", "response", "x")),)),
    ("fixed 1", "f =~ 1*x", (meas("f", ind("x", fixed=1.0)),)),
    ("fixed decimal", "f =~ 0.5*x", (meas("f", ind("x", fixed=0.5)),)),
    ("fixed negative", "f =~ -2.4*x", (meas("f", ind("x", fixed=-2.4)),)),
    ("fixed exponent", "f =~ 1e-3*x", (meas("f", ind("x", fixed=0.001)),)),
    ("free", "f =~ NA*x", (meas("f", ind("x", free=True)),)),
    ("label name", "f =~ a*x", (meas("f", ind("x", label="a")),)),
    ("label string", 'f =~ "my label"*x', (meas("f", ind("x", label="my label")),)),
    ("label()", 'f =~ label("a")*x', (meas("f", ind("x", label="a")),)),
    ("equal()", "f =~ equal('a')*x", (meas("f", ind("x", label="a")),)),
    ("start()", "f =~ start(0.5)*x", (meas("f", ind("x", start=0.5)),)),
    ("fixed()", "f =~ fixed(1)*x", (meas("f", ind("x", fixed=1.0)),)),
    ("lower()", "f =~ lower(0)*x", (meas("f", ind("x", lower=0.0)),)),
    ("upper()", "f =~ upper(-1)*x", (meas("f", ind("x", upper=-1.0)),)),
    ("start ?", "f =~ 0.8?x + -1?y", (meas("f", ind("x", start=0.8), ind("y", start=-1.0)),)),
    ("chained", "f =~ NA*start(1)*a*item[2]:z",
     (meas("f", ind("item", "2", "z", free=True, start=1.0, label="a")),)),
    # ------------------------------------------------------------ ~: fixed terms
    ("regression", "y ~ x", (reg("y", fx("x", "x")),)),
    ("interaction *", "y ~ lbas * treat",
     (reg("y", fx(op("*", N("lbas"), N("treat")), "lbas * treat")),)),
    ("interaction :", "y ~ a:b", (reg("y", fx(op(":", N("a"), N("b")), "a:b")),)),
    ("nesting /", "y ~ a/b", (reg("y", fx(op("/", N("a"), N("b")), "a/b")),)),
    ("paren interaction", "y ~ (age*bus):chd",
     (reg("y", fx(op(":", Paren(op("*", N("age"), N("bus"))), N("chd")), "(age*bus):chd")),)),
    ("power of sum", "y ~ (a + b)^2",
     (reg("y", fx(op("^", Paren(op("+", N("a"), N("b"))), Num(2)), "(a + b)^2")),)),
    ("I(x**2)", "y ~ I(x**2)", (reg("y", fx(Call("I", (op("**", N("x"), Num(2)),)), "I(x**2)")),)),
    ("I(x^2)", "y ~ I(x^2)", (reg("y", fx(Call("I", (op("^", N("x"), Num(2)),)), "I(x^2)")),)),
    ("C(x)", "y ~ C(x)", (reg("y", fx(Call("C", (N("x"),)), "C(x)")),)),
    ("log(x)", "y ~ log(x)", (reg("y", fx(Call("log", (N("x"),)), "log(x)")),)),
    ("call kwargs", "y ~ poly(x, degree=2)",
     (reg("y", fx(Call("poly", (N("x"),), (("degree", Num(2)),)), "poly(x, degree=2)")),)),
    ("0 +", "y ~ 0 + item", (reg("y", icpt(False), fx("item", "item")),)),
    ("+ 0", "y ~ item + 0", (reg("y", fx("item", "item"), icpt(False)),)),
    ("- 1", "y ~ x - 1", (reg("y", fx("x", "x"), icpt(False)),)),
    ("-1 first", "y ~ -1 + x", (reg("y", icpt(False), fx("x", "x")),)),
    ("1", "y ~ 1", (reg("y", icpt(True)),)),
    ("leading +", "y ~ + x", (reg("y", fx("x", "x")),)),
    ("latent regression", "eta2 ~ eta1 + b*x",
     (reg("eta2", fx("eta1", "eta1"), fx(op("*", N("b"), N("x")), "b*x")),)),
    ("cross product ~", "y1 + y2 ~ x", (reg("y1", fx("x", "x")), reg("y2", fx("x", "x")))),
    ("modifier number", "y ~ 0.5*x", (reg("y", fx("x", "x", fixed=0.5)),)),
    ("modifier NA", "y ~ NA*x", (reg("y", fx("x", "x", free=True)),)),
    ("modifier string", 'y ~ "b1"*x', (reg("y", fx("x", "x", label="b1")),)),
    ("modifier calls", 'y ~ start(0.5)*label("b")*x:z',
     (reg("y", fx(op(":", N("x"), N("z")), "x:z", start=0.5, label="b")),)),
    ("modifier start ?", "y ~ 0.5?x", (reg("y", fx("x", "x", start=0.5)),)),
    ("modifier fixed()", "y ~ fixed(-1)*x", (reg("y", fx("x", "x", fixed=-1.0)),)),
    # ------------------------------------------------------------ ~: random terms
    ("(1 | g)", "y ~ (1 | g)", (reg("y", rnd("(1 | g)", (("g",),), intercept=True)),)),
    ("(x | g)", "y ~ (x | g)", (reg("y", rnd("(x | g)", (("g",),), [fx("x", "x")])),)),
    ("(1 + x | g)", "y ~ (1 + x | g)",
     (reg("y", rnd("(1 + x | g)", (("g",),), [fx("x", "x")], True)),)),
    ("(0 + x | g)", "y ~ (0 + x | g)",
     (reg("y", rnd("(0 + x | g)", (("g",),), [fx("x", "x")], False)),)),
    ("(x - 1 | g)", "y ~ (x - 1 | g)",
     (reg("y", rnd("(x - 1 | g)", (("g",),), [fx("x", "x")], False)),)),
    ("(0 + ms | mid)", "y ~ (0 + ms | mid)",
     (reg("y", rnd("(0 + ms | mid)", (("mid",),), [fx("ms", "ms")], False)),)),
    ("nested a/b", "y ~ (1 | a/b)",
     (reg("y", rnd("(1 | a/b)", (("a",), ("a", "b")), intercept=True)),)),
    ("nested a/b/c", "y ~ (1 | a/b/c)",
     (reg("y", rnd("(1 | a/b/c)", (("a",), ("a", "b"), ("a", "b", "c")), intercept=True)),)),
    ("crossed a:b", "y ~ (1 | a:b)", (reg("y", rnd("(1 | a:b)", (("a", "b"),), intercept=True)),)),
    ("school/sid", "y ~ (1 | school/sid)",
     (reg("y", rnd("(1 | school/sid)", (("school",), ("school", "sid")), intercept=True)),)),
    ("uncorrelated ||", "y ~ (x || g)",
     (reg("y", rnd("(x || g)", (("g",),), [fx("x", "x")], correlated=False)),)),
    # ------------------------------------------------------------ ~: smooths
    ("s(x)", "y ~ s(x)", (reg("y", smooth("s(x)", "s", ("x",))),)),
    ("s options", 'y ~ s(x, k=10, bs="cr", by=z)',
     (reg("y", smooth('s(x, k=10, bs="cr", by=z)', "s", ("x",), k=Num(10), bs=String("cr"),
                      by=N("z"))),)),
    ("s fx=TRUE", "y ~ s(x, fx=TRUE, m=NA)",
     (reg("y", smooth("s(x, fx=TRUE, m=NA)", "s", ("x",), fx=Boolean(True), m=Missing())),)),
    ("t2(x, z)", "y ~ t2(x, z)", (reg("y", smooth("t2(x, z)", "t2", ("x", "z"))),)),
    ("t2 k=c()", "y ~ t2(x, z, k=c(5,5))",
     (reg("y", smooth("t2(x, z, k=c(5,5))", "t2", ("x", "z"), k=Call("c", (Num(5), Num(5))))),)),
    ("te()", "y ~ te(x, z, k=-1)", (reg("y", smooth("te(x, z, k=-1)", "te", ("x", "z"),
                                                  k=UnaryOp("-", Num(1)))),)),
    ("ti()", "y ~ ti(x)", (reg("y", smooth("ti(x)", "ti", ("x",))),)),
    ("smooth on latent", "loading ~ s(x) + (1 | id/timepoint)",
     (reg("loading", smooth("s(x)", "s", ("x",)),
          rnd("(1 | id/timepoint)", (("id",), ("id", "timepoint")), intercept=True)),)),
    # ------------------------------------------------------------ ~: binomial responses
    ("cbind(y, n - y)", "cbind(y, n - y) ~ item",
     (reg(BinomialResponse(N("y"), op("-", N("n"), N("y")), "cbind(y, n - y)", None),
          fx("item", "item")),)),
    ("cbind(s, f)", "cbind(s, f) ~ 1",
     (reg(BinomialResponse(N("s"), N("f"), "cbind(s, f)", None), icpt(True)),)),
    # ------------------------------------------------------------ ~~
    ("covariance", "f1 ~~ f2", (cov("f1", cvt("f2")),)),
    ("covariance fixed", "f1 ~~ 0*f2", (cov("f1", cvt("f2", fixed=0.0)),)),
    ("variance label", "x1 ~~ v*x1", (cov("x1", cvt("x1", label="v")),)),
    ("covariance sum", "f1 ~~ f2 + NA*f3", (cov("f1", cvt("f2"), cvt("f3", free=True)),)),
    ("covariance cross", "a + b ~~ c", (cov("a", cvt("c")), cov("b", cvt("c")))),
    ("residual variance groups", "y ~~ (1 | item)",
     (cov("y", rnd("(1 | item)", (("item",),), intercept=True)),)),
    ("residual variance groups, selector", "y ~~ (0 + g | a:b)",
     (cov("y", rnd("(0 + g | a:b)", (("a", "b"),), terms=(fx(Name("g"), "g"),),
                   intercept=False)),)),
    # ------------------------------------------------------------ := == < >
    ("definition", "ab := a*b",
     (Definition("ab", op("*", N("a"), N("b")), "a*b", None),)),
    ("definition calls", "r := exp(a) / sqrt(b) - 2^-c",
     (Definition("r", op("-", op("/", Call("exp", (N("a"),)), Call("sqrt", (N("b"),))),
                         op("^", Num(2), UnaryOp("-", N("c")))),
                 "exp(a) / sqrt(b) - 2^-c", None),)),
    ("equality", "a == b", (Constraint("==", N("a"), N("b"), "a == b", None),)),
    ("less", "a < 2*b", (Constraint("<", N("a"), op("*", Num(2), N("b")), "a < 2*b", None),)),
    ("greater", "a + b > (c)", (Constraint(">", op("+", N("a"), N("b")), Paren(N("c")),
                                           "a + b > (c)", None),)),
    ("negative", "a > -1e-3", (Constraint(">", N("a"), UnaryOp("-", Num(0.001)), "a > -1e-3",
                                          None),)),
    # ------------------------------------------------------------ parsed, not estimated
    ("composite <~", "f <~ x1 + x2", (unsup("<~", "f <~ x1 + x2"),)),
    ("scale ~*~", "y1 ~*~ 1*y1", (unsup("~*~", "y1 ~*~ 1*y1"),)),
    ("instruments |~", "y |~ z1 + z2", (unsup("|~", "y |~ z1 + z2"),)),
    ("thresholds |", "u1 | t1 + t2", (unsup("|", "u1 | t1 + t2"),)),
    ("group weight %", "group % w", (unsup("%", "group % w"),)),
    ("moderated :~", "L2 :~ L2_0 + L2_1*data(z)", (unsup(":~", "L2 :~ L2_0 + L2_1*data(z)"),)),
    # ------------------------------------------------------------ intercepts with modifiers
    ("fixed intercept", "x1 ~ 0*1", (reg("x1", icpt(True, fixed=0.0)),)),
    ("free intercept", "f ~ NA*1 + x", (reg("f", icpt(True, free=True), fx("x", "x")),)),
    ("labelled intercept", 'x1 ~ label("a")*1', (reg("x1", icpt(True, label="a")),)),
    ("quoted label intercept", 'x1 ~ "a"*1', (reg("x1", icpt(True, label="a")),)),
    # ------------------------------------------------------------ block lines
    ("group:", "group: 1", (Block("group", "1", "group: 1", None),)),
    ("level:", "Level: within", (Block("level", "within", "Level: within", None),)),
    ("block:", "block: 2", (Block("block", "2", "block: 2", None),)),
    ("class:", "class: 'a'", (Block("class", "a", "class: 'a'", None),)),
]


@pytest.mark.parametrize(("model", "expected"), [r[1:] for r in FORMS], ids=[r[0] for r in FORMS])
def test_form(model: str, expected: tuple) -> None:
    syntax = parse(model)
    assert strip(syntax.statements) == expected
    assert syntax.source == model


SPANS = [
    # (model, path to the node, expected span: line, column, end line, end column)
    ("f =~ x1 + 1*x2", lambda s: s[0], SourceSpan(1, 1, 1, 14)),
    ("f =~ x1 + 1*x2", lambda s: s[0].indicators[1], SourceSpan(1, 11, 1, 14)),
    ("f =~ x1 +\n  item[2]:z", lambda s: s[0].indicators[1], SourceSpan(2, 3, 2, 11)),
    ("f =~ x1 +\n  x2\n", lambda s: s[0], SourceSpan(1, 1, 2, 4)),
    ("y \u02dc x\ng =\u02dc x1", lambda s: s[1], SourceSpan(2, 1, 2, 7)),
    ("\t y ~ x - 1", lambda s: s[0].terms[1], SourceSpan(1, 9, 1, 11)),
    ("y ~ x + (1 | g)", lambda s: s[0].terms[1], SourceSpan(1, 9, 1, 15)),
    ("y ~ a + 0.5*b:c", lambda s: s[0].terms[1], SourceSpan(1, 9, 1, 15)),
    ("y ~ s(x,\n  k=3)", lambda s: s[0].terms[0], SourceSpan(1, 5, 2, 6)),
    ("cbind(a, b) ~ x", lambda s: s[0].lhs, SourceSpan(1, 1, 1, 11)),
    ("f ~~ c; b ~~ 0*c", lambda s: s[1].terms[0], SourceSpan(1, 14, 1, 16)),
    ("x := a\ny == b", lambda s: s[1], SourceSpan(2, 1, 2, 6)),
    ("f <~ x1", lambda s: s[0], SourceSpan(1, 1, 1, 7)),
]


@pytest.mark.parametrize(("model", "path", "span"), SPANS)
def test_span(model: str, path, span: SourceSpan) -> None:
    assert path(parse(model).statements).span == span


TEXTS = [
    # a term split over lines keeps a one-line text without the comments
    ("y ~ I(x +  # plus\n  z) + w", "I(x + z)"),
    ("y ~ (1 +\n x | g)", "(1 + x | g)"),
    ('y ~ s(x, bs = "#cr")', 's(x, bs = "#cr")'),
]


@pytest.mark.parametrize(("model", "text"), TEXTS)
def test_term_text(model: str, text: str) -> None:
    assert parse(model).statements[0].terms[0].text == text


def test_grammar_has_no_conflicts(caplog: pytest.LogCaptureFixture) -> None:
    """LALR resolves shift/reduce conflicts silently; the grammar must have none."""
    from lark import logger

    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="lark"):
            build_parser(debug=True)
    finally:
        logger.setLevel(level)
    assert not [r.getMessage() for r in caplog.records if "conflict" in r.getMessage().lower()]


def test_nodes_are_immutable_and_hashable() -> None:
    syntax = parse("f =~ 1*x1 + x2; y ~ s(x, k=3) + (1 | g)")
    assert hash(syntax.statements)
    with pytest.raises(dataclasses.FrozenInstanceError):
        syntax.statements[0].latent = "g"  # type: ignore[misc]
