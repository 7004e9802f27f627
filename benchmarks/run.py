"""`make bench`: fit time per model, beside the reference package's time on the same fit.

Reference times (lme4 1.1-31 / galamm 0.3.0, median of repeated fits on a 2-core machine of
the kind the project runs on) come from tests/fixtures. Our time is the median of
``--repeat`` fits (default 3; 1 for fits over 10 s). The table is also written to
benchmarks/results.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

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


def _galamm(case: str) -> tuple[str, float, float]:
    ref = fixture("galamm_loadings")[case]
    return "galamm", ref["time_s"], ref["logLik"]


def _mixed_family(case: str) -> tuple[str, float, float]:
    """galamm's time on the model, beside the correct (independent Laplace) logLik: galamm
    0.3.0's own mixed-family logLik is wrong (docs/engine.md)."""
    ref = fixture("mixed_family")[case]
    return "galamm", ref["timing_galamm"], ref["laplace"]["logLik"]


def _galamm_smooth(case: str) -> tuple[str, float, float]:
    ref = fixture("galamm_smooths")[case]
    return "galamm", ref["seconds"], ref["logLik"]


def _lme4(case: str) -> tuple[str, float, float]:
    ref = fixture("lme4_models").get(case) or fixture("lme4_benchmarks")[case]
    return "lme4", ref["time_s"], ref["logLik"]


# galamm's sl(x, k = 4, by = domain, factor = c("ability1", "ability3")) +
# (0 + domain1:ability1 + domain3:ability3 | id) on cognition's domains 1 and 3
TWO_TRAITS = ("ability1 =~ 1*item[11] + item[12] + item[13]; "
              "ability3 =~ 1*item[31] + item[32] + item[33] + item[34]; "
              "ability1 ~ s(x, k = 4) + (1 | id); ability3 ~ s(x, k = 4) + (1 | id); y ~ domain")

# name -> (model string, data loader, family, reference)
MODELS = {
    "sleepstudy: correlated slopes (180 rows)": (
        "Reaction ~ Days + (Days | Subject)",
        lambda: load_csv("sleepstudy.csv", {"Subject": None}), "gaussian",
        lambda: _lme4("sleepstudy_slopes")),
    "cbpp: binomial with trials (56 rows)": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        lambda: load_csv("cbpp.csv", {"period": None, "herd": None}), "binomial",
        lambda: _lme4("cbpp_trials")),
    "grouseticks: Poisson, 2 crossed (403 rows)": (
        "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
        lambda: load_csv("grouseticks.csv", {"YEAR": None}), "poisson",
        lambda: _lme4("grouseticks_poisson")),
    "VerbAgg: binomial, 2 crossed (7,584 rows)": (
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        lambda: load_csv("VerbAgg.csv", {"Gender": ["F", "M"],
                                          "btype": ["curse", "scold", "shout"],
                                          "situ": ["other", "self"]}), "binomial",
        lambda: _lme4("verbagg_crossed")),
    "KYPSsim: 2 crossed factors with loadings (11,494 rows)": (
        KYPS, lambda: semgalamm.load_dataset("KYPSsim"), "gaussian",
        lambda: _galamm("v_lmm_factor_kyps")),
    "IRTsim: binomial IRT, nested levels (2,500 rows)": (
        IRT, lambda: semgalamm.load_dataset("IRTsim"), "binomial",
        lambda: _galamm("v_glmm_factor_irt_binomial")),
    "latent_covariates: loading x covariate (600 rows)": (
        LC, lambda: load_csv("latent_covariates.csv"), "gaussian",
        lambda: _galamm("v_lc_int_x")),
    "hsced: residual SD by item (1,200 rows)": (
        HSCED, lambda: load_csv("hsced.csv"), "gaussian",
        lambda: ("galamm", fixture("mixed_family")["hsced"]["timing_galamm"],
                 fixture("mixed_family")["hsced"]["logLik"])),
    "mresp: Gaussian + binomial rows, one loading (4,000 rows)": (
        MRESP, lambda: mixed_data("mresp"), "family",
        lambda: _mixed_family("mresp")),
    "mresp_hsced: mixed families, Gaussian SD by group (4,000 rows)": (
        MRESP_HSCED, lambda: mixed_data("mresp_hsced"), "family",
        lambda: _mixed_family("mresp_hsced")),
    "diet: mixed families, interactions, loadings (742 rows)": (
        DIET["diet"], lambda: mixed_data("diet"), DIET_FAMILY,
        lambda: _mixed_family("diet")),
    "cognition: smooth on a latent trait (4,800 rows)": (
        fixture("galamm_smooths")["v_semi_factor_gaussian"]["model"],
        lambda: load_csv("galamm_v_semi_factor_gaussian.csv"), "gaussian",
        lambda: _galamm_smooth("v_semi_factor_gaussian")),
    "cognition: two latent traits, own smooths, 4 items (6,400 rows)": (
        fixture("galamm_smooths")["x_gamm_byvar_loadings_converged"]["model"],
        lambda: load_csv("galamm_x_gamm_byvar_loadings_converged.csv", {"domain": None}),
        "gaussian", lambda: _galamm_smooth("x_gamm_byvar_loadings_converged")),
    "cognition: two latent traits, own smooths, all items (11,200 rows)": (
        TWO_TRAITS, lambda: load_csv("cognition_domains13.csv", {"domain": None}), "gaussian",
        lambda: ("galamm", 93.0, float("nan"))),  # reference/README.md: time only
    "JUDGEsim: 6 correlated factors, crossed (54,462 rows)": (
        JUDGE, lambda: load_csv("JUDGEsim.csv"), "gaussian",
        lambda: _galamm("v_lmm_factor_judge")),
    "simulated: Gaussian, 3 crossed (50,000 rows)": (
        "y ~ x + (1 | f1) + (1 | f2) + (1 | f3)", crossed_gaussian, "gaussian",
        lambda: _lme4("crossed_gaussian")),
    "simulated: binomial, 3 crossed (50,000 rows)": (
        "y ~ x + (1 | f1) + (1 | f2) + (1 | f3)", crossed_binomial, "binomial",
        lambda: _lme4("crossed_binomial")),
}


# lavaan models on wide data (tests/fixtures/lavaan): our fit call beside lavaan's
SEM_CASES = ("hs_cfa", "hs_group_loadings", "hs_fiml", "poldem_labels", "growth", "twolevel")


def _lavaan_live(ref: dict, repeat: int = 7) -> float | None:
    """lavaan's median fit time, measured now inside R (None when R or lavaan is absent)."""
    if shutil.which("Rscript") is None:
        return None
    data = ref["data"]
    load = "" if data.endswith(".csv") else (
        f'{data} <- read.csv("{ROOT}/semgalamm/datasets/data/{data}.csv")\n')
    code = (
        "suppressMessages(library(lavaan))\n" + load
        + f"model <- {json.dumps(ref['model'])}\n"
        + f"times <- replicate({repeat}, system.time({ref['r_call']})[['elapsed']])\n"
        "cat(median(times))\n"
    )
    try:
        out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True,
                             cwd=ROOT, timeout=300, check=True)
        return float(out.stdout.strip().split()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def sem_rows(repeat: int, only: str) -> list[str]:
    """One row per lavaan case: our time, lavaan's time (live when R is here, else stored)."""
    from tests.test_sem_lavaan import ENTRY, case_data, reference

    rows = []
    for case in SEM_CASES:
        if only not in case:
            continue
        ref = reference(case)
        data = case_data(ref)
        entry = ENTRY[ref["function"]]
        times = []
        try:
            for _ in range(max(repeat, 5)):
                started = time.perf_counter()
                fit = entry(ref["model"], data, **ref["options"])
                times.append(time.perf_counter() - started)
        except semgalamm.SemgalammError as error:
            rows.append(f"| lavaan {case} | {type(error).__name__} | lavaan | "
                        f"{ref['timing_seconds']:.3f} | | | {ref['logl']:.3f} |")
            continue
        ours = statistics.median(times)
        live = _lavaan_live(ref)
        peer = f"lavaan {ref['lavaan_version']} (now)" if live else "lavaan (stored)"
        theirs = live if live else ref["timing_seconds"]
        rows.append(f"| lavaan {case} ({fit.nobs} rows) | {ours:.3f} | {peer} | {theirs:.3f} | "
                    f"{theirs / ours:.1f}x | {fit.loglik:.3f} | {ref['logl']:.3f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="run models whose name contains this")
    parser.add_argument("--sem-only", action="store_true", help="only the lavaan models")
    args = parser.parse_args()
    header = ("| model | semgalamm (s) | reference | reference (s) | speed-up | logLik "
              "| reference logLik |")
    lines = [header, "|---|---|---|---|---|---|---|"]
    print(header)
    print(lines[1])
    lines.extend(sem_rows(args.repeat, args.only))
    for name, (model, load, family, reference) in MODELS.items():
        if args.sem_only or args.only not in name:
            continue
        data = load()
        times = []
        for _ in range(args.repeat):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                started = time.perf_counter()
                fit = semgalamm.fit(model, data, family=family)
                times.append(time.perf_counter() - started)
            if times[-1] > 10:
                break
        ours = statistics.median(times)
        ref_name, ref_time, ref_loglik = reference()
        line = (f"| {name} | {ours:.3f} | {ref_name} | {ref_time:.3f} | "
                f"{ref_time / ours:.1f}x | {fit.loglik:.3f} | {ref_loglik:.3f} |")
        lines.append(line)
        print(line, flush=True)
    output = ROOT / "benchmarks" / ("results_sem.md" if args.sem_only else "results.md")
    output.write_text("\n".join(lines) + "\n" + _notes_after_table(output))


def _notes_after_table(path: Path) -> str:
    """The prose and sections after the table of an earlier results file (kept on rewrite)."""
    if not path.exists():
        return ""
    text = path.read_text()
    lines = text.splitlines()
    end = next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))
    rest = "\n".join(lines[end:]).strip("\n")
    return f"\n{rest}\n" if rest else ""


if __name__ == "__main__":
    main()
