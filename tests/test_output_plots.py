"""Diagnostic and caterpillar plots (docs/output.md), drawn on an Agg canvas: the tests read
the artists' data back, not only that a figure exists."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy.stats import norm

import semgalamm
from semgalamm.errors import SpecError

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


@cache
def sleep_fit() -> semgalamm.FitResult:
    return semgalamm.fit("Reaction ~ Days + (Days | Subject)",
                         semgalamm.load_dataset("sleepstudy"))


def test_diagnostics_draw_the_residuals():
    fit = sleep_fit()
    fig = fit.plot_diagnostics()
    fitted_ax, qq_ax, group_ax = fig.axes
    points = fitted_ax.collections[0].get_offsets()
    np.testing.assert_allclose(points[:, 0], fit.fitted())
    np.testing.assert_allclose(points[:, 1], fit.residuals("pearson"))
    qq = qq_ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.sort(points[:, 1]), qq[:, 1])
    assert qq[0, 0] == pytest.approx(norm.ppf(0.5 / 180))
    labels = [t.get_text() for t in group_ax.get_yticklabels()]
    assert labels == [str(v) for v in fit.ranef()["Subject"].index]
    assert group_ax.get_ylabel() == "Subject"
    strip = group_ax.collections[0].get_offsets()
    np.testing.assert_allclose(strip[:, 0], points[:, 1])
    assert strip[10, 1] == 1  # row 11 is subject 309's, the second level
    fig.canvas.draw()
    matplotlib.pyplot.close(fig)


def test_caterpillar_plot_draws_modes_and_condvar_intervals():
    fit = sleep_fit()
    fig = fit.plot_ranef(level=0.9)
    intercept, days = fig.axes
    assert intercept.get_title() == "(Intercept)" and days.get_title() == "Days"
    modes = fit.ranef()["Subject"]
    order = list(modes.sort_values("(Intercept)").index)
    assert [t.get_text() for t in intercept.get_yticklabels()] == order
    points = days.collections[1].get_offsets()
    np.testing.assert_allclose(points[:, 0], modes.loc[order, "Days"])
    table = fit.tidy(effects="ran_vals").query("term == 'Days'").set_index("level")
    segments = np.array(days.collections[0].get_segments())
    half = (segments[:, 1, 0] - segments[:, 0, 0]) / 2
    np.testing.assert_allclose(half, norm.ppf(0.95) * table.loc[order, "std_error"])
    matplotlib.pyplot.close(fig)


def test_plot_errors_name_the_problem():
    with pytest.raises(SpecError, match="no grouping factor 'Subjct'. Did you mean 'Subject'"):
        sleep_fit().plot_ranef("Subjct")
    glm = semgalamm.fit("cbind(incidence, size - incidence) ~ period",
                        semgalamm.load_dataset("cbpp"), family="binomial")
    with pytest.raises(SpecError, match="no random effects"):
        glm.plot_ranef()
    assert len(glm.plot_diagnostics().axes) == 2
