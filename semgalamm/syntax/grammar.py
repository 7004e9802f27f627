"""The Lark parser of the model language, built once from the grammar shipped in the package."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from lark import Lark

from semgalamm.syntax.lexical import Continuation


def grammar_text() -> str:
    """Return the text of ``semgalamm/grammar/semgalamm.lark`` (package data, also in a wheel)."""
    return (files("semgalamm") / "grammar" / "semgalamm.lark").read_text(encoding="utf-8")


def build_parser(*, debug: bool = False) -> Lark:
    """Build a new LALR parser; ``debug=True`` makes Lark log grammar conflicts."""
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="basic",
        postlex=Continuation(),
        propagate_positions=True,
        maybe_placeholders=True,
        debug=debug,
    )


@cache
def get_parser() -> Lark:
    """Return the shared parser (built on first use)."""
    return build_parser()
