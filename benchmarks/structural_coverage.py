"""Coverage of the Wald 95% interval for a regression between latents at different levels.

Long data simulated as in tests/test_structural_long.py: every pupil answers three items on
school climate (a school-level latent) and three on ability (a pupil-level latent), with
ability = b climate + zeta (b = 0.5), Gaussian responses; ``--family binomial`` makes the items
0/1. Each replicate fits

    climate =~ 1*item[c1] + item[c2] + item[c3]
    ability =~ 1*item[a1] + item[a2] + item[a3]
    climate ~ (1 | school)
    ability ~ climate + (1 | school:pupil)
    y ~ 0 + item

and records b's estimate and standard error (inverse observed information). The report gives
the coverage of estimate +- 1.96 SE with its Monte Carlo SE, the mean estimate, the mean SE
and the SD of the estimates. ``--write`` adds the figures as a row of the table under the
heading "Coverage" in benchmarks/results.md.

    python benchmarks/structural_coverage.py --replicates 200 --workers 2 --write
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import semgalamm  # noqa: E402
from tests.test_structural_long import SCHOOLS, simulate_schools  # noqa: E402

TRUE_B = 0.5


def replicate(task: tuple[int, int, int, str]) -> tuple[int, float, float, bool, float]:
    """(seed, estimate of b, its SE, converged, seconds) for one simulated data set."""
    seed, schools, pupils, family = task
    data = simulate_schools(seed, schools=schools, pupils=pupils, b=TRUE_B, family=family)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = semgalamm.fit(SCHOOLS, data, family=family)
        row = fit.structural.iloc[0]
    return seed, float(row.estimate), float(row.se), fit.converged, \
        time.perf_counter() - started


def summarize(results: list[tuple[int, float, float, bool, float]]) -> dict[str, float]:
    est = np.array([r[1] for r in results])
    se = np.array([r[2] for r in results])
    ok = np.isfinite(est) & np.isfinite(se)
    covered = np.abs(est[ok] - TRUE_B) <= 1.959964 * se[ok]
    coverage = float(covered.mean())
    return {
        "replicates": len(results), "usable": int(ok.sum()),
        "converged": int(sum(r[3] for r in results)),
        "coverage": coverage, "coverage_mcse": float(np.sqrt(coverage * (1 - coverage)
                                                             / ok.sum())),
        "mean_estimate": float(est[ok].mean()), "sd_estimate": float(est[ok].std(ddof=1)),
        "mean_se": float(se[ok].mean()), "mean_seconds": float(np.mean([r[4] for r in results])),
    }


INTRO = """## Coverage

Wald 95% intervals (estimate +- 1.96 SE, SE from the inverse observed information) for a
latent regression across levels: `ability ~ climate`, climate at the school level, ability at
the pupil level, true b = 0.5, three items on each latent answered by every pupil
(`benchmarks/structural_coverage.py`; one row per run, written by `--write`). MC SE: the
Monte Carlo standard error of the coverage."""

HEADER = ("| items | schools x pupils (rows) | replicates | converged | coverage of b (MC SE) "
          "| mean b | SD of b | mean SE of b | s per fit | wall (s) |")


def table_row(summary: dict[str, float], args: argparse.Namespace, wall: float) -> str:
    s = summary
    return (f"| {args.family} | {args.schools} x {args.pupils} "
            f"({args.schools * args.pupils * 6:,}) | {s['replicates']} | {s['converged']} | "
            f"{100 * s['coverage']:.1f}% ({100 * s['coverage_mcse']:.1f}) | "
            f"{s['mean_estimate']:.4f} | {s['sd_estimate']:.4f} | {s['mean_se']:.4f} | "
            f"{s['mean_seconds']:.2f} | {wall:.0f} |")


def write_row(row: str) -> None:
    """Add ``row`` to the table of the "## Coverage" section of benchmarks/results.md (created
    if absent), replacing a row of the same configuration (items, size, replicates)."""
    path = ROOT / "benchmarks" / "results.md"
    text = path.read_text() if path.exists() else ""
    match = re.search(r"## Coverage\n.*?(?=\n## |\Z)", text, re.S)
    key = row.split("|")[1:4]
    rows = []
    notes = ""
    if match and HEADER in match.group(0):
        body = match.group(0).split(HEADER, 1)[1].split("\n")
        table = [line for line in body[2:] if line.startswith("|")]
        notes = "\n".join(body[2 + len(table):]).strip()
        rows = [line for line in table if line.split("|")[1:4] != key]
    rows.append(row)
    section = "\n".join([INTRO, "", HEADER, "|---" * 10 + "|", *rows]) + \
        (f"\n\n{notes}" if notes else "") + "\n"
    if match:
        text = text[:match.start()] + section + text[match.end():].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--schools", type=int, default=30)
    parser.add_argument("--pupils", type=int, default=10)
    parser.add_argument("--family", default="gaussian", choices=["gaussian", "binomial"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--write", action="store_true",
                        help="write the figures to benchmarks/results.md")
    args = parser.parse_args()
    tasks = [(args.first_seed + i, args.schools, args.pupils, args.family)
             for i in range(args.replicates)]
    started = time.perf_counter()
    results = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for i, result in enumerate(pool.map(replicate, tasks, chunksize=4)):
            results.append(result)
            if (i + 1) % 20 == 0:
                s = summarize(results)
                print(f"{i + 1:4d} replicates: coverage {100 * s['coverage']:.1f}%, mean b "
                      f"{s['mean_estimate']:.4f}", flush=True)
    row = table_row(summarize(results), args, time.perf_counter() - started)
    print(HEADER)
    print(row)
    if args.write:
        write_row(row)


if __name__ == "__main__":
    main()
