"""Evaluate the arithmetic of ``:=`` definitions and constraints over parameter labels."""

from __future__ import annotations

import math
from collections.abc import Mapping

from semgalamm.errors import SpecError
from semgalamm.syntax.nodes import BinaryOp, Call, Expr, Name, Number, Paren, UnaryOp

_FUNCTIONS = {
    "exp": math.exp, "log": math.log, "sqrt": math.sqrt, "abs": abs, "sin": math.sin,
    "cos": math.cos, "tan": math.tan, "pnorm": lambda z: 0.5 * math.erfc(-z / math.sqrt(2)),
}


def evaluate(expr: Expr, env: Mapping[str, float]) -> float:
    """The value of ``expr`` with names looked up in ``env`` (labels and defined names)."""
    if isinstance(expr, Number):
        return expr.value
    if isinstance(expr, Name):
        return float(env[expr.name])
    if isinstance(expr, Paren):
        return evaluate(expr.expr, env)
    if isinstance(expr, UnaryOp):
        value = evaluate(expr.operand, env)
        return -value if expr.op == "-" else value
    if isinstance(expr, BinaryOp):
        a, b = evaluate(expr.left, env), evaluate(expr.right, env)
        if expr.op == "+":
            return a + b
        if expr.op == "-":
            return a - b
        if expr.op == "*":
            return a * b
        if expr.op == "/":
            return a / b if b != 0 else math.copysign(math.inf, a) if a else math.nan
        if expr.op in ("^", "**"):
            return a**b
    if isinstance(expr, Call) and expr.func in _FUNCTIONS and len(expr.args) == 1:
        return float(_FUNCTIONS[expr.func](evaluate(expr.args[0], env)))
    raise SpecError(
        f"Cannot evaluate '{expr}' in a defined parameter or constraint: use numbers, labels, "
        f"+ - * / ^ and the functions {', '.join(sorted(_FUNCTIONS))}."
    )
