"""Simulate semgalamm/datasets/data/schoolclimate.csv: a multilevel SEM on long data.

School climate (a school-level latent, rated by every pupil on items c1-c3) affects pupil
ability (ability = 0.6 climate + 0.8 sin((age - 13) / 1.5) + N(0, 1)), measured by Gaussian
items a1, a2 and a binary item a3 (logit, loading 1.3). Run from the repository root.
"""

import numpy as np
import pandas as pd

CLIMATE_ITEMS = [("c1", 1.0, 3.0, 0.6), ("c2", 0.8, 2.5, 0.6), ("c3", 1.2, 3.2, 0.7)]
ABILITY_ITEMS = [("a1", 1.0, 10.0, 0.8), ("a2", 0.7, 8.0, 0.6)]


def main(schools: int = 30, pupils: int = 10) -> None:
    rng = np.random.default_rng(20261202)
    rows = []
    for s in range(schools):
        school = f"school{s + 1:02d}"
        climate = rng.normal(0, 0.7)
        for p in range(pupils):
            age = rng.uniform(10, 16)
            ability = 0.6 * climate + np.sin((age - 13) / 1.5) * 0.8 + rng.normal(0, 1.0)
            pupil = f"s{s + 1:02d}p{p + 1:02d}"
            for item, loading, intercept, sd in CLIMATE_ITEMS:
                value = intercept + loading * climate + rng.normal(0, sd)
                rows.append((school, pupil, age, item, value))
            for item, loading, intercept, sd in ABILITY_ITEMS:
                value = intercept + loading * ability + rng.normal(0, sd)
                rows.append((school, pupil, age, item, value))
            prob = 1 / (1 + np.exp(-(-0.3 + 1.3 * ability)))
            rows.append((school, pupil, age, "a3", float(rng.random() < prob)))
    data = pd.DataFrame(rows, columns=["school", "pupil", "age", "item", "y"])
    data["age"] = data["age"].round(2)
    data["y"] = data["y"].round(4)
    data.to_csv("semgalamm/datasets/data/schoolclimate.csv", index=False)


if __name__ == "__main__":
    main()
