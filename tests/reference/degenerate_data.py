"""Write tests/data/degenerate_poisson.csv: the synthetic data of issue 10's minimal cases.

Run from the repository root (``.venv/bin/python tests/reference/degenerate_data.py``), then
``Rscript tests/reference/degenerate_glmer.R`` fits the Poisson models with lme4. The data are
stored (numpy's Generator streams may change between numpy versions); the tests read the CSV.

Columns: y, x, z (standard normal), item ("1".."4" repeated), g (20 groups of 20 rows),
b (0/1), cnt (Poisson with mean 100 exp(0.1 x), truth: intercept log(100) = 4.605, slope 0.1),
cnt1000 (1000 times a Poisson(2) count: large, overdispersed counts), cnt_re (Poisson with
mean 100 exp(0.1 x + u_g), u_g ~ N(0, 0.3^2) by group g: truth 4.605, 0.1, SD 0.3).
"""

from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(1)
n = 400
d = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "z": rng.normal(size=n),
                  "item": np.tile(["1", "2", "3", "4"], n // 4),
                  "g": np.repeat([f"g{i}" for i in range(20)], n // 20),
                  "b": rng.integers(0, 2, n)})
d["cnt"] = rng.poisson(100 * np.exp(0.1 * d["x"]))
d["cnt1000"] = rng.poisson(2, n) * 1000
u = rng.normal(scale=0.3, size=20)  # group effects, SD 0.3
d["cnt_re"] = rng.poisson(100 * np.exp(0.1 * d["x"] + u[np.repeat(np.arange(20), n // 20)]))
out = Path(__file__).resolve().parents[1] / "data" / "degenerate_poisson.csv"
d.to_csv(out, index=False, float_format="%.17g")
print(f"wrote {out} ({len(d)} rows)")
