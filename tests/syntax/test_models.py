"""Every model of the design's list (docs: model-syntax.md, "Models that must be expressible")
parses to the expected statements."""

from __future__ import annotations

import dataclasses

import pytest

from semgalamm.syntax import (
    BinaryOp,
    BinomialResponse,
    Covariance,
    CovarianceTerm,
    FixedTerm,
    Indicator,
    Intercept,
    Measurement,
    Modifier,
    Name,
    Paren,
    RandomTerm,
    Regression,
    Response,
    SmoothTerm,
    parse,
)


def strip(node):
    """``node`` with every span set to None (recursively)."""
    if isinstance(node, tuple):
        return tuple(strip(n) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {
            f.name: None if f.name == "span" else strip(getattr(node, f.name))
            for f in dataclasses.fields(node)
        }
        return dataclasses.replace(node, **changes)
    return node


def meas(latent, *indicators):
    """``indicators`` as "col[level]" strings, "1*" for a loading fixed to 1."""
    nodes = []
    for text in indicators:
        fixed = 1.0 if text.startswith("1*") else None
        text = text.removeprefix("1*")
        covariate = None
        if "]:" in text:
            text, covariate = text.split(":")
        if "[" in text:
            variable, level = text.rstrip("]").split("[")
        else:
            variable, level = text, None
        nodes.append(Indicator(variable, level, covariate, Modifier(fixed=fixed), None))
    return Measurement(latent, tuple(nodes), None)


def fx(text, expr=None):
    return FixedTerm(expr or Name(text), text, Modifier(), None)


def ri(group):
    """``(1 | group)``; ``group`` may be nested, "a/b"."""
    parts = group.split("/")
    groups = tuple(tuple(parts[: i + 1]) for i in range(len(parts)))
    return RandomTerm((), True, groups, True, f"(1|{group})", None)


def reg(lhs, *terms):
    lhs = Response(lhs, None) if isinstance(lhs, str) else lhs
    return Regression(lhs, terms, None)


def s(variable):
    return SmoothTerm("s", (variable,), (), f"s({variable})", None)


NO_INTERCEPT = Intercept(False, None)
ITEMS5 = ("1*item[1]", "item[2]", "item[3]", "item[4]", "item[5]")
ABILITY = meas("ability", *ITEMS5)

MODELS = [
    ("KYPSsim",
     "ms =~ 1*time[1] + time[2] + time[3] + time[4]; hs =~ 1*time[3] + time[4]; "
     "ms ~ (1|mid); hs ~ (1|hid); esteem ~ time + (1|sid)",
     (meas("ms", "1*time[1]", "time[2]", "time[3]", "time[4]"),
      meas("hs", "1*time[3]", "time[4]"),
      reg("ms", ri("mid")), reg("hs", ri("hid")),
      reg("esteem", fx("time"), ri("sid")))),
    ("JUDGEsim",
     """
     teacher1 =~ 1*item[1] + item[2] + item[3]
     teacher2 =~ 1*item[4] + item[5] + item[6]
     teacher1 ~ (1|tch)
     teacher2 ~ (1|tch)
     response ~ 0 + item + (1|class)
     """,
     (meas("teacher1", "1*item[1]", "item[2]", "item[3]"),
      meas("teacher2", "1*item[4]", "item[5]", "item[6]"),
      reg("teacher1", ri("tch")), reg("teacher2", ri("tch")),
      reg("response", NO_INTERCEPT, fx("item"), ri("class")))),
    ("IRTsim",
     "ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]; ability ~ (1|school/sid); "
     "y ~ item",
     (ABILITY, reg("ability", ri("school/sid")), reg("y", fx("item")))),
    ("binomial with trials",
     "ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]\n"
     "ability ~ (1|school/sid)\ncbind(y, trials - y) ~ item",
     (ABILITY, reg("ability", ri("school/sid")),
      reg(BinomialResponse(Name("y"), BinaryOp("-", Name("trials"), Name("y")),
                           "cbind(y, trials - y)", None), fx("item")))),
    ("epilep", "y ~ lbas * treat + lage + v4 + (1|subj)",
     (reg("y", fx("lbas * treat", BinaryOp("*", Name("lbas"), Name("treat"))), fx("lage"),
          fx("v4"), ri("subj")),)),
    # the residual variance by item has no syntax yet (see the syntax stage's report)
    ("hsced", "y ~ x + (1|id)", (reg("y", fx("x"), ri("id")),)),
    ("mresp", "level =~ 1*itemgroup[a] + itemgroup[b]; level ~ (1|id); y ~ x",
     (meas("level", "1*itemgroup[a]", "itemgroup[b]"), reg("level", ri("id")),
      reg("y", fx("x")))),
    ("diet",
     "loading =~ 1*item[fiber1] + 1*item[fiber2] + item[chd]; loading ~ (1|id)\n"
     "y ~ 0 + chd + (age*bus):chd + fiber + (age*bus):fiber + fiber2",
     (meas("loading", "1*item[fiber1]", "1*item[fiber2]", "item[chd]"),
      reg("loading", ri("id")),
      reg("y", NO_INTERCEPT, fx("chd"),
          fx("(age*bus):chd", BinaryOp(":", Paren(BinaryOp("*", Name("age"), Name("bus"))),
                                        Name("chd"))),
          fx("fiber"),
          fx("(age*bus):fiber", BinaryOp(":", Paren(BinaryOp("*", Name("age"), Name("bus"))),
                                          Name("fiber"))),
          fx("fiber2")))),
    ("latent_covariates",
     "loading =~ 1*type[measurement1] + type[measurement2] + type[response] + type[response]:x",
     (meas("loading", "1*type[measurement1]", "type[measurement2]", "type[response]",
           "type[response]:x"),)),
    ("GAMM", "y ~ s(x) + (1|id)", (reg("y", s("x"), ri("id")),)),
    ("smooth on a latent trait",
     "loading =~ 1*item[11] + item[12] + item[13]; loading ~ s(x) + (1|id/timepoint); "
     "y ~ 0 + item",
     (meas("loading", "1*item[11]", "item[12]", "item[13]"),
      reg("loading", s("x"), ri("id/timepoint")), reg("y", NO_INTERCEPT, fx("item")))),
    ("two latent traits",
     "ability1 =~ 1*item[11] + item[12] + item[13]\n"
     "ability3 =~ 1*item[31] + item[32] + item[33]\n"
     "ability1 ~ s(x) + (1|id/timepoint)\nability3 ~ s(x) + (1|id/timepoint)\ny ~ domain",
     (meas("ability1", "1*item[11]", "item[12]", "item[13]"),
      meas("ability3", "1*item[31]", "item[32]", "item[33]"),
      reg("ability1", s("x"), ri("id/timepoint")), reg("ability3", s("x"), ri("id/timepoint")),
      reg("y", fx("domain")))),
    ("HolzingerSwineford1939",
     "visual =~ x1 + x2 + x3; textual =~ x4 + x5 + x6; speed =~ x7 + x8 + x9",
     (meas("visual", "x1", "x2", "x3"), meas("textual", "x4", "x5", "x6"),
      meas("speed", "x7", "x8", "x9"))),
    ("PoliticalDemocracy",
     """
     # measurement model
       ind60 =~ x1 + x2 + x3
       dem60 =~ y1 + y2 + y3 + y4
       dem65 =~ y5 + y6 + y7 + y8
     # regressions
       dem60 ~ ind60
       dem65 ~ ind60 + dem60
     # residual correlations
       y1 ~~ y5
       y2 ~~ y4 + y6
     """,
     (meas("ind60", "x1", "x2", "x3"), meas("dem60", "y1", "y2", "y3", "y4"),
      meas("dem65", "y5", "y6", "y7", "y8"),
      reg("dem60", fx("ind60")), reg("dem65", fx("ind60"), fx("dem60")),
      Covariance("y1", (CovarianceTerm("y5", Modifier(), None),), None),
      Covariance("y2", (CovarianceTerm("y4", Modifier(), None),
                        CovarianceTerm("y6", Modifier(), None)), None))),
    ("latent regression across levels",
     "school_climate ~ (1|school); ability ~ school_climate + s(age) + (1|id)",
     (reg("school_climate", ri("school")),
      reg("ability", fx("school_climate"), s("age"), ri("id")))),
]  # fmt: skip


@pytest.mark.parametrize(("model", "expected"), [m[1:] for m in MODELS], ids=[m[0] for m in MODELS])
def test_model(model: str, expected: tuple) -> None:
    assert strip(parse(model).statements) == expected
