"""Path diagrams (docs/output.md): the graph's nodes, shapes, edges and labels read from its
dot source, and, where Graphviz's dot program is installed, the rendered SVG."""

from __future__ import annotations

import re
import shutil
import sys

import pytest

import semgalamm
from tests.test_structural_long import SCHOOLS

graphviz = pytest.importorskip("graphviz")
HAS_DOT = shutil.which("dot") is not None
HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
POLDEM = """
ind60 =~ x1 + x2 + x3
dem60 =~ y1 + y2 + y3 + y4
dem65 =~ y5 + y6 + y7 + y8
dem60 ~ ind60
dem65 ~ ind60 + dem60
y1 ~~ y5
"""


def shapes(source: str) -> dict[str, str]:
    """node id -> shape, from the dot source."""
    return {m.group(1).strip('"'): m.group(2)
            for m in re.finditer(r'^\s*("[^"]+"|\S+) \[label=.*?shape=(\w+)', source, re.M)}


def edges(source: str) -> dict[tuple[str, str], str]:
    """(tail, head) -> the edge's attributes."""
    return {(m.group(1).strip('"'), m.group(2).strip('"')): m.group(3)
            for m in re.finditer(r'^\s*("[^"]+"|\S+) -> ("[^"]+"|\S+) \[(.*)\]$', source, re.M)}


def svg_text(graph) -> str:
    return graph.pipe("svg").decode()


def test_cfa_diagram():
    fit = semgalamm.cfa(HS, semgalamm.load_dataset("HolzingerSwineford1939"))
    graph = fit.path_diagram(standardized=True)
    assert isinstance(graph, graphviz.Digraph)
    nodes = shapes(graph.source)
    assert {nodes[n] for n in ("visual", "textual", "speed")} == {"ellipse"}
    assert {nodes[f"x{i}"] for i in range(1, 10)} == {"box"}
    links = edges(graph.source)
    assert 'label="0.55 (0.42)"' in links[("visual", "x2")]  # lavaan: 0.554, std.all 0.424
    assert "dashed" in links[("visual", "textual")] and "dir=both" in links[("visual", "textual")]
    assert ("x1", "x1") not in links  # residual variances only on request
    assert ("x1", "x1") in edges(fit.path_diagram(residuals=True).source)
    if HAS_DOT:
        svg = svg_text(graph)
        assert all(f">{name}<" in svg for name in ("visual", "textual", "speed", "x9"))


def test_sem_with_regressions_diagram():
    fit = semgalamm.sem(POLDEM, semgalamm.load_dataset("PoliticalDemocracy"))
    source = fit.path_diagram().source
    links = edges(source)
    b = fit.parameter_estimates().query("lhs == 'dem65' and op == '~' and rhs == 'dem60'")
    assert f"label={b.est.iloc[0]:.2f}" in links[("dem60", "dem65")]  # regression arrow
    assert ("ind60", "dem60") in links and ("ind60", "dem65") in links
    assert "dashed" in links[("y1", "y5")]
    if HAS_DOT:
        assert ">dem65<" in svg_text(fit.path_diagram())


def test_multilevel_galamm_diagram():
    fit = semgalamm.fit(SCHOOLS, semgalamm.load_dataset("schoolclimate"))
    graph = fit.path_diagram(residuals=True)
    source = graph.source
    nodes = shapes(source)
    assert nodes["climate"] == nodes["ability"] == "ellipse"
    assert nodes["item[c2]"] == "box"
    assert re.search(r"subgraph cluster_school \{[^}]*label=\"level: school\"[^}]*climate",
                     source)
    assert re.search(r'subgraph "cluster_school:pupil" \{[^}]*ability', source)
    links = edges(source)
    loading = fit.loading_estimates().set_index("indicator").loc["item[c2]", "estimate"]
    assert f"label={loading:.2f}" in links[("climate", "item[c2]")]
    assert ("climate", "ability") in links
    assert f"residual sd {fit.sigma:.2f}" in source
    if HAS_DOT:
        svg = svg_text(graph)
        assert ">level: school:pupil<" in svg and ">item[a3]<" in svg


def test_two_level_sem_has_a_cluster_per_level():
    model = "level: 1\nfw =~ y1 + y2 + y3\nlevel: 2\nfb =~ y1 + y2 + y3"
    fit = semgalamm.sem(model, semgalamm.load_dataset("Demo.twolevel"), cluster="cluster")
    source = fit.path_diagram().source
    assert source.count("subgraph cluster_") == 2
    nodes = shapes(source)
    levels = sorted({n.split("__")[0] for n in nodes})
    assert len(levels) == 2 and nodes[f"{levels[0]}__y1"] == "box"


def test_multi_group_sem_has_a_cluster_per_group():
    fit = semgalamm.cfa(HS, semgalamm.load_dataset("HolzingerSwineford1939"), group="school")
    source = fit.path_diagram().source
    assert source.count("subgraph cluster_") == 2
    assert 'label="group Pasteur"' in source and 'label="group Grant-White"' in source
    links = edges(source)
    assert ("1__visual", "1__x1") in links and ("2__visual", "2__x1") in links



def test_missing_graphviz_names_the_extra(monkeypatch):
    from semgalamm.results.checks import MissingDependencyError

    fit = semgalamm.fit("Reaction ~ Days + (1 | Subject)", semgalamm.load_dataset("sleepstudy"))
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import fails
    with pytest.raises(MissingDependencyError, match=r"pip install semgalamm\[diagram\]"):
        fit.path_diagram()
    with pytest.raises(ImportError):
        fit.path_diagram()
