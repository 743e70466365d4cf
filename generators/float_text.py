"""Numbers as CPython writes them, from compiled code: `repr` of a double and `%+.3f`, byte for byte.

The shortest repr of a double is most of the cost of writing a scene's line in Python (CPython's dtoa takes ~1 us
for a 17-digit value on a 2 GHz core, ~47 values a line). `write_repr` finds the same digits with Ryu (Ulf Adams,
"Ryu: fast float-to-string conversion", PLDI 2018): the shortest decimal that reads back as the double, the
closest of them to it, from 128-bit products with tables of powers of 5 (computed here at import), and writes
them as repr does (fixed notation for a decimal point from 4 places left to 16 right of the first digit, else
`d.ddde-XX`). `write_fixed3` is `%+.3f` (correctly rounded, ties to even, on the exact binary value), written
with the program text's rule that a zero is `+0.000`. tests/test_float_text.py checks both against CPython on
millions of values.
"""
from __future__ import annotations

import numba
import numpy as np

POW5_INV_BITCOUNT, POW5_BITCOUNT = 125, 125


def _pow5_tables() -> tuple[np.ndarray, np.ndarray]:
    """Ryu's DOUBLE_POW5_INV_SPLIT (floor(2**(bits(5**i) - 1 + 125) / 5**i) + 1, i < 342) and DOUBLE_POW5_SPLIT
    (5**i normalised to 125 bits, i < 326), as (low, high) uint64 halves."""
    inverse, power = [], []
    for i in range(342):
        p = 5**i
        value = (1 << (p.bit_length() - 1 + POW5_INV_BITCOUNT)) // p + 1
        inverse.append((value & (2**64 - 1), value >> 64))
    for i in range(326):
        p = 5**i
        bits = p.bit_length()
        value = p >> (bits - POW5_BITCOUNT) if bits > POW5_BITCOUNT else p << (POW5_BITCOUNT - bits)
        power.append((value & (2**64 - 1), value >> 64))
    return np.array(inverse, np.uint64), np.array(power, np.uint64)


POW5_INV_SPLIT, POW5_SPLIT = _pow5_tables()
FIXED_LIMIT = 2.0**52  # write_fixed3 handles |x| below this: x = m * 2**e with e < 0, and 1000 m fits 64 bits


@numba.njit(cache=True)
def high_product(a, b):
    """The high 64 bits of the 128-bit product of two uint64, from 32-bit halves."""
    low32, s = np.uint64(0xFFFFFFFF), np.uint64(32)
    a0, a1, b0, b1 = a & low32, a >> s, b & low32, b >> s
    ll, lh, hl = a0 * b0, a0 * b1, a1 * b0
    mid = (ll >> s) + (lh & low32) + (hl & low32)
    return a1 * b1 + (lh >> s) + (hl >> s) + (mid >> s)


@numba.njit(cache=True)
def _mul_shift(m, mul_low, mul_high, j):
    """(m * mul) >> j for the 128-bit mul (m below 2**55, 64 < j < 128): Ryu's mulShift64."""
    high1 = high_product(m, mul_high)
    low1 = m * mul_high
    high0 = high_product(m, mul_low)
    total = high0 + low1
    if total < high0:
        high1 += np.uint64(1)
    dist = np.uint64(j - 64)
    return (high1 << (np.uint64(64) - dist)) | (total >> dist)


@numba.njit(cache=True)
def _pow5_factor(value):
    count = 0
    five = np.uint64(5)
    while value % five == np.uint64(0):
        value //= five
        count += 1
    return count


@numba.njit(cache=True)
def _pow5bits(e):
    return ((e * 1217359) >> 19) + 1


@numba.njit(cache=True)
def shortest(bits):
    """(digits, exponent): the shortest decimal digits*10**exponent that reads back as the positive finite
    double whose IEEE bits (sign cleared) are `bits`, the closest of them to it."""
    mantissa = bits & np.uint64((1 << 52) - 1)
    exponent = np.int64(bits >> np.uint64(52))
    if exponent == 0:
        e2 = 1 - 1023 - 52 - 2
        m2 = mantissa
    else:
        e2 = exponent - 1023 - 52 - 2
        m2 = (np.uint64(1) << np.uint64(52)) | mantissa
    even = (m2 & np.uint64(1)) == np.uint64(0)
    mv = np.uint64(4) * m2
    mm_shift = np.uint64(1) if (mantissa != np.uint64(0) or exponent <= 1) else np.uint64(0)
    vm_trailing = False
    vr_trailing = False
    if e2 >= 0:
        q = ((e2 * 78913) >> 18) - (1 if e2 > 3 else 0)
        e10 = q
        k = POW5_INV_BITCOUNT + _pow5bits(q) - 1
        i = -e2 + q + k
        lo, hi = POW5_INV_SPLIT[q, 0], POW5_INV_SPLIT[q, 1]
        vr = _mul_shift(mv, lo, hi, i)
        vp = _mul_shift(mv + np.uint64(2), lo, hi, i)
        vm = _mul_shift(mv - np.uint64(1) - mm_shift, lo, hi, i)
        if q <= 21:
            if mv % np.uint64(5) == np.uint64(0):
                vr_trailing = _pow5_factor(mv) >= q
            elif even:
                vm_trailing = _pow5_factor(mv - np.uint64(1) - mm_shift) >= q
            else:
                vp -= np.uint64(1) if _pow5_factor(mv + np.uint64(2)) >= q else np.uint64(0)
    else:
        q = ((-e2 * 732923) >> 20) - (1 if -e2 > 1 else 0)
        e10 = q + e2
        i = -e2 - q
        k = _pow5bits(i) - POW5_BITCOUNT
        j = q - k
        lo, hi = POW5_SPLIT[i, 0], POW5_SPLIT[i, 1]
        vr = _mul_shift(mv, lo, hi, j)
        vp = _mul_shift(mv + np.uint64(2), lo, hi, j)
        vm = _mul_shift(mv - np.uint64(1) - mm_shift, lo, hi, j)
        if q <= 1:
            vr_trailing = True
            if even:
                vm_trailing = mm_shift == np.uint64(1)
            else:
                vp -= np.uint64(1)
        elif q < 63:
            vr_trailing = (mv & ((np.uint64(1) << np.uint64(q)) - np.uint64(1))) == np.uint64(0)
    removed = 0
    last = np.uint64(0)
    ten = np.uint64(10)
    if vm_trailing or vr_trailing:
        # drop digits while the interval holds a shorter decimal, then, where vm ends in zeros, those too (the
        # first test never holds again once it fails)
        while True:
            if vp // ten > vm // ten:
                vm_trailing = vm_trailing and vm % ten == np.uint64(0)
            elif not (vm_trailing and vm % ten == np.uint64(0)):
                break
            vr_trailing = vr_trailing and last == np.uint64(0)
            last = vr % ten
            vr //= ten
            vp //= ten
            vm //= ten
            removed += 1
        if vr_trailing and last == np.uint64(5) and vr % np.uint64(2) == np.uint64(0):
            last = np.uint64(4)
        up = (vr == vm and (not even or not vm_trailing)) or last >= np.uint64(5)
        output = vr + (np.uint64(1) if up else np.uint64(0))
    else:
        round_up = False  # the last digit dropped was 5 or more (no exact tie: the dropped digits are not all 0)
        while vp // ten > vm // ten:
            round_up = vr % ten >= np.uint64(5)
            vr //= ten
            vp //= ten
            vm //= ten
            removed += 1
        output = vr + (np.uint64(1) if (vr == vm or round_up) else np.uint64(0))
    return output, e10 + removed


@numba.njit(cache=True)
def write_repr(bits, out, at):
    """CPython's repr of the finite double whose IEEE bits are `bits`, written into out[at:] as ASCII; returns
    where it ends."""
    if bits >> np.uint64(63):
        out[at] = 45  # '-'
        at += 1
        bits &= np.uint64((1 << 63) - 1)
    if bits == np.uint64(0):
        out[at], out[at + 1], out[at + 2] = 48, 46, 48  # 0.0
        return at + 3
    digits, exp10 = shortest(bits)
    buf = np.empty(17, np.uint8)
    n = 0
    while digits > np.uint64(0):
        buf[n] = 48 + np.uint8(digits % np.uint64(10))
        digits //= np.uint64(10)
        n += 1
    point = exp10 + n  # decimal point after this many digits
    if -4 < point <= 16:
        if point <= 0:
            out[at], out[at + 1] = 48, 46
            at += 2
            for _ in range(-point):
                out[at] = 48
                at += 1
            for d in range(n - 1, -1, -1):
                out[at] = buf[d]
                at += 1
        elif point < n:
            for d in range(n - 1, n - 1 - point, -1):
                out[at] = buf[d]
                at += 1
            out[at] = 46
            at += 1
            for d in range(n - 1 - point, -1, -1):
                out[at] = buf[d]
                at += 1
        else:
            for d in range(n - 1, -1, -1):
                out[at] = buf[d]
                at += 1
            for _ in range(point - n):
                out[at] = 48
                at += 1
            out[at], out[at + 1] = 46, 48
            at += 2
    else:
        out[at] = buf[n - 1]
        at += 1
        if n > 1:
            out[at] = 46
            at += 1
            for d in range(n - 2, -1, -1):
                out[at] = buf[d]
                at += 1
        e = point - 1
        out[at] = 101  # e
        out[at + 1] = 45 if e < 0 else 43
        at += 2
        e = abs(e)
        if e >= 100:
            out[at] = 48 + e // 100
            at += 1
        out[at], out[at + 1] = 48 + (e // 10) % 10, 48 + e % 10
        at += 2
    return at


@numba.njit(cache=True)
def write_uint(value, out, at, width):
    """The decimal digits of a uint64, zero-padded to `width`; returns where they end."""
    buf = np.empty(20, np.uint8)
    n = 0
    while value > np.uint64(0) or n < width:
        buf[n] = 48 + np.uint8(value % np.uint64(10))
        value //= np.uint64(10)
        n += 1
    for d in range(n - 1, -1, -1):
        out[at] = buf[d]
        at += 1
    return at


@numba.njit(cache=True)
def write_fixed3(bits, out, at):
    """`%+.3f` of the double whose IEEE bits are `bits` (|x| < FIXED_LIMIT), but '+0.000' for a zero;
    returns where it ends. x = m * 2**e exactly, so x * 1000 = (1000 m) * 2**e: its integer part and the
    remainder decide the rounding (half to even)."""
    out[at] = 45 if bits >> np.uint64(63) else 43
    exponent = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    mantissa = bits & np.uint64((1 << 52) - 1)
    if exponent > 0:
        mantissa |= np.uint64(1) << np.uint64(52)
        shift = exponent - 1075
    else:
        shift = np.int64(-1074)
    scaled = mantissa * np.uint64(1000)
    if shift <= -64:
        thousandths = np.uint64(0)  # below 2**-11 / 1000: rounds to zero
    else:
        right = np.uint64(-shift)
        thousandths = scaled >> right
        remainder = scaled & ((np.uint64(1) << right) - np.uint64(1))
        half = np.uint64(1) << (right - np.uint64(1))
        if remainder > half or (remainder == half and thousandths & np.uint64(1)):
            thousandths += np.uint64(1)
    if thousandths == np.uint64(0):
        out[at] = 43
    at = write_uint(thousandths // np.uint64(1000), out, at + 1, 1)
    out[at] = 46
    return write_uint(thousandths % np.uint64(1000), out, at + 1, 3)
