"""The exact gradient of the Laplace deviance equals central differences of the deviance.

Points are random perturbations of the starting values (away from bounds), so that every
term of the gradient (log|H|, the residual sum of squares, the implicit dependence of u^ on
the parameters, log|R_X| for REML) is far from 0 and a wrong term fails the check.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sksparse.cholmod import cholesky

import semgalamm
from semgalamm.api import _with_dispformula
from semgalamm.design.build import build_design, expand_loadings
from semgalamm.design.row_families import resolve_families
from semgalamm.laplace import selected_inverse
from semgalamm.laplace.model import LaplaceModel
from semgalamm.spec.build import build_spec
from semgalamm.syntax import parse
from tests.conftest import DATA, fixture, load_csv
from tests.test_galamm_loadings import IRT, KYPS, LC
from tests.test_mixed_families import DIET, DIET_FAMILY, HSCED, MRESP, MRESP_HSCED, mixed_data
from tests.test_structural_long import SCHOOLS, TWO, simulate_schools, two_factor_data


def laplace_model(model: str, data: pd.DataFrame, family="gaussian", reml=False,
                  weights=None) -> LaplaceModel:
    """The objective ``semgalamm.fit`` would optimize for this model."""
    spec = expand_loadings(_with_dispformula(build_spec(parse(model)), None), data)
    families = resolve_families(family, data, spec)
    design = build_design(spec, data, families, weights=weights)
    return LaplaceModel.create(design, reml=reml)


def _sleepstudy() -> pd.DataFrame:
    return load_csv("sleepstudy.csv", {"Subject": None})


def _cbpp() -> pd.DataFrame:
    data = load_csv("cbpp.csv", {"period": None, "herd": None})
    return data.assign(w=np.linspace(0.5, 2.0, len(data)))


def _table(name: str, **types) -> pd.DataFrame:
    return pd.read_csv(DATA / name).astype(types)


# id -> (model, data, family, options)
CASES = {
    "slopes_ml": ("Reaction ~ Days + (Days | Subject)", _sleepstudy, "gaussian", {}),
    "slopes_reml": ("Reaction ~ Days + (Days | Subject)", _sleepstudy, "gaussian",
                    {"reml": True}),
    "uncorrelated_reml": ("Reaction ~ Days + (Days || Subject)", _sleepstudy, "gaussian",
                          {"reml": True}),
    "crossed": ("diameter ~ (1 | plate) + (1 | sample)",
                lambda: load_csv("Penicillin.csv", {"plate": None, "sample": None}),
                "gaussian", {}),
    "nested_reml": ("strength ~ (1 | batch/cask)",
                    lambda: load_csv("Pastes.csv", {"batch": None, "cask": None}), "gaussian",
                    {"reml": True}),
    "heteroscedastic": (HSCED, lambda: load_csv("hsced.csv"), "gaussian", {}),
    "gaussian_weights": ("Reaction ~ Days + (Days | Subject)",
                         lambda: _sleepstudy().assign(w=np.linspace(0.5, 2, 180)), "gaussian",
                         {"weights": "w"}),
    "binomial_trials": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", _cbpp,
                        "binomial", {}),
    "poisson_offset_weights": ("incidence ~ period + offset(log(size)) + (1 | herd)", _cbpp,
                               "poisson", {"weights": "w"}),
    "binomial_crossed": ("r2 ~ Anger + Gender + (1 | id) + (1 | item)",
                         lambda: load_csv("VerbAgg.csv", {"Gender": ["F", "M"]}).iloc[:1500],
                         "binomial", {}),
    "mixed_loadings": (MRESP, lambda: mixed_data("mresp").iloc[:1000], "family", {}),
    "mixed_heteroscedastic": (MRESP_HSCED, lambda: mixed_data("mresp_hsced").iloc[:1000],
                              "family", {}),
    "mixed_diet": (DIET["diet"], lambda: mixed_data("diet"), DIET_FAMILY, {}),
    "loadings_crossed": (KYPS, lambda: load_csv("galamm_t_lmm_kyps_small.csv"), "gaussian",
                         {}),
    "loadings_in_X": (LC, lambda: load_csv("latent_covariates.csv"), "gaussian", {}),
    "binomial_loadings_nested": (IRT, lambda: semgalamm.load_dataset("IRTsim").iloc[:800],
                                 "binomial", {}),
    "smooth": ("y ~ s(x)", lambda: load_csv("galamm_t_gamm4_s.csv"),
               "gaussian", {}),
    "smooth_on_latent": (fixture("galamm_smooths")["v_semi_factor_gaussian"]["model"],
                         lambda: load_csv("galamm_v_semi_factor_gaussian.csv").iloc[:1200],
                         "gaussian", {}),
    "smooth_poisson": ("y ~ s(x2)", lambda: load_csv("galamm_t_gamsim1_poisson_s.csv"),
                       "poisson", {}),
    "B_across_levels": (SCHOOLS, lambda: simulate_schools(3, schools=12), "gaussian", {}),
    "B_binomial": (SCHOOLS, lambda: simulate_schools(4, schools=12, family="binomial"),
                   "binomial", {}),
    "B_same_level": (TWO + "f2 ~ f1 + (1 | id); y ~ 0 + item",
                     lambda: two_factor_data().iloc[:600], "gaussian", {}),
    "probit": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", _cbpp,
               "binomial(link = 'probit')", {}),
    "cloglog": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", _cbpp,
                "binomial(link = 'cloglog')", {}),
    "negative_binomial": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD)",
                          lambda: _table("grouseticks.csv", YEAR="category", BROOD=str),
                          "negative_binomial", {}),
    "gamma": ("y ~ x + (1 | g)", lambda: _table("gamma_sim.csv", g=str), "gamma(link='log')",
              {}),
    "ordinal_probit": ("rating ~ temp + contact + (1 | judge)",
                       lambda: _table("wine.csv", judge=str), "ordinal(link='probit')", {}),
    "ordinal_loadings": ("y ~ 0\nability =~ 1*item[1] + item[2] + item[3] + item[4]\n"
                         "ability ~ (1 | person)",
                         lambda: _table("grm_items.csv", person=str).iloc[:600], "ordinal", {}),
}


def central_differences(model: LaplaceModel, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    grad = np.zeros(x.size)
    for j in range(x.size):
        h = step * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        grad[j] = (model.deviance(up) - model.deviance(down)) / (2 * h)
    return grad


def random_point(model: LaplaceModel, seed: int) -> np.ndarray:
    """The start moved by about 20% of each parameter's scale, at least 0.05 inside a bound."""
    rng = np.random.default_rng(seed)
    x0 = model.start()
    size = 0.2 * np.maximum(np.abs(x0), model.scale)
    x = x0 + size * rng.uniform(-1, 1, x0.size)
    return np.maximum(x, model.layout.lower + 0.05 * np.maximum(1.0, np.abs(x0)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_exact_gradient_equals_central_differences(case):
    model_string, data, family, options = CASES[case]
    model = laplace_model(model_string, data(), family, **options)
    for seed in (1, 2):
        x = random_point(model, seed)
        value, grad = model.value_and_gradient(x)
        assert value == pytest.approx(model.deviance(x), rel=1e-12)
        reference = central_differences(model, x)
        floor = 1e-3 * np.max(np.abs(reference))
        np.testing.assert_allclose(grad, reference, rtol=1e-5, atol=floor * 1e-2,
                                   err_msg=f"{case}: {model.layout.names}")


def deviance_hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Second central differences of f (4 evaluations per pair)."""
    h = step * np.maximum(1.0, np.abs(x))
    E = np.diag(h)
    H = np.zeros((x.size, x.size))
    for i in range(x.size):
        for j in range(i + 1):
            H[i, j] = H[j, i] = (f(x + E[i] + E[j]) - f(x + E[i] - E[j]) - f(x - E[i] + E[j])
                                 + f(x - E[i] - E[j])) / (4 * h[i] * h[j])
    return H


@pytest.mark.parametrize("case", ["B_across_levels", "mixed_heteroscedastic"])
def test_standard_errors_from_gradient_differences_equal_deviance_hessian(case):
    """The covariance (2 gradients per parameter) equals the inverse of half the Hessian of
    the deviance by second differences (the former method) to 1e-4 in the SEs."""
    model_string, data, family, options = CASES[case]
    fit = semgalamm.fit(model_string, data(), family=family, **options)
    model, x = fit.laplace, fit.optimizer.x
    names, cov = model.covariance(x, fit.state)
    if model.profiled:
        n_outer, p = x.size, model.design.p
        full = np.concatenate([x, fit.state.beta, [np.log(fit.state.sigma)]])

        def deviance(z):
            outer = model.layout.unpack(z[:n_outer])
            return model.objective.full_deviance(
                outer["theta"], outer["lambda"], z[n_outer:n_outer + p], float(np.exp(z[-1])),
                model._profiled_weights(outer))

        slices = model.layout.slices()
        order = [*range(n_outer, n_outer + p), *range(slices["lambda"].start,
                                                      slices["lambda"].stop)]
    else:
        full, deviance = x, model.deviance
        slices = model.layout.slices()
        order = [*range(slices["beta"].start, slices["beta"].stop),
                 *range(slices["lambda"].start, slices["lambda"].stop)]
    free = [i for i in range(full.size) if not model._at_bound(full, i)]
    reference = np.full((full.size, full.size), np.nan)
    hessian = deviance_hessian(deviance, full)
    reference[np.ix_(free, free)] = np.linalg.inv(0.5 * hessian[np.ix_(free, free)])
    expected = np.sqrt(np.diag(reference[np.ix_(order, order)]))
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), expected, rtol=1e-4)


@pytest.mark.parametrize("case", ["loadings_crossed", "heteroscedastic", "B_same_level"])
def test_unprofiled_gaussian_gradient_equals_central_differences(case):
    """The gradient over (theta, lambda, SD ratios, beta, log sigma) used for the SEs."""
    model_string, data, family, options = CASES[case]
    model = laplace_model(model_string, data(), family, **options)
    x = random_point(model, 3)
    state = model.state(x)
    full = np.concatenate([x, state.beta + 0.1, [np.log(state.sigma) + 0.1]])
    n_outer, p = x.size, model.design.p

    def deviance(z):
        outer = model.layout.unpack(z[:n_outer])
        return model.objective.full_deviance(outer["theta"], outer["lambda"],
                                             z[n_outer:n_outer + p], float(np.exp(z[-1])),
                                             model._profiled_weights(outer))

    reference = np.zeros(full.size)
    for j in range(full.size):
        h = 1e-5 * max(1.0, abs(full[j]))
        step = np.zeros(full.size)
        step[j] = h
        reference[j] = (deviance(full + step) - deviance(full - step)) / (2 * h)
    np.testing.assert_allclose(model._full_gaussian_gradient(full), reference, rtol=1e-5,
                               atol=1e-5 * np.max(np.abs(reference)))


def test_dense_selected_inverse_equals_the_recursion(monkeypatch):
    """Without numba the entries of H^{-1} come from a dense inverse: the same values."""
    model = laplace_model(*CASES["loadings_crossed"][:1], CASES["loadings_crossed"][1]())
    x = random_point(model, 4)
    value, grad = model.value_and_gradient(x)
    monkeypatch.setattr(selected_inverse, "HAS_NUMBA", False)
    dense_value, dense_grad = model.value_and_gradient(x)
    assert dense_value == value
    np.testing.assert_allclose(dense_grad, grad, rtol=1e-9, atol=1e-9 * np.max(np.abs(grad)))


def test_selected_inverse_of_blocks_equals_the_dense_inverse():
    """The recursion on a block-diagonal factor (blocks of widths 1 to 6, supernodes without
    rows below) equals the dense inverse on L's pattern."""
    rng = np.random.default_rng(11)
    blocks = []
    for width in (1, 3, 2, 3, 1, 4, 2, 6):
        a = rng.normal(size=(width, width))
        blocks.append(a @ a.T + width * np.eye(width))
    H = sp.block_diag(blocks, format="csc")
    L = cholesky(H, ordering_method="natural").L()
    L.sort_indices()
    dense = np.linalg.inv(H.toarray())
    columns = np.repeat(np.arange(H.shape[0]), np.diff(L.indptr))
    np.testing.assert_allclose(selected_inverse.selected_inverse(L),
                               dense[L.indices, columns], rtol=1e-12, atol=1e-14)
