"""lavaan's results of a wide-data SEM against lavaan 0.6.14 (tests/fixtures/lavaan):
fitMeasures() (1e-3 absolute or relative), standardizedSolution() (std.all 2e-3, SEs 2e-2),
modindices() (mi and epc 2e-3 relative, on the rows both have) and the summary's layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import UnsupportedError
from tests.conftest import FIXTURES, TESTS

CASES = sorted(p.stem for p in (FIXTURES / "lavaan").glob("*.json")
               if not p.stem.startswith("twolevel"))
ENTRY = {"cfa": semgalamm.cfa, "sem": semgalamm.sem, "growth": semgalamm.growth}
_FITS: dict = {}
_REFS: dict = {}


def reference(case: str) -> dict:
    if case not in _REFS:
        _REFS[case] = json.loads((FIXTURES / "lavaan" / f"{case}.json").read_text())
    return _REFS[case]


def case_data(ref: dict) -> pd.DataFrame:
    if ref["data"].endswith(".csv"):
        return pd.read_csv(TESTS / "data" / ref["data"].split("/")[-1])
    try:
        return semgalamm.load_dataset(ref["data"])
    except Exception:  # datasets not registered yet: the shipped CSV
        root = TESTS.parent / "semgalamm" / "datasets" / "data"
        return pd.read_csv(root / f"{ref['data']}.csv")


def fitted(case: str):
    if case not in _FITS:
        ref = reference(case)
        try:
            _FITS[case] = ENTRY[ref["function"]](ref["model"], case_data(ref), **ref["options"])
        except UnsupportedError as error:
            _FITS[case] = error
    fit = _FITS[case]
    if isinstance(fit, UnsupportedError):
        pytest.skip(str(fit))
    return fit


def close(ours: float, theirs: float, tol: float) -> bool:
    return abs(ours - theirs) <= tol * max(1.0, abs(theirs))


# --------------------------------------------------------------------------- fitMeasures


@pytest.mark.parametrize("case", CASES)
def test_fit_measures(case: str) -> None:
    ref = reference(case)
    measures = fitted(case).fit_measures()
    bad = {name: (measures[name], value) for name, value in ref["fit_measures"].items()
           if value is not None and not close(measures[name], value, 1e-3)}
    assert not bad, bad
    assert measures["ntotal"] == ref["ntotal"]
    assert 0 <= measures["baseline.pvalue"] <= 1


def test_fit_measures_names_and_identities() -> None:
    fit = fitted("hs_cfa")
    m = fit.fit_measures()
    for name in ("npar", "logl", "unrestricted.logl", "chisq", "df", "pvalue",
                 "baseline.chisq", "baseline.df", "baseline.pvalue", "cfi", "tli", "rmsea",
                 "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr", "aic", "bic",
                 "bic2", "ntotal"):
        assert name in m.index
    assert m["chisq"] == pytest.approx(2 * (m["unrestricted.logl"] - m["logl"]))
    assert m["aic"] == pytest.approx(-2 * m["logl"] + 2 * m["npar"])
    assert m["rmsea.ci.lower"] < m["rmsea"] < m["rmsea.ci.upper"]


def test_fiml_saturated_model_is_fitted() -> None:
    """With missing values the h1 model is a FIML fit: its moments differ from the
    available-case moments and its log-likelihood is lavaan's unrestricted.logl."""
    fit = fitted("hs_fiml")
    ref = reference("hs_fiml")
    h1 = fit.reference[0]
    assert h1.h1_iterations > 0
    assert h1.loglik_h1 == pytest.approx(ref["fit_measures"]["unrestricted.logl"], abs=1e-3)
    assert not np.allclose(h1.cov, fit.samples[0].cov)


# --------------------------------------------------------------------------- standardizedSolution


def _standardized_pairs(case: str) -> pd.DataFrame:
    ref = reference(case)
    fit = fitted(case)
    ours = fit.standardized_solution(constraints=True)
    theirs = pd.DataFrame(ref["standardized"])
    # lavaan writes equal labels as '.pN. == .pM.' rows; semgalamm shares one parameter
    theirs = theirs[~theirs["lhs"].str.startswith(".p")].copy()
    multi = "group" in ours
    key = ["lhs", "op"] + (["group"] if multi else [])
    if multi:
        theirs.loc[theirs["op"].isin([":=", "==", "<", ">"]), "group"] = 0
    theirs["rhs"] = np.where(theirs["op"] == ":=", "", theirs["rhs"])
    ours = ours.assign(rhs=np.where(ours["op"] == ":=", "", ours["rhs"]))
    merged = theirs.merge(ours, on=key + ["rhs"], how="left", suffixes=("_lavaan", ""),
                          validate="one_to_one")
    missing = merged[merged["est_std"].isna()]
    assert missing.empty, missing[key + ["rhs"]]
    return merged


@pytest.mark.parametrize("case", CASES)
def test_standardized_solution(case: str) -> None:
    merged = _standardized_pairs(case)
    est_err = (merged["est.std"] - merged["est_std"]).abs()
    se_lavaan = merged["se_lavaan"].astype(float)
    se_err = (se_lavaan - merged["se"]).abs() / np.maximum(se_lavaan, 1.0)
    assert est_err.max() < 2e-3, merged[est_err >= 2e-3]
    assert se_err.max() < 2e-2, merged[se_err >= 2e-2]


def test_standardized_columns_and_types() -> None:
    fit = fitted("poldem_labels")
    table = fit.standardized_solution()
    assert list(table.columns) == ["lhs", "op", "rhs", "label", "est_std", "se", "z", "pvalue",
                                   "ci_lower", "ci_upper"]
    assert not table["op"].isin(["==", "<", ">"]).any()
    lv = fit.standardized_solution(type="std.lv").set_index(["lhs", "op", "rhs"])
    raw = fit.parameter_estimates().set_index(["lhs", "op", "rhs"])
    # std.lv leaves observed residual variances on their scale
    assert lv.loc[("y1", "~~", "y1"), "est_std"] == pytest.approx(raw.loc[("y1", "~~", "y1"),
                                                                          "est"])
    groups = fitted("hs_group_loadings").standardized_solution()
    assert set(groups["group"]) == {1, 2}
    with pytest.raises(ValueError):
        fit.standardized_solution(type="std.everything")


# --------------------------------------------------------------------------- modindices


def _modindex_pairs(case: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(rows both have, lavaan's rows semgalamm has not, semgalamm's rows lavaan has not)."""
    ref = reference(case)
    ours = fitted(case).modification_indices()
    if "group" not in ours:
        ours = ours.assign(group=1)
    theirs = pd.DataFrame(ref["modindices"])
    key = ["lhs", "op", "rhs", "group"]
    merged = theirs.merge(ours, on=key, how="outer", suffixes=("_lavaan", ""), indicator=True)
    return (merged[merged["_merge"] == "both"], merged[merged["_merge"] == "left_only"],
            merged[merged["_merge"] == "right_only"])


@pytest.mark.parametrize("case", CASES)
def test_modification_indices(case: str) -> None:
    if not reference(case)["modindices"]:  # lavaan lists none for a saturated model
        assert fitted(case).modification_indices().empty
        return
    both, lavaan_only, ours_only = _modindex_pairs(case)
    assert len(both) > 0
    mi_err = (both["mi_lavaan"] - both["mi"]).abs() / np.maximum(both["mi_lavaan"], 1.0)
    epc_err = (both["epc_lavaan"] - both["epc"]).abs() / np.maximum(both["epc_lavaan"].abs(),
                                                                   1.0)
    assert mi_err.max() < 2e-3, both[mi_err >= 2e-3]
    assert epc_err.max() < 2e-3, both[epc_err >= 2e-3]
    for kind in ("lv", "all", "nox"):
        theirs = both[f"sepc.{kind}"]
        err = (theirs - both[f"sepc_{kind}"]).abs() / np.maximum(theirs.abs(), 1.0)
        assert err.max() < 2e-3, both[err >= 2e-3]
    # lavaan also lists the fixed covariates' own moments (and covariates regressed on each
    # other), whose indices are 0 by construction; every other candidate is produced
    assert (lavaan_only["mi_lavaan"] < 1e-8).all(), lavaan_only
    assert ours_only.empty, ours_only


def test_modification_indices_options() -> None:
    fit = fitted("hs_cfa")
    table = fit.modification_indices()
    assert list(table.columns) == ["lhs", "op", "rhs", "mi", "epc", "sepc_lv", "sepc_all",
                                   "sepc_nox"]
    assert table["mi"].is_monotonic_decreasing
    top = table.iloc[0]
    assert (top["lhs"], top["op"], top["rhs"]) == ("visual", "=~", "x9")
    assert top["mi"] == pytest.approx(36.411, abs=1e-2)
    big = fit.modification_indices(minimum_value=10)
    assert (big["mi"] >= 10).all() and len(big) < len(table)
    unsorted = fit.modification_indices(sort=False)
    assert len(unsorted) == len(table)
    assert set(fitted("hs_group_configural").modification_indices()["group"]) == {1, 2}


# --------------------------------------------------------------------------- summary


def test_summary_layout() -> None:
    fit = fitted("hs_cfa")
    text = str(fit.summary(fit_measures=True, standardized=True))
    lines = text.splitlines()
    assert lines[0].endswith(f"after {fit.estimate.iterations} iterations")
    expected = [
        "  Estimator                                         ML",
        "  Number of model parameters                        21",
        "  Number of observations                           301",
        "Model Test User Model:",
        "  Test statistic                                85.306",
        "  Degrees of freedom                                24",
        "  P-value (Chi-square)                           0.000",
        "Model Test Baseline Model:",
        "  Test statistic                               918.852",
        "User Model versus Baseline Model:",
        "  Comparative Fit Index (CFI)                    0.931",
        "  Tucker-Lewis Index (TLI)                       0.896",
        "Loglikelihood and Information Criteria:",
        "  Loglikelihood user model (H0)              -3737.745",
        "  Loglikelihood unrestricted model (H1)      -3695.092",
        "  Akaike (AIC)                                7517.490",
        "  Bayesian (BIC)                              7595.339",
        "  Sample-size adjusted Bayesian (SABIC)       7528.739",
        "Root Mean Square Error of Approximation:",
        "  RMSEA                                          0.092",
        "  90 Percent confidence interval - lower         0.071",
        "  90 Percent confidence interval - upper         0.114",
        "  P-value H_0: RMSEA <= 0.050                    0.001",
        "Standardized Root Mean Square Residual:",
        "  SRMR                                           0.065",
        "Parameter Estimates:",
        "  Standard errors                             Standard",
        "  Information                                 Expected",
        "Latent Variables:",
        "                   Estimate  Std.Err  z-value  P(>|z|)   Std.lv  Std.all",
        "  visual =~",
        "    x1                1.000                               0.900    0.772",
        "    x5                1.113    0.065   17.014    0.000    1.102    0.855",
        "Covariances:",
        "    textual           0.408    0.074    5.552    0.000    0.459    0.459",
        "Variances:",
        "   .x1                0.549    0.114    4.833    0.000    0.549    0.404",
        "    visual            0.809    0.145    5.564    0.000    1.000    1.000",
    ]
    for line in expected:
        assert line in lines, line
    assert lines.index("Latent Variables:") < lines.index("Covariances:") \
        < lines.index("Variances:")


def test_summary_without_options() -> None:
    text = str(fitted("hs_cfa").summary())
    assert "Model Test User Model:" in text
    assert "Model Test Baseline Model:" not in text
    assert "Std.all" not in text
    assert "Estimate  Std.Err  z-value  P(>|z|)" in text


def test_summary_groups_labels_constraints_and_html() -> None:
    groups = str(fitted("hs_group_loadings").summary(fit_measures=True))
    assert "Group 1 [Pasteur]:" in groups and "Group 2 [Grant-White]:" in groups
    assert groups.index("Group 1 [Pasteur]:") < groups.index("Group 2 [Grant-White]:")
    assert "  Number of observations per group:" in groups
    assert "Intercepts:" in groups
    assert "  Test statistic for each group:" in groups

    labels = str(fitted("poldem_labels").summary(standardized=True))
    assert "    y2         (a)    1.191    0.139" in labels
    assert "  dem65 ~" in labels and "  .y1 ~~" in labels and "   .y5 " in labels
    assert "Defined Parameters:" in labels
    assert "    indirect          1.273" in labels
    assert "  Number of equality constraints                     3" in labels

    summary = fitted("hs_constraints").summary()
    text = str(summary)
    assert "Constraints:" in text and "|Slack|" in text
    assert "    v3 - (0.9)" in text
    assert "   .x3        (v3)    0.900       NA" in text
    page = summary._repr_html_()
    assert page.startswith('<div class="semgalamm-summary">') and page.count("<table") >= 4
    assert "P(&gt;|z|)" in page and "P(>|z|)" not in page

    fiml = str(fitted("hs_fiml").summary())
    assert "  Number of missing patterns" in fiml
    assert "  Observed information based on                Hessian" in fiml
