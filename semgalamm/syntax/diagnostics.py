"""Turn Lark's parse errors into :class:`~semgalamm.errors.ModelSyntaxError`.

Every message says what is wrong and how to fix it; the error carries the line, the column
and the source line with a caret under the offending text. Common mistakes are recognised by
example (:func:`classify`, after Lark's ``UnexpectedInput.match_examples``): a failure that
leaves the parser in the same state as one of the short bad models in :data:`EXAMPLES` gets
that example's message.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from semgalamm.errors import ModelSyntaxError
from semgalamm.syntax.nodes import SourceSpan

OPERATORS = "=~, ~, ~~, :=, ==, <, >"

#: Short bad models, grouped by the mistake they show. Order matters: the first group whose
#: example fails in the same parser state wins, unless a later one fails on the same token.
EXAMPLES: dict[str, list[str]] = {
    "equals_sign": ["y = x", "f + g = x", "y ~ x = 1", "f =~ x1 = 1", "a := b = c"],
    "missing_lhs": ["=~ x1", "~ x", "~~ x", ":= a", "== a", "< a", "> a", ": 1", "y ~ x; =~ x1"],
    "missing_operator": [
        "visual", "visual x1", "visual 1", "visual \"x\"", "f + g x", "f + g", "log(x) y",
        "y ~ x\nvisual", "y ~ x\nvisual x1", "y ~ x\nf + g x", "y ~ x\nf + g",
    ],
    "missing_rhs": [
        "f =~", "y ~", "f ~~", "a :=", "a ==", "a <", "a >", "f <~", "group:",
        "f =~ ;", "y ~ ;", "f ~~ ;", "a := ;", "a == ;",
    ],
    "star_without_modifier": [
        "f =~ * x1", "f =~ x1 + * x2", "y ~ * x", "y ~ x + * z", "f ~~ * x", "f ~~ x + * z",
        "f =~ 1 * * x", "y ~ 1 * * x", "f ~~ 1 * * x", "f =~ a * * x", "f ~~ a * * x",
    ],
    "term_after_star": [
        "f =~ a * + x", "f =~ 1 * + x", "y ~ 2 * + x", "f ~~ 0 * + x", "f ~~ a * + x",
        "f =~ a *", "f =~ 1 *", "y ~ 2 *", "f ~~ 0 *", "f ~~ a *",
    ],
    "dangling_operator": [
        "f =~ x1 +", "y ~ x +", "y ~ x -", "f ~~ x +", "a := b +", "a == b +", "y ~ a *",
        "y ~ a :", "a := b *", "a := b /", "a := b ^", "a := -", "y ~ x + ;",
    ],
    "formula_term_in_measurement": [
        "f =~ s(x)", "f =~ (1 | g)", "f =~ log(x)", "f =~ x1 + s(x)",
        "f =~ x1 + (1 | g)", "f =~ x1 + log(x)", "f =~ a * log(x)", "f =~ a * (x)",
        "f =~ 1 * s(x)", "f =~ 1 * (x)", "f =~ a * s(x)", "f =~ x1:s(x)", "f =~ x1[1]:(x)",
    ],
    "number_without_term": [
        "f =~ 1", "f =~ x1 + 1", "f =~ 1 + x", "f ~~ 0", "f ~~ 0 + x", "f =~ -1", "f ~~ -1",
        "y ~ NA", "f =~ NA", "f ~~ NA", 'y ~ "a"', 'f =~ "a"', "y ~ start(1)", "f =~ start(1)",
        "f ~~ start(1)", "y ~ x + NA", "f =~ -1 + x",
    ],
    "missing_value": ["y ~ s(x, k=)", "y ~ s(x, k=, bs='cr')", "a := f(x=)"],
    "missing_group": ["y ~ (1 | )", "y ~ (1 || )", "y ~ (x | )"],
    "bad_group": ["y ~ (1 | 1)", "y ~ (1 | g + h)", "y ~ (1 | g * h)", "y ~ (1 | g / 1)"],
    "minus_between_indicators": [
        "f =~ x1 - x2", "f =~ item[1] - x2", "f =~ t[a]:x - x2", "f ~~ x1 - x2",
    ],
    "operator_in_rhs": [
        "y ~ x + z ~ w", "y ~ x ~ w", "y ~ x =~ w", "y ~ x ~~ w", "y ~ x := w",
        "f =~ x1 + g =~ x2", "f =~ x1 =~ x2", "f =~ x1 ~ x2", "f =~ x1 ~~ x2", "f ~~ x ~ y",
        "f ~~ x ~~ y", "f ~~ x =~ y", "a := b ~ c", "a := b =~ c", "a == b ~ c", "a := b := c",
        "y ~ s(x) ~ z", "y ~ (1 | g) ~ z", "f =~ t[a] ~ x2", "f =~ t[a]:x ~ x2",
    ],
    "missing_plus": [
        "y ~ x z", "f =~ x1 x2", "f ~~ a b", "y ~ s(x) z", "y ~ (1 | g) z", "f =~ t[1] t[2]",
        "f =~ t[1]:x z", "y ~ x (1 | g)", "y ~ x s(x)", "y ~ x 1", "a := b c", "a == b c",
    ],
    "modifier_argument": ['f =~ start(a)*x', 'f =~ start()*x', 'f =~ label(1 + 2)*x'],
    "labelled_intercept": ["y ~ a*1", "y ~ x + a*1", "y ~ a*2"],
}  # fmt: skip

#: Mistakes recognised by the token that is wrong, not only by where the parser stopped.
TOKEN_SPECIFIC = frozenset(
    {"equals_sign", "star_without_modifier", "formula_term_in_measurement",
     "bad_group", "minus_between_indicators", "operator_in_rhs", "missing_plus",
     "labelled_intercept"}
)  # fmt: skip

MESSAGES: dict[str, str] = {
    "labelled_intercept": (
        "After '~', 'a*1' reads as a product; to label an intercept write label(\"a\")*1 "
        "(or \"a\"*1), to fix it write a number, as in 0*1; found {token} after {previous}."
    ),
    "equals_sign": (
        "'=' is not an operator here: write '=~' for a latent variable, '~' for a regression, "
        "':=' for a definition or '==' for a constraint."
    ),
    "missing_lhs": (
        "The statement starts with {token} but has nothing on its left; write the variable "
        "first, as in 'f =~ x1 + x2' or 'y ~ x'."
    ),
    "missing_operator": (
        "Expected an operator ({operators}) after {previous}; a statement reads like "
        "'visual =~ x1 + x2' or 'y ~ x'."
    ),
    "missing_rhs": (
        "Missing right-hand side after {previous}: write what it relates to, as in "
        "'f =~ x1 + x2', 'y ~ x' or 'a == b'."
    ),
    "star_without_modifier": (
        "{token} must stand between a modifier and a term, as in 1*x1, a*x1 or "
        "start(0.5)*x1; remove it or write the modifier before it."
    ),
    "term_after_star": (
        "Expected the term that the modifier before '*' applies to, as in 1*x1 or a*x1, "
        "but found {token}."
    ),
    "dangling_operator": (
        "Expected a term after {previous}, but found {token}; complete the expression or "
        "remove the {previous}."
    ),
    "formula_term_in_measurement": (
        "After '=~' write indicators (x1, item[1], type[a]:x), each with optional modifiers "
        "(1*x1, a*x1, start(0.5)*x1); {token} cannot stand there. Formula terms such as "
        "s(x), log(x) or (1 | id) belong on the right of '~'."
    ),
    "number_without_term": (
        "A modifier needs '*' and the term it applies to, as in 1*x1, NA*x1 or "
        "start(0.5)*x1; found {token} after {previous}."
    ),
    "missing_value": "Expected a value after '=', as in k=10 or bs=\"cr\"; found {token}.",
    "missing_group": "A random term needs a grouping factor after '|', as in (1 | id).",
    "bad_group": (
        "After '|' write the grouping factor: a name, or names joined by ':' or '/', as in "
        "(1 | school/class); {token} cannot stand there."
    ),
    "minus_between_indicators": (
        "Indicators are joined with '+', not '-'; to fix a loading to a negative value write "
        "-1*x2."
    ),
    "operator_in_rhs": (
        "Unexpected {token}: a statement has only one operator. If a new statement starts "
        "here, put it on its own line or after ';' (a line that ends in an operator such as "
        "'+' continues on the next line)."
    ),
    "missing_plus": (
        "Expected '+' between {previous} and {token}; join terms with '+', or start a new "
        "statement on a new line or after ';'."
    ),
    "modifier_argument": (
        "start(), fixed(), lower() and upper() take a number, label() and equal() a quoted "
        "label, as in start(0.5)*x1 or label(\"a\")*x1; {token} cannot stand there."
    ),
}

#: How the terminals of the grammar are named in messages.
TERMINAL_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a quoted string",
    "NA": "NA",
    "BOOLEAN": "TRUE or FALSE",
    "MODIFIER_FUNCTION": "a modifier such as start()",
    "SMOOTH_FUNCTION": "a smooth such as s()",
    "POWER": "'^'",
    "CONSTRAINT_OP": "'==', '<' or '>'",
    "UNSUPPORTED_OP": "an operator",
    "_NEWLINE": "a new line",
    "$END": "the end of the model",
}
BRACKETS = {"(": ")", "[": "]"}


# --------------------------------------------------------------------------- positions


def caret_context(source: str, line: int, column: int, width: int = 1) -> str:
    """The source line ``line`` and, below it, carets under ``width`` characters at ``column``."""
    lines = source.split("\n")
    text = lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""
    pad = "".join("\t" if char == "\t" else " " for char in text[: column - 1])
    pad += " " * max(0, column - 1 - len(text))
    return f"    {text}\n    {pad}{'^' * max(1, width)}"


def error_at(source: str, span: SourceSpan, message: str) -> ModelSyntaxError:
    """A :class:`ModelSyntaxError` with carets under ``span`` (its first line)."""
    line_length = len(source.split("\n")[span.line - 1].rstrip("\r"))
    last = span.end_column if span.end_line == span.line else line_length
    context = caret_context(source, span.line, span.column, last - span.column + 1)
    return ModelSyntaxError(message, span.line, span.column, context)


def _describe(token: Token | None) -> str:
    """A token as a message names it: 'x1', the end of the line, the end of the model."""
    if token is None:
        return "the start of the model"
    if token.type == "$END":
        return "the end of the model"
    if token.type == "_NEWLINE":
        return "';'" if str(token) == ";" else "the end of the line"
    return f"'{token}'"


def _expected(names: set[str], terminals: dict[str, str]) -> str:
    """The terminals the parser would have accepted, in words: kinds, symbols, the end."""
    words = [TERMINAL_NAMES[n] for n in TERMINAL_NAMES if n in names and n[0] not in "_$"]
    words += sorted(f"'{terminals[n]}'" for n in names - TERMINAL_NAMES.keys() if n in terminals)
    if names & {"_NEWLINE", "$END"}:
        words.append("the end of the statement")
    if len(words) > 1:
        return ", ".join(words[:-1]) + " or " + words[-1]
    return words[0] if words else "something else"


def _tokens(parser: Lark, source: str) -> Iterator[Token]:
    """The source's tokens after the postlexer; stops quietly at a lexical error."""
    try:
        yield from parser.lex(source)
    except LarkError:
        return


# --------------------------------------------------------------------------- translation


def translate(error: UnexpectedInput, source: str, parser: Lark) -> ModelSyntaxError:
    """Explain a Lark parse error of ``source``."""
    if isinstance(error, UnexpectedCharacters):
        return _unexpected_character(error, source)
    if isinstance(error, UnexpectedToken):
        return _unexpected_token(error, source, parser)
    return ModelSyntaxError(
        "The model string ended unexpectedly; check that every statement is complete.",
        error.line if error.line > 0 else 1,
        error.column if error.column > 0 else 1,
        caret_context(source, max(1, error.line), max(1, error.column)),
    )


def _unexpected_character(error: UnexpectedCharacters, source: str) -> ModelSyntaxError:
    char = error.char
    if char in "\"'":
        message = f"This string is not closed; add the closing quote {char} on the same line."
    else:
        message = (
            f"The character '{char}' is not part of the model syntax; names may contain "
            "letters, digits, '_' and '.', and the operators are " + OPERATORS + "."
        )
    context = caret_context(source, error.line, error.column)
    return ModelSyntaxError(message, error.line, error.column, context)


def _unexpected_token(error: UnexpectedToken, source: str, parser: Lark) -> ModelSyntaxError:
    token = error.token
    terminals = {t.name: getattr(t.pattern, "value", t.name) for t in parser.terminals}
    at_end = token.type == "$END"
    before = [t for t in _tokens(parser, source) if at_end or t.start_pos < token.start_pos]
    statement = _current_statement(before)
    previous = next((t for t in reversed(before) if t.type != "_NEWLINE"), None)

    unclosed = _unclosed_bracket(statement, token)
    if unclosed is not None:
        return unclosed_error(source, unclosed)
    if str(token) in BRACKETS.values() and token.type != "STRING" and not _opened(statement):
        message = f"This '{token}' closes nothing; remove it or add the opening bracket."
        return error_at(source, _token_span(token), message)

    label = classify(error, parser)
    fields = {
        "token": _describe(token),
        "previous": _describe(previous),
        "operators": OPERATORS,
    }
    if label is None:
        template = "Found {token} after {previous}, but expected {expected}."
        if previous is None:
            template = "Found {token} at the start of the model, but expected {expected}."
        expected = _expected(error.accepts or error.expected, terminals)
        message = template.format(expected=expected, **fields)
    else:
        message = MESSAGES[label].format(**fields)

    if at_end or token.type == "_NEWLINE" and str(token) != ";":
        if previous is None:
            line, column = 1, 1
        else:  # point just after the last token of the statement
            line, column = previous.end_line, previous.end_column
        return ModelSyntaxError(message, line, column, caret_context(source, line, column))
    return error_at(source, _token_span(token), message)


@cache
def _example_failures(parser: Lark) -> tuple[tuple[str, object, str, str], ...]:
    """(label, parser state, token type, token text) for every example in :data:`EXAMPLES`."""
    failures = []
    for label, examples in EXAMPLES.items():
        for example in examples:
            try:
                parser.parse(example)
            except UnexpectedToken as failure:
                token = failure.token
                failures.append((label, failure.state.position, token.type, str(token)))
    return tuple(failures)


def classify(error: UnexpectedToken, parser: Lark) -> str | None:
    """The label of the example that fails like ``error``, or None.

    Like Lark's ``UnexpectedInput.match_examples``: among the examples that stop the parser
    in the same LALR state, prefer one that fails on the same token, then one that fails on
    the same kind of token, then the first whose message does not name the token (see
    :data:`TOKEN_SPECIFIC`). Unlike it, the depth of the parser's stack is
    ignored (so an error inside parentheses or after other statements matches too), and the
    examples are parsed once.
    """
    state, token = error.state.position, error.token
    candidates = [f for f in _example_failures(parser) if f[1] == state]
    for label, _, kind, text in candidates:
        if kind == token.type and text == str(token):
            return label
    for label, _, kind, _ in candidates:
        if kind == token.type:
            return label
    for label, *_ in candidates:
        if label not in TOKEN_SPECIFIC:
            return label
    return None


def _token_span(token: Token) -> SourceSpan:
    return SourceSpan(token.line, token.column, token.end_line, token.end_column - 1)


def _current_statement(tokens: list[Token]) -> list[Token]:
    """The tokens since the last statement separator."""
    for index in range(len(tokens) - 1, -1, -1):
        if tokens[index].type == "_NEWLINE":
            return tokens[index + 1 :]
    return tokens


def _open_brackets(tokens: list[Token]) -> list[Token]:
    stack: list[Token] = []
    for token in tokens:
        if token.type == "STRING":
            continue
        if str(token) in BRACKETS:
            stack.append(token)
        elif stack and str(token) == BRACKETS[str(stack[-1])]:
            stack.pop()
    return stack


def _opened(tokens: list[Token]) -> bool:
    return bool(_open_brackets(tokens))


def _unclosed_bracket(statement: list[Token], token: Token) -> Token | None:
    """The innermost bracket left open when the statement ends at ``token``."""
    if token.type not in ("$END", "_NEWLINE"):
        return None
    stack = _open_brackets(statement)
    return stack[-1] if stack else None


def unclosed_error(source: str, bracket: Token) -> ModelSyntaxError:
    """The error for a bracket that the statement never closes."""
    closing = BRACKETS[str(bracket)]
    message = (
        f"This '{bracket}' is never closed; add '{closing}' before the end of the statement."
    )
    return error_at(source, _token_span(bracket), message)
