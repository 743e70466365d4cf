"""The compiled number writers give CPython's bytes: repr of any finite double, and the program text's %+.3f."""
import numpy as np
import pytest

from igbench.program import format_number


def written(writer, values: np.ndarray) -> list[str]:
    from igbench.generators import float_text

    out = np.empty(values.size * 32, np.uint8)
    at = 0
    for bits in values.view(np.uint64):
        at = getattr(float_text, writer)(bits, out, at)
        out[at] = ord(",")
        at += 1
    return bytes(out[:at]).decode().split(",")[:-1]


@pytest.fixture(scope="module")
def doubles() -> np.ndarray:
    """Random bit patterns (every exponent), values like a scene's, and the edges of repr's notation switches,
    of subnormals and of powers of 2 and 10."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64 - 1, 150_000, dtype=np.uint64, endpoint=True)
    values = bits.view(np.float64)
    tens = np.array([10.0**k for k in range(-310, 309)])
    twos = np.array([2.0**k for k in range(-1074, 1024)])
    edges = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e-5, 1e-4, 1e15, 1e16, 1e22,
             9999999999999998.0, 0.1, 0.2, 0.3, 1 / 3, 123456789012345678.0, 8.881784197001252e-16, 0.7, 0.35]
    parts = [values[np.isfinite(values)], rng.uniform(-3, 3, 50_000), rng.standard_normal(20_000) * 1e-15, tens, twos,
             np.nextafter(tens, np.inf), np.nextafter(tens, -np.inf), np.nextafter(twos, np.inf),
             np.nextafter(twos, -np.inf), np.arange(-3000.0, 3000.0), np.array(edges)]
    return np.concatenate(parts + [-p for p in parts])


def test_repr_is_cpythons(doubles):
    got = written("write_repr", doubles)
    expected = [repr(v) for v in doubles.tolist()]
    wrong = [(e, g) for e, g in zip(expected, got) if e != g]
    assert len(got) == len(expected) and not wrong, wrong[:5]


def test_fixed3_is_the_program_texts_number():
    from igbench.generators.float_text import FIXED_LIMIT

    rng = np.random.default_rng(8)
    thousandths = rng.integers(-10**7, 10**7, 50_000)
    values = np.concatenate([
        rng.uniform(-10, 10, 100_000), rng.uniform(-1e9, 1e9, 20_000), rng.uniform(-2**52, 2**52, 20_000), rng.standard_normal(20_000) * 1e-3,
        (thousandths + 0.5) / 1000,  # ties, and the doubles either side of them
        np.nextafter((thousandths + 0.5) / 1000, np.inf), np.nextafter((thousandths + 0.5) / 1000, -np.inf),
        np.array([0.0, -0.0, 5e-324, -5e-324, 0.0005, -0.0005, 0.0004999, -0.0004999, 1e-300, np.nextafter(FIXED_LIMIT, 0), -np.nextafter(FIXED_LIMIT, 0)])])
    got = written("write_fixed3", values)
    expected = [format_number(v, 3) for v in values.tolist()]
    wrong = [(v, e, g) for v, e, g in zip(values.tolist(), expected, got) if e != g]
    assert not wrong, wrong[:5]
