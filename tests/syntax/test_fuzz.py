"""Fuzzing as a test: every string parses or raises a ModelSyntaxError with a place, and every
parsed model builds or raises a SemgalammError (tests/syntax/strategies.py has the strings).

A bounded, derandomized hypothesis run belongs to the default test run; the 10^5-string run
is scripts/fuzz_syntax.py (docs/fuzzing.md). The limits of the parser are tested here too:
plausible models parse however long they are, and nesting beyond
:data:`semgalamm.syntax.transformer.MAX_DEPTH` is a syntax error with a place.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings

from semgalamm.spec.build import build_spec
from semgalamm.spec.partable import SemOptions, build_partable
from semgalamm.syntax import (
    BinaryOp,
    BinomialResponse,
    Block,
    Constraint,
    Covariance,
    Definition,
    Measurement,
    RandomTerm,
    Regression,
    SmoothTerm,
    Unsupported,
    parse,
)
from semgalamm.syntax.transformer import MAX_DEPTH
from tests.syntax.strategies import (
    COLUMNS,
    RandomSource,
    contexts,
    generate,
    generate_context,
    model_strings,
    run_stages,
)

BOUNDED = settings(
    max_examples=300,
    derandomize=True,  # the same strings on every run: CI stays stable
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@BOUNDED
@given(text=model_strings(), context=contexts())
def test_every_string_parses_builds_or_explains(text: str, context) -> None:
    outcome = run_stages(text, *context)
    assert not outcome.escapes, outcome.escapes


def test_the_generator_reaches_every_stage_and_statement() -> None:
    """The strings are worth fuzzing with: many parse, some build, every form occurs."""
    src = RandomSource(7)
    stages: Counter[str] = Counter()
    forms: Counter[str] = Counter()
    for _ in range(800):
        text = generate(src)
        outcome = run_stages(text, *generate_context(src))
        assert not outcome.escapes, (text, outcome.escapes)
        stages[f"parse {outcome.parse}"] += 1
        stages[f"spec {outcome.spec}"] += 1
        stages[f"partable {outcome.partable}"] += 1
        if outcome.parse == "ok":
            for statement in parse(text).statements:
                forms[type(statement).__name__] += 1
                terms = getattr(statement, "terms", ())
                forms.update(type(t).__name__ for t in terms)
                if isinstance(getattr(statement, "lhs", None), BinomialResponse):
                    forms["BinomialResponse"] += 1
    assert stages["parse ok"] > 250, stages
    assert stages["parse ModelSyntaxError"] > 250, stages
    assert stages["spec ok"] > 10, stages
    assert stages["partable ok"] > 10, stages
    kinds = (Measurement, Regression, Covariance, Definition, Constraint, Block, Unsupported,
             RandomTerm, SmoothTerm, BinomialResponse)  # fmt: skip
    assert all(forms[kind.__name__] >= 5 for kind in kinds), forms


# ----------------------------------------------------------------------------- limits


def _chain(operator: str, count: int, operand: str = "x") -> str:
    return operator.join([operand] * count)


PLAUSIBLE = {
    "1000 terms": "y ~ " + " + ".join(f"x{i}" for i in range(1000)),
    "1000 indicators": "f =~ " + " + ".join(f"x{i}" for i in range(1000)),
    "1000 covariances": "f ~~ " + " + ".join(f"x{i}" for i in range(1000)),
    "1000 statements": "\n".join(f"y{i} ~ x{i} + (1 | g)" for i in range(1000)),
    "5000 lines": "f =~ x0\n" + "\n".join(f"  + x{i}" for i in range(1, 5000)),
    "50 brackets in a formula": "y ~ " + "(" * 50 + "x" + ")" * 50 + ":z",
    "50 brackets in a definition": "d := " + "(" * 50 + "a" + ")" * 50,
    "50 nested calls": "y ~ " + "I(" * 50 + "x" + ")" * 50,
    "50 signs": "d := " + "-" * 50 + "a",
    "interaction chain of 100": "y ~ " + _chain(":", 100),
    "product chain of 100": "y ~ " + _chain("*", 100),
    "power chain of 100": "d := " + _chain("^", 100, "a"),
    "sum of 150 labels": "d := " + " + ".join(f"a{i}" for i in range(150)),
    "long random term": "y ~ (1 + " + " + ".join(f"x{i}" for i in range(500)) + " | g)",
    "long smooth": "y ~ s(" + ", ".join(f"x{i}" for i in range(500)) + ", k=5)",
    "10^4-character name": "y ~ " + "x" * 10_000,
}


@pytest.mark.parametrize("model", PLAUSIBLE.values(), ids=PLAUSIBLE.keys())
def test_plausible_models_parse(model: str) -> None:
    assert parse(model).statements


def test_the_deepest_model_that_parses_can_be_used() -> None:
    """MAX_DEPTH keeps every tree within reach of recursive code: printing, comparing,
    hashing, and the spec stage's walks over expressions."""
    chain = " + ".join(f"a{i}" for i in range(MAX_DEPTH + 1))  # MAX_DEPTH operators
    model = f"f =~ x1 + a0*x2 + a1*x3\nd := {chain}\na0 == {chain}"
    syntax = parse(model)
    definition = syntax.statements[1]
    assert isinstance(definition, Definition) and isinstance(definition.expr, BinaryOp)
    assert repr(syntax) and syntax == parse(model) and hash(syntax.statements)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - any semgalamm error will do
        build_spec(syntax)
    assert raised.type.__module__ == "semgalamm.errors"
    with pytest.raises(Exception) as raised:  # noqa: PT011
        build_partable(syntax, list(COLUMNS), SemOptions())
    assert raised.type.__module__ == "semgalamm.errors"
    paren = "y ~ " + "(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH
    assert parse(paren).statements
