"""Where a benchmark ran: the machine, and which semgalamm (an exported commit or the tree)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    """CPU model, core count, memory and OS of this machine."""
    cpu = platform.processor() or platform.machine()
    memory_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "os": platform.platform()}


def engine_description(package: ModuleType) -> str:
    """Which semgalamm was timed: the working tree (HEAD, and whether the package has
    uncommitted changes) or an exported commit (a COMMIT file beside the exported package)."""
    folder = Path(package.__file__).resolve().parent
    exported = folder.parent / "COMMIT"
    if exported.exists():
        return f"semgalamm of commit {exported.read_text().strip()} (exported to {folder})"
    commit = subprocess.run(["git", "log", "-1", "--format=%h %cd", "--date=iso"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "semgalamm"],
                           capture_output=True, text=True, cwd=ROOT, check=False).stdout
    state = "with uncommitted changes" if dirty.strip() else "clean"
    return f"semgalamm of the working tree at {commit.stdout.strip()} ({state})"
