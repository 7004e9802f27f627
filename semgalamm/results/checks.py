"""Checks shared by the result objects (FitResult, SemFit): the confidence level, names with
a nearest-spelling hint, the optional plotting dependency, and the estimate tables that say
they are properties when called.

The rule the result objects follow (docs/results.md): a *property* is something the fit
holds (a number, a flag, or a named vector or table of estimates) and is read without
parentheses; a *method* is something the fit computes or lays out on request (anything
with arguments, and every table, dict, report or figure assembled for reading) and is
always called.
"""

from __future__ import annotations

import numbers

import pandas as pd

from semgalamm.errors import SemgalammError, SpecError, nearest


class MissingDependencyError(SemgalammError, ImportError):
    """An optional dependency (matplotlib for plots) is not installed."""


def check_level(level: object, name: str = "level") -> float:
    """A confidence level strictly between 0 and 1; a percentage (95, 90) gets the hint of
    its proportion (0.95, 0.9)."""
    if isinstance(level, bool) or not isinstance(level, numbers.Real):
        raise SpecError(f"{name} must be a number between 0 and 1 such as 0.95, not "
                        f"{level!r}.")
    value = float(level)
    if 0.0 < value < 1.0:
        return value
    hint = f" (did you mean {value / 100:g}?)" if 10.0 <= value < 100.0 else ""
    raise SpecError(f"{name} must be between 0 and 1{hint}; got {level!r}. Give the "
                    "coverage as a proportion, e.g. level=0.95 for 95% intervals.")


def check_choice(value: object, choices: tuple[str, ...], name: str) -> str:
    """``value`` must be one of ``choices`` (a keyword such as ``type``)."""
    if isinstance(value, str) and value in choices:
        return value
    options = ", ".join(f'"{c}"' for c in choices)
    hint = nearest(value, choices) if isinstance(value, str) else ""
    raise SpecError(f"{name} must be one of {options}, not {value!r}.{hint}")


def pyplot(feature: str):
    """matplotlib.pyplot, or a MissingDependencyError saying how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise MissingDependencyError(
            f"{feature} draws with matplotlib, which could not be imported ({error}). "
            "Install it with `pip install semgalamm[plot]` (or `pip install matplotlib`)."
        ) from error
    return plt


# --------------------------------------------------------------------------- estimate tables


def _not_callable(kind: str, accessor: str | None):
    name = f"fit.{accessor}" if accessor else "This estimate"
    how = f"write `{name}` without parentheses" if accessor else "read it without parentheses"
    raise TypeError(
        f"{name} is a property (a pandas {kind}), not a method: {how}. Properties hold "
        "estimates and statistics (fixef, fixef_se, theta, loadings, loglik, aic, ...); "
        "methods compute on request and take parentheses (varcorr(), ranef(), confint(), "
        "summary(), ...). See docs/results.md."
    )


class EstimateSeries(pd.Series):
    """A pandas Series of estimates returned by a property (``fit.fixef``). It behaves as a
    Series in every way (operations on it return plain Series) except that calling it, as
    in ``fit.fixef()``, raises a TypeError saying that it is a property."""

    @property
    def _constructor(self):
        return pd.Series

    @property
    def _constructor_expanddim(self):
        return pd.DataFrame

    def __call__(self, *args, **kwargs):
        _not_callable("Series", self.__dict__.get("_semgalamm_accessor"))


class EstimateFrame(pd.DataFrame):
    """A pandas DataFrame of estimates returned by a property (``fit.loadings``); calling it
    raises a TypeError saying that it is a property."""

    @property
    def _constructor(self):
        return pd.DataFrame

    @property
    def _constructor_sliced(self):
        return pd.Series

    def __call__(self, *args, **kwargs):
        _not_callable("DataFrame", self.__dict__.get("_semgalamm_accessor"))


def estimate_series(series: pd.Series, accessor: str) -> EstimateSeries:
    """``series`` as returned by the property ``accessor``."""
    out = EstimateSeries(series)
    object.__setattr__(out, "_semgalamm_accessor", accessor)
    return out


def estimate_frame(frame: pd.DataFrame | None, accessor: str) -> EstimateFrame | None:
    """``frame`` (or None) as returned by the property ``accessor``."""
    if frame is None:
        return None
    out = EstimateFrame(frame)
    object.__setattr__(out, "_semgalamm_accessor", accessor)
    return out
