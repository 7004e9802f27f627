"""`make bench`: our fit time beside the peer package's (lme4, galamm, lavaan) on the same model.

For each model: our time is the median of ``--repeat`` fits (at least 7 when the first takes
under a second, one when it takes over 30 s). The peer's fit is timed in the same run, by the
same rule, by benchmarks/peers/<package>.R when R and the package are installed (only the
fitting call, see benchmarks/peer_timing.py); otherwise its time is read from
tests/fixtures/peer_timings.json, otherwise from the reference fixture the tests use; the
table says which. ratio = ours / peer (below 1: we are faster). "agree" compares the two
log-likelihoods (|difference| <= 1e-3), or ours with the independent Laplace figure where
galamm 0.3.0 is known to be wrong (mixed response families).

    python benchmarks/run.py [--only TEXT] [--repeat N] [--no-peers] [--slow] [--write]
                             [--peers-only --store-peers]

The engine timed is the `semgalamm` that Python imports: PYTHONPATH=<an exported commit>
times that commit instead of the working tree, e.g.

    git archive HEAD semgalamm grammar | tar -x -C /tmp/head
    git log -1 --format='%h %cd' --date=iso > /tmp/head/COMMIT
    PYTHONPATH=/tmp/head python benchmarks/run.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH, so an exported engine there wins
sys.path.append(str(ROOT / "benchmarks"))

import peer_timing  # noqa: E402
from environment import engine_description, machine  # noqa: E402
from peer_timing import PeerTime  # noqa: E402
from simulate import crossed_binomial, crossed_gaussian  # noqa: E402

import semgalamm  # noqa: E402
from tests.conftest import fixture, load_csv  # noqa: E402
from tests.test_galamm_loadings import IRT, JUDGE, KYPS, LC  # noqa: E402
from tests.test_mixed_families import (  # noqa: E402
    DIET,
    DIET_FAMILY,
    HSCED,
    MRESP,
    MRESP_HSCED,
    mixed_data,
)
from tests.test_sem_lavaan import ENTRY, case_data, reference  # noqa: E402

LONG_FIT_S = 30.0
QUICK_REPEATS = 7
LOGLIK_TOLERANCE = 1e-3
RESULTS = ROOT / "benchmarks" / "results.md"


@dataclass(frozen=True)
class Case:
    """One benchmark row: our fit of ``load()``'s data, and the peer's script case."""

    name: str
    load: Callable[[], pd.DataFrame]
    fit: Callable[[pd.DataFrame], object]  # returns a result with .loglik and .nobs
    peer: str  # lme4, galamm or lavaan (benchmarks/peers/<peer>.R)
    peer_case: str
    reference: Callable[[], tuple[float, float]]  # (seconds, logLik) in the reference fixture
    peer_reads_csv: bool = False  # the R script fits the CSV of load()'s frame
    truth: float | None = None  # independent logLik to agree with when the peer is wrong
    slow_peer: bool = False  # the peer is timed only with --slow


def _model(model: str, family: object = "gaussian", **options) -> Callable:
    return lambda data: semgalamm.fit(model, data, family=family, **options)


def _insteval() -> pd.DataFrame:
    """lme4::InstEval (benchmarks/data/insteval.R wrote it), factors as R's labels."""
    frame = pd.read_csv(ROOT / "benchmarks" / "data" / "InstEval.csv.gz",
                        dtype={"service": str, "s": str, "d": str, "dept": str})
    frame["service"] = pd.Categorical(frame["service"], categories=["0", "1"])
    return frame


def _galamm_ref(case: str) -> Callable[[], tuple[float, float]]:
    return lambda: (fixture("galamm_loadings")[case]["time_s"],
                    fixture("galamm_loadings")[case]["logLik"])


def _lme4_ref(case: str) -> Callable[[], tuple[float, float]]:
    def figures() -> tuple[float, float]:
        ref = fixture("lme4_models").get(case) or fixture("lme4_benchmarks")[case]
        return ref["time_s"], ref["logLik"]
    return figures


def _mixed_ref(case: str) -> Callable[[], tuple[float, float]]:
    """galamm's time; its logLik on these models is wrong, the fixture holds no other."""
    return lambda: (fixture("mixed_family")[case]["timing_galamm"],
                    fixture("mixed_family").get("galamm_mixed_family_logLik", {})
                    .get(case, float("nan")))


def _smooth_ref(case: str) -> Callable[[], tuple[float, float]]:
    return lambda: (fixture("galamm_smooths")[case]["seconds"],
                    fixture("galamm_smooths")[case]["logLik"])


def _lavaan_ref(case: str) -> Callable[[], tuple[float, float]]:
    return lambda: (reference(case)["timing_seconds"], reference(case)["logl"])


def _lavaan_wide(case: str) -> Case:
    ref = reference(case)
    return Case(f"lavaan {case} ({ref['nobs']} rows)", lambda: case_data(ref),
                lambda data: ENTRY[ref["function"]](ref["model"], data, **ref["options"]),
                "lavaan", case, _lavaan_ref(case))


# galamm's sl(x, k = 4, by = domain, factor = c("ability1", "ability3")) +
# (0 + domain1:ability1 + domain3:ability3 | id) on cognition's domains 1 and 3
TWO_TRAITS = ("ability1 =~ 1*item[11] + item[12] + item[13]; "
              "ability3 =~ 1*item[31] + item[32] + item[33] + item[34]; "
              "ability1 ~ s(x, k = 4) + (1 | id); ability3 ~ s(x, k = 4) + (1 | id); y ~ domain")
HS3 = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"
CROSSED = "y ~ x + (1 | f1) + (1 | f2) + (1 | f3)"
VERBAGG_LEVELS = {"Gender": ["F", "M"], "btype": ["curse", "scold", "shout"],
                  "situ": ["other", "self"]}
SMOOTHS = fixture("galamm_smooths")
MIXED = fixture("mixed_family")

CASES = (
    Case("InstEval: LMM, 3 crossed intercepts (73,421 rows)", _insteval,
         _model("y ~ service + (1 | s) + (1 | d) + (1 | dept)"), "lme4", "insteval",
         lambda: (float("nan"), float("nan"))),
    Case("VerbAgg: binomial, 2 crossed (7,584 rows)",
         lambda: load_csv("VerbAgg.csv", VERBAGG_LEVELS),
         _model("r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "binomial"),
         "lme4", "verbagg_crossed", _lme4_ref("verbagg_crossed")),
    Case("simulated: binomial, 3 crossed (50,000 rows)", crossed_binomial,
         _model(CROSSED, "binomial"), "lme4", "crossed_binomial",
         _lme4_ref("crossed_binomial"), peer_reads_csv=True),
    Case("simulated: Gaussian, 3 crossed (50,000 rows)", crossed_gaussian, _model(CROSSED),
         "lme4", "crossed_gaussian", _lme4_ref("crossed_gaussian"), peer_reads_csv=True),
    Case("KYPSsim: 2 crossed factors with loadings (11,494 rows)",
         lambda: semgalamm.load_dataset("KYPSsim"), _model(KYPS), "galamm", "kyps",
         _galamm_ref("v_lmm_factor_kyps")),
    Case("IRTsim: binomial IRT, nested levels (2,500 rows)",
         lambda: semgalamm.load_dataset("IRTsim"), _model(IRT, "binomial"), "galamm", "irt",
         _galamm_ref("v_glmm_factor_irt_binomial")),
    Case("cognition: smooth on a latent trait (4,800 rows)",
         lambda: load_csv("galamm_v_semi_factor_gaussian.csv"),
         _model(SMOOTHS["v_semi_factor_gaussian"]["model"]), "galamm", "semi_factor",
         _smooth_ref("v_semi_factor_gaussian")),
    Case("HolzingerSwineford CFA in long form (2,709 rows)",
         lambda: semgalamm.load_dataset("HolzingerSwineford1939"),
         _model(HS3, {"x1": "gaussian"}), "lavaan", "hs_cfa", _lavaan_ref("hs_cfa")),
    Case("JUDGEsim: 6 correlated factors, crossed (54,462 rows)",
         lambda: load_csv("JUDGEsim.csv"), _model(JUDGE), "galamm", "judge",
         _galamm_ref("v_lmm_factor_judge"), slow_peer=True),
    Case("sleepstudy: correlated slopes (180 rows)",
         lambda: load_csv("sleepstudy.csv", {"Subject": None}),
         _model("Reaction ~ Days + (Days | Subject)"), "lme4", "sleepstudy_slopes",
         _lme4_ref("sleepstudy_slopes")),
    Case("cbpp: binomial with trials (56 rows)",
         lambda: load_csv("cbpp.csv", {"period": None, "herd": None}),
         _model("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
         "lme4", "cbpp_trials", _lme4_ref("cbpp_trials")),
    Case("grouseticks: Poisson, 2 crossed (403 rows)",
         lambda: load_csv("grouseticks.csv", {"YEAR": None}),
         _model("TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson"),
         "lme4", "grouseticks_poisson", _lme4_ref("grouseticks_poisson")),
    Case("latent_covariates: loading x covariate (600 rows)",
         lambda: load_csv("latent_covariates.csv"), _model(LC), "galamm", "lc_int_x",
         _galamm_ref("v_lc_int_x")),
    Case("hsced: residual SD by item (1,200 rows)", lambda: load_csv("hsced.csv"),
         _model(HSCED), "galamm", "hsced",
         lambda: (MIXED["hsced"]["timing_galamm"], MIXED["hsced"]["logLik"])),
    Case("mresp: Gaussian + binomial rows, one loading (4,000 rows)",
         lambda: mixed_data("mresp"), _model(MRESP, "family"), "galamm", "mresp",
         _mixed_ref("mresp"), truth=MIXED["mresp"]["laplace"]["logLik"]),
    Case("mresp_hsced: mixed families, Gaussian SD by group (4,000 rows)",
         lambda: mixed_data("mresp_hsced"), _model(MRESP_HSCED, "family"), "galamm",
         "mresp_hsced", _mixed_ref("mresp_hsced"),
         truth=MIXED["mresp_hsced"]["laplace"]["logLik"]),
    Case("diet: mixed families, interactions, loadings (742 rows)",
         lambda: mixed_data("diet"), _model(DIET["diet"], DIET_FAMILY), "galamm", "diet",
         _mixed_ref("diet"), truth=MIXED["diet"]["laplace"]["logLik"]),
    Case("cognition: two latent traits, own smooths, 4 items (6,400 rows)",
         lambda: load_csv("galamm_x_gamm_byvar_loadings_converged.csv", {"domain": None}),
         _model(SMOOTHS["x_gamm_byvar_loadings_converged"]["model"]), "galamm",
         "two_traits_4items", _smooth_ref("x_gamm_byvar_loadings_converged")),
    Case("cognition: two latent traits, own smooths, all items (11,200 rows)",
         lambda: load_csv("cognition_domains13.csv", {"domain": None}), _model(TWO_TRAITS),
         "galamm", "two_traits",
         lambda: (93.0, float("nan")),  # shared reference README: a time, no logLik
         slow_peer=True),
    *(_lavaan_wide(case) for case in ("hs_cfa", "hs_group_loadings", "hs_fiml",
                                      "poldem_labels", "growth", "twolevel")),
)


@dataclass(frozen=True)
class Row:
    case: Case
    ours: float | None  # median seconds (None: our fit raised)
    loglik: float
    nobs: int
    peer: PeerTime | None
    error: str = ""


def time_ours(case: Case, data: pd.DataFrame, repeat: int) -> tuple[float, object]:
    """Median seconds of ``repeat`` fits: at least QUICK_REPEATS when the first took under a
    second, one when it took over LONG_FIT_S (the rule of benchmarks/peers/timing.R)."""
    times: list[float] = []
    while len(times) < repeat:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            fit = case.fit(data)
            times.append(time.perf_counter() - started)
        if times[0] > LONG_FIT_S:
            break
        if times[0] < 1:
            repeat = max(repeat, QUICK_REPEATS)
    return statistics.median(times), fit


def peer_figure(case: Case, data: pd.DataFrame, args: argparse.Namespace) -> PeerTime | None:
    """Live when R has the package (and --slow for slow peers), else stored, else reference."""
    live = not args.no_peers and (args.slow or not case.slow_peer)
    if live and peer_timing.r_has(case.peer):
        with tempfile.TemporaryDirectory() as folder:
            csv = None
            if case.peer_reads_csv:
                csv = Path(folder) / "data.csv"
                data.to_csv(csv, index=False)
            try:
                return peer_timing.time_in_r(case.peer, case.peer_case, args.repeat, csv)
            except (RuntimeError, subprocess.SubprocessError) as error:
                print(f"  ({error})", file=sys.stderr)
    kept = peer_timing.stored(case.peer, case.peer_case)
    if kept is not None:
        return kept
    seconds, loglik = case.reference()
    if seconds != seconds:  # no reference figure
        return None
    return PeerTime(case.peer, seconds, loglik, "reference fixture")


def run_case(case: Case, args: argparse.Namespace) -> Row:
    data = case.load()
    ours, loglik, nobs, error = None, float("nan"), len(data), ""
    if not args.peers_only:
        try:
            ours, fit = time_ours(case, data, args.repeat)
            loglik, nobs = fit.loglik, fit.nobs
        except semgalamm.SemgalammError as exc:
            error = type(exc).__name__
    return Row(case, ours, loglik, nobs, peer_figure(case, data, args), error)


def agreement(row: Row) -> str:
    """'yes' within 1e-3, else ours - theirs; against the independent figure where given."""
    target = row.case.truth if row.case.truth is not None else (
        row.peer.loglik if row.peer else float("nan"))
    difference = row.loglik - target
    if difference != difference:
        return ""
    verdict = "yes" if abs(difference) <= LOGLIK_TOLERANCE else f"{difference:+.3f}"
    return f"{verdict} (vs Laplace {target:.3f})" if row.case.truth is not None else verdict


HEADER = ("| model | semgalamm (s) | peer | peer (s) | ratio | semgalamm logLik | peer logLik "
          "| agree | peer figure |\n|---|---|---|---|---|---|---|---|---|")


def table_line(row: Row) -> str:
    peer = row.peer
    ours = row.error or ("" if row.ours is None else f"{row.ours:.3f}")
    ratio = (f"{row.ours / peer.seconds:.2f}" if row.ours is not None and peer else "")
    name = f"{peer.package} {peer.version}".strip() if peer else row.case.peer
    return (f"| {row.case.name} | {ours} | {name} | "
            f"{'' if peer is None else f'{peer.seconds:.3f}'} | {ratio} | "
            f"{row.loglik:.3f} | {'' if peer is None else f'{peer.loglik:.3f}'} | "
            f"{agreement(row)} | {'none stored' if peer is None else peer.source} |")


def write_results(lines: list[str], args: argparse.Namespace) -> None:
    """benchmarks/results.md: the table, how it was measured, and the earlier '## ' sections."""
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    info = machine()
    intro = (f"# Fit times beside the peers\n\n`python benchmarks/run.py --repeat "
             f"{args.repeat}{' --slow' if args.slow else ''}"
             f"{' --no-peers' if args.no_peers else ''}` on {now}: {info['cpu']}, "
             f"{info['cores']} cores, {info['memory_gb']} GB, other engineers' jobs running "
             f"beside it. {engine_description(semgalamm)}.\n\n"
             "ratio = semgalamm time / peer time (below 1: semgalamm is faster). Each time is "
             "the median of the repeats of the fitting call alone (R: bench::hires_time around "
             "the call, after loading the package and the data; a fit over 30 s is timed "
             "once). \"peer figure\": `now` = timed in this run, `stored <date>` = "
             "tests/fixtures/peer_timings.json, `reference fixture` = the figure the tests "
             "use. agree: |semgalamm logLik - peer logLik| <= 1e-3, or the difference; for "
             "mixed response families galamm 0.3.0's logLik is wrong (shared reference "
             "README), so ours is compared with the independent Laplace figure.\n\n")
    kept = ""
    if RESULTS.exists():
        text = RESULTS.read_text()
        start = text.find("\n## ")
        kept = text[start:] if start >= 0 else ""
    RESULTS.write_text(intro + "\n".join(lines) + "\n" + kept)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="fits per model (median)")
    parser.add_argument("--only", default="", help="models whose name contains this text")
    parser.add_argument("--no-peers", action="store_true",
                        help="never run R: stored peer figures only")
    parser.add_argument("--slow", action="store_true",
                        help="also time the slow peer fits (galamm JUDGEsim ~5 min)")
    parser.add_argument("--write", action="store_true", help="write benchmarks/results.md")
    parser.add_argument("--peers-only", action="store_true", help="time only the peers")
    parser.add_argument("--store-peers", action="store_true",
                        help="store live peer figures in tests/fixtures/peer_timings.json")
    args = parser.parse_args()
    if args.write and args.only:
        parser.error("--write rewrites the whole table of benchmarks/results.md: run it "
                     "without --only")
    lines = [*HEADER.splitlines()]
    print(HEADER, flush=True)
    for case in CASES:
        if args.only.lower() not in case.name.lower():
            continue
        row = run_case(case, args)
        lines.append(table_line(row))
        print(lines[-1], flush=True)
        if args.store_peers and row.peer is not None and row.peer.source == "now":
            # stored after every row, so an interrupted run keeps its figures
            peer_timing.store({f"{case.peer}/{case.peer_case}": row.peer},
                              peer_timing.r_version())
    if args.write:
        write_results(lines, args)


if __name__ == "__main__":
    main()
