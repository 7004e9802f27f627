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
    with pytest.raises(SpecError, match="no groups to plot the residuals by"):
        glm.plot_diagnostics(group="herd")


def test_caterpillar_plot_of_a_latent_with_many_levels():
    fit = semgalamm.fit("""
        climate =~ 1*item[c1] + item[c2] + item[c3]
        ability =~ 1*item[a1] + item[a2]
        climate ~ (1 | school)
        ability ~ climate + (1 | school:pupil)
        y ~ 0 + item
    """, semgalamm.load_dataset("schoolclimate").query("item != 'a3'"))
    fig = fit.plot_ranef("school:pupil")
    ax = fig.axes[0]
    assert ax.get_title() == "ability"
    points = ax.collections[1].get_offsets()
    assert len(points) == 300 and np.all(np.diff(points[:, 0]) >= 0)  # sorted modes
    assert ax.get_yticklabels() == [] or not any(t.get_text() for t in ax.get_yticklabels())
    assert ax.get_ylabel() == "school:pupil (300 levels, sorted)"
    assert fig.get_size_inches()[1] == 10.0
    school = fit.plot_ranef()  # the first grouping factor: school, 30 labelled levels
    assert len([t for t in school.axes[0].get_yticklabels() if t.get_text()]) == 30
    matplotlib.pyplot.close("all")

