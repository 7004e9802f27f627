"""Time a parametric bootstrap of a loadings model: the seconds per replicate.

The model is galamm's binary IRT model on IRTsim (students nested in schools, five items
loading on one ability), by default on the first 10 of its 26 schools:

    ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]
    ability ~ (1 | school/sid); y ~ 0 + item

    python benchmarks/bootstrap_loadings.py [--n 200] [--schools 10] [--workers 2]
                                            [--executor pool|dask] [--seed 2026]

It prints the fit time, the wall time of the bootstrap, the seconds per replicate (wall
time x workers / replicates: the cost of one replicate on one core), the failed and
non-converged replicates, and the percentile intervals.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import semgalamm  # noqa: E402

MODEL = ("ability =~ 1*item[1] + item[2] + item[3] + item[4] + item[5]; "
         "ability ~ (1 | school/sid); y ~ 0 + item")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="bootstrap replicates")
    parser.add_argument("--schools", type=int, default=10, help="schools of IRTsim (max 26)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", choices=("pool", "dask"), default="pool")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()

    data = semgalamm.load_dataset("IRTsim")
    data = data[data["school"] <= args.schools].reset_index(drop=True)
    started = time.perf_counter()
    fit = semgalamm.fit(MODEL, data, family="binomial")
    fit_seconds = time.perf_counter() - started
    print(f"IRTsim, {args.schools} schools: {len(data)} rows, "
          f"{data['sid'].nunique()} students; fit {fit_seconds:.2f} s, logLik {fit.loglik:.3f}")

    started = time.perf_counter()
    if args.executor == "dask":
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            result = semgalamm.bootstrap(fit, n=args.n, seed=args.seed, executor=client)
    else:
        with ProcessPoolExecutor(args.workers) as pool:
            result = semgalamm.bootstrap(fit, n=args.n, seed=args.seed, executor=pool)
    wall = time.perf_counter() - started
    print(f"{args.n} replicates on {args.workers} workers ({args.executor}): {wall:.1f} s wall, "
          f"{wall * args.workers / args.n:.2f} s per replicate per core; "
          f"{result.n_failed} failed, {len(result.not_converged)} not converged")
    print(result.intervals())


if __name__ == "__main__":
    main()
