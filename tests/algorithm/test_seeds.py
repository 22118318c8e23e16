"""One seed rule: stable, distinct per stream, and in range for every consumer."""

import numpy as np

from rzero_lib.seeds import SEED_BITS, derive_seed


def test_seeds_are_stable_distinct_and_in_range():
    seeds = [derive_seed(s, "request", i) for s in range(3) for i in range(200)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= x < 2 ** SEED_BITS for x in seeds)
    assert derive_seed(7, "request", 3) == derive_seed(7, "request", 3)
    assert derive_seed(7, "request", 3) != derive_seed(7, "batch", 3) != derive_seed(8, "request", 3)
    np.random.RandomState(max(seeds))  # numpy and pandas accept every value
