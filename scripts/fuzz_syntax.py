"""Fuzz the syntax stage: N model strings through parse, build_spec and build_partable.

    .venv/bin/python scripts/fuzz_syntax.py --n 100000 --seed 0

The strings come from the generators of tests/syntax/strategies.py (the same ones the
hypothesis test tests/syntax/test_fuzz.py draws from), here with a seeded random.Random, which
is fast: models written from the grammar and mutants of valid models, half and half. Every
string must parse, or raise a ModelSyntaxError with a line, a column and a caret; a parsed
model must build (build_spec, build_partable) or raise a SemgalammError. Anything else is an
*escape*: the script counts the outcomes, groups the escapes by stage, exception and place,
prints examples of each, and exits with status 1 when there is any. docs/fuzzing.md records
the last run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the repository, for tests/

from tests.syntax.strategies import (  # noqa: E402
    RandomSource,
    generate,
    generate_context,
    run_stages,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of strings")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator")
    parser.add_argument("--examples", type=int, default=2, help="examples shown per escape")
    args = parser.parse_args()

    outcomes: Counter[tuple[str, str, str]] = Counter()
    escapes: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    lengths: list[int] = []
    src = RandomSource(args.seed)
    started = time.perf_counter()
    for _ in range(args.n):
        text = generate(src)
        outcome = run_stages(text, *generate_context(src))
        outcomes[(outcome.parse, outcome.spec, outcome.partable)] += 1
        lengths.append(len(text))
        for escape in outcome.escapes:
            key = escape[:200]
            escapes[key] += 1
            if len(examples.setdefault(key, [])) < args.examples:
                examples[key].append(text)
    seconds = time.perf_counter() - started
    total = sum(outcomes.values())

    def count(stage: int, value: str) -> int:
        return sum(c for k, c in outcomes.items() if k[stage] == value)

    lengths.sort()
    print(f"{total} strings in {seconds:.0f} s (seed {args.seed}; median length "
          f"{lengths[len(lengths) // 2]}, longest {lengths[-1]} characters)")
    print(f"  parse: {count(0, 'ok')} parsed, {count(0, 'ModelSyntaxError')} ModelSyntaxError")
    for index, stage in ((1, "build_spec"), (2, "build_partable")):
        counts = Counter(k[index] for k in outcomes.elements() if k[0] == "ok")
        print(f"  {stage}: " + ", ".join(f"{c} {k}" for k, c in counts.most_common()))
    print(f"  escapes: {sum(escapes.values())} in {len(escapes)} places")
    for key, number in escapes.most_common():
        print(f"\n{number} x {key}")
        for text in examples[key]:
            print("    " + repr(text if len(text) < 300 else text[:300] + "..."))
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
