"""R's ``set.seed(seed); sample.int(n, size)`` (R >= 3.6, Mersenne-Twister, "Rejection"
sampling), so that a thin plate basis with more unique covariate points than mgcv's 2000 knots
picks the same random knot subset as mgcv (``smooth.construct.tp.smooth.spec``).

R seeds MT19937 by scrambling the seed with the congruential map s -> 69069 s + 1 (50 times,
then once per state word), draws uniforms as ``y / 2^32`` from the tempered 32-bit outputs, and
draws an index below n from ``ceil(log2 n)`` random bits (16 per uniform), rejecting values
>= n.
"""

from __future__ import annotations

import math

import numpy as np


class RRandom:
    """R's default uniform generator after ``set.seed(seed)``."""

    def __init__(self, seed: int) -> None:
        s = seed & 0xFFFFFFFF
        for _ in range(50):
            s = (69069 * s + 1) & 0xFFFFFFFF
        words = []
        for _ in range(625):
            s = (69069 * s + 1) & 0xFFFFFFFF
            words.append(s)
        self._bits = np.random.MT19937()
        self._bits.state = {"bit_generator": "MT19937",
                            "state": {"key": np.array(words[1:], dtype=np.uint32), "pos": 624}}

    def unif_rand(self) -> float:
        """One uniform on (0, 1), R's ``unif_rand()``."""
        value = int(self._bits.random_raw()) * 2.3283064365386963e-10
        return min(max(value, 0.5 * 2.328306437080797e-10), 1.0 - 0.5 * 2.328306437080797e-10)

    def unif_index(self, n: int) -> int:
        """A uniform integer in [0, n), R's ``R_unif_index`` (rejection sampling)."""
        if n <= 0:
            return 0
        bits = math.ceil(math.log2(n))
        while True:
            v = 0
            for _ in range(0, bits + 1, 16):
                v = 65536 * v + math.floor(self.unif_rand() * 65536)
            v &= (1 << bits) - 1
            if v < n:
                return v

    def sample(self, n: int, size: int) -> np.ndarray:
        """``sample.int(n, size)`` without replacement, 1-based as in R (its partial shuffle;
        R switches to hashing only for n > 1e7)."""
        pool = list(range(n))
        out = np.empty(size, dtype=np.intp)
        for i in range(size):
            j = self.unif_index(n)
            out[i] = pool[j] + 1
            n -= 1
            pool[j] = pool[n]
        return out
