"""Scaling benchmark: fit time and peak memory of a simulated GALAMM at 10^4 to 10^6 rows.

Model (docs/scaling.md): two correlated latent traits of each person, each measured by four
items with loadings (the item is the indicator factor), and a rater random intercept crossed
with the persons:

    y_r = nu_item + lambda_item * trait_{k(item)}[person] + u[rater] + e    (Gaussian)
    logit P(y_r = 1) = nu_item + lambda_item * trait_{k(item)}[person] + u[rater]   (binomial)

Every person answers the eight items once, each answer scored by a rater drawn at random
from RATERS. Each size is fitted in its own subprocess, which reports the fit's seconds and its
peak resident memory (VmHWM, including Python, the data and the design), so one size's memory
does not hide the next. Each process first fits a 1,000-row version, untimed, so that one-off
costs (imports, loading numba's compiled code) do not enter the exponent.

    python benchmarks/scaling.py [--rows 10000 100000 1000000] [--family gaussian binomial]
                                 [--timeout 900] [--write]

--write merges the figures into benchmarks/results_scaling.json (a size and family measured
again replaces the stored one) and writes benchmarks/results_scaling.md and
docs/img/scaling.png (matplotlib) from all of them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from environment import engine_description, machine

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results_scaling.md"
RAW = ROOT / "benchmarks" / "results_scaling.json"
FAMILIES = ["gaussian", "binomial"]
PLOT = ROOT / "docs" / "img" / "scaling.png"

ITEMS = ("a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4")
LOADINGS = np.array([1.0, 0.8, 1.2, 0.9, 1.0, 1.1, 0.7, 0.9])
INTERCEPTS = np.array([0.0, 0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.0])
TRAIT_SD = (1.0, 0.8)
TRAIT_CORRELATION = 0.4
RATERS = 100
WARM_UP_ROWS = 1000  # fitted first in each process, untimed: imports, numba's cache, caches
RATER_SD = 0.5
RESIDUAL_SD = 0.7
MODEL = """
trait1 =~ 1*item[a1] + item[a2] + item[a3] + item[a4]
trait2 =~ 1*item[b1] + item[b2] + item[b3] + item[b4]
trait1 ~ (1 | person); trait2 ~ (1 | person)
y ~ 0 + item + (1 | rater)
"""


def simulate(rows: int, family: str, seed: int = 11) -> pd.DataFrame:
    """rows // 8 persons x 8 items, a random rater per answer (rows rounded down to 8s)."""
    rng = np.random.default_rng(seed)
    persons = rows // len(ITEMS)
    cov = np.array([[TRAIT_SD[0] ** 2, TRAIT_CORRELATION * TRAIT_SD[0] * TRAIT_SD[1]],
                    [TRAIT_CORRELATION * TRAIT_SD[0] * TRAIT_SD[1], TRAIT_SD[1] ** 2]])
    traits = rng.multivariate_normal(np.zeros(2), cov, size=persons)
    raters = rng.normal(0.0, RATER_SD, RATERS)
    person = np.repeat(np.arange(persons), len(ITEMS))
    item = np.tile(np.arange(len(ITEMS)), persons)
    rater = rng.integers(0, RATERS, person.size)
    trait_of_item = np.where(item < 4, 0, 1)
    eta = (INTERCEPTS[item] + LOADINGS[item] * traits[person, trait_of_item]
           + raters[rater])
    if family == "gaussian":
        y = eta + rng.normal(0.0, RESIDUAL_SD, eta.size)
    else:
        y = (rng.random(eta.size) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int64)
    return pd.DataFrame({
        "y": y,
        "item": pd.Categorical.from_codes(item, categories=list(ITEMS)),
        "person": pd.Categorical.from_codes(person, categories=[f"p{i}" for i in
                                                                range(persons)]),
        "rater": pd.Categorical.from_codes(rater, categories=[f"r{i}" for i in
                                                              range(RATERS)]),
    })


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_one(rows: int, family: str) -> dict:
    """Simulate and fit one size in this process; the figures one subprocess reports."""
    import semgalamm

    data = simulate(rows, family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        semgalamm.fit(MODEL, simulate(WARM_UP_ROWS, family, seed=1), family=family)
        before_fit_mb = peak_rss_mb()
        started = time.perf_counter()
        fit = semgalamm.fit(MODEL, data, family=family)
        seconds = time.perf_counter() - started
    loadings = fit.loadings
    return {"family": family, "rows": len(data), "seconds": seconds,
            "loglik": fit.loglik, "converged": bool(fit.converged),
            "peak_rss_mb": peak_rss_mb(), "rss_before_fit_mb": before_fit_mb,
            "loading_a2": float(loadings["trait1"].dropna().iloc[1]),
            "engine": engine_description(semgalamm),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


@dataclass(frozen=True)
class Outcome:
    family: str
    rows: int
    result: dict | None  # None: the fit failed or ran past the timeout
    note: str = ""


def run_size(rows: int, family: str, timeout: float) -> Outcome:
    """Fit one size in a subprocess (its own peak memory), within ``timeout`` seconds."""
    command = [sys.executable, __file__, "--one", family, str(rows)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        return Outcome(family, rows, None, f"stopped after {timeout:.0f} s")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return Outcome(family, rows, None, out.stderr.strip().splitlines()[-1][:200]
                       if out.stderr.strip() else f"exit {out.returncode}")
    return Outcome(family, rows, json.loads(lines[-1]))


def exponent(outcomes: list[Outcome]) -> float:
    """Least-squares slope of log(seconds) on log(rows) over the sizes that finished."""
    done = [o.result for o in outcomes if o.result]
    if len(done) < 2:
        return float("nan")
    x = np.log([r["rows"] for r in done])
    y = np.log([r["seconds"] for r in done])
    return float(np.polyfit(x, y, 1)[0])


def table(outcomes: list[Outcome]) -> list[str]:
    lines = ["| family | rows | seconds | peak RSS (MB) | RSS before the fit (MB) | logLik "
             "| converged | loading a2 (true 0.8) |", "|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        r = o.result
        if r is None:
            lines.append(f"| {o.family} | {o.rows:,} | {o.note} | | | | | |")
            continue
        lines.append(f"| {o.family} | {r['rows']:,} | {r['seconds']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['rss_before_fit_mb']:.0f} | "
                     f"{r['loglik']:.1f} | {r['converged']} | {r['loading_a2']:.3f} |")
    return lines


def exponent_lines(outcomes: list[Outcome], families: list[str]) -> list[str]:
    lines = []
    for family in families:
        own = [o for o in outcomes if o.family == family]
        done = [o.result for o in own if o.result]
        slope = exponent(own)
        sizes = ", ".join(f"{r['rows']:,}" for r in done)
        lines.append(f"- {family}: time exponent {slope:.2f} (log-log slope over {sizes} rows)")
    return lines


def plot(outcomes: list[Outcome], path: Path) -> None:
    """Log-log seconds and peak RSS against rows, per family, with a slope-1 guide and the
    1 GB line."""
    try:
        import matplotlib
    except ImportError as error:
        raise SystemExit("the plot needs matplotlib: pip install 'semgalamm[plot]'") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.8))
    for family, marker in (("gaussian", "o"), ("binomial", "s")):
        done = [o.result for o in outcomes if o.family == family and o.result]
        if not done:
            continue
        rows = np.array([r["rows"] for r in done])
        left.plot(rows, [r["seconds"] for r in done], marker=marker, label=family)
        right.plot(rows, [r["peak_rss_mb"] for r in done], marker=marker, label=family)
    first = [o.result for o in outcomes if o.result]
    if first:
        anchor = min(first, key=lambda r: r["rows"])
        guide = np.array([anchor["rows"], max(r["rows"] for r in first)])
        left.plot(guide, anchor["seconds"] * guide / guide[0], "k--", lw=1,
                  label="slope 1")
    right.axhline(1024, color="grey", lw=1, ls=":", label="1 GB (goal at 10^6 rows)")
    for axis, label in ((left, "fit time (s)"), (right, "peak RSS (MB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("rows")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--family", nargs="+", default=FAMILIES, choices=FAMILIES)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds one size may take before it is stopped")
    parser.add_argument("--write", action="store_true",
                        help="write benchmarks/results_scaling.md and docs/img/scaling.png")
    parser.add_argument("--one", nargs=2, metavar=("FAMILY", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(fit_one(int(args.one[1]), args.one[0])), flush=True)
        return
    outcomes = []
    for family in args.family:
        for rows in sorted(args.rows):
            outcomes.append(run_size(rows, family, args.timeout))
            print(table([outcomes[-1]])[-1], flush=True)
            if outcomes[-1].result is None:
                break  # a larger size would not finish either
    if args.write:
        outcomes = merged(outcomes)
        RAW.write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    families = sorted({o.family for o in outcomes}, key=FAMILIES.index)
    lines = table(outcomes) + [""] + exponent_lines(outcomes, families)
    print("\n".join(lines))
    if args.write:
        engines = sorted({o.result["engine"] for o in outcomes if o.result})
        RESULTS.write_text(
            "# Scaling: fit time and peak memory against rows\n\n"
            "`python benchmarks/scaling.py --write` (docs/scaling.md: the model, the "
            f"machine, the reading); {'; '.join(engines)}; {machine()['cpu']}, "
            f"{machine()['cores']} cores, other jobs running beside it. Raw figures: "
            "benchmarks/results_scaling.json.\n\n" + "\n".join(lines) + "\n")
        plot(outcomes, PLOT)


def merged(new: list[Outcome]) -> list[Outcome]:
    """The stored outcomes (benchmarks/results_scaling.json) with ``new`` replacing those of
    the same family and size, ordered by family and rows."""
    kept = {(o.family, o.rows): o for o in
            (Outcome(**entry) for entry in json.loads(RAW.read_text()))} if RAW.exists() else {}
    kept.update({(o.family, o.rows): o for o in new})
    return sorted(kept.values(), key=lambda o: (FAMILIES.index(o.family), o.rows))

if __name__ == "__main__":
    main()
