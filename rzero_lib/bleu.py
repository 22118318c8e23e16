"""All-pairs sentence BLEU for a batch of strings, bit-identical to nltk, vectorised.

`pairwise_bleu_condensed(texts)` gives, for every pair i < j, nltk's
`sentence_bleu([texts[j].split()], texts[i].split(), smoothing_function=method1)`
(hypothesis i, one reference j, BLEU-4) in scipy's condensed order: what the
repetition penalty needs. Only that configuration; O(B²) memory for the output,
intermediates bounded by working in blocks. How the bits match nltk:
docs/algorithm.md, "BLEU".
"""

from __future__ import annotations

import math

import numpy as np

MAX_ORDER = 4
SMOOTHING_EPSILON = 0.1  # nltk SmoothingFunction().method1 default
_WEIGHT = 0.25  # uniform BLEU-4 weight; a power of two, so w * log(p) is exact

# Pairs per row block: bounds the intermediates (~100 bytes per pair).
_BLOCK_PAIRS = 1 << 20


def _tokenize(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all texts concatenated, and each text's token count."""
    vocab: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        tokens = text.split()
        lengths[i] = len(tokens)
        ids.extend(vocab.setdefault(t, len(vocab)) for t in tokens)
    return np.asarray(ids, dtype=np.int64), lengths


def _occurrence_features(gram_ids: np.ndarray, text_of_position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(text, feature) pairs where feature = (n-gram, occurrence rank within the text).

    Features that occur in a single text are dropped: they cannot contribute to
    the match count of a pair of different texts.
    """
    if gram_ids.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    n_grams = int(gram_ids.max()) + 1
    key = text_of_position * n_grams + gram_ids
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    # rank of each occurrence inside its run of equal (text, gram) keys
    run_start = np.r_[True, key_sorted[1:] != key_sorted[:-1]]
    idx = np.arange(key_sorted.size)
    rank = idx - np.maximum.accumulate(np.where(run_start, idx, 0))
    text = text_of_position[order]
    gram = gram_ids[order]
    _, feature = np.unique(rank * n_grams + gram, return_inverse=True)
    df = np.bincount(feature)
    keep = df[feature] >= 2
    text, feature = text[keep], feature[keep]
    _, feature = np.unique(feature, return_inverse=True)
    return text, feature


class _MatchCounter:
    """Clipped n-gram match counts of row blocks against all texts (one order n)."""

    def __init__(self, text: np.ndarray, feature: np.ndarray, n_texts: int):
        from scipy import sparse

        n_features = int(feature.max()) + 1 if feature.size else 0
        df = np.bincount(feature, minlength=n_features)
        # Features shared by many texts are cheaper in a dense BLAS product
        # (cost B^2 each) than in a sparse product (cost ~df^2 with a large constant).
        dense = df >= max(8, n_texts // 24)
        dense_index = np.cumsum(dense) - 1
        sparse_index = np.cumsum(~dense) - 1
        in_dense = dense[feature]
        self.dense = np.zeros((n_texts, int(dense.sum())), dtype=np.float32)
        self.dense[text[in_dense], dense_index[feature[in_dense]]] = 1.0
        s_text, s_feat = text[~in_dense], sparse_index[feature[~in_dense]]
        self.sparse = sparse.csr_matrix(
            (np.ones(s_text.size, dtype=np.int32), (s_text, s_feat)),
            shape=(n_texts, int((~dense).sum())),
        )
        self.sparse_t = self.sparse.T.tocsr()

    def block(self, rows: slice, cols_from: int) -> np.ndarray:
        """Match counts for texts `rows` against texts `cols_from:` (int64 matrix)."""
        out = np.zeros((rows.stop - rows.start, self.dense.shape[0] - cols_from), np.int64)
        if self.dense.shape[1]:
            # float32 is exact here: counts are far below 2^24
            out += (self.dense[rows] @ self.dense[cols_from:].T).astype(np.int64)
        if self.sparse.nnz:
            prod = self.sparse[rows] @ self.sparse_t[:, cols_from:]
            out += prod.toarray()
        return out


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knuth's error-free sum: s + err == a + b exactly."""
    s = a + b
    bv = s - a
    err = (a - (s - bv)) + (b - bv)
    return s, err


def correctly_rounded_sum(terms: np.ndarray) -> np.ndarray:
    """Row-wise `math.fsum` of a (N, k) float64 array (same bits, vectorised).

    Builds an exact nonoverlapping expansion of each row (Shewchuk's
    grow-expansion with error-free sums), then rounds it with the same
    top-down procedure and half-even correction as CPython's `math.fsum`.
    Finite inputs only.
    """
    terms = np.asarray(terms, dtype=np.float64)
    return _fsum_columns([np.ascontiguousarray(terms[:, c]) for c in range(terms.shape[1])], terms.shape[0])


def _fsum_columns(columns: list[np.ndarray], n_rows: int) -> np.ndarray:
    """`math.fsum` of the k values at each position of k equally long 1-D arrays."""
    k = len(columns)
    if k == 0:
        return np.zeros(n_rows)
    parts = [columns[0].copy()]
    for c in range(1, k):
        q = columns[c]
        grown = []
        for p in parts:
            q, h = _two_sum(q, p)
            grown.append(h)
        grown.append(q)
        parts = grown
    if k == 1:
        return parts[0]
    # Sum from the largest partial down, stop at the first inexact step; then
    # CPython's half-even correction, which looks at the next nonzero partial.
    # Zero partials are no-ops in this loop, so they need not be removed.
    hi = parts[-1].copy()
    lo = np.zeros(n_rows)
    below = np.zeros(n_rows)  # next nonzero partial under the one where summing stopped
    nonzero_below = [np.zeros(n_rows)]
    for p in parts[:-2]:
        nonzero_below.append(np.where(p != 0.0, p, nonzero_below[-1]))
    open_rows = np.ones(n_rows, dtype=bool)
    for idx in range(k - 2, -1, -1):
        y = parts[idx]
        new_hi = hi + y
        new_lo = y - (new_hi - hi)
        np.copyto(hi, new_hi, where=open_rows)
        np.copyto(lo, new_lo, where=open_rows)
        stop = open_rows & (new_lo != 0.0)
        np.copyto(below, nonzero_below[idx], where=stop)
        open_rows &= ~stop
    fix = ((lo < 0.0) & (below < 0.0)) | ((lo > 0.0) & (below > 0.0))
    if fix.any():
        y = lo[fix] * 2.0
        x = hi[fix] + y
        hi_fix = hi[fix]
        exact = (x - hi_fix) == y
        hi_fix[exact] = x[exact]
        hi[fix] = hi_fix
    return hi


def _map_float(func, values: np.ndarray) -> np.ndarray:
    return np.fromiter(map(func, values.tolist()), dtype=np.float64, count=values.size)


class _PrecisionTable:
    """`0.25 * math.log(p)` for every (denominator d, match count m <= d) needed."""

    def __init__(self, denominators: np.ndarray):
        dens = np.unique(denominators)
        self.start = np.zeros(int(dens.max()) + 1, dtype=np.int64)
        self.start[dens] = np.r_[0, np.cumsum(dens + 1)[:-1]]
        values = []
        for d in dens.tolist():
            # m = 0: smoothing method 1, (0 + epsilon) / d; m > 0: Fraction(m, d) -> m / d
            values.append(_WEIGHT * math.log((0 + SMOOTHING_EPSILON) / d))
            values.extend(_WEIGHT * math.log(m / d) for m in range(1, d + 1))
        self.values = np.asarray(values, dtype=np.float64)


def pairwise_bleu_condensed(texts: list[str]) -> np.ndarray:
    """nltk sentence BLEU (hypothesis i, reference j) for all i < j, condensed order.

    Returns a float64 vector of length B(B-1)/2, entry for (i, j) at
    `B*i - i*(i+1)//2 + (j - i - 1)` (scipy's `squareform` layout).
    """
    n_texts = len(texts)
    n_pairs = n_texts * (n_texts - 1) // 2
    out = np.zeros(n_pairs, dtype=np.float64)
    if n_pairs == 0:
        return out
    token_ids, lengths = _tokenize(texts)
    if token_ids.size == 0:
        return out
    text_of_position = np.repeat(np.arange(n_texts), lengths)
    offsets = np.r_[0, np.cumsum(lengths)]
    position_in_text = np.arange(token_ids.size) - offsets[text_of_position]

    counters = []
    gram = token_ids.copy()
    n_tokens = int(token_ids.max()) + 1
    for n in range(1, MAX_ORDER + 1):
        if n > 1:
            # n-gram at position k = (n-1)-gram at k, then the token at k + n - 1
            valid = (gram >= 0) & (position_in_text + n - 1 < lengths[text_of_position])
            nxt = np.full(token_ids.size, -1, dtype=np.int64)
            nxt[: -n + 1] = token_ids[n - 1 :]
            key = np.where(valid, gram * n_tokens + nxt, -1)
            gram = np.full(token_ids.size, -1, dtype=np.int64)
            if valid.any():
                _, gram[valid] = np.unique(key[valid], return_inverse=True)
        valid = gram >= 0
        text, feature = _occurrence_features(gram[valid], text_of_position[valid])
        counters.append(_MatchCounter(text, feature, n_texts))

    # per hypothesis: the denominator of each order and its table segment
    denominators = np.maximum(1, lengths[:, None] - np.arange(MAX_ORDER)[None, :])
    table = _PrecisionTable(denominators.ravel())
    segment = table.start[denominators]  # (B, 4)
    # brevity penalty arguments come from few (h, r) length pairs: cache math.exp
    bp_cache: dict[float, float] = {}

    row = 0
    while row < n_texts - 1:
        # rows [row, stop) against columns [row, B): about _BLOCK_PAIRS pairs
        stop = min(n_texts - 1, row + max(1, _BLOCK_PAIRS // (n_texts - row)))
        first = n_texts * row - row * (row + 1) // 2
        last = n_texts * stop - stop * (stop + 1) // 2
        out[first:last] = _bleu_block(row, stop, counters, lengths, segment, table, bp_cache)
        row = stop
    return out


def _bleu_block(row, stop, counters, lengths, segment, table, bp_cache) -> np.ndarray:
    """BLEU for hypotheses row..stop-1 against references j > i, in condensed order."""
    hyp = np.arange(row, stop)
    ref = np.arange(row, lengths.size)
    upper = hyp[:, None] < ref[None, :]
    terms = []
    for n, counter in enumerate(counters):
        matches = counter.block(slice(row, stop), row)
        if n == 0:
            scored = (matches > 0)[upper]  # nltk returns 0 when no unigram matches
        terms.append(table.values[segment[hyp, n][:, None] + matches][upper])
    bleu = _map_float(math.exp, _fsum_columns(terms, scored.size))
    hyp_len = lengths[hyp][:, None]
    ref_len = lengths[ref][None, :]
    # brevity penalty exp(1 - r/h) where h <= r (h > 0 wherever a unigram matched)
    short = ((hyp_len <= ref_len) & (hyp_len > 0))[upper]
    if short.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            arg = (1 - ref_len / hyp_len)[upper][short]  # correctly rounded, like int / int
        uniq, inverse = np.unique(arg, return_inverse=True)
        missing = [a for a in uniq.tolist() if a not in bp_cache]
        bp_cache.update(zip(missing, map(math.exp, missing), strict=True))
        bp = np.fromiter((bp_cache[a] for a in uniq.tolist()), np.float64, uniq.size)
        bleu[short] *= bp[inverse]
    bleu[~scored] = 0.0
    return bleu
