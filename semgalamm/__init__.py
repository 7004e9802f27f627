"""semgalamm: generalized additive latent and mixed models in a lavaan-like syntax.

    >>> import semgalamm
    >>> fit = semgalamm.fit("Reaction ~ Days + (Days | Subject)",
    ...                     semgalamm.load_dataset("sleepstudy"))
    >>> print(fit.summary())
"""

from semgalamm.api import fit
from semgalamm.api_sem import cfa, growth, sem
from semgalamm.datasets import load_dataset
from semgalamm.errors import (
    ConvergenceWarning,
    DataError,
    ModelSyntaxError,
    SemgalammError,
    SingularFitWarning,
    SpecError,
    UnsupportedError,
)
from semgalamm.inference.bootstrap import bootstrap
from semgalamm.results.anova import anova
from semgalamm.results.fit_result import FitResult
from semgalamm.results.sem_result import SemFit

__all__ = [
    "fit",
    "cfa",
    "sem",
    "growth",
    "anova",
    "bootstrap",
    "load_dataset",
    "FitResult",
    "SemFit",
    "SemgalammError",
    "ModelSyntaxError",
    "SpecError",
    "UnsupportedError",
    "DataError",
    "ConvergenceWarning",
    "SingularFitWarning",
]
__version__ = "0.1.0"
