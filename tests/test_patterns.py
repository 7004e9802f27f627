"""The profiled Gaussian fit by patterns of levels (``laplace/patterns.py``) gives the general
engine's deviance, gradient and fits: balanced and unbalanced long data, loadings, variance
groups, B, smooths, ML and REML; and it stands aside where it does not apply."""

from __future__ import annotations

import numpy as np
import pytest

import semgalamm
from semgalamm.laplace import objective
from tests.test_gradient import CASES, laplace_model, random_point

HS3 = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


def _general(monkeypatch) -> None:
    monkeypatch.setattr(objective, "level_patterns", lambda *args: None)


MODELS = {
    "holzinger": lambda: semgalamm.fit(
        HS3, semgalamm.load_dataset("HolzingerSwineford1939"),
        family={"x1": "gaussian"}).laplace,
    "holzinger_missing": lambda: semgalamm.fit(
        HS3, _with_missing(semgalamm.load_dataset("HolzingerSwineford1939")),
        family={"x1": "gaussian"}).laplace,
    **{case: (lambda case=case: laplace_model(CASES[case][0], CASES[case][1](),
                                              CASES[case][2], **CASES[case][3]))
       for case in ("slopes_ml", "slopes_reml", "uncorrelated_reml", "B_same_level",
                    "smooth")},
}


def _with_missing(data):
    """A few answers missing: levels of several patterns."""
    data = data.copy()
    data.loc[data.index[:10], "x2"] = np.nan
    data.loc[data.index[5:12], "x9"] = np.nan
    return data


@pytest.mark.parametrize("name", sorted(MODELS))
def test_deviance_and_gradient_equal_the_general_engine(monkeypatch, name):
    model = MODELS[name]()
    assert model.objective._patterns is not None
    x = random_point(model, 3)
    value, grad = model.value_and_gradient(x)
    _general(monkeypatch)
    model.objective.__dict__.pop("_patterns")
    assert model.objective._patterns is None
    expected_value, expected_grad = model.value_and_gradient(x)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9,
                               atol=1e-10 * np.max(np.abs(expected_grad)))


def test_missing_answers_make_several_patterns():
    patterns = MODELS["holzinger_missing"]().objective._patterns
    # persons 1-5 without x2, 6-10 without x2 and x9, 11-12 without x9, the others complete
    shapes = sorted(rows.shape for rows in patterns.rows)
    assert shapes == [(2, 8), (5, 7), (5, 8), (289, 9)]


def test_fits_equal_the_general_engine(monkeypatch):
    data = semgalamm.load_dataset("HolzingerSwineford1939")
    fast = semgalamm.fit(HS3, data, family={"x1": "gaussian"})
    _general(monkeypatch)
    general = semgalamm.fit(HS3, data, family={"x1": "gaussian"})
    assert general.laplace.objective._patterns is None
    assert fast.loglik == pytest.approx(general.loglik, abs=1e-8)
    np.testing.assert_allclose(fast.laplace.layout.unpack(fast.optimizer.x)["lambda"],
                               general.laplace.layout.unpack(general.optimizer.x)["lambda"],
                               rtol=1e-5)


def test_not_used_for_crossed_factors_or_many_patterns(monkeypatch):
    for case in ("crossed", "nested_reml"):
        assert laplace_model(CASES[case][0], CASES[case][1](), CASES[case][2],
                             **CASES[case][3]).objective._patterns is None
    from semgalamm.laplace import patterns
    monkeypatch.setattr(patterns, "MAX_PATTERNS", 2)
    assert MODELS["holzinger_missing"]().objective._patterns is None
