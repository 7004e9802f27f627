"""Model strings for fuzzing, and the check each one must pass.

Two families of strings:

* :func:`generate_model`: models written from the grammar (grammar/semgalamm.lark), every
  statement kind (``=~ ~ ~~ := == < >``, block lines such as ``level: 1``, unsupported
  operators), modifiers (``1*``, ``NA*``, ``a*``, ``start()``, ``label()``, ``0.8?``), random
  terms (``(1 + x | g)``, ``(x || g/h)``), smooths (``s(x, k=5, bs="cr")``, ``t2(x, z)``),
  ``cbind()``, comments, continuation lines and ``;``. Names come from small pools and half
  of the models start from a coherent skeleton (latents with indicators, a mixed model) so
  that many reach the spec stage and get past its first checks.
* :func:`generate_mutant`: a valid model (the corpus below or a generated one) mutated:
  characters and tokens dropped, inserted, duplicated or swapped, Unicode, very long names,
  deep brackets, long sign and operator chains, truncation, and empty input.

The generators take a :class:`Source` of choices, so the same code serves hypothesis
(:func:`model_strings`, a strategy that shrinks, used by tests/syntax/test_fuzz.py) and a
plain seeded ``random.Random`` (:class:`RandomSource`, fast, used by scripts/fuzz_syntax.py for
the 10^5-string run).

:func:`run_stages` runs a string through ``parse``, ``build_spec`` and ``build_partable`` and
records every *escape*: an exception that is not a :class:`~semgalamm.errors.SemgalammError`,
or a :class:`~semgalamm.errors.ModelSyntaxError` whose place or message is malformed.
"""

from __future__ import annotations

import random
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from hypothesis import strategies as st

from semgalamm.errors import ModelSyntaxError, SemgalammError
from semgalamm.spec.build import build_spec
from semgalamm.spec.partable import SemOptions, build_partable
from semgalamm.syntax import Block, ModelSyntax, parse

T = TypeVar("T")


# ----------------------------------------------------------------------------- sources


class Source(Protocol):
    def choice(self, options: Sequence[T]) -> T: ...
    def integer(self, low: int, high: int) -> int: ...


class RandomSource:
    """Choices from a seeded ``random.Random``."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def choice(self, options: Sequence[T]) -> T:
        return self._random.choice(options)

    def integer(self, low: int, high: int) -> int:
        return self._random.randint(low, high)


_SAMPLERS: dict[tuple, st.SearchStrategy] = {}


class DrawSource:
    """Choices drawn by hypothesis (so that a failing string shrinks)."""

    def __init__(self, draw) -> None:
        self._draw = draw

    def choice(self, options: Sequence[T]) -> T:
        options = tuple(options)
        sampler = _SAMPLERS.get(options)
        if sampler is None:
            sampler = _SAMPLERS.setdefault(options, st.sampled_from(options))
        return self._draw(sampler)

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))


def _chance(src: Source, one_in: int) -> bool:
    return src.integer(1, one_in) == 1


def _some(src: Source, generate, low: int, high: int) -> list[str]:
    return [generate(src) for _ in range(src.integer(low, high))]


def _join(src: Source, parts: list[str], separators: Sequence[str] = (" + ",)) -> str:
    out = parts[0]
    for part in parts[1:]:
        out += src.choice(separators) + part
    return out


# ----------------------------------------------------------------------------- names

OBSERVED = ("x1", "x2", "x3", "x4", "x5", "x6", "y", "z", "w", "age", "n", "item", "time")
GROUPS = ("g", "h", "school", "sid", "id")
LATENTS = ("f", "f1", "f2", "visual", "ability")
LABELS = ("a", "b", "c", "lam1")
ODD_NAMES = (
    "my.days", ".x", "x_2", "NAs", "s1", "start.time", "te.x", "level", "group", "class",
    "block", "größe", "变量", "x²", "ab\u0301", "Ⅻ", "True", "s", "I", "cbind", "x" * 300,
    "y" * 5000,
)  # fmt: skip
#: Columns of the data that build_partable is given (any other name is a latent or a label):
#: the pools and the variables of the corpus below.
COLUMNS = OBSERVED + GROUPS + (
    "x7", "x8", "x9", "y1", "y2", "y3", "y4", "y5", "y6", "y7", "y8", "t1", "t2", "t3", "t4",
    "m", "x", "chd", "bus", "Days", "Reaction", "Subject", "type", "esteem", "mid", "hid",
)  # fmt: skip
NAME_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._"
NAME_REST = NAME_START + "0123456789"
NUMBERS = ("0", "1", "1", "2", "0.5", ".5", "3.", "1e-3", "2.5E2", "1e999", "10", "0.0")
STRINGS = ('"a"', "'b'", '"fiber 1"', '""', r'"q\"uote"', "'ü'")
SEPARATORS = ("\n", "\n", "\n", "; ", ";", "\n\n", "\r\n", "  # a comment\n", "\n! note\n",
              "\n  \t\n")  # fmt: skip
FUNCTIONS = ("I", "C", "log", "exp", "sqrt", "poly", "scale", "Q", "offset", "bs", "abs", "pnorm")
SMOOTH_OPTIONS = (
    "k=5", "k=10", "k=c(3, 4)", 'bs="cr"', "bs='tp'", 'bs="cc"', 'bs="re"', 'bs="fs"',
    'bs="zz"', "by=g", "by=x2", "fx=TRUE", "fx=FALSE", "m=2", "id=1", "sp=0.1", "d=c(1, 1)",
    "k=-1", "k=1e999", "k=0", "k=NA", 'k="5"', "xt=list(a=1)", "x", "k=",
)  # fmt: skip


def name(src: Source) -> str:
    """Mostly a name of the pools; sometimes an odd one (R dots, Unicode, very long, random)."""
    kind = src.integer(1, 40)
    if kind <= 36:
        return src.choice(OBSERVED + LATENTS + GROUPS)
    if kind <= 38:
        return src.choice(ODD_NAMES + LABELS)
    return src.choice(NAME_START) + "".join(
        src.choice(NAME_REST) for _ in range(src.integer(0, 6))
    )


def number(src: Source) -> str:
    return src.choice(NUMBERS)


def signed(src: Source) -> str:
    return src.choice(("", "", "-")) + number(src)


# ----------------------------------------------------------------------------- expressions


def arithmetic(src: Source, depth: int = 3) -> str:
    """Right of ``:=``, ``==``, ``<``, ``>``; function arguments (grammar rule ``expr``)."""
    kind = src.choice(("atom", "atom", "label", "binary", "binary", "unary", "paren", "call"))
    if depth <= 0 or kind == "atom":
        return src.choice((name, number, number, lambda s: s.choice(STRINGS),
                           lambda s: s.choice(("NA", "TRUE", "FALSE"))))(src)
    if kind == "label":
        return src.choice(LABELS)
    if kind == "binary":
        op = src.choice((" + ", " - ", "*", " / ", "^", "**"))
        return arithmetic(src, depth - 1) + op + arithmetic(src, depth - 1)
    if kind == "unary":
        return src.choice(("-", "+", "- ")) + arithmetic(src, depth - 1)
    if kind == "paren":
        return "(" + arithmetic(src, depth - 1) + ")"
    return call(src, depth - 1)


def call(src: Source, depth: int = 2) -> str:
    function = src.choice(FUNCTIONS) if src.integer(0, 3) else name(src)
    arguments = _some(src, lambda s: arithmetic(s, depth), 0, 3)
    if _chance(src, 3):
        arguments.append(name(src) + "=" + arithmetic(src, depth))
    return f"{function}({', '.join(arguments)})"


def formula_expression(src: Source, depth: int = 2) -> str:
    """An R formula term (grammar rules f_product, f_interaction, f_power, f_atom)."""
    kind = src.choice(("name", "name", "name", "name", "call", "paren", "product", "chain"))
    if depth <= 0 or kind == "name":
        return name(src)
    if kind == "call":
        return call(src, 1)
    if kind == "paren":
        inner = _some(src, lambda s: formula_expression(s, depth - 1), 1, 3)
        return "(" + _join(src, inner, (" + ",) * 5 + (" - ",)) + ")" + src.choice(
            ("",) * 10 + ("^2", "**3", "^x"))
    operands = _some(src, lambda s: formula_expression(s, depth - 1), 2, 4)
    return _join(src, operands, (":",) if kind == "chain" else ("*", " * ", "/", ":"))


# ----------------------------------------------------------------------------- modifiers


#: Modifier kinds by the field of Modifier they set (a term takes each field at most once).
PREFIXES = {
    "fixed": ("number", "number", "NA", "negative"),
    "label": ("name", "name", "string", "label()"),
    "start": ("start()", "?", "negative?"),
    "lower": ("lower()",),
    "upper": ("upper()",),
}


def prefix(src: Source, kind: str) -> str:
    """One modifier and its '*' (or '?'); ``name`` and ``negative`` only after =~ and ~~."""
    if kind in ("number", "NA"):
        return (number(src) if kind == "number" else "NA") + "*"
    if kind == "negative":
        return "-" + number(src) + "*"
    if kind == "negative?":
        return "-" + number(src) + "?"
    if kind == "name":
        return src.choice(LABELS) + "*"
    if kind == "string":
        return src.choice(STRINGS) + "*"
    if kind == "label()":
        return f"{src.choice(('label', 'equal'))}({src.choice(STRINGS)})*"
    if kind == "?":
        return number(src) + "?"
    return f"{kind[:-2]}({signed(src)})*"


def prefixes(src: Source, labelled: bool) -> str:
    """Zero to three modifiers, each setting another field; rarely a wrong one."""
    if not src.integer(0, 30):
        return src.choice(('start("a")*', "label(1)*", "start()*", "fixed(NA)*", "1 * * ",
                           "a*b*", "1*2*", "NA*NA*", "start(1)*start(2)*"))
    fields = list(PREFIXES)
    out = ""
    for _ in range(src.choice((0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3))):
        field_ = fields.pop(src.integer(0, len(fields) - 1))
        kinds = [k for k in PREFIXES[field_] if labelled or k not in ("name", "negative",
                                                                        "negative?")]
        out += prefix(src, src.choice(kinds))
    return out


# ----------------------------------------------------------------------------- statements


def indicator(src: Source, variables: Sequence[str] = OBSERVED, levels: int = 3) -> str:
    """``prefixes name[level]:covariate``; a level one time in ``levels``."""
    text = prefixes(src, True) + (src.choice(variables) if src.integer(0, 4) else name(src))
    if _chance(src, levels):
        text += "[" + src.choice((number, name, lambda s: s.choice(STRINGS)))(src) + "]"
        if _chance(src, 3):  # a covariate, or a formula term of covariates (galamm's I(x^2))
            text += ":" + (call(src, 1) if _chance(src, 4) else name(src))
    return text


def left_names(src: Source, pool: Sequence[str]) -> str:
    return _join(src, [src.choice(pool) for _ in range(src.choice((1, 1, 1, 2)))])


def measurement(src: Source) -> str:
    return left_names(src, LATENTS) + " =~ " + _join(src, _some(src, indicator, 1, 6))


def random_term(src: Source) -> str:
    def inner_term(s: Source) -> str:
        return s.choice((lambda t: t.choice(("1", "0")), lambda t: t.choice(OBSERVED),
                         lambda t: formula_expression(t, 1)))(s)

    inner = _join(src, _some(src, inner_term, 1, 3), (" + ",) * 10 + (" - ",))
    if _chance(src, 8):
        inner = src.choice(("-1 + ", "0 + ", "1 + ")) + inner
    groups = [":".join(src.choice(GROUPS) for _ in range(src.choice((1, 1, 2))))
              for _ in range(src.choice((1, 1, 2)))]
    return f"({inner} {src.choice(('|', '|', '||'))} {'/'.join(groups)})"


def smooth(src: Source) -> str:
    kind = src.choice(("s", "s", "te", "ti", "t2"))
    variables = [src.choice(OBSERVED) for _ in range(src.choice((0, 1, 1, 1, 2, 3)))]
    options = [src.choice(SMOOTH_OPTIONS) for _ in range(src.choice((0, 0, 1, 2, 3)))]
    return f"{kind}({', '.join(variables + options)})"


def term(src: Source) -> str:
    kind = src.choice(("fixed", "fixed", "fixed", "fixed", "random", "smooth", "intercept"))
    if kind == "random":
        return random_term(src)
    if kind == "smooth":
        return smooth(src)
    if kind == "intercept":
        return src.choice(("1", "0") * 4 + ("0*1", "NA*1", 'label("i")*1', "a*1", "2"))
    return prefixes(src, False) + formula_expression(src)


def regression(src: Source) -> str:
    kind = src.integer(1, 12)
    if kind <= 9:
        lhs = left_names(src, OBSERVED + LATENTS)
    elif kind == 10:
        lhs = f"cbind({src.choice(OBSERVED)}, {src.choice(OBSERVED)})"
    elif kind == 11:
        lhs = f"cbind({src.choice(OBSERVED)}, n - {src.choice(OBSERVED)})"
    else:
        lhs = src.choice(("cbind(y)", "cbind(y, n, z)", "log(y)", "2", "f*2", "cbind(y, n=z)"))
    text = _join(src, _some(src, term, 1, 6), (" + ",) * 20 + (" - ",))
    if _chance(src, 5):
        text = src.choice(("0 + ", "-1 + ", "+ ", "1 + ")) + text
    if _chance(src, 6):
        text += " - 1"
    return f"{lhs} ~ {text}"


def covariance(src: Source) -> str:
    def rhs(s: Source) -> str:
        if _chance(s, 4):
            return random_term(s)
        return prefixes(s, True) + s.choice(OBSERVED + LATENTS)

    return left_names(src, OBSERVED + LATENTS) + " ~~ " + _join(src, _some(src, rhs, 1, 3))


def definition(src: Source) -> str:
    return src.choice(LABELS + ("ab", "total", "d")) + " := " + arithmetic(src)


def constraint(src: Source) -> str:
    lhs = src.choice(LABELS) if src.integer(0, 2) else arithmetic(src, 1)
    return lhs + src.choice((" == ", " < ", " > ")) + arithmetic(src, 2)


def block(src: Source) -> str:
    kind = src.choice(("level", "level", "level", "group", "block", "class", "Level", "foo"))
    return kind + ": " + src.choice(("1", "2", "within", "between", "3", '"a"', "x + 1"))


UNSUPPORTED = ("f <~ x1 + x2", "x1 | t1 + t2", "x1 ~*~ x1", "y |~ x", "x1 % w", "a :~ b",
               "x1 | t1")  # fmt: skip
STATEMENTS = (measurement, measurement, regression, regression, regression, covariance,
              definition, constraint, block, lambda s: s.choice(UNSUPPORTED))  # fmt: skip


def statement(src: Source) -> str:
    return src.choice(STATEMENTS)(src)


# ----------------------------------------------------------------------------- models


def skeleton(src: Source) -> list[str]:
    """A coherent start: a wide-data SEM, a mixed model or a long-data measurement model."""
    kind = src.choice(("sem", "sem", "mixed", "long", "twolevel"))
    if kind == "mixed":
        return [f"y ~ {_join(src, _some(src, term, 1, 3))} + {random_term(src)}"]
    if kind == "long":
        levels = [f"item[{k}]" for k in range(1, src.integer(2, 5))]
        return [f"f =~ {prefixes(src, True)}{_join(src, levels)}",
                f"f ~ {random_term(src)}", "y ~ 0 + item"]
    latents = list(LATENTS[: src.integer(1, 3)])
    observed = list(OBSERVED[:6])
    out = []
    for index, lat in enumerate(latents):
        own = observed[2 * index : 2 * index + src.integer(2, 4)] or ["x1", "x2"]
        out.append(f"{lat} =~ " + _join(src, [indicator(src, [v], 30) for v in own]))
    if len(latents) > 1 and _chance(src, 2):
        out.append(f"{latents[1]} ~ {prefixes(src, True)}{latents[0]}")
    if _chance(src, 2):
        out.append(f"{latents[0]} ~ {src.choice(('z', 'w', 'age'))}")
    if kind == "twolevel":
        out = ["level: 1", *out, "level: 2", *out]
    return out


def generate_model(src: Source) -> str:
    """A model written from the grammar: statements, separators, comments, continuations."""
    statements = skeleton(src) if _chance(src, 2) else []
    extra = (0, 0, 1, 1, 2) if statements else (0, 1, 1, 2, 3, 4, 6)
    for _ in range(src.choice(extra)):
        statements.insert(src.integer(0, len(statements)), statement(src))
    if not statements:
        return src.choice(("", "  ", "\n\n", "# only a comment", ";;", " ; \n ; "))
    text = statements[0]
    for line in statements[1:]:
        text += src.choice(SEPARATORS) + line
    pieces = text.split(" + ")  # lavaan's continuation lines, before or after '+'
    text = pieces[0]
    for piece in pieces[1:]:
        text += src.choice((" + ", " + ", " + ", " +\n    ", "\n  + ", " + # c\n  ")) + piece
    if _chance(src, 3):
        text = src.choice(("\n", "  ", "# head\n", "\t")) + text
    if _chance(src, 3):
        text += src.choice(("\n", ";", "  # tail", "\n\n"))
    if _chance(src, 10):
        text = text.replace("~", "\u02dc")  # lavaan's Unicode tilde
    return text


# ----------------------------------------------------------------------------- mutations

#: Valid models as users write them (README, docs, tests): the seeds of the mutations.
CORPUS = (
    "visual =~ x1 + x2 + x3; textual =~ x4 + x5 + x6; speed =~ x7 + x8 + x9",
    "Reaction ~ Days + (Days | Subject)",
    "ms =~ 1*time[1] + time[2] + time[3] + time[4]\nhs =~ 1*time[3] + time[4]\n"
    "ms ~ (1 | mid)\nhs ~ (1 | hid)\nesteem ~ time + (1 | sid)",
    "y ~ s(x, k=10, bs='cr') + (1 | id)",
    "ability =~ 1*item[11] + a*item[12] + NA*start(0.5)*item[\"fiber 1\"] + type[resp]:x",
    "y ~ 0 + chd + (age*bus):chd + I(x^2) + (1 + x || school/sid) + s(x, k=10, bs='cr') - 1",
    "cbind(y, n - y) ~ item; f1 ~~ 0*f2 + v*f3\nab := exp(a) / b; a > 0.5*b; group: 1",
    "level: 1\n  fw =~ y1 + y2 + y3\nlevel: 2\n  fb =~ y1 + y2 + y3",
    "i =~ 1*t1 + 1*t2 + 1*t3 + 1*t4\ns =~ 0*t1 + 1*t2 + 2*t3 + 3*t4\ni ~ x1 + x2\ns ~ x1 + x2",
    "# mediation\nm ~ a*x\ny ~ c*x + b*m\nab := a*b\ntotal := c + (a*b)\n",
    "f =~ x1 +\n  x2 # second\n  + x3\nf ~~ NA*f\nx1 ~~ 0.5?x2",
    "y ~~ (1 | item)\ny ~ 0 + item + (1 | g)\nf =~ item[1] + item[2]\nf ~ s(x) + (1 | g)",
    "eta =~ type[response]:x + type[other]\neta ~ t2(x, z) + te(x, w, k=c(3, 3)) + (1 | id)",
    "dem60 =~ y1 + a*y2 + b*y3 + c*y4\ndem65 =~ y5 + a*y6 + b*y7 + c*y8\ndem65 ~ dem60\n"
    "y1 ~~ y5; a == b; c > 0; a < 2*b",
    "f1 =~ x1 + x2 + x3\nf2 =~ x4 + x5 + x6\nf2 ~ f1 + z\nx1 ~ 1\nf1 ~~ 1*f1",
)
ALPHABET = (
    "()[]{}+-*/:^~=<>|;,#!?\"'\\ \t\n\r.0123456789aZ_%@$&`"
    "\u02dc\u00a0\u200b\u2028\ufeff\x00\x7féß变²٣🙂\U0010ffff\ud800"
)
TOKENS = (
    "=~", "~", "~~", ":=", "==", "<", ">", "+", "-", "*", "/", ":", "^", "**", "(", ")", "[",
    "]", "|", "||", ",", "=", ";", "\n", "NA", "TRUE", "s(", "t2(", "1", "0", "x", "start(",
    "label(", "?", "%", "<~", "#", "cbind(", "level:", '"', "1e999", "-", ".", "x1", "f",
)  # fmt: skip
MUTATIONS = (
    "drop_char", "insert_char", "duplicate", "drop_token", "drop_token", "insert_token",
    "insert_token", "duplicate_token", "swap_tokens", "long_name", "deep_brackets", "signs",
    "chain", "truncate", "unclosed",
)  # fmt: skip


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    current = ""
    for char in text:
        if char.isalnum() or char in "._":
            current += char
            continue
        if current:
            tokens.append(current)
            current = ""
        tokens.append(char)
    if current:
        tokens.append(current)
    return tokens


def _depth(src: Source) -> int:
    """How many: a plausible count, or one around and beyond the nesting limit."""
    return src.integer(1, 60) if src.integer(0, 2) else src.integer(150, 700)


def mutate(src: Source, text: str) -> str:
    """``text`` with one mutation."""
    kind = src.choice(MUTATIONS)
    at = src.integer(0, len(text))
    if kind == "drop_char":
        return text[:at] + text[at + 1 :]
    if kind == "insert_char":
        return text[:at] + src.choice(ALPHABET) + text[at:]
    if kind == "duplicate":
        end = src.integer(at, min(len(text), at + 20))
        return text[:end] + text[at:end] * src.integer(1, 3) + text[end:]
    if kind == "truncate":
        return text[:at]
    if kind == "unclosed":
        return text[:at] + src.choice(("(", "[", '"', "'", "s(", "(1 |")) + text[at:]
    tokens = _tokenize(text)
    if not tokens:
        return src.choice(TOKENS)
    i = src.integer(0, len(tokens) - 1)
    token = tokens[i]
    if kind == "drop_token":
        del tokens[i]
    elif kind == "insert_token":
        tokens.insert(i, src.choice(TOKENS))
    elif kind == "duplicate_token":
        tokens.insert(i, token)
    elif kind == "swap_tokens":
        j = src.integer(0, len(tokens) - 1)
        tokens[i], tokens[j] = tokens[j], tokens[i]
    elif kind == "long_name":
        tokens[i] = src.choice(("x", "é", "_", "变")) * src.integer(100, 20000)
    elif kind == "deep_brackets":
        k = _depth(src)
        opening, closing = src.choice((("(", ")"), ("I(", ")"), ("[", "]"), ("-(", ")")))
        tokens[i] = opening * k + token + closing * max(0, k - src.choice((0, 0, 0, 1, -1)))
    elif kind == "signs":
        tokens[i] = src.choice(("-", "+", "- ", "+-")) * _depth(src) + token
    elif kind == "chain":
        operator = src.choice((":", "^", "*", "/", " + ", "-", "**"))
        tokens[i] = operator.join([token] * (1 + _depth(src)))
    return "".join(tokens)


def generate_mutant(src: Source) -> str:
    """A valid model (corpus or generated) with one to four mutations; sometimes empty."""
    if _chance(src, 30):
        return src.choice(("", " ", "\n", "\x00", "\ufeff", "~", "#", ";", "\r", "\t\n"))
    text = src.choice(CORPUS) if src.integer(0, 1) else generate_model(src)
    for _ in range(src.choice((1, 1, 1, 2, 3, 4))):
        text = mutate(src, text)
    return text


def generate(src: Source) -> str:
    """A generated model or a mutant, half and half."""
    return generate_model(src) if src.integer(0, 1) else generate_mutant(src)


@st.composite
def model_strings(draw) -> str:
    """Hypothesis strategy: :func:`generate` with hypothesis' choices."""
    return generate(DrawSource(draw))


# ----------------------------------------------------------------------------- the check


def generate_context(src: Source) -> tuple[tuple[str, ...], SemOptions, tuple[str, ...]]:
    """Columns of the data, lavaan options and group labels for build_partable."""
    pool = COLUMNS + LATENTS
    columns = COLUMNS if src.integer(0, 3) else tuple(
        dict.fromkeys(src.choice(pool) for _ in range(src.integer(1, 12))))
    flags = [src.choice((False, True)) for _ in range(5)]
    options = SemOptions(
        meanstructure=src.choice((None, None, True, False)),
        std_lv=flags[0], orthogonal=flags[1], fixed_x=flags[2] or flags[3],
        int_ov_free=flags[3] or flags[4], int_lv_free=not (flags[3] or flags[4]),
        group_equal=tuple(dict.fromkeys(
            src.choice(("loadings", "intercepts", "means", "residuals", "regressions",
                        "lv.variances")) for _ in range(src.choice((0, 0, 1, 2))))),
    )  # fmt: skip
    groups = src.choice((("",), ("",), ("",), ("1", "2")))
    return columns, options, groups


@st.composite
def contexts(draw) -> tuple[tuple[str, ...], SemOptions, tuple[str, ...]]:
    """Hypothesis strategy: :func:`generate_context` with hypothesis' choices."""
    return generate_context(DrawSource(draw))


@dataclass
class Outcome:
    """What happened at each stage: 'ok', the error's class name, or 'skipped'."""

    parse: str = "skipped"
    spec: str = "skipped"
    partable: str = "skipped"
    escapes: list[str] = field(default_factory=list)


def _where(error: BaseException) -> str:
    """The exception and the innermost semgalamm frame it passed through."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if "/semgalamm/" in f.filename] or frames
    place = "?"
    if own:
        path = "/".join(own[-1].filename.split("/")[-2:])
        place = f"{path}:{own[-1].lineno} {own[-1].name}"
    return f"{type(error).__name__} at {place}: {str(error)[:200]}"


def syntax_error_problem(error: ModelSyntaxError, text: str) -> str | None:
    """What is wrong with a syntax error's place or message, or None."""
    lines = text.split("\n")
    if not 1 <= error.line <= len(lines):
        return f"line {error.line} outside the model's {len(lines)} lines"
    if not 1 <= error.column <= len(lines[error.line - 1]) + 1:
        return f"column {error.column} outside line {error.line}"
    if "^" not in error.context.split("\n")[-1]:
        return "no caret under the place"
    if not error.reason.endswith(".") or "please report" in error.reason:
        return "malformed message"
    return None


def run_stages(
    text: str,
    columns: tuple[str, ...] = COLUMNS,
    options: SemOptions | None = None,
    groups: tuple[str, ...] = ("",),
) -> Outcome:
    """``text`` through parse, build_spec and build_partable (as semgalamm.fit() and sem()
    call them); every exception that is not a semgalamm error is recorded in ``escapes``."""
    outcome = Outcome()
    options = options or SemOptions()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", RuntimeWarning)  # numpy trouble counts as an escape
        try:
            syntax = parse(text)
        except ModelSyntaxError as error:
            outcome.parse = "ModelSyntaxError"
            problem = syntax_error_problem(error, text)
            if problem is not None:
                outcome.escapes.append(f"parse: {problem}: {str(error)[:300]}")
            return outcome
        except Exception as error:  # noqa: BLE001 - this is what we look for
            outcome.parse = type(error).__name__
            outcome.escapes.append("parse: " + _where(error))
            return outcome
        outcome.parse = "ok"
        outcome.spec = _stage(outcome, "build_spec", lambda: build_spec(syntax))
        outcome.partable = _stage(
            outcome, "build_partable", lambda: _partable(syntax, columns, options, groups)
        )
    return outcome


def _partable(syntax: ModelSyntax, columns, options: SemOptions, groups) -> None:
    """build_partable as semgalamm.sem() calls it (two-level models with their level labels)."""
    from semgalamm.api_sem import _level_labels, _resolve_meanstructure

    if any(isinstance(s, Block) and s.kind == "level" for s in syntax.statements):
        labels = _level_labels(syntax)
        options = SemOptions(**{**options.__dict__, "meanstructure": True})
        build_partable(syntax, list(columns), options, ("",), labels, meanstructure=True)
        return
    growth = not options.int_ov_free
    resolved = _resolve_meanstructure(syntax, options, len(groups), options.missing, growth)
    build_partable(syntax, list(columns), options, groups, meanstructure=resolved)


def _stage(outcome: Outcome, stage: str, run) -> str:
    try:
        run()
    except SemgalammError as error:
        return type(error).__name__
    except Exception as error:  # noqa: BLE001 - this is what we look for
        outcome.escapes.append(f"{stage}: " + _where(error))
        return type(error).__name__
    return "ok"
