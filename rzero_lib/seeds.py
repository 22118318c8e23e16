"""The one rule that derives random seeds: a hash of a base seed and the names of a stream.

Every seeded stream of the project (a generation batch, a vLLM request, a
stage's sampling, a table's random sample) takes `derive_seed(base, *stream)`,
so two streams never share a seed by arithmetic accident, and the value fits
every consumer (torch, numpy and pandas random states, vLLM, JSON).
"""

from __future__ import annotations

import hashlib

SEED_BITS = 31


def derive_seed(base: int, *stream) -> int:
    """A seed in [0, 2**31) for the stream named by `stream` under the base seed `base`."""
    text = ":".join(["rzero", str(int(base)), *(str(part) for part in stream)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << SEED_BITS) - 1)
