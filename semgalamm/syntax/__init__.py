"""The syntax stage: a model string becomes a :class:`ModelSyntax`, a tree of frozen nodes.

>>> syntax = parse("ability =~ 1*item[1] + item[2]; ability ~ (1 | school)")
>>> [type(s).__name__ for s in syntax.statements]
['Measurement', 'Regression']

Errors raise :class:`semgalamm.errors.ModelSyntaxError` with the line, column and a caret.
"""

from __future__ import annotations

from typing import Any

from lark.exceptions import LarkError, UnexpectedInput, VisitError

from semgalamm.errors import ModelSyntaxError
from semgalamm.syntax.diagnostics import caret_context, translate
from semgalamm.syntax.grammar import get_parser
from semgalamm.syntax.lexical import normalize
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
    ModelSyntax,
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
from semgalamm.syntax.transformer import ModelTransformer

__all__ = [
    "BinaryOp",
    "BinomialResponse",
    "Block",
    "Boolean",
    "Call",
    "Constraint",
    "Covariance",
    "CovarianceTerm",
    "Definition",
    "Expr",
    "FixedTerm",
    "Indicator",
    "Intercept",
    "Measurement",
    "Missing",
    "ModelSyntax",
    "Modifier",
    "Name",
    "Number",
    "Paren",
    "RandomTerm",
    "Regression",
    "Response",
    "SmoothTerm",
    "SourceSpan",
    "Statement",
    "String",
    "Term",
    "UnaryOp",
    "Unsupported",
    "parse",
]


def parse(text: str) -> ModelSyntax:
    """Parse a model string into its statements, in the order written.

    Raises :class:`~semgalamm.errors.ModelSyntaxError` (line, column, caret and a fix) when
    the string does not parse. Operators that parse but cannot be estimated (``<~``, ``|``
    thresholds, ``group:`` blocks, ...) become :class:`Unsupported` statements.
    """
    if not isinstance(text, str):
        raise TypeError(f"The model must be a string, not {type(text).__name__}.")
    source = normalize(text)
    parser = get_parser()
    try:
        tree = parser.parse(source)
        statements = ModelTransformer(source).transform(tree)
    except UnexpectedInput as error:
        raise translate(error, source, parser) from None
    except VisitError as error:
        if isinstance(error.orig_exc, ModelSyntaxError):
            raise error.orig_exc from None
        raise _internal_error(source, error.orig_exc, getattr(error.obj, "meta", None)) from None
    except LarkError as error:  # not expected; still never a bare Lark traceback
        raise _internal_error(source, error) from None
    return ModelSyntax(statements=statements, source=text)


def _internal_error(source: str, error: Exception, meta: Any = None) -> ModelSyntaxError:
    """A defect of the parser itself, still reported as a syntax error with a place."""
    line, column = 1, 1
    if meta is not None and not getattr(meta, "empty", True):
        line, column = meta.line, meta.column
    message = (
        f"The model could not be parsed ({type(error).__name__}: {error}); please report this."
    )
    return ModelSyntaxError(message, line, column, caret_context(source, line, column))
