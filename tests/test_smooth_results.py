"""Smooth terms: results API (summary, smooth(), plot_smooth(), predict()) and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, SpecError, UnsupportedError
from tests.conftest import cached_fit, load_csv

GAMM = ("y ~ s(x) + (1 | id)", "galamm_v_semi_gamm_gaussian.csv")


def test_summary_lists_smooths_with_edf_and_variance():
    fit = cached_fit(*GAMM)
    text = fit.summary()
    assert "Smooth terms:" in text and "s(x)" in text
    table = fit.smooths()
    assert list(table.index) == ["s(x)"]
    assert 1 < table.loc["s(x)", "edf"] < table.loc["s(x)", "k"]
    vc = fit.varcorr().set_index("group")
    assert float(table.loc["s(x)", "variance"]) == pytest.approx(vc.loc["s(x)", "variance"],
                                                                 rel=1e-3)
    assert not fit.is_singular


def test_smooth_default_grid_and_standard_errors():
    fit = cached_fit(*GAMM)
    values = fit.smooth("s(x)", n=50)
    x = fit.design.frame["x"]
    assert values.shape[0] == 50 and values["x"].iloc[0] == x.min()
    assert values["x"].iloc[-1] == x.max()
    assert np.all(values["se"] > 0)
    assert np.all(values["se_with_mean"] > values["se"])  # the intercept's uncertainty added
    pd.testing.assert_frame_equal(fit.smooth(0, at=[0.2, 0.4]),
                                  fit.smooth("s(x)", at={"x": [0.2, 0.4]}))


def test_predict_is_the_fixed_part_plus_smooth():
    """Without other random effects the population prediction at the data is the fitted
    linear predictor; with them it differs by Z b exactly."""
    plain = cached_fit("y ~ s(x)", "galamm_t_gamm4_s.csv")
    np.testing.assert_allclose(plain.predict(plain.design.frame), plain.linear_predictor(),
                               atol=1e-10)
    fit = cached_fit(*GAMM)
    b = fit.ranef()["id"]["(Intercept)"]
    ids = fit.design.frame["id"].astype(str).map(dict(zip(b.index, b)))
    np.testing.assert_allclose(fit.predict(fit.design.frame, conditional=False) + ids.to_numpy(),
                               fit.linear_predictor(), atol=1e-8)
    binomial = cached_fit("y ~ s(x0)", "galamm_t_gamsim1_binary_s.csv", "binomial")
    new = pd.DataFrame({"x0": [0.1, 0.5]})
    np.testing.assert_allclose(binomial.predict(new, type="response"),
                               1 / (1 + np.exp(-binomial.predict(new, type="link"))))


def test_plot_smooth_draws_band_rug_and_residuals():
    import matplotlib

    matplotlib.use("Agg")
    fit = cached_fit(*GAMM)
    ax = fit.plot_smooth("s(x)", residuals=True)
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "s(x)"
    assert len(ax.collections) == 2  # the band and the partial residuals
    import matplotlib.pyplot as plt

    plt.close("all")


def test_unknown_smooth_names_the_available_ones():
    fit = cached_fit(*GAMM)
    with pytest.raises(SpecError, match="'s\\(x\\)'"):
        fit.smooth("s(z)")


def test_predict_needs_the_model_columns():
    fit = cached_fit(*GAMM)
    with pytest.raises(DataError, match="'x'"):
        fit.predict(pd.DataFrame({"z": [1.0]}))


@pytest.mark.parametrize("model, error, message", [
    ("y ~ te(x, z)", UnsupportedError, "uses te()"),
    ('y ~ s(x, bs = "ps")', UnsupportedError, 'bs="ps"'),
    ("y ~ s(x, id = 1)", UnsupportedError, "option 'id'"),
    ("y ~ s(x, k = c(4, 5))", SpecError, "c\\(...\\) is for t2"),
    ("y ~ t2(x, z, k = c(4, 5, 6))", SpecError, "one value per covariate"),
    ("y ~ t2(x, fx = TRUE)", SpecError, "no fx"),
    ("y ~ s(x, by = 2)", SpecError, "must name a column"),
    ("y ~ s(x, k = 50)", DataError, "lower k"),
    ("y ~ s(w)", DataError, "'w'"),
])
def test_bad_smooths_raise_clear_errors(model, error, message):
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"y": rng.normal(size=30), "x": rng.uniform(size=30),
                         "z": rng.uniform(size=30)})
    with pytest.raises(error, match=message):
        semgalamm.fit(model, data)


def test_latent_with_only_a_smooth_needs_no_random_term():
    data = load_csv("galamm_t_gamm_factor_sl_tp1.csv")
    fit = semgalamm.fit("loading =~ 1*item[11] + item[12] + item[13]; loading ~ s(x); "
                        "y ~ 0 + item", data)
    assert fit.converged
    assert [b.group for b in fit.design.blocks] == ["s(x):loading"]


def test_predict_latent_smooth_uses_the_loadings():
    """A latent's smooth enters each row times its loading, also in predictions."""
    fit = cached_fit("loading =~ 1*item[11] + item[12] + item[13]; loading ~ s(x); "
                     "y ~ 0 + item", "galamm_t_gamm_factor_sl_tp1.csv")
    np.testing.assert_allclose(fit.predict(fit.design.frame), fit.linear_predictor(),
                               atol=1e-8)
    new = pd.DataFrame({"x": [0.3, 0.3], "item": [11, 12]})
    f = fit.smooth("s(x):loading", at=[0.3])["estimate"].iloc[0]
    predicted = fit.predict(new)
    lam = fit.state.lam[0]
    beta = fit.fixef
    assert predicted[0] - beta["item11"] == pytest.approx(f, abs=1e-8)  # loading 1
    assert predicted[1] - beta["item12"] == pytest.approx(lam * f, abs=1e-8)
