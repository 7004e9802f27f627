"""One consistent result API (docs/results.md): properties hold numbers, flags and named
estimates, methods compute on request; FitResult and SemFit share names where they mean the
same; misuse raises a semgalamm error that says what to do; semgalamm.anova() of nested SEMs
equals lavaan 0.6.14's anova() (tests/reference/lavaan_anova.R)."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import re
import sys
import warnings
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, FitWarning, SemgalammError, SpecError
from semgalamm.results.checks import EstimateFrame, EstimateSeries, MissingDependencyError
from semgalamm.results.summary import SummaryText
from tests.conftest import TESTS, fixture
from tests.test_structural_long import SCHOOLS

DOC = Path(__file__).parent.parent / "docs" / "results.md"
HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


@cache
def sleep_fit():
    return semgalamm.fit("Reaction ~ Days + (Days | Subject)",
                         semgalamm.load_dataset("sleepstudy"))


@cache
def smooth_fit():
    """Two smooths, s(x) and s(z), and a random intercept."""
    rng = np.random.default_rng(3)
    n = 200
    data = pd.DataFrame({"x": rng.uniform(size=n), "z": rng.uniform(size=n),
                         "g": np.repeat([f"g{i}" for i in range(20)], n // 20)})
    data["y"] = (np.sin(2 * np.pi * data.x) + data.z ** 2 + rng.normal(0, 0.3, n)
                 + np.repeat(rng.normal(0, 0.5, 20), n // 20))
    return semgalamm.fit("y ~ s(x, k = 6) + s(z, k = 5) + (1 | g)", data)


@cache
def latent_fit():
    """Two latents at two levels, one regressed on the other (loadings and structural)."""
    rng = np.random.default_rng(1)
    schools, pupils = 20, 5
    loading = {"c1": 1.0, "c2": 0.8, "c3": 1.2, "a1": 1.0, "a2": 0.8, "a3": 1.2}
    climate = rng.normal(size=schools)
    ability = 0.5 * np.repeat(climate, pupils) + rng.normal(size=schools * pupils)
    items = np.tile(list(loading), schools * pupils)
    pupil = np.repeat(np.arange(schools * pupils), len(loading))
    school = pupil // pupils
    eta = np.where(np.char.startswith(items.astype(str), "c"), climate[school], ability[pupil])
    y = np.array([loading[i] for i in items]) * eta + rng.normal(0, 0.6, items.size)
    data = pd.DataFrame({"y": y, "item": items, "school": school, "pupil": pupil})
    return semgalamm.fit(SCHOOLS, data)


@cache
def hs_data() -> pd.DataFrame:
    return semgalamm.load_dataset("HolzingerSwineford1939")


@cache
def cfa_fit():
    return semgalamm.cfa(HS, hs_data())


# --------------------------------------------------------------------------- the rule

#: Attributes that are the fit's machinery, not results (documented in the class docstrings).
INTERNAL = {
    semgalamm.FitResult: {"syntax", "spec", "laplace", "optimizer", "state", "design",
                          "from_fit", "df"},
    semgalamm.SemFit: {"syntax", "table", "ram", "samples", "estimate", "vcov_free",
                       "loglik_function", "extra", "row_estimates", "row_se", "implied",
                       "reference"},
}


def documented_accessors(section: str) -> dict[str, str]:
    """accessor name -> "property"/"method" from the table under ``## section``."""
    text = DOC.read_text()
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    out = {}
    for kind, cell in re.findall(r"^\| (property|method) \| (.*?) \|", body, flags=re.M):
        for name in re.findall(r"`([a-z_]+)", cell):
            out[name] = kind
    return out


def actual_kind(cls: type, name: str) -> str:
    attribute = inspect.getattr_static(cls, name, None)
    if isinstance(attribute, (property, cached_property)):
        return "property"
    if name in {f.name for f in dataclasses.fields(cls)}:
        return "property"
    if inspect.isfunction(attribute):
        return "method"
    return f"other ({type(attribute).__name__})"


@pytest.mark.parametrize("cls, section", [(semgalamm.FitResult, "FitResult (long data)"),
                                          (semgalamm.SemFit, "SemFit (wide data)")])
def test_every_accessor_follows_the_documented_rule(cls, section):
    documented = documented_accessors(section)
    assert documented
    for name, kind in documented.items():
        assert actual_kind(cls, name) == kind, f"{cls.__name__}.{name} should be a {kind}"
    public = {n for n in dir(cls) if not n.startswith("_")}
    public |= {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
    undocumented = public - set(documented) - INTERNAL[cls]
    assert not undocumented, f"{cls.__name__}: document {sorted(undocumented)}"


def test_shared_names_mean_the_same_on_both_results():
    fit, cfa = sleep_fit(), cfa_fit()
    shared = ["loglik", "aic", "bic", "nobs", "npar", "converged", "vcov", "confint", "summary"]
    for name in shared:
        assert actual_kind(type(fit), name) == actual_kind(type(cfa), name), name
    for result in (fit, cfa):
        assert isinstance(result.nobs, int) and isinstance(result.npar, int)
        assert isinstance(result.converged, bool)
        assert result.aic == pytest.approx(-2 * result.loglik + 2 * result.npar, abs=1e-9)
        assert result.bic == pytest.approx(-2 * result.loglik + np.log(result.nobs)
                                           * result.npar, abs=1e-9)
        intervals = result.confint(0.9)
        assert list(intervals.columns) == ["estimate", "5 %", "95 %"]
        assert list(intervals.index) == list(result.vcov().index)
        assert (intervals["5 %"] < intervals["estimate"]).all()
        text = result.summary()
        assert isinstance(text, SummaryText) and isinstance(text, str)
        assert repr(text) == str(text) == text.text  # shows as text at the prompt
        assert "<table" in text._repr_html_()  # notebooks show HTML tables
        assert pickle.loads(pickle.dumps(text)) == text
    # FitResult as lme4: logLik(fm1, REML = FALSE) = -875.9697 on df = 6
    assert fit.npar == 6 and fit.loglik == pytest.approx(-875.9697, abs=1e-3)


@pytest.mark.parametrize("case", ["hs_cfa", "hs_group_loadings", "hs_fiml", "hs_covariates",
                                  "twolevel"])
def test_semfit_aic_bic_are_lavaans(case):
    ref = fixture(f"lavaan/{case}")
    data = (pd.read_csv(TESTS / "data" / ref["data"].split("/")[-1])
            if ref["data"].endswith(".csv") else semgalamm.load_dataset(ref["data"]))
    fit = getattr(semgalamm, ref["function"])(ref["model"], data, **ref["options"])
    assert fit.aic == pytest.approx(ref["fit_measures"]["aic"], abs=1e-4)
    assert fit.bic == pytest.approx(ref["fit_measures"]["bic"], abs=1e-4)
    measures = fit.fit_measures()
    assert fit.aic == pytest.approx(measures["aic"], abs=1e-8)
    assert fit.bic == pytest.approx(measures["bic"], abs=1e-8)


def test_semfit_confint_matches_parameter_estimates():
    cfa = cfa_fit()
    table = cfa.parameter_estimates(level=0.9)
    free = table[table.se > 0].reset_index(drop=True)
    intervals = cfa.confint(level=0.9)
    np.testing.assert_allclose(intervals["estimate"], free["est"], atol=1e-12)
    np.testing.assert_allclose(intervals["5 %"], free["ci_lower"], atol=1e-12)
    np.testing.assert_allclose(intervals["95 %"], free["ci_upper"], atol=1e-12)


def test_sem_summary_is_text_with_its_parts():
    summary = cfa_fit().summary(fit_measures=True)
    assert isinstance(summary, SummaryText)
    assert summary.measures["cfi"] == pytest.approx(cfa_fit().fit_measures()["cfi"])
    assert summary.fit is cfa_fit() and type(summary.text) is str
    assert "Comparative Fit Index (CFI)" in summary


# --------------------------------------------------------------------------- wrong calls


@pytest.mark.parametrize("name, kind", [("fixef", "Series"), ("fixef_se", "Series"),
                                        ("theta", "Series")])
def test_calling_a_series_property_says_it_is_a_property(name, kind):
    value = getattr(sleep_fit(), name)
    assert isinstance(value, EstimateSeries) and isinstance(value, pd.Series)
    with pytest.raises(TypeError, match=rf"fit\.{name} is a property \(a pandas {kind}\), "
                                        rf"not a method: write `fit\.{name}` without "
                                        "parentheses"):
        value()


@pytest.mark.parametrize("name", ["loadings", "structural"])
def test_calling_a_table_property_says_it_is_a_property(name):
    value = getattr(latent_fit(), name)
    assert isinstance(value, EstimateFrame)
    with pytest.raises(TypeError, match=rf"fit\.{name} is a property \(a pandas DataFrame\)"):
        value()


def test_estimate_properties_are_plain_pandas_for_everything_else():
    fixef = sleep_fit().fixef
    for derived in (fixef + 1, fixef.copy(), fixef.loc[["Days"]], fixef.round(2),
                    fixef.rename("beta"), np.exp(fixef)):
        assert type(derived) is pd.Series
    assert type(fixef.to_frame()) is pd.DataFrame
    pd.testing.assert_series_equal(fixef.copy(), pd.Series(
        fixef.to_numpy(), index=["(Intercept)", "Days"], name="estimate"))
    loadings = latent_fit().loadings
    assert type(loadings["climate"]) is pd.Series and type(loadings.copy()) is pd.DataFrame
    assert type(pickle.loads(pickle.dumps(fixef))) in (pd.Series, EstimateSeries)
    assert sleep_fit().loadings is None and sleep_fit().structural is None


def test_df_is_a_deprecated_spelling_of_npar():
    fit = sleep_fit()
    with pytest.warns(DeprecationWarning, match="use fit.npar"):
        assert fit.df == fit.npar == 6


# --------------------------------------------------------------------------- levels


@pytest.mark.parametrize("call", [
    lambda: sleep_fit().confint(95),
    lambda: cfa_fit().confint(95),
    lambda: cfa_fit().parameter_estimates(level=95),
    lambda: cfa_fit().standardized_solution(level=95),
    lambda: smooth_fit().plot_smooth("s(x)", level=95),
])
def test_level_given_as_a_percentage_suggests_the_proportion(call):
    with pytest.raises(SpecError, match=r"level must be between 0 and 1 \(did you mean "
                                        r"0\.95\?\)"):
        call()


@pytest.mark.parametrize("level, message", [
    (0, "level must be between 0 and 1; got 0"),
    (1, "level must be between 0 and 1; got 1"),
    (-0.95, "between 0 and 1; got -0.95"),
    (float("nan"), "between 0 and 1; got nan"),
    ("0.95", "a number between 0 and 1 such as 0.95, not '0.95'"),
    (True, "not True"),
    (None, "not None"),
])
def test_bad_levels_raise(level, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        sleep_fit().confint(level)


def test_good_levels_give_their_columns():
    assert list(sleep_fit().confint(np.float64(0.8)).columns) == ["estimate", "10 %", "90 %"]
    assert list(sleep_fit().confint().columns) == ["estimate", "2.5 %", "97.5 %"]


# --------------------------------------------------------------------------- smooths


@pytest.mark.parametrize("method", ["smooth", "plot_smooth"])
def test_smooth_on_a_model_without_smooths(method, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the model is the problem
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(SpecError, match=rf"This model has no smooth terms, so {method}\(\) "
                                        "has nothing to show"):
        getattr(sleep_fit(), method)()
    table = sleep_fit().smooths()
    assert table.empty and list(table.columns) == ["edf", "k", "variance", "sd"]


@pytest.mark.parametrize("term, message", [
    ("s(xx)", "The model has no smooth 's(xx)'. Did you mean 's(x)'? The model's smooths "
              "are 's(x)', 's(z)'."),
    ("z", "The model has no smooth 'z'. Did you mean 's(z)'?"),
    ("poly(age)", "The model has no smooth 'poly(age)'. The model's smooths are 's(x)', "
                  "'s(z)'."),
    (2, "smooth(2): the model has 2 smooths, at positions 0 to 1. The model's smooths are "
        "'s(x)', 's(z)'."),
    (1.0, "smooth() takes a smooth's label such as 's(x)' or its position, not 1.0."),
])
def test_unknown_smooth_names_the_nearest_and_all(term, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        smooth_fit().smooth(term)


def test_smooth_by_label_position_and_spacing():
    fit = smooth_fit()
    pd.testing.assert_frame_equal(fit.smooth(1, n=5), fit.smooth("s( z )", n=5))
    pd.testing.assert_frame_equal(fit.smooth(-1, n=5), fit.smooth("s(z)", n=5))
    with pytest.raises(SpecError, match="a whole number of at least 2; got 1"):
        fit.smooth("s(x)", n=1)


def test_one_smooth_is_named_in_the_singular():
    fit = semgalamm.fit("Reaction ~ s(Days, k = 5) + (1 | Subject)",
                        semgalamm.load_dataset("sleepstudy"))
    with pytest.raises(SpecError, match=re.escape(
            "The model has no smooth 's(day)'. Did you mean 's(Days)'? The model's smooth is "
            "'s(Days)'.")):
        fit.smooth("s(day)")


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependencyError) as error:
        smooth_fit().plot_smooth("s(x)")
    assert isinstance(error.value, ImportError) and isinstance(error.value, SemgalammError)
    message = str(error.value)
    assert message.startswith("plot_smooth() draws with matplotlib, which could not be "
                              "imported")
    assert "`pip install semgalamm[plot]` (or `pip install matplotlib`)" in message


def test_plot_with_matplotlib_still_draws():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = smooth_fit().plot_smooth(1, level=0.9)
    assert ax.get_ylabel() == "s(z)"
    import matplotlib.pyplot as plt

    plt.close("all")


# --------------------------------------------------------------------------- other keywords


def test_type_keywords_suggest_the_nearest():
    fit = sleep_fit()
    with pytest.raises(SpecError, match=re.escape(
            'type must be one of "response", "pearson", "deviance", "working", not \'pearsn\'. '
            "Did you mean 'pearson'?")):
        fit.residuals("pearsn")
    with pytest.raises(SpecError, match="Did you mean 'response'"):
        fit.predict(pd.DataFrame({"Days": [1.0]}), type="resp")
    with pytest.raises(SpecError, match="Did you mean 'std.all'"):
        cfa_fit().standardized_solution(type="std.al")
    with pytest.raises(ValueError):  # SpecError is a ValueError, as before
        fit.residuals("workin")


def test_predict_takes_a_frame_or_a_dict():
    fit = sleep_fit()
    np.testing.assert_allclose(fit.predict({"Days": [0.0, 1.0]}, conditional=False),
                               fit.fixef["(Intercept)"] + np.array([0.0, 1.0])
                               * fit.fixef["Days"])
    with pytest.raises(DataError, match="predict\\(\\) takes the new data as a pandas "
                                        "DataFrame \\(or a dict of columns\\), not a ndarray"):
        fit.predict(np.zeros((2, 1)))


# --------------------------------------------------------------------------- anova


def test_anova_refuses_mixed_results():
    with pytest.raises(SpecError, match=r"anova\(\) cannot compare a SemFit \(model 1, from "
                                        r"semgalamm\.cfa/sem/growth on wide data\) with a "
                                        r"FitResult \(Reaction ~ Days"):
        semgalamm.anova(cfa_fit(), sleep_fit())
    with pytest.raises(SpecError, match=r"SemFit \(sem, .*FitResult \(long, "):
        semgalamm.anova(sleep_fit(), cfa_fit(), names=["long", "sem"])


@pytest.mark.parametrize("args, message", [
    (lambda: ([sleep_fit(), sleep_fit()],), "anova() takes the fits as separate arguments"),
    (lambda: (sleep_fit(),), "anova() compares two or more fits: anova(fit0, fit1)."),
    (lambda: (sleep_fit(), "fit1"), "anova() compares fitted models; model 2 is a str object"),
])
def test_anova_misuse(args, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        semgalamm.anova(*args())


def test_anova_of_long_fits_uses_npar():
    sleep = semgalamm.load_dataset("sleepstudy")
    small = semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep)
    table = semgalamm.anova(sleep_fit(), small, names=["slopes", "intercepts"])
    assert list(table.index) == ["intercepts", "slopes"]
    assert list(table["npar"]) == [4, 6]
    assert table.loc["slopes", "Chisq"] == pytest.approx(2 * (sleep_fit().loglik
                                                              - small.loglik))


SEM_CASES = sorted(fixture("lavaan_anova")["cases"])


def _fit_case(case: str) -> tuple[list, list[str], list[dict]]:
    spec = fixture("lavaan_anova")["cases"][case]
    data = (pd.read_csv(TESTS.parent / spec["data"]) if spec["data"].endswith(".csv")
            else semgalamm.load_dataset(spec["data"]))
    fits = [getattr(semgalamm, m["function"])(m["model"], data, **m["options"])
            for m in spec["models"]]
    return fits, [m["name"] for m in spec["models"]], spec["table"]


@pytest.mark.parametrize("case", SEM_CASES)
def test_anova_of_sems_is_lavaans(case):
    """To 1e-6; two-level to 1e-4 (relative): lavaan's two-level saturated model is an EM
    fit stopped at a 1e-4 change in logl, ours its maximum (tests/test_sem_twolevel.py)."""
    tol = 1e-4 if case.startswith("twolevel") else 1e-6
    fits, names, reference = _fit_case(case)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # lavaan gives no warning for these
        table = semgalamm.anova(*fits, names=names)
    assert list(table.columns) == ["Df", "AIC", "BIC", "Chisq", "Chisq diff", "RMSEA",
                                   "Df diff", "Pr(>Chisq)"]
    assert list(table.index) == [row["name"] for row in reference]  # lavaan's order
    for row in reference:
        ours = table.loc[row["name"]]
        for column in table.columns:
            theirs = row[column]
            if theirs is None:
                assert np.isnan(ours[column]), (row["name"], column)
            else:
                assert ours[column] == pytest.approx(theirs, rel=tol, abs=tol), \
                    (row["name"], column)


@pytest.mark.parametrize("case", SEM_CASES)
def test_semfit_vcov_names_are_lavaans(case):
    """lavaan's vcov() names; parameters constrained equal by a label are one row here where
    lavaan repeats them (with group_equal lavaan names them by plabel, '.p2.')."""
    fits, _, _ = _fit_case(case)
    for fit, model in zip(fits, fixture("lavaan_anova")["cases"][case]["models"]):
        theirs = model["vcov_names"]
        if any(name.startswith(".p") for name in theirs):
            assert fit.vcov().shape == (fit.npar, fit.npar)
            continue
        assert list(fit.vcov().index) == list(dict.fromkeys(theirs))
        assert list(fit.confint().index) == list(dict.fromkeys(theirs))


def test_anova_of_sems_refuses_what_is_not_nested():
    hs = hs_data()
    covariates = semgalamm.sem(HS + "\nvisual ~ ageyr", hs)
    with pytest.raises(SpecError, match="different observed variables \\(ageyr in one only\\)"):
        semgalamm.anova(cfa_fit(), covariates)
    fewer = semgalamm.cfa(HS, hs.iloc[:200])
    with pytest.raises(SpecError, match="fitted to 200 observations and model 1 to 301"):
        semgalamm.anova(cfa_fit(), fewer)
    grouped = semgalamm.cfa(HS, hs, group="school")
    with pytest.raises(SpecError, match="other groups"):
        semgalamm.anova(cfa_fit(), grouped)
    means = semgalamm.cfa(HS, hs, meanstructure=True)
    with pytest.raises(SpecError, match="differ in their mean structure"):
        semgalamm.anova(cfa_fit(), means)


def test_anova_of_sems_warns_as_lavaan():
    with pytest.warns(FitWarning, match="same degrees of freedom"):
        table = semgalamm.anova(cfa_fit(), semgalamm.cfa(HS, hs_data(), std_lv=True))
    assert np.isnan(table["Pr(>Chisq)"].iloc[1]) and table["Df diff"].iloc[1] == 0


# --------------------------------------------------------------------------- the docs


def test_results_doc_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)


def test_glm_summary_has_no_random_effects_section() -> None:
    cbpp = semgalamm.load_dataset("cbpp")
    fit = semgalamm.fit("cbind(incidence, size - incidence) ~ period", cbpp, family="binomial")
    text = str(fit.summary())
    assert text.startswith("Generalized linear model fit by maximum likelihood\n")
    assert "Random effects" not in text and "Number of obs: 56\n" in text
