"""numpy Generator draws replayed from the bit generator's raw output, drawn in bulk.

`rng.choice(list)`, `rng.integers(0, n)` and `rng.uniform(low, high)` cost a few microseconds per call
in numpy's argument handling, against a few nanoseconds for the bits; a sampler that rejects hundreds of
candidates per scene spends nearly all its time there. `DrawStream` takes over a PCG64 Generator and
produces the values those calls would have produced, bit for bit and in the same order, from
`random_raw` blocks:

- a double is `(raw >> 11) * 2**-53` (numpy's `next_double`); `uniform(low, high)` is
  `low + (high - low) * double`;
- `integers(0, n)` (and `choice` of n items without `p`, which calls it) is Lemire's bounded draw on a
  32-bit word (numpy's `buffered_bounded_lemire_uint32`); PCG64 hands out 32-bit words as the low half
  of a fresh raw value, keeping the high half for the next 32-bit request (the `has_uint32`/`uinteger`
  of its state), while doubles always take a fresh raw value.

`DrawStream.seeded(seed)` starts from a bare `PCG64(seed)` (the bits `default_rng(seed)` would use) and
stands in for the Generator from the first draw, which also saves building one per scene. The bit
generator must not be drawn from once a stream has taken it over (the stream reads ahead).
"""
from __future__ import annotations

import numpy as np

UNIT = 2.0**-53
LOW32 = 0xFFFFFFFF
BLOCK = 256  # raw values fetched per refill


class DrawStream:
    def __init__(self, bitgen: np.random.PCG64, has_half: bool, half: int):
        self.bitgen = bitgen
        self.has_half, self.half = has_half, half
        self.raw = np.empty(0, np.uint64)  # raw values fetched so far; self.pos is the next unused one
        self._raw_list: list[int] = []
        self.pos = 0

    @classmethod
    def seeded(cls, seed: int) -> DrawStream:
        """The draws of `np.random.default_rng(seed)`: a fresh PCG64 has no cached half."""
        return cls(np.random.PCG64(seed), False, 0)

    def _fetch(self, count: int) -> None:
        """Make sure raw[pos:pos + count] exists."""
        if self.pos + count > len(self._raw_list):
            more = self.bitgen.random_raw(max(BLOCK, count))
            self.raw = np.concatenate([self.raw[self.pos:], more])
            self._raw_list = self._raw_list[self.pos:] + more.tolist()
            self.pos = 0

    def next_raw(self) -> int:
        if self.pos >= len(self._raw_list):
            self._fetch(1)
        value = self._raw_list[self.pos]
        self.pos += 1
        return value

    def uint32(self) -> int:
        if self.has_half:
            self.has_half = False
            return self.half
        value = self.next_raw()
        self.has_half, self.half = True, value >> 32
        return value & LOW32

    def double(self) -> float:
        return (self.next_raw() >> 11) * UNIT

    def uniform(self, low: float, high: float, size: int | None = None):
        if size is None:
            return low + (high - low) * self.double()
        self._fetch(size)
        self.pos += size
        return uniforms(self.raw[self.pos - size:self.pos], low, high)

    def integers(self, low: int, high: int) -> int:
        """`rng.integers(low, high)` (high excluded)."""
        return low + self.below(high - low)

    def below(self, n: int) -> int:
        """`rng.integers(0, n)`: Lemire's method, rejecting the few words that would bias the result."""
        if n == 1:
            return 0  # numpy draws nothing for a range of one value
        m = self.uint32() * n
        if (m & LOW32) < n:
            threshold = (LOW32 - (n - 1)) % n
            while (m & LOW32) < threshold:
                m = self.uint32() * n
        return m >> 32

    def choice(self, items):
        return items[self.below(len(items))]


def uniforms(raw: np.ndarray, low, high) -> np.ndarray:
    """`uniform(low, high)` of each raw value (numpy's next_double, then low + (high - low) * double)."""
    return low + (high - low) * ((raw >> np.uint64(11)) * UNIT)


def bounded(words: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`integers(0, n)` from 32-bit words (uint64 arrays), Lemire's method as DrawStream.below: the values, and
    where the word is one numpy rejects (and draws another for)."""
    m = words * n
    return (m >> np.uint64(32)).astype(np.int64), (m & np.uint64(LOW32)) < (np.uint64(2**32) - n) % n


# numpy's SeedSequence (numpy/random/bit_generator.pyx), the same hash on a column of seeds at once: building
# one SeedSequence (and one PCG64 from it) per scene costs tens of microseconds of Python.
POOL_SIZE = 4
INIT_A, MULT_A, INIT_B, MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R, XSHIFT = 0xCA01F9DD, 0x4973F715, 16
PCG64_MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645
MASK128 = (1 << 128) - 1


def seed_sequence_words(entropy: np.ndarray, n_words: int) -> np.ndarray:
    """`SeedSequence(list(row)).generate_state(n_words, np.uint32)` for every row of `entropy` (n, words): each
    row's uint32 words as SeedSequence coerces its entropy (an int below 2**32 is one word, 0 included)."""
    entropy = np.asarray(entropy, np.uint64)  # uint32 values; products of two fit, masked back to 32 bits
    mask, shift = np.uint64(LOW32), np.uint64(XSHIFT)
    hash_const = INIT_A  # the same sequence of multipliers for every row: a plain int

    def hashmix(value):
        nonlocal hash_const
        value = value ^ np.uint64(hash_const)
        hash_const = hash_const * MULT_A & LOW32
        value = value * np.uint64(hash_const) & mask
        return value ^ (value >> shift)

    def mix(x, y):
        result = (np.uint64(MIX_MULT_L) * x - np.uint64(MIX_MULT_R) * y) & mask  # wraps mod 2**64, so mod 2**32
        return result ^ (result >> shift)

    words = entropy.shape[1]
    zeros = np.zeros(len(entropy), np.uint64)
    pool = [hashmix(entropy[:, i] if i < words else zeros) for i in range(POOL_SIZE)]
    for src in range(POOL_SIZE):
        for dst in range(POOL_SIZE):
            if src != dst:
                pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for src in range(POOL_SIZE, words):
        for dst in range(POOL_SIZE):
            pool[dst] = mix(pool[dst], hashmix(entropy[:, src]))
    hash_const = INIT_B
    out = []
    for i in range(n_words):
        value = pool[i % POOL_SIZE] ^ np.uint64(hash_const)
        hash_const = hash_const * MULT_B & LOW32
        value = value * np.uint64(hash_const) & mask
        out.append(value ^ (value >> shift))
    return np.stack(out, axis=1).astype(np.uint32)


def pcg64_states(seeds) -> list[dict]:
    """`np.random.PCG64(seed).state` for every seed (non-negative ints below 2**64): the bit generator seeds
    itself from SeedSequence(seed).generate_state(4, uint64) and runs PCG's srandom (state, increment)."""
    seeds = [int(s) for s in seeds]
    states: list[dict | None] = [None] * len(seeds)
    for wide in (False, True):  # a seed below 2**32 is one entropy word, a larger one two
        rows = [i for i, s in enumerate(seeds) if (s >> 32 > 0) == wide]
        if not rows:
            continue
        entropy = np.array([[seeds[i] & LOW32, seeds[i] >> 32][:1 + wide] for i in rows], np.uint64)
        words = seed_sequence_words(entropy, 8).astype(np.uint64)
        halves = (words[:, 0::2] | (words[:, 1::2] << np.uint64(32))).tolist()  # 4 uint64 per seed
        for i, (s0, s1, i0, i1) in zip(rows, halves):
            initstate, inc = s0 << 64 | s1, (i0 << 64 | i1) << 1 & MASK128 | 1
            state = ((inc + initstate) * PCG64_MULTIPLIER + inc) & MASK128  # step from 0, add the seed, step
            states[i] = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0,
                         "uinteger": 0}
    return states
