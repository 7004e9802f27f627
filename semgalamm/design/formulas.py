"""Formula terms evaluated safely: a model string read from a file or a web form must never
run code.

patsy evaluates every factor of a formula (``log(x)``, ``I(x**2)``) as Python code, by
default in the caller's namespace and with Python's builtins at hand, so ``I(exec("..."))``
would run. Here every factor is first read as a Python syntax tree and allowed only if it is
made of

* the data's columns (names; ``Q("my.days")`` for names that are not Python identifiers),
* numbers, strings (arguments such as ``Treatment("b")``), ``TRUE``/``FALSE``, ``pi``,
* arithmetic, comparisons and ``&``/``|``,
* calls of the functions in :data:`FUNCTIONS` (numpy's math, patsy's ``I``, ``C``, ``Q``,
  ``center``, ``standardize``, ``bs``, ``cr``, ``cc``, contrasts, and R's ``scale`` and
  ``poly``), also written ``np.log``/``numpy.log``;

anything else (other names, attribute access, subscripts, lambdas, comprehensions) is a
``SpecError`` naming the term. The factors are then evaluated by patsy in an
:class:`patsy.EvalEnvironment` holding only those functions, never the caller's globals.

R-style names (``my.days``) and Python keywords (``class``) that are columns of the data are
quoted for patsy automatically (``Q("my.days")``, see :func:`quote_columns`); R's column
names come back without the quotes.
"""

from __future__ import annotations

import ast
import keyword
import re
import types
from collections.abc import Callable, Collection, Iterable

import numpy as np
import patsy
import patsy.builtins
from scipy.special import expit, logit

from semgalamm.errors import SpecError

# --------------------------------------------------------------------------- R's scale, poly


class _RScale:
    """R's ``scale(x, center = TRUE, scale = TRUE)``: subtract the mean and divide by the
    standard deviation (n - 1); with ``center = FALSE``, divide by sqrt(sum x^2 / (n - 1)).
    A stateful transform: new data are scaled with the fitted data's mean and SD."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.mean = 0.0
        self.sd = 1.0

    def memorize_chunk(self, x, center=True, scale=True) -> None:
        self._chunks.append(np.asarray(x, dtype=float).ravel())
        self._options = (bool(center), bool(scale))

    def memorize_finish(self) -> None:
        x = np.concatenate(self._chunks)
        self._chunks = []
        center, rescale = self._options
        self.mean = float(np.mean(x)) if center else 0.0
        if rescale:
            self.sd = float(np.sqrt(np.sum((x - self.mean) ** 2) / max(x.size - 1, 1)))

    def transform(self, x, center=True, scale=True) -> np.ndarray:
        return (np.asarray(x, dtype=float) - self.mean) / self.sd


class _RPoly:
    """R's ``poly(x, degree = 1, raw = FALSE)``: orthogonal polynomials (the columns of
    ``poly()`` in R, same values and signs; new data by R's three-term recurrence with the
    fitted coefficients alpha and norm2), or raw powers x, x^2, ... with ``raw = TRUE``."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.alpha: np.ndarray | None = None
        self.norm2: np.ndarray | None = None

    def memorize_chunk(self, x, degree=1, raw=False) -> None:
        self._chunks.append(np.asarray(x, dtype=float).ravel())
        self._options = (int(degree), bool(raw))

    def memorize_finish(self) -> None:
        x = np.concatenate(self._chunks)
        self._chunks = []
        degree, raw = self._options
        if degree < 1:
            raise ValueError("poly() needs degree >= 1")
        if not raw:
            self._coefs(x, degree)

    def _coefs(self, x: np.ndarray, degree: int) -> None:
        unique = np.unique(x).size
        if degree >= unique:
            raise ValueError(f"poly() needs degree {degree} below the number of unique "
                             f"points ({unique})")
        xbar = float(np.mean(x))
        xc = x - xbar
        powers = np.vander(xc, degree + 1, increasing=True)
        q, r = np.linalg.qr(powers)
        Z = q * np.diag(r)[None, :]
        norm2 = np.sum(Z**2, axis=0)
        self.alpha = (np.sum(xc[:, None] * Z**2, axis=0) / norm2 + xbar)[:degree]
        self.norm2 = np.concatenate([[1.0], norm2])

    def transform(self, x, degree=1, raw=False) -> np.ndarray:
        degree = int(degree)
        x = np.asarray(x, dtype=float).ravel()
        if raw:
            return np.column_stack([x**j for j in range(1, degree + 1)])
        alpha, norm2 = self.alpha, self.norm2
        Z = np.ones((x.size, degree + 1))
        Z[:, 1] = x - alpha[0]
        for i in range(1, degree):
            Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
        return (Z / np.sqrt(norm2[1:])[None, :])[:, 1:]


scale = patsy.stateful_transform(_RScale)
poly = patsy.stateful_transform(_RPoly)

# --------------------------------------------------------------------------- the namespace

#: numpy's (and R's) elementwise math, callable as ``log(x)`` or ``np.log(x)``.
MATH: dict[str, Callable] = {
    "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp,
    "expm1": np.expm1, "sqrt": np.sqrt, "abs": np.abs, "absolute": np.absolute,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin, "arccos": np.arccos,
    "arctan": np.arctan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "arcsinh": np.arcsinh,
    "arccosh": np.arccosh, "arctanh": np.arctanh, "floor": np.floor, "ceil": np.ceil,
    "ceiling": np.ceil, "round": np.round, "sign": np.sign, "square": np.square,
    "power": np.power, "minimum": np.minimum, "maximum": np.maximum, "pmin": np.minimum,
    "pmax": np.maximum, "clip": np.clip, "where": np.where, "plogis": expit, "qlogis": logit,
    "expit": expit, "logit": logit,
}
_PATSY = {name: getattr(patsy.builtins, name) for name in
          ("I", "C", "Q", "center", "standardize", "bs", "cr", "cc", "Treatment", "Poly",
           "Sum", "Helmert", "Diff")}
#: Every function a formula term may call.
FUNCTIONS: dict[str, Callable] = {**MATH, **_PATSY, "scale": scale, "poly": poly}
_CONSTANTS = {"pi": np.pi, "TRUE": True, "FALSE": False}
_NUMPY_MODULES = ("np", "numpy")
_NUMPY = types.SimpleNamespace(**MATH, pi=np.pi, e=np.e)


def environment(columns: Collection[str] = ()) -> patsy.EvalEnvironment:
    """patsy's evaluation environment: the allowed functions and constants, nothing else
    (the data's columns come from the data and shadow these names)."""
    namespace: dict[str, object] = {**_CONSTANTS, **FUNCTIONS}
    namespace.update({module: _NUMPY for module in _NUMPY_MODULES})
    for name in columns:
        namespace.pop(name, None)
    return patsy.EvalEnvironment([namespace])


def _allowed_list() -> str:
    shown = ["I", "C", "Q", "log", "exp", "sqrt", "abs", "sin", "cos", "poly", "scale",
             "center", "bs", "cr", "cc", "pmin", "pmax", "plogis"]
    return ", ".join(shown) + " and numpy's math (np.log, ...)"


# --------------------------------------------------------------------------- checks

_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Name, ast.Constant,
    ast.keyword, ast.Attribute, ast.Tuple, ast.List, ast.Load, ast.operator, ast.unaryop,
    ast.cmpop,
)
_CONSTRUCTS = {
    ast.Subscript: "a subscript ([...])", ast.Lambda: "a lambda", ast.IfExp: "'if ... else'",
    ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension",
    ast.DictComp: "a comprehension", ast.SetComp: "a comprehension", ast.Dict: "a dict",
    ast.Set: "a set", ast.Starred: "'*' unpacking", ast.NamedExpr: "':='",
    ast.JoinedStr: "an f-string", ast.BoolOp: "'and'/'or' (use & and |)",
    ast.Await: "'await'", ast.Yield: "'yield'", ast.YieldFrom: "'yield'",
}


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` as a string when the node is a chain of attributes on a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def factor_variables(code: str, columns: Collection[str] = (), term: str | None = None
                     ) -> list[str]:
    """The data columns a patsy factor (Python expression) reads, after checking that it
    holds only what formulas allow; a ``SpecError`` naming the term otherwise.

    Names and dotted names (``my.days``, an R name not quoted because the data lack it) that
    are not functions or constants are returned as columns, for the caller to look up; a
    name in ``columns`` is a column even when it is also a constant's name (``pi``)."""
    term = term or code
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        raise SpecError(
            f"The term '{term}' cannot be read as a formula term. Names that are not Python "
            "identifiers (dots, keywords, spaces) are written Q(\"name\")."
        ) from None
    variables: list[str] = []
    _visit(tree.body, term, variables, set(columns))
    return list(dict.fromkeys(variables))


def _visit(node: ast.AST, term: str, variables: list[str], columns: set[str]) -> None:
    if not isinstance(node, _ALLOWED_NODES):
        construct = next((text for kind, text in _CONSTRUCTS.items()
                          if isinstance(node, kind)), type(node).__name__)
        raise SpecError(
            f"The term '{term}' uses {construct}, which formula terms do not allow. A term may "
            "use columns, numbers, arithmetic and the functions "
            f"{_allowed_list()}."
        )
    if isinstance(node, ast.Call):
        _visit_call(node, term, variables, columns)
        return
    if isinstance(node, ast.Attribute):
        _visit_attribute(node, term, variables)
        return
    if isinstance(node, ast.Name):
        if node.id in columns:
            variables.append(node.id)
            return
        if node.id.startswith("__"):
            raise SpecError(f"The term '{term}' uses the name '{node.id}', which formula terms "
                            "do not allow.")
        if node.id in _NUMPY_MODULES:
            raise SpecError(f"The term '{term}' uses '{node.id}' alone; write a function of "
                            f"it, as in {node.id}.log(x).")
        if node.id not in _CONSTANTS and node.id not in FUNCTIONS:
            variables.append(node.id)
        return
    for child in ast.iter_child_nodes(node):
        _visit(child, term, variables, columns)


def _visit_call(node: ast.Call, term: str, variables: list[str], columns: set[str]) -> None:
    func = node.func
    if isinstance(func, ast.Name):
        name = func.id
        if name not in FUNCTIONS:
            raise SpecError(
                f"The term '{term}' calls '{name}', which formula terms do not allow. Allowed "
                f"functions: {_allowed_list()}."
            )
    elif isinstance(func, ast.Attribute):
        dotted = _dotted(func)
        root, _, attr = (dotted or "").partition(".")
        if root not in _NUMPY_MODULES or attr not in MATH:
            raise SpecError(
                f"The term '{term}' calls '{dotted or ast.unparse(func)}', which formula terms "
                f"do not allow. Allowed functions: {_allowed_list()}."
            )
        name = attr
    else:
        raise SpecError(f"The term '{term}' calls an expression, which formula terms do not "
                        "allow.")
    if name == "Q":
        if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Constant) \
                or not isinstance(node.args[0].value, str):
            raise SpecError(f"The term '{term}': Q() takes one quoted column name, as in "
                            "Q(\"my.days\").")
        variables.append(node.args[0].value)
        return
    for child in (*node.args, *(k.value for k in node.keywords)):
        _visit(child, term, variables, columns)


def _visit_attribute(node: ast.Attribute, term: str, variables: list[str]) -> None:
    dotted = _dotted(node)
    if dotted is None or any(part.startswith("_") for part in dotted.split(".")[1:]):
        raise SpecError(
            f"The term '{term}' accesses the attribute '{node.attr}', which formula terms do "
            "not allow."
        )
    root, _, attr = dotted.partition(".")
    if root in _NUMPY_MODULES:
        if attr in ("pi", "e"):
            return
        raise SpecError(
            f"The term '{term}' uses '{dotted}', which formula terms do not allow. Allowed "
            f"functions: {_allowed_list()}."
        )
    variables.append(dotted)  # an R name with dots that is not a column: reported by caller


# --------------------------------------------------------------------------- quoting

_TOKEN = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|((?<![\w.])[^\W\d][\w.]*)""")


def needs_quotes(name: str) -> bool:
    """A column name patsy cannot read bare: dots, Python keywords, non-identifiers."""
    return not name.isidentifier() or keyword.iskeyword(name) or "." in name


def quote_columns(formula: str, columns: Iterable[str]) -> str:
    """Write every column of ``columns`` whose name patsy cannot read bare (``my.days``,
    ``class``) as ``Q("my.days")``, outside string literals and not where it is called."""
    special = {str(c) for c in columns if isinstance(c, str) and needs_quotes(c)}
    if not special:
        return formula

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name is None or name not in special:
            return match.group(0)
        rest = formula[match.end():].lstrip()
        if rest.startswith("("):
            return match.group(0)
        return f'Q("{name}")'

    return _TOKEN.sub(replace, formula)


_EXPRESSION_WORDS = {"True", "False", "None", "and", "or", "not", "in", "is", "if", "else",
                     "lambda"}


def quote_keywords(formula: str) -> str:
    """Quote Python keywords used as names (``class``, ``for``) when the data are not at
    hand; words that belong to expressions (``and``, ``if``, ``lambda``) stay."""
    return quote_columns(formula, [w for w in keyword.kwlist if w not in _EXPRESSION_WORDS])


_QUOTED = re.compile(r"""Q\((["'])(.*?)\1\)""")


def unquote(name: str) -> str:
    """``Q("my.days")`` -> ``my.days`` in patsy's column names (R's names)."""
    return _QUOTED.sub(lambda m: m.group(2), name)


def formula_factors(formula: str) -> list[str]:
    """The factor codes (Python expressions) of a patsy formula, both sides."""
    desc = patsy.ModelDesc.from_formula(formula)
    codes = []
    for term in desc.lhs_termlist + desc.rhs_termlist:
        for factor in term.factors:
            codes.append(factor.code if hasattr(factor, "code") else str(factor))
    return list(dict.fromkeys(codes))


def check_formula(formula: str) -> None:
    """Check every factor of ``formula`` (no data needed): a ``SpecError`` names a term that
    uses anything but columns, numbers, arithmetic and the allowed functions."""
    try:
        codes = formula_factors(quote_keywords(formula))
    except patsy.PatsyError as exc:
        raise SpecError(f"The terms '{formula}' cannot be read: {exc.message}") from None
    except RecursionError:
        terms = formula.count("+") + 1
        raise SpecError(
            f"A formula of {terms} terms is more than patsy, which codes the formulas, can "
            "read (about 400 terms). Combine columns into fewer terms, or fit the model on "
            "fewer covariates."
        ) from None
    for code in codes:
        factor_variables(code)


__all__ = [
    "FUNCTIONS",
    "MATH",
    "check_formula",
    "environment",
    "factor_variables",
    "formula_factors",
    "needs_quotes",
    "poly",
    "quote_columns",
    "quote_keywords",
    "scale",
    "unquote",
]
