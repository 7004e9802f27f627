"""``Family.weight_is_observed`` (the engine then skips factorizing H with the observed
weights for the exact gradient) holds exactly for the families whose Laplace weight equals
-d2l/dnu2 at random rows, and fails for the others."""

from __future__ import annotations

import numpy as np
import pytest

from semgalamm import families as F
from tests.test_families_contract import CASES, _rows


@pytest.mark.parametrize("family", CASES, ids=lambda f: f"{f.name}-{f.link}-{f.laplace_weight}")
def test_weight_is_observed_iff_the_weights_agree(family):
    y, nu, w, trials, psi = _rows(family, np.random.default_rng(17))
    t = family.terms(y, nu, w, trials, psi)
    agree = np.allclose(t.observed_weight, t.weight, rtol=1e-10, atol=0.0)
    assert family.weight_is_observed == agree


def test_row_families_need_every_family():
    codes = np.zeros(4, dtype=np.intp)
    assert F.RowFamilies((F.BINOMIAL, F.GAUSSIAN), codes).weight_is_observed
    assert not F.RowFamilies((F.BINOMIAL, F.binomial("probit")), codes).weight_is_observed
