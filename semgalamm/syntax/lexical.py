"""lavaan's lexical rules that a context-free grammar cannot express.

Two steps run around the lexer; neither moves a character, so every token keeps the line and
column the user wrote:

* :func:`normalize` replaces the Unicode tilde (U+02DC) by ``~``, one character for one.
* :class:`Continuation`, the postlexer, decides which line breaks end a statement. A statement
  continues on the next line when its line ends in an operator, a comma or an opening bracket,
  or when the next line starts with an operator or a closing bracket (lavaan's rule, so pasted
  lavaan models parse unchanged). Blank lines, comment lines and repeated separators collapse.
  A ``;`` always ends a statement.
"""

from __future__ import annotations

from collections.abc import Iterator

from lark import Token
from lark.lark import PostLex

#: Tokens after which a line break does not end the statement.
CONTINUE_AFTER = frozenset(
    {"+", "-", "*", "/", ":", "^", "**", "?", "=", ",", "(", "[", "|", "||",
     "=~", "<~", "~*~", "~~", "~", "|~", "%", ":=", ":~", "==", "<", ">"}
)  # fmt: skip
#: Tokens before which a line break does not end the statement (lavaan: a line starting
#: with an operator continues the previous one).
CONTINUE_BEFORE = (CONTINUE_AFTER - {"(", "["}) | {")", "]"}

NEWLINE = "_NEWLINE"


def normalize(text: str) -> str:
    """Replace the Unicode tilde by ``~`` (lavaan does the same); positions do not move."""
    return text.replace("\u02dc", "~")


def _is_operator(token: Token, operators: frozenset[str]) -> bool:
    return token.type not in ("STRING", "NAME", "NUMBER") and str(token) in operators


class Continuation(PostLex):
    """Postlexer: drop the line breaks inside a statement, keep one between statements."""

    always_accept = ()

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        previous: Token | None = None  # last token that was not a line break
        pending: Token | None = None  # a line break that ends a statement, unless ...
        for token in stream:
            if token.type == NEWLINE:
                hard = str(token) == ";"
                if previous is None:
                    continue  # blank lines and separators before the first statement
                if not hard and _is_operator(previous, CONTINUE_AFTER):
                    continue  # the line ends in an operator: the statement goes on
                if pending is None or (hard and str(pending) != ";"):
                    pending = token
                continue
            if pending is not None:
                if str(pending) == ";" or not _is_operator(token, CONTINUE_BEFORE):
                    yield pending
                pending = None
            previous = token
            yield token
