"""Bad model strings -> ModelSyntaxError with the right line, column, caret and message."""

from __future__ import annotations

import re

import pytest

from semgalamm.errors import ModelSyntaxError
from semgalamm.syntax import parse
from semgalamm.syntax.diagnostics import EXAMPLES, MESSAGES
from semgalamm.syntax.transformer import MAX_DEPTH, ModelTransformer

# (label of the mistake in diagnostics.MESSAGES or None, model, line, column, caret width, message)
ERRORS = [
    ("equals_sign", "y = x", 1, 3, 1,
     "'=' is not an operator here: write '=~' for a latent variable, '~' for a regression, "
     "':=' for a definition or '==' for a constraint."),
    ("equals_sign", "f =~ x1 + x2 = 1", 1, 14, 1,
     "'=' is not an operator here: write '=~' for a latent variable, '~' for a regression, "
     "':=' for a definition or '==' for a constraint."),
    ("missing_lhs", "=~ x1 + x2", 1, 1, 2,
     "The statement starts with '=~' but has nothing on its left; write the variable first, "
     "as in 'f =~ x1 + x2' or 'y ~ x'."),
    ("missing_lhs", "y ~ x; ~ z", 1, 8, 1,
     "The statement starts with '~' but has nothing on its left; write the variable first, "
     "as in 'f =~ x1 + x2' or 'y ~ x'."),
    ("missing_operator", "visual x1 + x2", 1, 8, 2,
     "Expected an operator (=~, ~, ~~, :=, ==, <, >) after 'visual'; a statement reads like "
     "'visual =~ x1 + x2' or 'y ~ x'."),
    ("missing_operator", "y ~ x\n\nvisual", 3, 7, 1,
     "Expected an operator (=~, ~, ~~, :=, ==, <, >) after 'visual'; a statement reads like "
     "'visual =~ x1 + x2' or 'y ~ x'."),
    ("missing_rhs", "visual =~", 1, 10, 1,
     "Missing right-hand side after '=~': write what it relates to, as in 'f =~ x1 + x2', "
     "'y ~ x' or 'a == b'."),
    ("missing_rhs", "a := ; b := c", 1, 6, 1,
     "Missing right-hand side after ':=': write what it relates to, as in 'f =~ x1 + x2', "
     "'y ~ x' or 'a == b'."),
    ("missing_rhs", "y ~   # nothing\n", 1, 4, 1,
     "Missing right-hand side after '~': write what it relates to, as in 'f =~ x1 + x2', "
     "'y ~ x' or 'a == b'."),
    ("star_without_modifier", "f =~ *x1", 1, 6, 1,
     "'*' must stand between a modifier and a term, as in 1*x1, a*x1 or start(0.5)*x1; "
     "remove it or write the modifier before it."),
    ("star_without_modifier", "y ~ x + * z", 1, 9, 1,
     "'*' must stand between a modifier and a term, as in 1*x1, a*x1 or start(0.5)*x1; "
     "remove it or write the modifier before it."),
    ("term_after_star", "f =~ a* + x", 1, 9, 1,
     "Expected the term that the modifier before '*' applies to, as in 1*x1 or a*x1, "
     "but found '+'."),
    ("term_after_star", "f =~ x1 + 1*", 1, 13, 1,
     "Expected the term that the modifier before '*' applies to, as in 1*x1 or a*x1, "
     "but found the end of the model."),
    ("dangling_operator", "y ~ x +", 1, 8, 1,
     "Expected a term after '+', but found the end of the model; complete the expression or "
     "remove the '+'."),
    ("dangling_operator", "f =~ x1 + x2 +\n", 1, 15, 1,
     "Expected a term after '+', but found the end of the model; complete the expression or "
     "remove the '+'."),
    ("dangling_operator", "a := b /", 1, 9, 1,
     "Expected a term after '/', but found the end of the model; complete the expression or "
     "remove the '/'."),
    ("formula_term_in_measurement", "f =~ s(x)", 1, 6, 1,
     "After '=~' write indicators (x1, item[1], type[a]:x), each with optional modifiers "
     "(1*x1, a*x1, start(0.5)*x1); 's' cannot stand there. Formula terms such as s(x), log(x) "
     "or (1 | id) belong on the right of '~'."),
    ("formula_term_in_measurement", "f =~ x1 + x2 + (1 | g)", 1, 16, 1,
     "After '=~' write indicators (x1, item[1], type[a]:x), each with optional modifiers "
     "(1*x1, a*x1, start(0.5)*x1); '(' cannot stand there. Formula terms such as s(x), log(x) "
     "or (1 | id) belong on the right of '~'."),
    ("formula_term_in_measurement", "f =~ c(1, 2)*x1", 1, 7, 1,
     "After '=~' write indicators (x1, item[1], type[a]:x), each with optional modifiers "
     "(1*x1, a*x1, start(0.5)*x1); '(' cannot stand there. Formula terms such as s(x), log(x) "
     "or (1 | id) belong on the right of '~'."),
    ("number_without_term", "f =~ 1", 1, 7, 1,
     "A modifier needs '*' and the term it applies to, as in 1*x1, NA*x1 or start(0.5)*x1; "
     "found the end of the model after '1'."),
    ("number_without_term", "f ~~ 0 + x", 1, 8, 1,
     "A modifier needs '*' and the term it applies to, as in 1*x1, NA*x1 or start(0.5)*x1; "
     "found '+' after '0'."),
    ("missing_value", "y ~ s(x, k=)", 1, 12, 1,
     "Expected a value after '=', as in k=10 or bs=\"cr\"; found ')'."),
    ("missing_group", "y ~ (1 | )", 1, 10, 1,
     "A random term needs a grouping factor after '|', as in (1 | id)."),
    ("bad_group", "y ~ (1 | 1)", 1, 10, 1,
     "After '|' write the grouping factor: a name, or names joined by ':' or '/', as in "
     "(1 | school/class); '1' cannot stand there."),
    ("minus_between_indicators", "f =~ x1 - x2", 1, 9, 1,
     "Indicators are joined with '+', not '-'; to fix a loading to a negative value write "
     "-1*x2."),
    ("minus_between_indicators", "f ~~ x + y - z", 1, 12, 1,
     "Indicators are joined with '+', not '-'; to fix a loading to a negative value write "
     "-1*x2."),
    ("operator_in_rhs", "y ~ x +\nz ~ w", 2, 3, 1,
     "Unexpected '~': a statement has only one operator. If a new statement starts here, put "
     "it on its own line or after ';' (a line that ends in an operator such as '+' continues "
     "on the next line)."),
    ("operator_in_rhs", "y ~ x ~~ z", 1, 7, 2,
     "Unexpected '~~': a statement has only one operator. If a new statement starts here, put "
     "it on its own line or after ';' (a line that ends in an operator such as '+' continues "
     "on the next line)."),
    ("missing_plus", "f =~ x1 x2", 1, 9, 2,
     "Expected '+' between 'x1' and 'x2'; join terms with '+', or start a new statement on a "
     "new line or after ';'."),
    ("missing_plus", "y ~ a + b c", 1, 11, 1,
     "Expected '+' between 'b' and 'c'; join terms with '+', or start a new statement on a "
     "new line or after ';'."),
    ("modifier_argument", "f =~ start(a)*x", 1, 12, 1,
     "start(), fixed(), lower() and upper() take a number, label() and equal() a quoted "
     "label, as in start(0.5)*x1 or label(\"a\")*x1; 'a' cannot stand there."),
    # ------------------------------------------------------------ lexer
    (None, 'f =~ "x1', 1, 6, 1,
     "This string is not closed; add the closing quote \" on the same line."),
    (None, "y ~ x @ z", 1, 7, 1,
     "The character '@' is not part of the model syntax; names may contain letters, digits, "
     "'_' and '.', and the operators are =~, ~, ~~, :=, ==, <, >."),
    # ------------------------------------------------------------ brackets
    (None, "y ~ (1 | g", 1, 5, 1,
     "This '(' is never closed; add ')' before the end of the statement."),
    (None, "y ~ s(x, k=3\nz ~ w", 1, 6, 1,
     "This '(' is never closed; add ')' before the end of the statement."),
    (None, "f =~ item[1", 1, 10, 1,
     "This '[' is never closed; add ']' before the end of the statement."),
    (None, "y ~ x)", 1, 6, 1,
     "This ')' closes nothing; remove it or add the opening bracket."),
    # ------------------------------------------------------------ shapes checked by the transformer
    (None, "efa('a')*f1 =~ x", 1, 1, 11,
     "The left-hand side of '=~' must be a latent variable's name (or several joined by '+'), "
     "not 'efa('a')*f1'."),
    (None, "2 ~ x", 1, 1, 1,
     "The left-hand side of '~' must be a variable's name or cbind(successes, failures) "
     "(or several joined by '+'), not '2'."),
    (None, "cbind(y) ~ x", 1, 1, 8,
     "cbind() on the left of '~' takes two arguments, successes and failures, as in "
     "'cbind(y, n - y) ~ x'."),
    (None, "f*2 ~~ g", 1, 1, 3,
     "The left-hand side of '~~' must be a variable's name (or several joined by '+'), "
     "not 'f*2'."),
    (None, "a + b := 3", 1, 1, 5,
     "The left-hand side of ':=' must be the new parameter's name, not 'a + b'."),
    (None, "foo: 1", 1, 1, 3,
     "'foo:' is not a block line; blocks start with group:, level:, block: or class:. "
     "For an interaction 'a:b' write it on the right of '~'."),
    (None, "f =~ NA*1*x", 1, 9, 1,
     "This term is given a fixed value (or NA) twice; keep only one of the modifiers."),
    (None, "f =~ a*b*x", 1, 8, 1,
     "This term is given a label twice; keep only one of the modifiers."),
    (None, "f =~ label(1)*x", 1, 6, 8,
     "label() takes a quoted label, as in label(\"a\")."),
    (None, 'f =~ start("a")*x', 1, 6, 10,
     "start() takes a number, as in start(1)."),
    (None, "y ~ 2", 1, 5, 1,
     "A number alone in a formula must be 1 (keep the intercept) or 0 (drop it), not 2; "
     "to fix a coefficient write 2*x."),
    (None, "y ~ x - z", 1, 7, 3,
     "Only the intercept can be removed with '-' (write '- 1' or start with '0 +'); to fix a "
     "coefficient to a negative value write fixed(-1)*x."),
    (None, "y ~ ((1|g))", 1, 5, 7,
     "Inside parentheses a formula may only combine variables, as in (a + b):c; write random "
     "terms, smooths and modifiers as separate terms joined by '+'."),
    (None, "y ~ (s(x) | g)", 1, 6, 4,
     "Before '|' in a random term write the intercept and variables whose effects vary by "
     "group, as in (1 + x | g); smooths, random terms and modifiers cannot stand there."),
    (None, "y ~ s(log(x))", 1, 5, 9,
     "s() takes variable names first, then options written name=value, as in s(x, k=10)."),
    (None, "y ~ s(k=3)", 1, 5, 6,
     "s() needs at least one variable, as in s(x)."),
    # ------------------------------------------------------------ no example: generic message
    (None, "y ~ x + (1 | g:)", 1, 16, 1,
     "Found ')' after ':', but expected a name."),
    ("labelled_intercept", "x1 ~ a*1", 1, 8, 1,
     "After '~', 'a*1' reads as a product; to label an intercept write label(\"a\")*1 (or "
     "\"a\"*1), to fix it write a number, as in 0*1; found '1' after '*'."),
]  # fmt: skip


def _template(label: str) -> re.Pattern[str]:
    """The message of ``label`` as a pattern (its fields match any text)."""
    return re.compile(re.sub(r"\\\{\w+\\\}", ".+", re.escape(MESSAGES[label])), re.DOTALL)


@pytest.mark.parametrize(
    ("label", "model", "line", "column", "width", "message"),
    ERRORS,
    ids=[f"{row[0] or 'other'}: {row[1]!r}" for row in ERRORS],
)
def test_error(label, model: str, line: int, column: int, width: int, message: str) -> None:
    with pytest.raises(ModelSyntaxError) as raised:
        parse(model)
    error = raised.value
    assert (error.reason, error.line, error.column) == (message, line, column)
    source_line = model.split("\n")[line - 1]
    assert error.context == f"    {source_line}\n    {' ' * (column - 1)}{'^' * width}"
    assert str(error).startswith(message + f"\n  at line {line}, column {column}:\n")
    if label is not None:
        assert _template(label).fullmatch(error.reason)


def test_every_message_is_tested() -> None:
    assert set(MESSAGES) == {row[0] for row in ERRORS if row[0] is not None}
    assert set(EXAMPLES) == set(MESSAGES)


EXAMPLE_ROWS = [(label, ex) for label, examples in EXAMPLES.items() for ex in examples]


@pytest.mark.parametrize(("label", "example"), EXAMPLE_ROWS)
def test_example_gets_its_message(label: str, example: str) -> None:
    """No example is shadowed by one of another mistake that fails in the same way."""
    with pytest.raises(ModelSyntaxError) as raised:
        parse(example)
    assert _template(label).fullmatch(raised.value.reason)


def test_tab_keeps_the_caret_aligned() -> None:
    with pytest.raises(ModelSyntaxError) as raised:
        parse("\ty ~ x $ z")
    assert raised.value.context == "    \ty ~ x $ z\n    \t      ^"


VALID = [
    "ability =~ 1*item[11] + a*item[12] + NA*start(0.5)*item[\"fiber 1\"] + type[resp]:x",
    "y ~ 0 + chd + (age*bus):chd + I(x^2) + (1 + x || school/sid) + s(x, k=10, bs='cr') - 1",
    "cbind(y, n - y) ~ item; f1 ~~ 0*f2 + v*f3\nab := exp(a) / b; a > 0.5*b; group: 1",
]


@pytest.mark.parametrize("model", VALID)
def test_every_truncation_parses_or_explains(model: str) -> None:
    """Cut a valid model anywhere: it parses, or the error has a message and a position."""
    assert parse(model).statements
    for end in range(len(model) + 1):
        text = model[:end]
        try:
            parse(text)
        except ModelSyntaxError as error:
            assert error.reason.endswith("."), (text, error.reason)
            assert 1 <= error.line <= text.count("\n") + 1, text
            assert "^" in error.context, text


def test_not_a_string() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        parse(None)  # type: ignore[arg-type]


# ------------------------------------------------------------ nesting beyond the parser's limit


def _chain(operator: str, count: int, operand: str = "x") -> str:
    return operator.join([operand] * count)


TOO_DEEP = {
    # name: (model, line and column of the expression that is too deep)
    "brackets in a formula": ("y ~ " + "(" * 201 + "x" + ")" * 201, 1, 5),
    "5000 brackets": ("y ~ " + "(" * 5000 + "x" + ")" * 5000, 1, 4804),
    "brackets in a definition": ("y ~ x\nd := " + "(" * 300 + "a" + ")" * 300, 2, 105),
    "unary minus": ("d := " + "-" * 490 + "a", 1, 295),
    "nested calls": ("y ~ " + "I(" * 250 + "x" + ")" * 250, 1, 103),
    "power chain": ("d := " + _chain("^", 600, "a"), 1, 802),
    "interaction chain": ("y ~ z + " + _chain(":", 1000), 1, 9),
    "product chain": ("y ~ " + _chain("*", 1000), 1, 5),
    "sum in a definition": ("d := " + " + ".join(["a"] * 1000), 1, 6),
    "sum in brackets": ("y ~ (" + " + ".join(["x"] * 1000) + "):z", 1, 5),
    "smooth option": ("y ~ s(x, k=" + "(" * 250 + "5" + ")" * 250 + ")", 1, 61),
    "left of ~": ("-" * 300 + "y ~ x", 1, 100),
    "second line, after a comment": ("# deep\nd := " + "(" * 201 + "a" + ")" * 201, 2, 6),
}
TOO_DEEP_MESSAGE = (
    f"Nesting deeper than {MAX_DEPTH} levels: the expression that starts here holds more than "
    f"{MAX_DEPTH} levels of brackets, calls, signs and operators (each operator of a chain "
    "such as a + b + c counts one); simplify it or split it into shorter expressions."
)


@pytest.mark.parametrize(("model", "line", "column"), TOO_DEEP.values(), ids=TOO_DEEP.keys())
def test_nesting_beyond_the_limit_is_a_syntax_error(model: str, line: int, column: int) -> None:
    with pytest.raises(ModelSyntaxError) as raised:
        parse(model)
    error = raised.value
    assert (error.reason, error.line, error.column) == (TOO_DEEP_MESSAGE, line, column)
    source_line = model.split("\n")[line - 1]
    assert error.context == f"    {source_line}\n    {' ' * (column - 1)}^"


def test_a_defect_of_the_parser_is_still_a_syntax_error_with_a_place(monkeypatch) -> None:
    """An unexpected exception inside the transformer is reported, never a lark VisitError."""

    def broken(self, meta, *children):
        raise KeyError("oops")

    monkeypatch.setattr(ModelTransformer, "random_term", broken)
    with pytest.raises(ModelSyntaxError) as raised:
        parse("y ~ x\ny ~ z + (1 | g)")
    error = raised.value
    assert (error.line, error.column) == (2, 9)
    assert error.reason == "The model could not be parsed (KeyError: 'oops'); please report this."
    assert error.context == "    y ~ z + (1 | g)\n            ^"
