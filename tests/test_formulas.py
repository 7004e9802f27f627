"""Formula terms evaluated safely, R's names (dots, keywords), formula terms in loadings, and
the data types users bring: every case gives the right answer or a clear error, and the
user's DataFrame never changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

import semgalamm
from semgalamm.design.formulas import environment, factor_variables, quote_columns
from semgalamm.errors import DataError, SpecError
from tests.conftest import DATA, fixture, load_csv


@pytest.fixture
def sleep() -> pd.DataFrame:
    return semgalamm.load_dataset("sleepstudy")


def fit_unchanged(model: str, data, **options):
    """semgalamm.fit, checking that the data frame (values, dtypes, index, columns) is the
    same afterwards, also when the fit raises."""
    before = data.copy(deep=True) if isinstance(data, pd.DataFrame) else None
    try:
        return semgalamm.fit(model, data, **options)
    finally:
        if before is not None:
            pd.testing.assert_frame_equal(data, before)


def raises_unchanged(error, match: str, model: str, data, **options):
    with pytest.raises(error, match=match) as raised:
        fit_unchanged(model, data, **options)
    return raised.value


# ------------------------------------------------------------ safe evaluation


def test_exec_in_a_term_raises_and_writes_nothing(sleep, tmp_path):
    target = tmp_path / "pwned.txt"
    model = f"Reaction ~ Days + I(exec(\"open('{target}', 'w').write('x')\")) + (1 | Subject)"
    error = raises_unchanged(SpecError, r"The term 'I\(exec\(.*\)\)' calls 'exec', which formula "
                             r"terms do not allow\. Allowed functions: I, C, Q, log",
                             model, sleep)
    assert not target.exists()
    assert "Days" not in str(error).split("calls")[1]  # names the term, not the whole formula


@pytest.mark.parametrize("term, message", [
    ('I(eval("1"))', "calls 'eval'"),
    ('I(__import__("os"))', "calls '__import__'"),
    ("I(__import__(\"os\").system(\"touch {target}\"))", "Expected an operator"),  # syntax
    ('open("{target}", "w")', "calls 'open'"),
    ('getattr(Days, "real")', "calls 'getattr'"),
    ("Days.__class__", "accesses the attribute '__class__'"),
    ("I(Days.__class__.__mro__)", "accesses the attribute"),
    ("np.load(\"{target}\")", "calls 'np.load'"),
    ("numpy.save(\"{target}\", Days)", "calls 'numpy.save'"),
    ("np.__dict__", "accesses the attribute '__dict__'"),
    ('Q("__builtins__")', "'__builtins__' is not a column"),
    ("I(globals())", "calls 'globals'"),
    ("C(Days, Treatment(reference=exec(\"1\")))", "calls 'exec'"),
])
def test_terms_outside_the_allowed_set_are_refused(sleep, tmp_path, term, message):
    target = tmp_path / "written"
    term = term.replace("{target}", str(target))
    with pytest.raises(semgalamm.SemgalammError, match=message):
        fit_unchanged(f"Reaction ~ {term} + (1 | Subject)", sleep)
    assert not target.exists()


@pytest.mark.parametrize("model", [
    'Reaction ~ Days + (I(exec("1")) | Subject)',                  # random slope
    'Reaction ~ Days + offset(exec("1")) + (1 | Subject)',         # offset
    'f =~ 1*item[1] + item[2] + item[2]:I(exec("1")); f ~ (1 | g); y ~ item',  # loading
    'f =~ 1*item[1] + item[2]; f ~ I(exec("1")) + (1 | g); y ~ item',  # latent regression
])
def test_every_place_a_formula_term_stands_is_checked(model):
    data = pd.DataFrame({"Reaction": [1.0, 2.0], "Days": [1.0, 2.0], "Subject": ["a", "b"],
                         "y": [1.0, 2.0], "item": [1, 2], "g": ["a", "b"]})
    with pytest.raises(SpecError, match="calls 'exec', which formula terms do not allow"):
        fit_unchanged(model, data)


def test_the_check_runs_before_any_data_are_read():
    # SpecError from the model string alone (the data are not even a frame with the columns)
    with pytest.raises(SpecError, match="calls 'exec'"):
        semgalamm.fit('y ~ I(exec("1")) + (1 | g)', pd.DataFrame({"z": [1.0]}))


def test_patsy_environment_holds_no_builtins_or_caller_names():
    env = environment()
    for name in ("exec", "eval", "open", "__import__", "getattr", "__builtins__", "os", "sys",
                 "pytest", "semgalamm"):
        assert name not in env.namespace
    assert env.namespace["log"] is np.log and env.namespace["np"].log is np.log


@pytest.mark.parametrize("code, variables", [
    ("log(x)", ["x"]),
    ("np.log(x + 1)", ["x"]),
    ("I(x ** 2 - z / 3)", ["x", "z"]),
    ('Q("my.days")', ["my.days"]),
    ("my.days", ["my.days"]),
    ("poly(x, 2, raw=TRUE)", ["x"]),
    ('C(g, Treatment("b"))', ["g"]),
    ("scale(x) * pi", ["x"]),
    ("I(x > 2)", ["x"]),
])
def test_allowed_terms_and_the_columns_they_read(code, variables):
    assert factor_variables(code) == variables


def test_numpy_math_and_r_functions(sleep):
    log_fit = fit_unchanged("Reaction ~ log(Days + 1) + (1 | Subject)", sleep)
    np_fit = fit_unchanged("Reaction ~ np.log(Days + 1) + (1 | Subject)", sleep)
    data = sleep.assign(logd=np.log(sleep.Days + 1))
    column_fit = fit_unchanged("Reaction ~ logd + (1 | Subject)", data)
    assert log_fit.loglik == pytest.approx(column_fit.loglik, abs=1e-8)
    assert np_fit.loglik == pytest.approx(column_fit.loglik, abs=1e-8)
    assert list(log_fit.fixef.index) == ["(Intercept)", "log(Days + 1)"]


def test_non_finite_term_values_name_the_term_and_rows(sleep):
    raises_unchanged(DataError, r"The term 'log\(Days\)' .* is not finite in 18 row\(s\) "
                     r"\(index 0, 10, 20, 30, 40 \.\.\.\)", "Reaction ~ log(Days) + (1 | Subject)",
                     sleep)


# ------------------------------------------------------------ R's names: dots and keywords


def test_dotted_column_names_are_read_as_in_r(sleep):
    data = sleep.assign(**{"my.days": sleep.Days, "my.subj": sleep.Subject})
    reference = fit_unchanged("Reaction ~ Days + (Days | Subject)", sleep)
    dotted = fit_unchanged("Reaction ~ my.days + (my.days | my.subj)", data)
    assert dotted.loglik == pytest.approx(reference.loglik, abs=1e-8)
    assert list(dotted.fixef.index) == ["(Intercept)", "my.days"]
    quoted = fit_unchanged('Reaction ~ Q("my.days") + (1 | Subject)', data)
    assert list(quoted.fixef.index) == ["(Intercept)", "my.days"]


def test_dotted_factor_and_interaction_names(sleep):
    data = sleep.assign(**{"my.f": pd.Categorical(np.where(sleep.Days > 4, "b", "a")),
                           "my.days": sleep.Days})
    fit = fit_unchanged("Reaction ~ my.days * my.f + (1 | Subject)", data)
    assert list(fit.fixef.index) == ["(Intercept)", "my.days", "my.fb", "my.days:my.fb"]


def test_dotted_name_that_is_not_a_column(sleep):
    raises_unchanged(DataError, r"The variable 'my.days' is not a column of the data\. Did you "
                     "mean 'Days'", "Reaction ~ my.days + (1 | Subject)", sleep)


def test_python_keyword_as_column_name(sleep):
    data = sleep.assign(**{"class": sleep.Days, "if": sleep.Subject})
    fit = fit_unchanged("Reaction ~ class + (1 | if)", data)
    reference = fit_unchanged("Reaction ~ Days + (1 | Subject)", sleep)
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-8)
    assert list(fit.fixef.index) == ["(Intercept)", "class"]


def test_issue_example_class_column():
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"y": rng.normal(size=400), "x": rng.normal(size=400),
                      "g": np.repeat([f"g{i}" for i in range(20)], 20)})
    fit = fit_unchanged("y ~ class + (1 | g)", d.assign(**{"class": d.x}))
    assert list(fit.fixef.index) == ["(Intercept)", "class"]


def test_quoting_leaves_strings_calls_and_other_names_alone():
    columns = ["my.days", "class", "x"]
    assert quote_columns('my.days + C(x, Treatment("my.days")) + np.log(x) + class',
                         columns) == \
        'Q("my.days") + C(x, Treatment("my.days")) + np.log(x) + Q("class")'
    assert quote_columns("my.days2 + xmy.days", columns) == "my.days2 + xmy.days"


# ------------------------------------------------------------ poly() and scale() as R's


def test_poly_equals_r_including_new_data():
    ref = fixture("lme4_habits")["poly_sleepstudy_days"]
    days = pd.read_csv(DATA / "sleepstudy.csv")["Days"].to_numpy(dtype=float)
    matrix = patsy.dmatrix("0 + poly(x, 2)", {"x": days}, eval_env=environment())
    at = patsy.build_design_matrices([matrix.design_info], {"x": np.asarray(ref["x"], float)})
    np.testing.assert_allclose(np.asarray(at[0]), ref["values"], atol=1e-12)
    new = patsy.build_design_matrices([matrix.design_info],
                                      {"x": np.asarray(ref["new_x"], float)})
    np.testing.assert_allclose(np.asarray(new[0]), ref["new_values"], atol=1e-12)


def test_poly_raw_and_degree_checks(sleep):
    raw = fit_unchanged("Reaction ~ poly(Days, 2, raw = TRUE) + (1 | Subject)", sleep)
    explicit = fit_unchanged("Reaction ~ Days + I(Days^2) + (1 | Subject)", sleep)
    np.testing.assert_allclose(raw.fixef.to_numpy(), explicit.fixef.to_numpy(), rtol=1e-8)
    assert list(raw.fixef.index) == ["(Intercept)", "poly(Days, 2, raw=TRUE)1",
                                     "poly(Days, 2, raw=TRUE)2"]
    raises_unchanged(DataError, r"poly\(\) needs degree 12 below the number of unique points "
                     r"\(10\)", "Reaction ~ poly(Days, 12) + (1 | Subject)", sleep)


# ------------------------------------------------------------ formula terms in loadings

LC = ("loading =~ 1*type[measurement1] + type[measurement2] + type[response]{extra}; "
      "loading ~ (1 | id); y ~ type + x:response")


@pytest.fixture(scope="module")
def latent_covariates() -> pd.DataFrame:
    return pd.read_csv(DATA / "latent_covariates.csv")


def test_loading_on_a_function_of_a_covariate_equals_a_precomputed_column(latent_covariates):
    d = latent_covariates
    term = fit_unchanged(LC.format(extra=" + type[response]:x + type[response]:I(x^2)"), d)
    column = fit_unchanged(LC.format(extra=" + type[response]:x + type[response]:x2"),
                           d.assign(x2=d.x**2))
    assert term.loglik == pytest.approx(column.loglik, abs=1e-6)
    assert term.loglik == pytest.approx(-60.131072, abs=1e-5)
    np.testing.assert_allclose(term.loadings.iloc[:, 0].to_numpy(),
                               column.loadings.iloc[:, 0].to_numpy(), rtol=1e-5, atol=1e-7)
    assert list(term.loadings.index)[-1] == "type[response]:I(x^2)"
    # predictions code the loading's formula term on new data as on the fitted rows
    np.testing.assert_allclose(term.predict(d), column.predict(d.assign(x2=d.x**2)),
                               rtol=1e-5, atol=1e-6)


def test_predict_adds_the_offset() -> None:
    """Population-level predictions on the link scale include offset(), as R's predict."""
    cbpp = semgalamm.load_dataset("cbpp")
    fit = semgalamm.fit("incidence ~ period + offset(np.log(size)) + (1 | herd)", cbpp,
                        family="poisson")
    X = np.column_stack([np.ones(len(cbpp))] + [(cbpp.period == k).to_numpy(float)
                                                 for k in ("2", "3", "4")])
    expected = X @ fit.fixef.to_numpy() + np.log(cbpp["size"].to_numpy())
    np.testing.assert_allclose(fit.predict(cbpp, conditional=False, type="link"), expected,
                               rtol=1e-12)


def _r_poly2(x: np.ndarray) -> np.ndarray:
    """R's poly(x, 2), by Gram-Schmidt: orthonormal columns, each with a positive leading
    coefficient."""
    centered = x - x.mean()
    p1 = centered / np.linalg.norm(centered)
    basis = np.column_stack([np.ones_like(x), centered])
    square = centered**2
    resid = square - basis @ np.linalg.lstsq(basis, square, rcond=None)[0]
    return np.column_stack([p1, resid / np.linalg.norm(resid)])


def test_loading_on_poly_is_one_loading_per_column(latent_covariates):
    d = latent_covariates
    p = _r_poly2(d.x.to_numpy())
    term = fit_unchanged(LC.format(extra=" + type[response]:poly(x, 2)"), d)
    column = fit_unchanged(LC.format(extra=" + type[response]:p1 + type[response]:p2"),
                           d.assign(p1=p[:, 0], p2=p[:, 1]))
    assert term.loglik == pytest.approx(column.loglik, abs=1e-6)
    assert list(term.loadings.index)[-2:] == ["type[response]:poly(x, 2)1",
                                              "type[response]:poly(x, 2)2"]
    np.testing.assert_allclose(term.loadings.iloc[-2:, 0].to_numpy(),
                               column.loadings.iloc[-2:, 0].to_numpy(), rtol=1e-5)


def test_loading_on_several_columns_refuses_a_shared_label(latent_covariates):
    raises_unchanged(SpecError, r"has a covariate term with 2 columns \(poly\(x, 2\)1, "
                     r"poly\(x, 2\)2\), one loading each; a fixed value or a label cannot apply",
                     LC.format(extra=" + a*type[response]:poly(x, 2)"), latent_covariates)


# ------------------------------------------------------------ data types


def test_object_column_of_numbers_is_an_error_not_nine_dummies(sleep):
    raises_unchanged(DataError, r"Column 'Days' \(in the term 'Days'\) holds numbers stored as "
                     r"Python objects \(dtype object\), so the formula would make it a factor "
                     r"with 10 levels\. For a number, convert it: data\['Days'\] = "
                     r"pd.to_numeric\(data\['Days'\]\); for a factor, write C\(Days\)",
                     "Reaction ~ Days + (1 | Subject)",
                     sleep.assign(Days=sleep.Days.astype(object)))


def test_text_column_of_numbers_is_an_error_also_in_a_random_slope(sleep):
    data = sleep.assign(Days=sleep.Days.astype(str))
    raises_unchanged(DataError, r"Column 'Days' .* holds numbers stored as text",
                     "Reaction ~ 1 + (Days | Subject)", data)
    factor = fit_unchanged("Reaction ~ C(Days) + (1 | Subject)", data)
    assert list(factor.fixef.index)[:3] == ["(Intercept)", "Days1", "Days2"]


@pytest.mark.parametrize("dtype", ["Int64", "Float64", "UInt8", "int32", "float32"])
def test_nullable_and_narrow_numeric_dtypes(sleep, dtype):
    reference = fit_unchanged("Reaction ~ Days + (1 | Subject)", sleep)
    fit = fit_unchanged("Reaction ~ Days + (1 | Subject)",
                        sleep.assign(Days=sleep.Days.astype(dtype)))
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-8)


def test_nullable_response_and_grouping(sleep):
    reference = fit_unchanged("y ~ Days + (1 | Subject)",
                              sleep.assign(y=sleep.Reaction.round()))
    data = sleep.assign(y=sleep.Reaction.round().astype("Int64"),
                        Subject=sleep.Subject.astype(str).astype("string"))
    fit = fit_unchanged("y ~ Days + (1 | Subject)", data)
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-8)


def test_missing_value_in_a_nullable_column_names_rows(sleep):
    data = sleep.assign(Days=sleep.Days.astype("Float64"))
    data.loc[[3, 9], "Days"] = pd.NA
    raises_unchanged(DataError, r"Column 'Days' has 2 missing or infinite value\(s\) \(rows 3, "
                     r"9\)", "Reaction ~ Days + (1 | Subject)", data)


@pytest.mark.parametrize("dtype", ["boolean", "bool"])
def test_logical_covariate_as_r(sleep, dtype):
    ref = fixture("lme4_habits")["cases"]["sleepstudy_logical"]
    fit = fit_unchanged("Reaction ~ late + (1 | Subject)",
                        sleep.assign(late=(sleep.Days >= 5).astype(dtype)))
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-6)
    assert list(fit.fixef.index) == list(ref["fixef"]) == ["(Intercept)", "lateTRUE"]


def test_string_dtype_factor(sleep):
    grp = pd.array(np.where(sleep.Days > 4, "b", "a"), dtype="string")
    fit = fit_unchanged("Reaction ~ grp + (1 | Subject)", sleep.assign(grp=grp))
    reference = fit_unchanged("Reaction ~ late + (1 | Subject)", sleep.assign(late=sleep.Days > 4))
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-8)
    assert list(fit.fixef.index) == ["(Intercept)", "grpb"]


def test_unused_levels_are_dropped_as_in_r():
    ref = fixture("lme4_models")["cbpp_trials"]
    cbpp = load_csv("cbpp.csv", {"herd": None, "period": None})
    period = pd.Categorical(cbpp.period.astype(str), categories=["0", "1", "2", "3", "4", "5"])
    herd = cbpp.herd.cat.add_categories(["99"])
    fit = fit_unchanged("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                        cbpp.assign(period=period, herd=herd), family="binomial")
    assert list(fit.fixef.index) == list(ref["fixef"])  # reference level 1, as lme4's
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)


def test_duplicate_column_names(sleep):
    raises_unchanged(DataError, r"The data have 2 columns named 'Reaction'.*Rename or drop the "
                     "duplicates", "Reaction ~ Days + (1 | Subject)",
                     pd.concat([sleep, sleep[["Reaction"]]], axis=1))
    unused = pd.concat([sleep, sleep[["Days"]].set_axis(["z"], axis=1),
                        sleep[["Days"]].set_axis(["z"], axis=1)], axis=1)
    assert fit_unchanged("Reaction ~ Days + (1 | Subject)", unused).loglik == \
        pytest.approx(-897.0393215, abs=1e-6)


def test_issue_example_duplicate_response_column():
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"y": rng.normal(size=40), "x": rng.normal(size=40),
                      "g": np.repeat(["a", "b", "c", "d"], 10)})
    raises_unchanged(DataError, "2 columns named 'y'", "y ~ x + (1 | g)",
                     pd.concat([d, d[["y"]]], axis=1))


def test_multiindex_columns(sleep):
    data = sleep.copy()
    data.columns = pd.MultiIndex.from_tuples([("a", c) for c in sleep.columns])
    raises_unchanged(DataError, r"MultiIndex \(hierarchical\) column names.*Flatten them",
                     "Reaction ~ Days + (1 | Subject)", data)


@pytest.mark.parametrize("model", ["Reaction ~ Days + (1 | Subject)", "Reaction ~ Days"])
def test_array_or_dict_instead_of_a_frame(sleep, model):
    with pytest.raises(DataError, match=r"not ndarray\. A numpy array has no column names; "
                                        r"convert it with pandas.DataFrame\(array, columns="):
        semgalamm.fit(model, sleep.to_numpy())
    with pytest.raises(DataError, match=r"not dict\. Convert it with pandas.DataFrame\(data\)"):
        semgalamm.fit(model, sleep.to_dict("list"))


@pytest.mark.parametrize("missing", [None, np.nan])
def test_missing_grouping_level_names_column_and_rows(sleep, missing):
    data = sleep.assign(Subject=sleep.Subject.astype(object))
    data.loc[[4, 100], "Subject"] = missing
    raises_unchanged(DataError, r"Column 'Subject' has 2 missing or infinite value\(s\) \(rows "
                     r"4, 100\)", "Reaction ~ Days + (1 | Subject)", data)


@pytest.mark.parametrize("index", [
    [f"r{i}" for i in range(180)],                  # strings
    np.repeat(np.arange(90), 2),                     # duplicates
    np.arange(180)[::-1] * 7,                        # non-default integers
])
def test_any_index_gives_the_same_fit(sleep, index):
    reference = fit_unchanged("Reaction ~ Days + (Days | Subject)", sleep)
    fit = fit_unchanged("Reaction ~ Days + (Days | Subject)", sleep.set_axis(index))
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-8)
    np.testing.assert_allclose(fit.fixef.to_numpy(), reference.fixef.to_numpy(), rtol=1e-8)


def test_shuffled_rows_give_the_same_fit(sleep):
    reference = fit_unchanged("Reaction ~ Days + (Days | Subject)", sleep)
    fit = fit_unchanged("Reaction ~ Days + (Days | Subject)", sleep.sample(frac=1, random_state=3))
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-6)


def test_a_formula_too_long_for_patsy_is_a_spec_error() -> None:
    from semgalamm.design.formulas import check_formula
    from semgalamm.errors import SpecError

    with pytest.raises(SpecError, match=r"A formula of 600 terms is more than patsy"):
        check_formula(" + ".join(f"x{i}" for i in range(600)))
    check_formula(" + ".join(f"x{i}" for i in range(300)))  # a long plausible formula reads
