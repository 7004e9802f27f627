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

    hs = semgalamm.load_dataset("HolzingerSwineford1939")
    model = ("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\n"
             "speed =~ x7 + x8 + x9")
    print(f"\n>>> fit = semgalamm.cfa({model!r}, HolzingerSwineford1939)")
    print(">>> fit.summary(fit_measures=True, standardized=True)   # lavaan's tutorial model\n")
    print(semgalamm.cfa(model, hs).summary(fit_measures=True, standardized=True))


if __name__ == "__main__":
    main()
