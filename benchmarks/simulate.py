"""Simulated data for the crossed random-intercept benchmarks.

Pure numpy + pandas (no semgalamm import), so the same frames can be written to
CSV for R (``tests/reference/lme4_benchmarks.R``) and rebuilt in Python.

    python benchmarks/simulate.py /tmp/semgalamm_bench

writes ``crossed_gaussian.csv`` and ``crossed_binomial.csv`` into that folder.
The frames depend only on ``n_rows`` and ``seed`` (numpy's PCG64 generator);
``tests/fixtures/lme4_benchmarks.json`` stores checksums of the defaults
(``data_check``) so a test can confirm a rebuilt frame is the one lme4 fitted.

Model (three crossed random-intercept factors, every level used):

    eta = b0 + 0.5 * x + a[f1] + b[f2] + c[f3]
    f1: 1,000 levels, SD 1.0;  f2: 200 levels, SD 0.5;  f3: 50 levels, SD 0.3
    gaussian: y = eta + e, e ~ N(0, 1), b0 = 1
    binomial: y ~ Bernoulli(1 / (1 + exp(-eta))), b0 = -0.5
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

FACTORS = (("f1", "a", 1000, 1.0), ("f2", "b", 200, 0.5), ("f3", "c", 50, 0.3))
SLOPE = 0.5


def _level_labels(prefix: str, n_levels: int) -> np.ndarray:
    return np.array([f"{prefix}{i:04d}" for i in range(1, n_levels + 1)], dtype=object)


def _crossed_design(n_rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Covariate x, three crossed factors and the random part of the predictor."""
    x = rng.standard_normal(n_rows)
    frame = {"x": x}
    random_part = np.zeros(n_rows)
    for name, prefix, n_levels, sd in FACTORS:
        # Balanced assignment in random order: each level gets n_rows // n_levels
        # or one more rows, so every level occurs when n_rows >= n_levels.
        idx = rng.permutation(np.arange(n_rows) % n_levels)
        effects = sd * rng.standard_normal(n_levels)
        random_part += effects[idx]
        frame[name] = _level_labels(prefix, n_levels)[idx]
    return pd.DataFrame(frame), SLOPE * x + random_part


def crossed_gaussian(n_rows: int = 50_000, seed: int = 2026) -> pd.DataFrame:
    """y = 1 + 0.5 x + a[f1] + b[f2] + c[f3] + e, residual SD 1.0."""
    rng = np.random.default_rng(seed)
    frame, eta = _crossed_design(n_rows, rng)
    y = 1.0 + eta + rng.standard_normal(n_rows)
    frame.insert(0, "y", y)
    return frame


def crossed_binomial(n_rows: int = 50_000, seed: int = 2027) -> pd.DataFrame:
    """0/1 response, logit(P(y = 1)) = -0.5 + 0.5 x + a[f1] + b[f2] + c[f3]."""
    rng = np.random.default_rng(seed)
    frame, eta = _crossed_design(n_rows, rng)
    prob = 1.0 / (1.0 + np.exp(-(-0.5 + eta)))
    y = (rng.random(n_rows) < prob).astype(np.int64)
    frame.insert(0, "y", y)
    return frame


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python benchmarks/simulate.py OUTPUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("crossed_gaussian", crossed_gaussian),
                       ("crossed_binomial", crossed_binomial)):
        path = out / f"{name}.csv"
        make().to_csv(path, index=False)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
