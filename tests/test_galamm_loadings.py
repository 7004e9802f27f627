"""Measurement models (factor loadings in X(lambda) and Z(lambda)) against galamm 0.3.0.

Figures: tests/fixtures/galamm_loadings.json (copied from galamm's reference fits). Where
galamm stopped at a worse optimum with a variance pinned at 0 (KYPS with constrained
loadings, the small KYPS subset, latent_covariates_long, JUDGEsim), we check that our
deviance *at galamm's estimates* reproduces galamm's log-likelihood (same model) and that our
optimum is higher.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import semgalamm
from tests.conftest import DATA, fixture

KYPS = """
ms =~ 1*time[1] + time[2] + time[3] + time[4]
hs =~ 1*time[3] + time[4]
ms ~ (1 | mid)
hs ~ (1 | hid)
esteem ~ time + (1 | sid)
"""
JUDGE = """
teacher1 =~ 1*item[1] + item[2] + item[3]
teacher2 =~ 1*item[4] + item[5] + item[6]
trait1.t =~ 1*item[1] + item[2] + item[3]
trait2.t =~ 1*item[4] + item[5] + item[6]
trait1.s =~ 1*item[7] + item[8] + item[9]
trait2.s =~ 1*item[10] + item[11] + item[12]
teacher1 ~ (1 | tch); teacher2 ~ (1 | tch)
trait1.t ~ (1 | stu); trait2.t ~ (1 | stu); trait1.s ~ (1 | stu); trait2.s ~ (1 | stu)
response ~ 0 + item + (1 | class)
"""
IRT = ("ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]; "
       "ability ~ (1 | school/sid); y ~ item")
LC = ("loading =~ 1*type[measurement1] + type[measurement2] + type[response] + "
      "type[response]:x; loading ~ (1 | id); y ~ type + x:response")


def _data(name: str) -> pd.DataFrame:
    if name in semgalamm.datasets.DATASETS:
        return semgalamm.load_dataset(name)
    return pd.read_csv(DATA / name)


# id -> (model, data, family, galamm's order of our random-effect blocks, galamm at optimum)
CASES = {
    "v_lmm_factor_kyps": (KYPS, "KYPSsim", "gaussian", ["sid", "hid", "mid"], True),
    "t_lmm_kyps_small": (KYPS, "galamm_t_lmm_kyps_small.csv", "gaussian",
                         ["sid", "mid", "hid"], False),
    "v_lmm_factor_kyps_constr1": (
        KYPS.replace("time[3] + time[4]\nhs", "0*time[3] + 0*time[4]\nhs"),
        "galamm_v_lmm_factor_kyps_constr1.csv", "gaussian", ["sid", "hid", "mid"], False),
    "v_lmm_factor_kyps_constr2b": (
        KYPS.replace("time[2] + time[3] + time[4]", "1*time[2]").replace(
            "1*time[3] + time[4]", "1*time[3] + 1*time[4]"),
        "KYPSsim", "gaussian", ["sid", "hid", "mid"], False),
    "v_glmm_factor_irt_binomial": (IRT, "IRTsim", "binomial", ["school:sid", "school"], True),
    "t_glmm_irt_sid50": (IRT.replace("ability", "abil.sid"), "galamm_t_glmm_irt_sid50.csv",
                         "binomial", ["school:sid", "school"], True),
    "t_lmm_irtsub": ("abil.sid =~ 1*item[1] + item[2] + item[3]; abil.sid ~ (1 | school/sid);"
                     " y ~ 0 + item", "galamm_t_lmm_irtsub.csv", "gaussian",
                     ["school:sid", "school"], True),
    "v_lc_int_x": (LC, "latent_covariates.csv", "gaussian", ["id"], True),
    "v_lc_noint": (LC.replace(" + type[response]:x", ""), "latent_covariates.csv", "gaussian",
                   ["id"], True),
    "v_lcl_int_x": (LC + " + (0 + response | id)", "latent_covariates_long.csv", "gaussian",
                    ["id:loading", "id:response"], False),
    "v_lmm_factor_judge": (JUDGE, "JUDGEsim.csv", "gaussian", ["stu", "tch", "class"], False),
}
SLOW = {"v_lmm_factor_judge"}
_FITS: dict[str, semgalamm.FitResult] = {}


def _fit(case_id: str) -> semgalamm.FitResult:
    if case_id not in _FITS:
        model, data, family, _, _ = CASES[case_id]
        _FITS[case_id] = semgalamm.fit(model, _data(data), family=family)
    return _FITS[case_id]


def _params(at_optimum: bool | None = None):
    return [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES
            if at_optimum is None or CASES[c][4] == at_optimum]


def _close(ours: np.ndarray, ref: np.ndarray, se: np.ndarray) -> bool:
    """1e-3 relative, or 2% of the standard error where the likelihood is flat in that
    direction (loadings near 0 with SE 0.15 are determined only to ~1e-4 by any optimizer)."""
    return bool(np.all(np.abs(ours - ref) <= np.maximum(1e-3 * np.abs(ref), 2e-2 * se)))


@pytest.mark.parametrize("case_id", _params(at_optimum=True))
def test_loglik_estimates_and_standard_errors(case_id):
    ref = fixture("galamm_loadings")[case_id]
    fit = _fit(case_id)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert _close(fit.fixef.to_numpy(), np.array(ref["fixef"]), np.array(ref["fixef_se"]))
    lam_se = np.array(ref["lambda_se"])
    assert _close(fit.state.lam, np.array(ref["lambda"]), lam_se)
    np.testing.assert_allclose(fit.fixef_se.to_numpy(), ref["fixef_se"], rtol=1e-2)
    free = fit.loading_estimates().query("free")
    np.testing.assert_allclose(free.se.to_numpy(), lam_se, rtol=1e-2)


def _galamm_point(case_id: str, fit: semgalamm.FitResult) -> np.ndarray:
    """galamm's theta, reordered into our block order."""
    ref = fixture("galamm_loadings")[case_id]
    values = dict(zip(ref["parameter_names"], ref["parameters"]))
    theta = [values[f"theta{i + 1}"] for i in range(len(fit.design.theta_names()))]
    order = CASES[case_id][3]
    by_block, start = {}, 0
    for key in order:
        block = next(b for b in fit.design.blocks
                     if key in (b.group, f"{b.group}:{b.columns[0]}"))
        by_block[id(block)] = theta[start:start + block.n_theta]
        start += block.n_theta
    return np.concatenate([by_block[id(b)] for b in fit.design.blocks])


@pytest.mark.parametrize("case_id", _params(at_optimum=False))
def test_same_model_as_galamm_and_a_better_optimum(case_id):
    ref = fixture("galamm_loadings")[case_id]
    fit = _fit(case_id)
    theta = _galamm_point(case_id, fit)
    lam, beta = np.array(ref["lambda"]), np.array(ref["fixef"])
    if fit.laplace.profiled:
        deviance = fit.laplace.objective.full_deviance(theta, lam, beta, ref["sigma"],
                                                       fit.design.weights)
    else:
        deviance = fit.laplace.deviance(np.concatenate([theta, beta, lam]))
    assert -0.5 * deviance == pytest.approx(ref["logLik"], abs=1e-4)
    assert fit.converged
    assert fit.loglik > ref["logLik"] + 1.0
    if ref["better_optimum"] is not None:  # lme4's optimum of the same model
        assert fit.loglik == pytest.approx(ref["better_optimum"], abs=1e-3)


def test_binomial_trials_equal_expanded_bernoulli_rows():
    """A binomial row with n trials carries the same information as n Bernoulli rows: the
    log-likelihoods differ exactly by the sum of log binomial coefficients."""
    from scipy.special import gammaln

    data = pd.read_csv(DATA / "galamm_t_glmm_trials_no_loading.csv")
    data = data[data.sid <= 60]
    model = ("ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]; "
             "ability ~ (1 | school/sid); {lhs} ~ item")
    with_trials = semgalamm.fit(model.format(lhs="cbind(y, trials - y)"), data,
                                family="binomial")
    rows = data.loc[data.index.repeat(data.trials)].copy()
    rows["y01"] = np.concatenate([np.r_[np.ones(s), np.zeros(n - s)]
                                  for s, n in zip(data.y, data.trials)])
    bernoulli = semgalamm.fit(model.format(lhs="y01"), rows, family="binomial")
    log_choose = float(np.sum(gammaln(data.trials + 1) - gammaln(data.y + 1)
                              - gammaln(data.trials - data.y + 1)))
    assert with_trials.loglik == pytest.approx(bernoulli.loglik + log_choose, abs=1e-4)
    np.testing.assert_allclose(with_trials.state.lam, bernoulli.state.lam, rtol=1e-3)


def test_all_loadings_fixed_to_one_is_the_glmm():
    """Loadings fixed at 1 give lme4's/galamm's random-intercept model (no loading)."""
    ref = fixture("galamm_loadings")["t_glmm_trials_no_loading"]
    data = pd.read_csv(DATA / "galamm_t_glmm_trials_no_loading.csv")
    # galamm's model has item as a numeric slope; an indicator column is categorical, so the
    # slope uses a numeric copy of it.
    fit = semgalamm.fit("a =~ 1*item[1] + 1*item[2] + 1*item[3] + 1*item[4] + 1*item[5]; "
                        "a ~ (1 | school/sid); cbind(y, trials - y) ~ 1 + item_number",
                        data.assign(item_number=data["item"].astype(float)), family="binomial")
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)


def test_loadings_table_and_confint():
    fit = _fit("v_lmm_factor_kyps")
    table = fit.loadings
    assert list(table.columns) == ["ms", "ms SE", "hs", "hs SE"]
    assert table.loc["time[1]", "ms"] == 1.0 and np.isnan(table.loc["time[1]", "ms SE"])
    ci = fit.confint()
    lam = ci.loc["hs=~time[4]"]
    assert lam["2.5 %"] < lam["estimate"] < lam["97.5 %"]
    assert "Loadings:" in fit.summary()
