"""Regressions among latent variables on long data: eta = B eta + h(w) + zeta.

The engine uses the effective loadings Lambda (I - B)^{-1} wherever a row's loading on a
latent enters X(lambda, B) and Z(lambda, B). The checks here are independent of that
construction: a saturated recursive B is a reparameterization of correlated latents; B fixed at
0 is the model without the regression; for Gaussian models the Laplace approximation is exact,
so the deviance equals the multivariate normal log-density of the data under the marginal
covariance V = L Cov(eta) L' + sigma^2 I, built densely from the model's definition; and
simulated data recover the true coefficients.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import multivariate_normal

import semgalamm
from semgalamm.design.build import build_design
from semgalamm.design.row_families import resolve_families
from semgalamm.errors import SpecError, UnsupportedError
from semgalamm.laplace.model import LaplaceModel
from semgalamm.laplace.objective import LaplaceGLMM
from semgalamm.spec.build import build_spec
from semgalamm.syntax import parse

LAMBDA = {"c1": 1.0, "c2": 0.8, "c3": 1.2, "a1": 1.0, "a2": 0.8, "a3": 1.2}
INTERCEPT = {"c1": 0.0, "c2": 0.5, "c3": -0.5, "a1": 0.0, "a2": 0.3, "a3": -0.3}
MEASUREMENT = """
    climate =~ 1*item[c1] + item[c2] + item[c3]
    ability =~ 1*item[a1] + item[a2] + item[a3]
    climate ~ (1 | school)
"""
SCHOOLS = MEASUREMENT + """
    ability ~ climate + (1 | school:pupil)
    y ~ 0 + item
"""


def simulate_schools(seed: int, schools: int = 30, pupils: int = 10, b: float = 0.5,
                     family: str = "gaussian", sd_climate: float = 1.0, sd_ability: float = 1.0,
                     sigma: float = 0.6) -> pd.DataFrame:
    """Long data: every pupil answers three climate items (a school-level latent) and three
    ability items (a pupil-level latent, ability = b climate + zeta); one row per answer."""
    rng = np.random.default_rng(seed)
    climate = rng.normal(0.0, sd_climate, schools)
    ability = b * np.repeat(climate, pupils) + rng.normal(0.0, sd_ability, schools * pupils)
    items = list(LAMBDA)
    school = np.repeat(np.arange(schools), pupils * len(items))
    pupil = np.repeat(np.arange(schools * pupils), len(items))
    item = np.tile(items, schools * pupils)
    on_climate = np.char.startswith(item.astype(str), "c")
    eta = np.where(on_climate, climate[school], ability[pupil])
    nu = np.array([INTERCEPT[i] for i in item]) + np.array([LAMBDA[i] for i in item]) * eta
    if family == "gaussian":
        y = nu + rng.normal(0.0, sigma, nu.size)
    else:
        y = (rng.random(nu.size) < expit(nu)).astype(float)
    return pd.DataFrame({"school": [f"s{s:03d}" for s in school],
                         "pupil": [f"p{p % pupils:02d}" for p in pupil],
                         "item": item, "y": y})


def simulate_two_factors(seed: int, ids: int = 200, b: float = 0.6, b21: float | None = None,
                         gammas: tuple[float, float] = (0.0, 0.0)) -> pd.DataFrame:
    """Two latents at level ``id`` (items 1-3 and 4-6), f2 = b f1 + zeta_2; with ``b21`` also
    f1 = b21 f2 + zeta_1 (non-recursive), and covariates w1 -> f1, w2 -> f2 (``gammas``)."""
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=ids), rng.normal(size=ids)
    zeta = rng.normal(size=(ids, 2)) * [1.0, 0.8]
    B = np.array([[0.0, b21 or 0.0], [b, 0.0]])
    h = np.column_stack([gammas[0] * w1, gammas[1] * w2])
    eta = (h + zeta) @ np.linalg.inv(np.eye(2) - B).T
    loadings = [1.0, 0.9, 1.1, 1.0, 1.2, 0.7]
    rows = []
    for i in range(ids):
        for j, lam in enumerate(loadings):
            rows.append((f"i{i:03d}", str(j + 1), w1[i], w2[i],
                         0.2 * j + lam * eta[i, j // 3] + rng.normal(0.0, 0.5)))
    return pd.DataFrame(rows, columns=["id", "item", "w1", "w2", "y"])


TWO = """
    f1 =~ 1*item[1] + item[2] + item[3]
    f2 =~ 1*item[4] + item[5] + item[6]
    f1 ~ (1 | id)
"""


@cache
def two_factor_data() -> pd.DataFrame:
    return simulate_two_factors(11)


@cache
def school_fit(seed: int = 3, schools: int = 30) -> semgalamm.FitResult:
    return semgalamm.fit(SCHOOLS, simulate_schools(seed, schools=schools))


# ----------------------------------------------------------------------------- spec


def test_terms_of_a_latent_regression():
    spec = build_spec(parse("""
        f1 =~ 1*item[1] + item[2]
        f2 =~ 1*item[3] + item[4]
        f3 =~ 1*item[5] + item[6]
        f1 ~ (1 | school)
        f2 ~ b*f1 + x + s(age) + (1 | school:pupil)
        f3 ~ 0.5*f1 + start(0.2)*f2 + (1 | school:pupil)
        y ~ item
    """))
    entries = {(e.lhs, e.rhs): (e.fixed, e.label, e.start) for e in spec.structural}
    assert entries == {("f2", "f1"): (None, "b", None), ("f3", "f1"): (0.5, "f3~f1", None),
                       ("f3", "f2"): (None, "f3~f2", 0.2)}
    assert [(f.formula, f.latent) for f in spec.fixed] == [("0 + x", "f2"), ("1 + item", None)]
    assert [(s.text, latent) for s, latent in spec.smooths] == [("s(age)", "f2")]
    assert spec.free_parameters() == {"f1=~item[2]": 1.0, "f2=~item[4]": 1.0,
                                      "f3=~item[6]": 1.0, "b": 0.0, "f3~f2": 0.2}
    # endogenous latents f2, f3 at level school:pupil: uncorrelated disturbances
    assert sorted(len(b.parts) for b in spec.random) == [1, 1, 1]


def test_equal_labels_are_one_parameter_and_covariance_can_be_kept():
    spec = build_spec(parse("""
        f1 =~ 1*item[1] + item[2]
        f2 =~ 1*item[3] + item[4]
        f3 =~ 1*item[5] + item[6]
        f1 ~ (1 | id)
        f2 ~ b*f1 + (1 | id)
        f3 ~ b*f1 + (1 | id)
        f2 ~~ f3
        y ~ item
    """))
    assert list(spec.free_parameters()) == ["f1=~item[2]", "f2=~item[4]", "f3=~item[6]", "b"]
    assert sorted(tuple(p[1] for p in b.parts) for b in spec.random) == [("f1",), ("f2", "f3")]


@pytest.mark.parametrize("model, error, message", [
    ("f1 ~ 1*f2 + (1 | id); f2 ~ 1*f1 + (1 | id)", SpecError,
     r"cycle f1 -> f2 -> f1 .*'f1 ~ f2' = 1 \(fixed\), 'f2 ~ f1' = 1 \(fixed\).* I - B is "
     "singular"),
    ("f1 ~ 2*f2 + (1 | id); f2 ~ start(0.5)*f1 + (1 | id)", SpecError,
     r"cycle f1 -> f2 -> f1 .*'f2 ~ f1' = 0.5 \(start\)"),
    ("f1 ~ f1 + (1 | id); f2 ~ (1 | id)", SpecError, "regresses a latent variable on itself"),
    ("f1 ~ (1 | id); f2 ~ f1 + f1 + (1 | id)", SpecError, "written twice"),
    ("f1 ~ (1 | id); f2 ~ f1:x + (1 | id)", UnsupportedError, "interactions and functions"),
    ("f1 ~ (1 | id); f2 ~ lower(0)*f1 + (1 | id)", UnsupportedError, "Bounds"),
    ("f1 ~ (1 | id); f2 ~ (1 | id); f3 ~ f1 + (1 | id)", SpecError,
     "'f1' is a latent variable but 'f3' is not .* needs indicators of its own"),
])
def test_invalid_latent_regressions(model, error, message):
    base = "f1 =~ 1*item[1] + item[2]; f2 =~ 1*item[3] + item[4]; y ~ item; "
    with pytest.raises(error, match=message):
        build_spec(parse(base + model))


def test_response_regressed_on_a_latent_is_an_error():
    with pytest.raises(SpecError, match="'f1' is a latent variable but 'y' is not"):
        build_spec(parse("f1 =~ 1*item[1] + item[2]; f1 ~ (1 | id); y ~ item + f1"))


def test_a_latent_regressed_only_on_latents_needs_no_level():
    spec = build_spec(parse("f1 =~ 1*item[1] + item[2]; f2 =~ 1*item[3] + item[4]; "
                            "f1 ~ (1 | id); f2 ~ f1; y ~ item"))
    assert [e.name for e in spec.structural] == ["f2~f1"]


# ----------------------------------------------------------------------------- design


def _design(model: str, data: pd.DataFrame):
    spec = build_spec(parse(model))
    return build_design(spec, data, resolve_families("gaussian", data, spec))


def test_effective_loadings_put_b_lambda_in_the_predictor_latents_columns():
    """A row on ability gets b * lambda in climate's school-level Z column and in climate's
    h(w) column of X (here climate ~ w)."""
    data = simulate_schools(1, schools=4, pupils=3)
    data["w"] = np.arange(len(data)) % 5 / 5.0
    d = _design(SCHOOLS.replace("climate ~ (1 | school)", "climate ~ w + (1 | school)"), data)
    assert list(d.loadings.lambda_names) == ["climate=~item[c2]", "climate=~item[c3]",
                                             "ability=~item[a2]", "ability=~item[a3]",
                                             "ability~climate"]
    ell = d.row_loadings(np.array([0.8, 1.2, 0.9, 1.3, 0.5]))
    item = data["item"].to_numpy().astype(str)
    own = pd.Series(item).map({"c1": 1.0, "c2": 0.8, "c3": 1.2, "a1": 1.0, "a2": 0.9,
                               "a3": 1.3}).to_numpy()
    on_climate = np.char.startswith(item, "c")
    np.testing.assert_allclose(ell[:, 0], np.where(on_climate, own, 0.5 * own))
    np.testing.assert_allclose(ell[:, 1], np.where(on_climate, 0.0, own))
    climate_block = next(b for b in d.blocks if b.group == "school")
    np.testing.assert_allclose(d.block_values(climate_block, ell)[:, 0], ell[:, 0])
    w_column = list(d.fixed_names).index("climate:w")
    np.testing.assert_allclose(d.X(ell)[:, w_column], data["w"] * ell[:, 0])


def test_singular_I_minus_B_during_optimization_is_an_infeasible_point():
    design = _design(TWO + "f1 ~ f2 + (1 | id); f2 ~ 1*f1 + (1 | id); y ~ 0 + item",
                     two_factor_data())
    laplace = LaplaceModel.create(design)
    x = laplace.start()
    assert np.isfinite(laplace.deviance(x))
    x[laplace.layout.names.index("f1~f2")] = 1.0
    assert laplace.deviance(x) == np.inf
    lam = design.loadings.lambda_start.copy()
    lam[design.loadings.lambda_names.index("f1~f2")] = 1.0
    glmm = LaplaceGLMM(design)
    theta, beta = design.theta_start(), np.zeros(design.p)
    log_sigma_zero = np.zeros((design.n, 2))  # family parameters psi: Gaussian log sigma = 0
    assert np.isfinite(glmm.evaluate(theta, beta, design.loadings.lambda_start,
                                     log_sigma_zero).deviance)
    assert glmm.evaluate(theta, beta, lam, log_sigma_zero).deviance == np.inf


def test_singular_start_values_are_a_spec_error():
    model = TWO + "f1 ~ f2 + (1 | id); f2 ~ 1*f1 + (1 | id); y ~ 0 + item"
    with pytest.raises(SpecError, match=r"starting values make I - B singular .*f1~f2"):
        semgalamm.fit(model, two_factor_data(), start={"lambda": [1, 1, 1, 1, 1.0]})


# ----------------------------------------------------------------------------- fits


def test_b_fixed_at_zero_is_the_model_without_the_regression():
    data = simulate_schools(2, schools=12, pupils=6)
    with_b = semgalamm.fit(SCHOOLS.replace("ability ~ climate", "ability ~ 0*climate"), data)
    without = semgalamm.fit(SCHOOLS.replace("ability ~ climate +", "ability ~"), data)
    assert with_b.loglik == pytest.approx(without.loglik, abs=1e-8)
    assert with_b.structural.estimate.tolist() == [0.0]
    assert np.isnan(with_b.structural.se[0])
    # the same at one level, where B = 0 leaves f1 and f2 uncorrelated (f2 is endogenous)
    two = two_factor_data()
    zero = semgalamm.fit(TWO + "f2 ~ 0*f1 + (1 | id); y ~ 0 + item", two)
    apart = semgalamm.fit(TWO + "f2 ~ (1 | id); f1 ~~ 0*f2; y ~ 0 + item", two)
    assert zero.loglik == pytest.approx(apart.loglik, abs=1e-8)


def test_saturated_recursive_b_reparameterizes_correlated_latents():
    data = two_factor_data()
    correlated = semgalamm.fit(TWO + "f2 ~ (1 | id); y ~ 0 + item", data)
    regression = semgalamm.fit(TWO + "f2 ~ f1 + (1 | id); y ~ 0 + item", data)
    assert regression.loglik == pytest.approx(correlated.loglik, abs=1e-6)
    vc = correlated.varcorr()
    cov = vc[vc.term2.notna()].variance.iloc[0]
    var_f1 = vc[(vc.term1 == "f1") & vc.term2.isna()].variance.iloc[0]
    b = regression.structural.estimate[0]
    assert b == pytest.approx(cov / var_f1, rel=1e-3)
    assert b == pytest.approx(0.6, abs=3 * regression.structural.se[0])
    # the disturbance variance of f2 is var(f2) - b^2 var(f1)
    var_f2 = vc[(vc.term1 == "f2") & vc.term2.isna()].variance.iloc[0]
    rvc = regression.varcorr()
    assert rvc[rvc.term1 == "f2"].variance.iloc[0] == pytest.approx(var_f2 - b**2 * var_f1,
                                                                     rel=1e-3)
    # the loadings are the same in both parameterizations
    np.testing.assert_allclose(regression.loading_estimates().estimate,
                               correlated.loading_estimates().estimate, rtol=1e-3)


def _school_dense_loglik(fit: semgalamm.FitResult, data: pd.DataFrame) -> float:
    """log N(y; X beta, V) with V = L Cov(eta) L' + sigma^2 I, eta = (climate of each school,
    ability of each pupil), ability = b climate + zeta: the model written out densely."""
    loadings = fit.loading_estimates().set_index("indicator").estimate
    b = fit.structural.estimate[0]
    vc = fit.varcorr().set_index("group").variance
    schools = sorted(data.school.unique())
    pupils = sorted(set(zip(data.school, data.pupil)))
    S, P = len(schools), len(pupils)
    C = np.zeros((P, S))  # pupil -> school
    for p, (s, _) in enumerate(pupils):
        C[p, schools.index(s)] = 1.0
    cov_eta = np.block([[vc["school"] * np.eye(S), vc["school"] * b * C.T],
                        [vc["school"] * b * C, vc["school"] * b**2 * C @ C.T
                         + vc["school:pupil"] * np.eye(P)]])
    L = np.zeros((len(data), S + P))
    for r, (s, p, item) in enumerate(zip(data.school, data.pupil, data.item)):
        column = schools.index(s) if item.startswith("c") else S + pupils.index((s, p))
        L[r, column] = loadings[f"item[{item}]"]
    V = L @ cov_eta @ L.T + vc["Residual"] * np.eye(len(data))
    mean = np.array([fit.fixef[f"item{item}"] for item in data.item])
    return float(multivariate_normal(mean, V).logpdf(data.y.to_numpy()))


def test_across_levels_loglik_is_the_dense_marginal_likelihood():
    data = simulate_schools(5, schools=10, pupils=5)
    fit = semgalamm.fit(SCHOOLS, data)
    assert fit.converged
    assert fit.loglik == pytest.approx(_school_dense_loglik(fit, data), abs=1e-6)


def test_across_levels_recovers_b():
    fit = school_fit()
    row = fit.structural.iloc[0]
    assert (row.lhs, row.op, row.rhs, row.label) == ("ability", "~", "climate",
                                                     "ability~climate")
    assert 0.03 < row.se < 0.15
    assert abs(row.estimate - 0.5) < 2.5 * row.se
    assert "ability~climate" in fit.confint().index
    assert fit.npar == 2 + 6 + 5 + 1  # two variances, intercepts, loadings and b, sigma
    text = fit.summary()
    assert "Regressions:" in text
    assert "ability ~ climate" in text.split("Regressions:")[1].splitlines()[2]


def _two_factor_dense_loglik(fit: semgalamm.FitResult, data: pd.DataFrame,
                             B: np.ndarray, gammas: np.ndarray) -> float:
    """Per id: y = X beta + L (I - B)^-1 (Gamma w + zeta) + e, zeta ~ N(0, Psi)."""
    loadings = fit.loading_estimates().set_index("indicator").estimate
    vc = fit.varcorr()
    psi = np.diag([vc[vc.term1 == "f1"].variance.iloc[0], vc[vc.term1 == "f2"].variance.iloc[0]])
    sigma2 = vc[vc.group == "Residual"].variance.iloc[0]
    inverse = np.linalg.inv(np.eye(2) - B)
    total = 0.0
    for _, rows in data.groupby("id"):
        L = np.zeros((len(rows), 2))
        for r, item in enumerate(rows.item):
            L[r, (int(item) - 1) // 3] = loadings[f"item[{item}]"]
        h = gammas * rows[["w1", "w2"]].iloc[0].to_numpy()
        mean = np.array([fit.fixef[f"item{i}"] for i in rows.item]) + L @ inverse @ h
        V = L @ inverse @ psi @ inverse.T @ L.T + sigma2 * np.eye(len(rows))
        total += multivariate_normal(mean, V).logpdf(rows.y.to_numpy())
    return float(total)


def test_non_recursive_b_with_instruments():
    """f1 ~ f2 + w1, f2 ~ f1 + w2: identified by the covariates of each latent (h(w))."""
    data = simulate_two_factors(7, ids=400, b=0.5, b21=-0.4, gammas=(1.0, 1.0))
    fit = semgalamm.fit("""
        f1 =~ 1*item[1] + item[2] + item[3]
        f2 =~ 1*item[4] + item[5] + item[6]
        f1 ~ f2 + w1 + (1 | id)
        f2 ~ f1 + w2 + (1 | id)
        y ~ 0 + item
    """, data)
    assert fit.converged
    est = fit.structural.set_index("label")
    assert abs(est.estimate["f2~f1"] - 0.5) < 3 * est.se["f2~f1"]
    assert abs(est.estimate["f1~f2"] + 0.4) < 3 * est.se["f1~f2"]
    assert fit.fixef["f1:w1"] == pytest.approx(1.0, abs=0.2)
    B = np.array([[0.0, est.estimate["f1~f2"]], [est.estimate["f2~f1"], 0.0]])
    gammas = fit.fixef[["f1:w1", "f2:w2"]].to_numpy()
    assert fit.loglik == pytest.approx(_two_factor_dense_loglik(fit, data, B, gammas), abs=1e-6)


def test_latent_regression_with_own_covariate_and_smooth():
    data = simulate_schools(4, schools=12, pupils=6)
    rng = np.random.default_rng(0)
    pupil_age = rng.uniform(8, 12, size=data.groupby(["school", "pupil"]).ngroups)
    codes = data.groupby(["school", "pupil"]).ngroup().to_numpy()
    data["age"] = pupil_age[codes]
    data["x"] = rng.normal(size=len(data))
    fit = semgalamm.fit(MEASUREMENT + """
        ability ~ climate + s(age, k = 5) + x + (1 | school:pupil)
        y ~ 0 + item
    """, data)
    assert fit.converged
    assert {"ability:x", "s(age):abilityFx1"} <= set(fit.fixef.index)
    assert list(fit.smooths().index) == ["s(age):ability"]
    assert fit.structural.estimate[0] == pytest.approx(0.5, abs=4 * fit.structural.se[0])


def test_binomial_items_recover_b():  # about 3 s
    data = simulate_schools(9, schools=40, pupils=12, family="binomial", b=0.5, sigma=0.0)
    fit = semgalamm.fit(SCHOOLS, data, family="binomial")
    assert fit.converged
    row = fit.structural.iloc[0]
    assert row.se < 0.3
    assert abs(row.estimate - 0.5) < 2.5 * row.se
    assert "z value" in fit.summary().split("Regressions:")[1].splitlines()[1]
