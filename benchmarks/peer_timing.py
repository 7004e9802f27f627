"""The peer side of `make bench`: time a reference package's fit in R, or read a stored time.

Each peer package has a script benchmarks/peers/<package>.R that fits one named case
``repeats`` times and prints one JSON line: every elapsed time of the fitting call alone (a
monotonic clock, bench::hires_time, started after R has loaded the package and the data), their
median, and the log-likelihood. Live figures can be stored in tests/fixtures/peer_timings.json
(with the date, the versions and the machine) so that runs without R, or with ``--no-peers``,
reuse them.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from environment import machine

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "benchmarks" / "peers"
STORE = ROOT / "tests" / "fixtures" / "peer_timings.json"
R_TIMEOUT_S = 3600


@dataclass(frozen=True)
class PeerTime:
    """A peer's fit time (median seconds) and log-likelihood, and where the figure comes from."""

    package: str
    seconds: float
    loglik: float
    source: str  # "now", "stored <date>" or "reference fixture"
    version: str = ""
    seconds_all: tuple[float, ...] = ()


@cache
def r_has(package: str) -> bool:
    """True when Rscript is on PATH and ``package`` (and bench, jsonlite) load in it."""
    if shutil.which("Rscript") is None:
        return False
    probe = (f'ok <- all(sapply(c("{package}", "bench", "jsonlite"), requireNamespace, '
             'quietly = TRUE)); cat(ok)')
    try:
        out = subprocess.run(["Rscript", "-e", probe], capture_output=True, text=True,
                             timeout=120, check=False)
    except subprocess.SubprocessError:
        return False
    return out.stdout.strip().endswith("TRUE")


def time_in_r(package: str, case: str, repeats: int, csv: Path | None = None) -> PeerTime:
    """Run benchmarks/peers/<package>.R on ``case``; raises RuntimeError with R's message."""
    command = ["Rscript", str(SCRIPTS / f"{package}.R"), case, str(repeats)]
    if csv is not None:
        command.append(str(csv))
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                         timeout=R_TIMEOUT_S, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"{package}.R {case} failed: {out.stderr.strip()[-500:]}")
    result = json.loads(lines[-1])
    seconds = result["seconds"]
    return PeerTime(package, float(result["median"]), float(result["logLik"]), "now",
                    result["version"], tuple(seconds if isinstance(seconds, list) else [seconds]))


def stored_times() -> dict:
    """tests/fixtures/peer_timings.json (empty when absent)."""
    return json.loads(STORE.read_text()) if STORE.exists() else {"cases": {}}


def stored(package: str, case: str) -> PeerTime | None:
    """The stored live figure of ``package`` on ``case``, if one was stored."""
    store = stored_times()
    entry = store["cases"].get(f"{package}/{case}")
    if entry is None:
        return None
    return PeerTime(package, entry["seconds"], entry["logLik"],
                    f"stored {store['date'][:10]}", entry["version"],
                    tuple(entry["seconds_all"]))


def store(times: dict[str, PeerTime], r_version: str) -> None:
    """Add live figures (key "<package>/<case>") to tests/fixtures/peer_timings.json."""
    data = stored_times()
    data["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")
    data["machine"] = machine()
    data["R"] = r_version
    data["note"] = ("seconds: median elapsed time of the fitting call alone (bench::hires_time "
                    "inside R, after loading the package and the data), over seconds_all; "
                    "written by benchmarks/run.py --store-peers on a 2-core machine shared "
                    "with other jobs")
    versions = data.setdefault("versions", {})
    for key, peer in sorted(times.items()):
        versions[peer.package] = peer.version
        data["cases"][key] = {"package": peer.package, "version": peer.version,
                              "seconds": round(peer.seconds, 4),
                              "seconds_all": [round(s, 4) for s in peer.seconds_all],
                              "logLik": peer.loglik}
    data["cases"] = dict(sorted(data["cases"].items()))
    STORE.write_text(json.dumps(data, indent=2) + "\n")


@cache
def r_version() -> str:
    out = subprocess.run(["Rscript", "-e", "cat(R.version.string)"], capture_output=True,
                         text=True, check=False)
    return out.stdout.strip()
