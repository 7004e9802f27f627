"""The bordered block-diagonal factorization of H (``laplace/bordered.py``) gives the numbers
of CHOLMOD's: log|H|, solves, the selected inverse on every row's columns, and the deviance
and exact gradient of whole models (crossed, loadings, smooths, B, every family)."""

from __future__ import annotations

import numpy as np
import pytest

from semgalamm.laplace import bordered, cholmod
from semgalamm.laplace.cholmod import RandomEffectsSystem
from tests.test_gradient import CASES, laplace_model, random_point

pytest.importorskip("numba")

SCALING = """
trait1 =~ 1*item[a1] + item[a2] + item[a3] + item[a4]
trait2 =~ 1*item[b1] + item[b2] + item[b3] + item[b4]
trait1 ~ (1 | person); trait2 ~ (1 | person)
y ~ 0 + item + (1 | rater) + (1 | site)
"""


def scaling_data(persons: int = 300, seed: int = 3):
    """Persons x 8 items with loadings; a rater and a site per answer, crossed with persons."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    person = np.repeat(np.arange(persons), 8)
    item = np.tile(np.arange(8), persons)
    traits = rng.normal(size=(persons, 2))
    loading = np.array([1.0, 0.8, 1.2, 0.9, 1.0, 1.1, 0.7, 0.9])
    rater, site = rng.integers(0, 30, person.size), rng.integers(0, 5, person.size)
    y = (loading[item] * traits[person, (item >= 4).astype(int)]
         + rng.normal(0, 0.5, 30)[rater] + rng.normal(0, 0.3, 5)[site]
         + rng.normal(0, 0.7, person.size))
    return pd.DataFrame({"y": y, "item": ["ab"[i // 4] + str(i % 4 + 1) for i in item],
                         "person": person.astype(str), "rater": rater.astype(str),
                         "site": site.astype(str)})


def _force(monkeypatch, on: bool) -> None:
    """Factor every model's H by bordered.py (on) or by CHOLMOD (off)."""
    monkeypatch.setattr(bordered, "MIN_COLUMNS", 0)
    monkeypatch.setattr(bordered, "MAX_BORDER", 10**6)
    monkeypatch.setattr(cholmod, "bordered_pattern",
                        bordered.bordered_pattern if on else lambda design, columns: None)


def _systems(monkeypatch, design):
    _force(monkeypatch, True)
    fast = RandomEffectsSystem(design)
    _force(monkeypatch, False)
    reference = RandomEffectsSystem(design)
    assert fast._bordered is not None and reference._bordered is None
    return fast, reference


def test_factor_solve_and_selected_inverse_equal_cholmod(monkeypatch):
    design = laplace_model(SCALING, scaling_data()).design
    fast, reference = _systems(monkeypatch, design)
    pattern = fast._bordered.pattern
    assert (pattern.k, pattern.r) == (2, 35)  # the persons lead; raters and sites border
    rng = np.random.default_rng(0)
    theta = rng.uniform(0.5, 1.5, sum(b.n_theta for b in design.blocks))
    ell = design.row_loadings(rng.uniform(0.6, 1.3, design.loadings.lambda_start.size))
    values = reference.values(theta, ell)
    d = rng.uniform(0.5, 2.0, design.n)
    assert fast.factorize(values, d) and reference.factorize(values, d)
    assert fast.logdet() == pytest.approx(reference.logdet(), rel=1e-12)
    b, block = rng.normal(size=design.q), rng.normal(size=(design.q, 3))
    np.testing.assert_allclose(fast.solve(b), reference.solve(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.solve(block), reference.solve(block), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(fast.clique_inverse_times(values),
                               reference.clique_inverse_times(values), rtol=1e-10, atol=1e-12)


TWO_TERMS = ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject) + (1 | Night)",
             lambda: CASES["slopes_ml"][1]().assign(Night=lambda d: (d.Days % 3).astype(str)),
             "gaussian", {})


def test_two_terms_of_one_factor_lead_together(monkeypatch):
    model_string, data, family, options = TWO_TERMS
    design = laplace_model(model_string, data()).design
    fast, _ = _systems(monkeypatch, design)
    pattern = fast._bordered.pattern
    assert (pattern.k, pattern.r) == (2, 3)  # (1 | Subject) and (0 + Days | Subject); Night


def test_one_grouping_factor_is_block_diagonal(monkeypatch):
    """Without a border H is factored by numpy (numba not needed), with CHOLMOD's numbers."""
    model_string, data, family, options = CASES["slopes_ml"]
    design = laplace_model(model_string, data()).design
    fast, reference = _systems(monkeypatch, design)
    assert isinstance(fast._bordered, bordered.BlockDiagonalFactor)
    rng = np.random.default_rng(4)
    values = reference.values(rng.uniform(0.2, 1.0, 3), np.ones(0))
    d = rng.uniform(0.5, 2.0, design.n)
    assert fast.factorize(values, d) and reference.factorize(values, d)
    assert fast.logdet() == pytest.approx(reference.logdet(), rel=1e-12)
    b = rng.normal(size=(design.q, 2))
    np.testing.assert_allclose(fast.solve(b), reference.solve(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fast.clique_inverse_times(values),
                               reference.clique_inverse_times(values), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", ["two_terms", "crossed", "slopes_ml", "slopes_reml",
                                  "loadings_crossed", "binomial_crossed", "B_across_levels",
                                  "mixed_loadings", "smooth", "smooth_on_latent",
                                  "negative_binomial", "ordinal_loadings", "nested_reml",
                                  "binomial_loadings_nested", "heteroscedastic"])
def test_deviance_and_gradient_equal_cholmod(monkeypatch, case):
    model_string, data, family, options = TWO_TERMS if case == "two_terms" else CASES[case]
    frame = data()
    _force(monkeypatch, True)
    fast = laplace_model(model_string, frame, family, **options)
    _force(monkeypatch, False)
    reference = laplace_model(model_string, frame, family, **options)
    x = random_point(reference, 1)
    value, grad = fast.value_and_gradient(x)
    expected_value, expected_grad = reference.value_and_gradient(x)
    assert value == pytest.approx(expected_value, rel=1e-10)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-7,
                               atol=1e-9 * np.max(np.abs(expected_grad)))


def test_the_leading_factor_and_when_cholmod_is_kept(monkeypatch):
    design = laplace_model(SCALING, scaling_data()).design
    columns = RandomEffectsSystem(design).columns
    monkeypatch.setattr(bordered, "MIN_COLUMNS", 0)
    monkeypatch.setattr(bordered, "MAX_BORDER", 35)
    pattern = bordered.bordered_pattern(design, columns)
    assert pattern is not None
    assert pattern.lead_columns.shape == (300, 2)
    offsets = np.cumsum([0] + [b.k * b.n_levels for b in design.blocks])
    person = [j for j, b in enumerate(design.blocks) if b.group == "person"]
    assert set(pattern.lead_columns.ravel()) == set(range(offsets[person[0]],
                                                          offsets[person[0] + 1]))
    monkeypatch.setattr(bordered, "MAX_BORDER", 34)  # 35 other columns: too many
    assert bordered.bordered_pattern(design, columns) is None
    monkeypatch.setattr(bordered, "MAX_BORDER", 400)
    monkeypatch.setattr(bordered, "MIN_COLUMNS", design.q + 1)  # small: CHOLMOD
    assert bordered.bordered_pattern(design, columns) is None


def test_without_numba_a_border_is_left_to_cholmod(monkeypatch):
    """The bordered kernels need numba; the block-diagonal factor does not."""
    monkeypatch.setattr(bordered, "HAS_NUMBA", False)
    monkeypatch.setattr(bordered, "MIN_COLUMNS", 0)
    crossed = laplace_model(SCALING, scaling_data()).design
    assert bordered.bordered_pattern(crossed, RandomEffectsSystem(crossed).columns) is None
    model_string, data, _, _ = CASES["slopes_ml"]
    single = laplace_model(model_string, data()).design
    assert isinstance(RandomEffectsSystem(single)._bordered, bordered.BlockDiagonalFactor)
