"""Small datasets shipped with semgalamm, for examples, the demo and tests.

``load_dataset(name)`` returns a DataFrame whose factor columns are pandas categoricals in the
level order R uses (which decides treatment contrasts and indicator levels).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from semgalamm.design.frame import nearest

# dataset -> (description, {column: levels in R's order, or None for sorted levels})
DATASETS: dict[str, tuple[str, dict[str, list[str] | None]]] = {
    "sleepstudy": ("Reaction times of 18 subjects over 10 days of sleep deprivation (lme4).",
                   {"Subject": None}),
    "cbpp": ("Contagious bovine pleuropneumonia: cases out of herd size, 15 herds x 4 periods "
             "(lme4).", {"herd": None, "period": ["1", "2", "3", "4"]}),
    "KYPSsim": ("Simulated self-esteem of 2,924 students at 4 times in crossed middle and high "
                "schools (PLmixed).", {}),
    "IRTsim": ("Simulated binary responses of 500 students in 26 schools to 5 items (PLmixed).",
               {}),
}


def load_dataset(name: str) -> pd.DataFrame:
    """Load a shipped dataset by name (see ``DATASETS`` for the list)."""
    if name not in DATASETS:
        raise KeyError(
            f"No dataset named '{name}'.{nearest(name, DATASETS)} Available: "
            f"{', '.join(DATASETS)}."
        )
    path = resources.files("semgalamm") / "datasets" / "data" / f"{name}.csv"
    with path.open("r") as handle:
        frame = pd.read_csv(handle)
    for column, levels in DATASETS[name][1].items():
        values = frame[column]
        if levels is None:
            levels = [str(v) for v in sorted(values.unique())]
        frame[column] = pd.Categorical(values.astype(str), categories=levels)
    return frame


__all__ = ["load_dataset", "DATASETS"]
