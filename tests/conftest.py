"""Shared test helpers: reference fixtures, test datasets with R's factor levels, and a
session-wide cache of fitted models (each reference model is fitted once)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pandas as pd

TESTS = Path(__file__).parent
DATA = TESTS / "data"
FIXTURES = TESTS / "fixtures"


@cache
def fixture(name: str) -> dict:
    """A JSON fixture from tests/fixtures (reference figures from R)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def load_csv(name: str, factors: dict[str, list[str] | None] | None = None) -> pd.DataFrame:
    """A CSV from tests/data with the given columns as categoricals (None: sorted levels,
    numerically when the labels are numbers)."""
    frame = pd.read_csv(DATA / name)
    for column, levels in (factors or {}).items():
        values = frame[column]
        if levels is None:
            levels = [str(v) for v in sorted(values.unique())]
        frame[column] = pd.Categorical(values.astype(str), categories=levels)
    return frame


@cache
def cached_fit(model: str, data_name: str, family: str = "gaussian",
               factors: tuple[tuple[str, tuple[str, ...] | None], ...] = (), **options):
    """Fit once per session."""
    import semgalamm

    data = load_csv(data_name, {k: (list(v) if v else None) for k, v in factors})
    return semgalamm.fit(model, data, family=family, **options)
