"""One exception tree for every stage: syntax -> spec -> design -> fit.

Every message says what is wrong and how to fix it, and ends with a full stop.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(name: str, choices: Iterable[str], cutoff: float = 0.5) -> str:
    """A " Did you mean 'x'?" hint for the closest of ``choices``, or "" when none is close."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=cutoff)
    return f" Did you mean '{match[0]}'?" if match else ""


class SemgalammError(Exception):
    """Base class of every error semgalamm raises on purpose."""


class ModelSyntaxError(SemgalammError, ValueError):
    """The model string does not parse.

    Attributes
    ----------
    line, column:
        1-based position of the offending text in the model string.
    context:
        The source line with a caret under the offending text.
    """

    def __init__(self, message: str, line: int, column: int, context: str) -> None:
        self.reason = message
        self.line = line
        self.column = column
        self.context = context
        super().__init__(f"{message}\n  at line {line}, column {column}:\n{context}")


class SpecError(SemgalammError, ValueError):
    """The model parses but does not describe a valid (identified) model."""


class UnsupportedError(SemgalammError, NotImplementedError):
    """The model uses a construct the grammar accepts but semgalamm cannot estimate yet."""


class DataError(SemgalammError, ValueError):
    """The data do not fit the model: unknown columns, missing values, bad responses."""


class FitWarning(UserWarning):
    """Base class of warnings about a finished fit."""


class ConvergenceWarning(FitWarning):
    """The optimizer stopped without meeting its convergence criteria."""


class SingularFitWarning(FitWarning):
    """A variance parameter is on its boundary (zero variance or perfect correlation)."""


class DataWarning(FitWarning):
    """The data leave part of the model poorly determined; the fit goes on (docs/errors.md)."""


class SeparationWarning(DataWarning):
    """Binomial responses are predicted perfectly by fixed-effect columns (complete or
    quasi-complete separation): their maximum-likelihood estimates are infinite."""


class ScaleWarning(DataWarning):
    """Fixed-effect columns on very different scales (lme4's check.scaleX): rescale them."""


class StandardErrorWarning(FitWarning):
    """Standard errors are NaN: the observed information at the optimum is not positive
    definite along the parameters named."""
