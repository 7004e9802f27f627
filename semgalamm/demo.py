"""`make demo`: fit models to data shipped with semgalamm and print their summaries."""

from __future__ import annotations

import semgalamm


def main() -> None:
    sleep = semgalamm.load_dataset("sleepstudy")
    model = "Reaction ~ Days + (Days | Subject)"
    print(f">>> semgalamm.fit({model!r}, sleepstudy)\n")
    print(semgalamm.fit(model, sleep).summary())

    cbpp = semgalamm.load_dataset("cbpp")
    model = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    print(f"\n>>> semgalamm.fit({model!r}, cbpp, family='binomial')\n")
    print(semgalamm.fit(model, cbpp, family="binomial").summary())


if __name__ == "__main__":
    main()
