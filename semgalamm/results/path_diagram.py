"""Path diagrams of fitted models as ``graphviz.Digraph`` objects (the optional extra
``diagram``), drawn as semPlot draws lavaan models: latent variables as ellipses, observed
variables as boxes, loadings and regressions as arrows labelled with their estimates (and
the standardized estimate in parentheses with ``standardized=True``), covariances as dashed
two-headed edges, residual variances (``residuals=True``) as dashed self-loops (a long fit's
residual SDs as the graph's caption), and levels
(two-level SEMs, a GALAMM's grouping factors) and groups as clusters.

Rendering the graph (``graph.render()``, ``graph.pipe("svg")``, a notebook showing it) needs
Graphviz's ``dot`` program (Debian's ``graphviz`` package); building it needs only the
Python package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from semgalamm.errors import SpecError
from semgalamm.results.checks import MissingDependencyError

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult
    from semgalamm.results.sem_result import SemFit


def _digraph(name: str):
    try:
        import graphviz
    except ImportError as error:
        raise MissingDependencyError(
            f"path_diagram() builds a graphviz graph, but the graphviz package could not be "
            f"imported ({error}). Install it with `pip install semgalamm[diagram]` (or `pip "
            "install graphviz`); rendering also needs Graphviz's dot program (e.g. `apt-get "
            "install graphviz`)."
        ) from error
    graph = graphviz.Digraph(name, graph_attr={"rankdir": "LR", "fontsize": "11"},
                             node_attr={"fontsize": "11"}, edge_attr={"fontsize": "10"})
    return graph


def _label(estimate: float, std: float | None, digits: int) -> str:
    text = f"{estimate:.{digits}f}"
    return text if std is None or not np.isfinite(std) else f"{text} ({std:.{digits}f})"


def _node(graph, node_id: str, label: str, latent: bool) -> None:
    graph.node(node_id, label, shape="ellipse" if latent else "box")


# --------------------------------------------------------------------------- SEMs (lavaan)


def sem_diagram(fit: SemFit, standardized: bool = False, residuals: bool = False,
                digits: int = 2):
    """lavaan's model as semPaths draws it: one cluster per group and level when there are
    several (node ids then carry the block, "within__y1"; their labels are the names; no
":" in ids, which graphviz reads as a port)."""
    graph = _digraph("sem")
    table = fit.parameter_estimates()
    table["std"] = fit.standardized_solution()["est_std"].to_numpy() if standardized \
        else np.nan
    keys = [key for key in ("group", "level") if key in table]
    table = table[table.op.isin(["=~", "~", "~~"])]
    if not keys:
        _sem_block(graph, table, "", standardized, residuals, digits)
        return graph
    for block, rows in table.groupby(keys, sort=False):
        block = block if isinstance(block, tuple) else (block,)
        prefix = "".join(f"{value}__" for value in block)
        with graph.subgraph(name=f"cluster_{prefix}") as cluster:
            names = [fit.samples[value - 1].label if key == "group" else value
                     for key, value in zip(keys, block)]
            cluster.attr(label=", ".join(f"{key} {name}" for key, name in zip(keys, names)),
                         style="rounded", color="grey")
            _sem_block(cluster, rows, prefix, standardized, residuals, digits)
    return graph


def _sem_block(target, rows, prefix: str, standardized: bool, residuals: bool,
               digits: int) -> None:
    """The nodes and edges of one group and level (node ids prefixed by ``prefix``)."""
    latents = set(rows.lhs[rows.op == "=~"])
    for name in dict.fromkeys(list(rows.lhs) + list(rows.rhs)):
        _node(target, prefix + name, name, name in latents)
    for row in rows.itertuples():
        label = _label(row.est, row.std if standardized else None, digits)
        a, b = prefix + row.lhs, prefix + row.rhs
        if row.op == "=~":
            target.edge(a, b, label=label)
        elif row.op == "~":
            target.edge(b, a, label=label)
        elif row.lhs != row.rhs:
            target.edge(a, b, label=label, dir="both", style="dashed", constraint="false")
        elif residuals:
            target.edge(a, a, label=label, dir="both", style="dashed")


# --------------------------------------------------------------------------- long data fits


def fit_diagram(fit: FitResult, standardized: bool = False, residuals: bool = False,
                digits: int = 2):
    """A FitResult's model: latents (ellipses) with their indicators (boxes, arrows labelled
    by the loadings), regressions among latents, the covariates of latents (boxes), and each
    latent inside the cluster of the grouping factor it varies over, its node showing the SD
    there. A model without latents: the response (box), its covariates with the fixed
    effects, and a random-effect node (ellipse) per term inside its grouping factor's
    cluster, labelled with its SD. ``standardized`` is not defined for long fits."""
    if standardized:
        raise SpecError(
            "standardized=True is available for SemFits (semgalamm.cfa/sem/growth) only.")
    graph = _digraph("galamm")
    d = fit.design
    sds = [np.sqrt(np.diag(cov)) for cov in fit._block_covariances()]
    latents = list(fit.spec.latents)
    if latents:
        clusters: dict[str, list[str]] = {}
        for block, sd in zip(d.blocks, sds):
            if block.scalar:
                continue
            for column, j, s in zip(block.columns, block.latent, sd):
                if j is not None and column == latents[j]:
                    clusters.setdefault(block.group, []).append(f"{column}\\nsd {s:.{digits}f}")
        placed = set()
        for group, labels in clusters.items():
            with graph.subgraph(name=f"cluster_{group}") as cluster:
                cluster.attr(label=f"level: {group}", style="rounded", color="grey")
                for text in labels:
                    name = text.split("\\n")[0]
                    placed.add(name)
                    _node(cluster, name, text, True)
        for name in latents:
            if name not in placed:
                _node(graph, name, name, True)
        for row in fit.loading_estimates().itertuples():
            _node(graph, row.indicator, row.indicator, False)
            graph.edge(row.latent, row.indicator, label=_label(row.estimate, None, digits))
        if fit.structural is not None:
            for row in fit.structural.itertuples():
                graph.edge(row.rhs, row.lhs, label=_label(row.estimate, None, digits))
        for name, j, beta in zip(d.fixed_names, d.fixed_latent, fit.state.beta):
            if j is not None and not name.startswith("s("):
                covariate = name.replace(f"{latents[j]}:", "").replace(f":{latents[j]}", "")
                _node(graph, covariate, covariate, False)
                graph.edge(covariate, latents[j], label=_label(beta, None, digits))
        for smooth in d.smooths:
            if smooth.latent is not None:
                graph.node(smooth.label, smooth.label, shape="box", style="rounded")
                graph.edge(smooth.label, latents[smooth.latent], label="smooth")
    else:
        _node(graph, "response", fit.spec.response.name, False)
        for name, beta in zip(d.fixed_names, fit.state.beta):
            _node(graph, f"x__{name}", name, False)
            graph.edge(f"x__{name}", "response", label=_label(beta, None, digits))
        for block, sd in zip(d.blocks, sds):
            with graph.subgraph(name=f"cluster_{block.group}") as cluster:
                cluster.attr(label=f"level: {block.group}", style="rounded", color="grey")
                columns = ["(penalized)"] if block.scalar else list(block.columns)
                for column, s in zip(columns, sd):
                    node = f"b__{block.group}__{column}"
                    _node(cluster, node, f"{column}\\nsd {s:.{digits}f}", True)
                    graph.edge(node, "response")
    if residuals and d.dispersion_levels:
        by = d.dispersion_by
        graph.attr(label="residual sd " + ", ".join(
            (f"{by}={level}: " if by else "") + f"{sd:.{digits}f}"
            for level, sd in zip(d.dispersion_levels, fit._group_sigma())))
    return graph
