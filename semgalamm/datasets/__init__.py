"""Small datasets shipped with semgalamm, for examples, the demo and tests.

``load_dataset(name)`` returns a DataFrame whose factor columns are pandas categoricals in the
level order R uses (which decides treatment contrasts and indicator levels); its
``attrs["name"]`` is the dataset's name, which a fit's summary shows as lme4's "Data:" line.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from semgalamm.errors import nearest

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
    # lavaan's data sets. R's level order for school is Grant-White, Pasteur; lavaan numbers
    # groups in order of first appearance in the data instead (group 1 = Pasteur).
    "HolzingerSwineford1939": ("Mental ability test scores x1-x9 of 301 seventh- and "
                               "eighth-grade children in two schools (lavaan).",
                               {"school": ["Grant-White", "Pasteur"]}),
    "PoliticalDemocracy": ("Industrialization (1960) and political democracy (1960, 1965) "
                           "indicators for 75 developing countries (lavaan).", {}),
    "Demo.growth": ("Simulated repeated measures t1-t4 with covariates x1, x2 and "
                    "time-varying covariates c1-c4, 400 cases (lavaan).", {}),
    "Demo.twolevel": ("Simulated two-level data: 2,500 cases in 200 clusters, within "
                      "covariates x1-x3, cluster covariates w1, w2 (lavaan).", {}),
    "schoolclimate": ("Simulated long data: 300 pupils in 30 schools rate their school's "
                      "climate (items c1-c3) and answer ability items a1, a2 (Gaussian) and a3 "
                      "(binary); ability = 0.6 climate + f(age) + error "
                      "(scripts/simulate_schoolclimate.py).",
                      {"item": ["c1", "c2", "c3", "a1", "a2", "a3"]}),
    "diet": ("Diet and heart disease of 333 men (galamm's diet): per man two fiber intakes "
             "(item fiber1, fiber2; Gaussian) and coronary heart disease (item chd; 0/1), with "
             "age, bus (1 = bus driver) and 0/1 columns chd, fiber, fiber2 marking the item.",
             {"item": ["chd", "fiber1", "fiber2"]}),
    "cognition": ("Simulated cognitive tests of 200 people at 8 time points (galamm's cognition, "
                  "its Gaussian domains 1 and 3: items 11-13 and 31-34), x the time-varying "
                  "covariate; x and y rounded to 4 decimals.",
                  {"domain": None, "item": None}),
    "wine": ("Bitterness ratings (1-5, ordinal) of wine by 9 judges, 8 bottles each, at two "
             "temperatures and two contact conditions (ordinal's wine; response the "
             "continuous score).", {"temp": ["cold", "warm"], "contact": ["no", "yes"],
                                    "bottle": None, "judge": None}),
    "grouseticks": ("Ticks counted on 403 red grouse chicks in 118 broods, 63 locations, "
                    "1995-1997, with the location's height (lme4's grouseticks; cHEIGHT "
                    "centred).", {"BROOD": None, "YEAR": ["95", "96", "97"],
                                  "LOCATION": None}),
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
    frame.attrs["name"] = name  # summary()'s "Data:" line
    return frame


__all__ = ["load_dataset", "DATASETS"]
