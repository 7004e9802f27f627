"""Bad input gets a clear error naming the column and the problem, before any fitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, SpecError, UnsupportedError


@pytest.fixture
def sleep() -> pd.DataFrame:
    return semgalamm.load_dataset("sleepstudy")


def test_unknown_column_suggests_nearest(sleep):
    with pytest.raises(DataError,
                       match=r"'Dayz' is not a column of the data\. Did you mean 'Days'"):
        semgalamm.fit("Reaction ~ Dayz + (1 | Subject)", sleep)


def test_nan_in_used_column_names_column_and_rows(sleep):
    sleep.loc[[3, 7], "Days"] = np.nan
    with pytest.raises(DataError, match=r"Column 'Days' has 2 missing or infinite value\(s\) "
                                        r"\(rows 3, 7\)"):
        semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep)


def test_inf_in_response(sleep):
    sleep.loc[0, "Reaction"] = np.inf
    with pytest.raises(DataError, match="Column 'Reaction'"):
        semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep)


def test_grouping_factor_with_one_level(sleep):
    sleep["one"] = "a"
    with pytest.raises(DataError, match="grouping factor 'one' has only one level"):
        semgalamm.fit("Reaction ~ Days + (1 | one)", sleep)


def test_negative_count_for_poisson(sleep):
    sleep["count"] = 1
    sleep.loc[5, "count"] = -2
    with pytest.raises(DataError,
                       match=r"1 poisson row\(s\) \(index 5\).*non-negative integer"):
        semgalamm.fit("count ~ Days + (1 | Subject)", sleep, family="poisson")


def test_binomial_response_outside_unit_interval(sleep):
    sleep["hit"] = 0
    sleep.loc[2, "hit"] = 2
    with pytest.raises(DataError, match=r"binomial row\(s\) \(index 2\).*between 0 and the "
                                        "number of trials"):
        semgalamm.fit("hit ~ Days + (1 | Subject)", sleep, family="binomial")


def test_binomial_successes_above_trials():
    cbpp = semgalamm.load_dataset("cbpp")
    with pytest.raises(DataError, match="binomial row"):
        semgalamm.fit("cbind(incidence, size - incidence - 30) ~ period + (1 | herd)", cbpp,
                      family="binomial")


def test_empty_data_frame(sleep):
    with pytest.raises(DataError, match=r"empty \(0 rows\)"):
        semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep.iloc[:0])


def test_unknown_family(sleep):
    with pytest.raises(DataError, match='Unknown family "tweedie". Use one of'):
        semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep, family="tweedie")


def test_data_must_be_a_data_frame():
    with pytest.raises(DataError, match="pandas DataFrame"):
        semgalamm.fit("y ~ x + (1 | g)", {"y": [1, 2]})


def test_reml_refused_for_glmm():
    cbpp = semgalamm.load_dataset("cbpp")
    with pytest.raises(SpecError, match="REML is available for Gaussian models"):
        semgalamm.fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                      family="binomial", reml=True)


# ------------------------------------------------------------ identification and spec checks
KYPS_MEASURES = "ms =~ 1*time[1] + time[2] + time[3] + time[4]\n"


def test_latent_without_level():
    kyps = semgalamm.load_dataset("KYPSsim")
    with pytest.raises(SpecError, match=r"latent variable 'ms' has no level: .*'ms ~ \(1 \| id\)'"):
        semgalamm.fit(KYPS_MEASURES + "esteem ~ time + (1 | sid)", kyps)


def test_latent_with_all_loadings_free():
    kyps = semgalamm.load_dataset("KYPSsim")
    with pytest.raises(SpecError, match="'ms' has no fixed loading and a free variance"):
        semgalamm.fit("ms =~ NA*time[1] + time[2]; ms ~ (1 | mid); esteem ~ time", kyps)


def test_indicator_level_that_does_not_exist():
    kyps = semgalamm.load_dataset("KYPSsim")
    with pytest.raises(SpecError, match=r"names level '5', but column 'time' has levels 1, 2, 3, "
                                        "4"):
        semgalamm.fit("ms =~ 1*time[1] + time[5]; ms ~ (1 | mid); esteem ~ time", kyps)


def test_no_observed_response():
    kyps = semgalamm.load_dataset("KYPSsim")
    with pytest.raises(SpecError, match="no regression of an observed response"):
        semgalamm.fit("ms =~ 1*time[1] + time[2]; ms ~ (1 | mid)", kyps)


@pytest.mark.parametrize("model, construct", [
    ("f =~ 1*item[1] + item[2]; f ~ (1|g); y ~ item; a := 2*b", "Defined parameters"),
    ("y ~ x + (1 | g); y | t1 + t2", "operator '|'"),
    ("y ~ x + (1 | g); f <~ x1 + x2", "operator '<~'"),
    ("visual =~ x1 + x2 + x3; visual ~ (1|g); y ~ 1", "wide data"),
    ("y ~ te(x, z) + (1 | g)", "uses te()"),
])
def test_constructs_not_estimable_yet_raise_unsupported(model, construct):
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "x": [1.0, 2.0, 3.0, 4.0],
                         "g": ["a", "a", "b", "b"], "item": [1, 2, 1, 2],
                         "x1": 1.0, "x2": 2.0, "x3": 3.0})
    with pytest.raises(UnsupportedError, match=construct):
        semgalamm.fit(model, data)


# ------------------------------------------------------------ latent levels (spec stage)
def _blocks(model: str):
    from semgalamm.spec.build import build_spec
    from semgalamm.syntax import parse

    return build_spec(parse(model)).random


def test_latents_at_the_same_level_share_one_correlated_block():
    blocks = _blocks("f1 =~ 1*i[1] + i[2]; f2 =~ 1*i[3] + i[4]; f1 ~ (1|id); f2 ~ (1|id); y ~ i")
    assert [(b.group, [p[1] for p in b.parts]) for b in blocks] == [(("id",), ["f1", "f2"])]


def test_zero_covariance_splits_the_block():
    blocks = _blocks("f1 =~ 1*i[1] + i[2]; f2 =~ 1*i[3] + i[4]; f1 ~ (1|id); f2 ~ (1|id); "
                     "f1 ~~ 0*f2; y ~ i")
    assert [[p[1] for p in b.parts] for b in blocks] == [["f1"], ["f2"]]


def test_latent_random_slope_and_nested_levels():
    blocks = _blocks("f =~ 1*i[1] + i[2]; f ~ (1 + time | id/tp); y ~ i")
    assert [(b.group, b.parts) for b in blocks] == [
        (("id",), (("1 + time", "f"),)), (("id", "tp"), (("1 + time", "f"),))]


@pytest.mark.parametrize("statement, message", [
    ("y ~~ (1 | a/b)", r"one grouping factor; nesting '/'"),
    ("y ~~ (x | item)", r"'\(1 \| group\)', or '\(0 \+ indicator \| group\)'"),
    ("y ~~ (1 | a) + (1 | b)", r"take one term '\(1 \| group\)'"),
    ("z ~~ (1 | item)", r"belong to the observed response; write 'y ~~ \(1 \| item\)'"),
    ("y ~~ (1 | item); y ~~ (1 | tp)", r"given twice \(line 1, column 36\)"),
])
def test_residual_variance_group_errors(statement, message):
    with pytest.raises(SpecError, match=message):
        semgalamm.fit(f"y ~ x + (1 | id); {statement}", pd.DataFrame())
