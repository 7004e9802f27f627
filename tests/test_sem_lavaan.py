"""Wide-data SEMs against lavaan 0.6.14 (tests/reference/lavaan_fits.R writes the fixtures):
log-likelihood 1e-3, every free parameter 1e-3 relative, SEs 2e-2 relative, npar exact."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, SpecError, UnsupportedError
from tests.conftest import FIXTURES, TESTS

CASES = sorted(p.stem for p in (FIXTURES / "lavaan").glob("*.json")
               if not p.stem.startswith("twolevel"))
ENTRY = {"cfa": semgalamm.cfa, "sem": semgalamm.sem, "growth": semgalamm.growth}


def reference(case: str) -> dict:
    return json.loads((FIXTURES / "lavaan" / f"{case}.json").read_text())


def case_data(ref: dict) -> pd.DataFrame:
    if ref["data"].endswith(".csv"):
        return pd.read_csv(TESTS / "data" / ref["data"].split("/")[-1])
    return semgalamm.load_dataset(ref["data"])


@cache
def fitted(case: str):
    ref = reference(case)
    return ENTRY[ref["function"]](ref["model"], case_data(ref), **ref["options"])


def matched(case: str) -> pd.DataFrame:
    ref = reference(case)
    ours = fitted(case).parameter_estimates()
    theirs = pd.DataFrame(ref["parameter_estimates"])
    theirs = theirs[theirs.op.isin(["=~", "~", "~~", "~1", ":="])]
    key = ["lhs", "op", "rhs"] + (["group"] if "group" in ours else [])
    merged = theirs.merge(ours, on=key, suffixes=("_lavaan", ""), how="left",
                          validate="one_to_one")
    assert merged["est"].notna().all(), merged[merged["est"].isna()][key]
    return merged


@pytest.mark.parametrize("case", CASES)
def test_loglik_and_npar(case: str) -> None:
    ref = reference(case)
    fit = fitted(case)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logl"], abs=1e-3)
    assert fit.npar == ref["npar"]


@pytest.mark.parametrize("case", CASES)
def test_estimates(case: str) -> None:
    merged = matched(case)
    scale = np.maximum(np.abs(merged["est_lavaan"]), 1e-2)  # relative, or absolute near 0
    np.testing.assert_array_less(np.abs(merged["est"] - merged["est_lavaan"]), 1e-3 * scale)


@pytest.mark.parametrize("case", CASES)
def test_standard_errors(case: str) -> None:
    merged = matched(case)
    theirs = merged["se_lavaan"].astype(float)
    free = theirs > 0
    np.testing.assert_allclose(merged.loc[free, "se"], theirs[free], rtol=2e-2)
    # an inequality held at its bound has no SE, as lavaan reports it
    assert merged.loc[theirs.isna(), "se"].isna().all()


def test_loglik_with_and_without_covariates() -> None:
    """lavaan's logl leaves out the fixed covariates' marginal part; the joint adds it."""
    ref = reference("hs_covariates")
    fit = fitted("hs_covariates")
    assert fit.loglik_joint == pytest.approx(ref["logl_joint"], abs=1e-3)


def test_user_data_unchanged() -> None:
    data = semgalamm.load_dataset("HolzingerSwineford1939")
    before = data.copy()
    semgalamm.cfa("visual =~ x1 + x2 + x3", data, group="school")
    pd.testing.assert_frame_equal(data, before)


HS = semgalamm.load_dataset("HolzingerSwineford1939")


@pytest.mark.parametrize(("model", "options", "error", "message"), [
    ("visual =~ NA*x1 + x2 + x3", {}, SpecError,
     r"'visual' has no fixed loading and a free variance.*std_lv=True"),
    ("visual =~ x1\nvisual ~~ visual", {}, SpecError,
     r"'visual' has one indicator \('x1'\) with a free residual variance"),
    ("visual =~ x1 + x2 + x33", {}, SpecError, r"'x33' .* Did you mean 'x3'\?"),
    ("Visual =~ x1 + x2 + x3\nvisual ~ ageyr", {}, SpecError,
     r"'visual' .*neither a column .* Did you mean 'Visual'\?"),
    ("level: 1\nf =~ x1 + x2 + x3\nlevel: 2\nf =~ x1 + x2 + x3", {}, SpecError,
     r"no cluster variable. Pass cluster="),
    ("f =~ x1 + x2 + item[3]", {}, SpecError, r"long-data indicator.*Do not mix"),
    ("visual =~ x1 + x2 + x3", {"group": "scool"}, DataError,
     r"group='scool' is not a column.*Did you mean 'school'\?"),
    ("f1 =~ x1 + x2 + x3\nf2 =~ x4 + x5 + x6\nf1 ~ 1*f2\nf2 ~ 1*f1", {}, SpecError,
     r"I - B is not invertible"),
    ("visual =~ x1 + x2 + x3", {"group_equal": ["loading"]}, SpecError,
     r"Did you mean 'loadings'\?"),
    ("visual =~ x1 + x2 + x3\nx1 ~ s(ageyr)", {}, UnsupportedError, r"long-data models"),
    ("visual =~ x1 + a*x2 + x3\nd := a*bb", {}, SpecError, r"'bb', which is not a parameter"),
    ("visual =~ x1 + x2 + x3", {"missing": "pairwise"}, SpecError, r"missing='pairwise'"),
    ("visual =~ x1 + x2 + x3", {"stdlv": True}, SpecError,
     r"Unknown option 'stdlv'. Did you mean 'std_lv'\?"),
    ("visual =~ x1 + x2 + x3", {"estimator": "MLR"}, UnsupportedError,
     r"estimator='MLR' is not available"),
])
def test_errors(model, options, error, message) -> None:
    with pytest.raises(error, match=message):
        semgalamm.sem(model, HS, **options)


def test_too_few_rows_in_a_group() -> None:
    small = HS.iloc[list(range(5)) + list(range(200, 300))]
    with pytest.raises(DataError, match=r"5 complete rows in group 'Pasteur'"):
        semgalamm.cfa("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6", small, group="school")

