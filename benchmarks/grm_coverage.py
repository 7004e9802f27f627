"""Recovery of a graded response model: Wald 95% coverage of loadings and thresholds.

Each replicate simulates ``--persons`` people answering 5 items with 4 ordered categories,

    P(y_pi <= j) = logistic(tau_ij - a_i eta_p),   eta_p ~ N(0, 1),

loadings a = (1, 1.5, 0.8, 1.2, 2.0) (the first fixed at 1, so the latent SD is estimated and
equals 1) and item-specific thresholds tau, and fits

    y ~ 0
    ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]
    ability ~ (1 | person)

with ``family="ordinal"``. It records, for the 4 free loadings and the 15 thresholds, whether
estimate +- 1.96 SE covers the truth, and reports the coverage of each kind of parameter with
its Monte Carlo SE. Goal (issue 13): 93-97% over 200 replicates.

    python benchmarks/grm_coverage.py --replicates 200 --workers 2
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import semgalamm  # noqa: E402
from semgalamm.results.ordinal import family_parameter_values  # noqa: E402

LOADINGS = np.array([1.0, 1.5, 0.8, 1.2, 2.0])
THRESHOLDS = np.array([[-1.5, 0.0, 1.5], [-1.0, 0.5, 2.0], [-2.0, -0.5, 0.8],
                       [-0.8, 0.3, 1.2], [-1.2, 0.2, 1.8]])
MODEL = """
    y ~ 0
    ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]
    ability ~ (1 | person)
"""


def simulate(seed: int, persons: int) -> pd.DataFrame:
    """Long data: person, item (1-5) and the category y (1-4)."""
    rng = np.random.default_rng(seed)
    eta = rng.normal(size=persons)
    cumulative = 1.0 / (1.0 + np.exp(-(THRESHOLDS[None, :, :]
                                       - LOADINGS[None, :, None] * eta[:, None, None])))
    y = 1 + np.sum(rng.uniform(size=(persons, len(LOADINGS), 1)) > cumulative, axis=2)
    return pd.DataFrame({"person": np.repeat(np.arange(persons), len(LOADINGS)).astype(str),
                         "item": np.tile(np.arange(1, len(LOADINGS) + 1), persons),
                         "y": y.ravel()})


def replicate(task: tuple[int, int]) -> dict[str, object]:
    """Coverage indicators of one simulated data set."""
    seed, persons = task
    data = simulate(seed, persons)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = semgalamm.fit(MODEL, data, family="ordinal")
    cov = fit.vcov()
    loadings = fit.loading_estimates()
    free = loadings[loadings.free]
    truth = {f"item[{i}]": a for i, a in enumerate(LOADINGS, start=1)}
    loading_hit = [abs(r.estimate - truth[r.indicator]) <= 1.959964 * r.se
                   for r in free.itertuples()]
    thresholds = family_parameter_values(fit)
    se = np.sqrt(np.diag(cov.loc[thresholds.index, thresholds.index]))
    threshold_hit = np.abs(thresholds.to_numpy() - THRESHOLDS.ravel()) <= 1.959964 * se
    return {"seed": seed, "converged": fit.converged, "loadings": loading_hit,
            "thresholds": list(threshold_hit), "seconds": time.perf_counter() - started}


def report(results: list[dict[str, object]]) -> str:
    lines = [f"replicates: {len(results)}, converged: "
             f"{sum(bool(r['converged']) for r in results)}"]
    for kind in ("loadings", "thresholds"):
        hits = np.concatenate([np.asarray(r[kind], dtype=float) for r in results])
        coverage = hits.mean()
        mc_se = np.sqrt(coverage * (1 - coverage) / len(results))  # per-replicate SE scale
        lines.append(f"{kind}: coverage {100 * coverage:.1f}% of {hits.size} intervals "
                     f"(Monte Carlo SE about {100 * mc_se:.1f}%)")
    seconds = np.array([r["seconds"] for r in results], dtype=float)
    lines.append(f"seconds per fit: median {np.median(seconds):.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--persons", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    tasks = [(args.seed * 10_000 + r, args.persons) for r in range(args.replicates)]
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(replicate, tasks))
    else:
        results = [replicate(task) for task in tasks]
    print(report(results))


if __name__ == "__main__":
    main()
