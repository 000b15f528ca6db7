"""What the fitted scikit-learn vectorizers do at transform time, in plain Python and numpy.

The offline model is trained with scikit-learn, but the daemon only predicts; importing scikit-learn and
SciPy for that costs ~1.4 s of CPU and most of 100 MB. These functions reproduce, for the settings the
model uses, `TfidfVectorizer.transform` (word 1-2-grams and char_wb 3-5-grams, sublinear tf, idf, l2) and
`HashingVectorizer.transform` (murmurhash3_32, `alternate_sign=False`, `norm=None`); tests compare them
with scikit-learn's output on the shared corpus and on awkward text. A vector is (column indices in
ascending order, values), i.e. one row of the CSR matrix scikit-learn would return.
"""

from __future__ import annotations

import re
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's whitespace normalisation before char n-grams
_MASK = 0xFFFFFFFF


def word_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """The word analyzer: lowercase, default token pattern, n-grams joined by one space."""
    tokens = TOKEN_PATTERN.findall(text.lower())
    min_n, max_n = ngram_range
    if max_n == 1:
        return tokens
    grams = list(tokens) if min_n == 1 else []
    for n in range(max(min_n, 2), min(max_n + 1, len(tokens) + 1)):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def char_wb_ngrams(text: str, ngram_range: tuple[int, int]) -> list[str]:
    """The char_wb analyzer: n-grams inside space-padded words; a word shorter than n is counted once."""
    text = _WHITE_SPACES.sub(" ", text.lower())
    min_n, max_n = ngram_range
    grams: list[str] = []
    for word in text.split():
        word = f" {word} "
        length = len(word)
        for n in range(min_n, max_n + 1):
            offset = 0
            grams.append(word[offset : offset + n])
            while offset + n < length:
                offset += 1
                grams.append(word[offset : offset + n])
            if offset == 0:
                break
    return grams


@dataclass
class TfidfVocabulary:
    """A fitted TfidfVectorizer reduced to what `transform` reads."""

    analyzer: str  # "word" or "char_wb"
    ngram_range: tuple[int, int]
    vocabulary: dict[str, int]  # term -> column
    idf: np.ndarray  # float64, one per column
    sublinear_tf: bool = True

    def grams(self, text: str) -> list[str]:
        if self.analyzer == "word":
            return word_ngrams(text, self.ngram_range)
        return char_wb_ngrams(text, self.ngram_range)

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(columns, tf-idf weights) of `text`, l2-normalised: one row of `TfidfVectorizer.transform`."""
        counted = Counter(self.grams(text))  # distinct terms have distinct columns: count terms, then look up
        looked_up = zip(map(self.vocabulary.get, counted), counted.values(), strict=True)
        found = [(column, count) for column, count in looked_up if column is not None]
        columns = np.fromiter((c for c, _ in found), dtype=np.int64, count=len(found))
        values = np.fromiter((n for _, n in found), dtype=np.float64, count=len(found))
        order = np.argsort(columns, kind="stable")
        columns, values = columns[order], values[order]
        if self.sublinear_tf:
            values = np.log(values) + 1.0
        values = values * self.idf[columns]
        return columns, l2_normalised(values)

    @property
    def size(self) -> int:
        return len(self.idf)


def l2_normalised(values: np.ndarray) -> np.ndarray:
    """`values / ||values||`, untouched when the norm is 0 (as scikit-learn's `normalize`)."""
    norm = float(np.sqrt(np.dot(values, values)))
    return values / norm if norm else values


def murmurhash3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, signed, as `sklearn.utils.murmurhash3_32(..., positive=False)`."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & _MASK
    blocks = len(data) // 4
    for (k,) in struct.iter_unpack("<I", data[: blocks * 4]):
        k = (k * c1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        h ^= (k * c2) & _MASK
        h = ((h << 13) | (h >> 19)) & _MASK
        h = (h * 5 + 0xE6546B64) & _MASK
    tail = data[blocks * 4 :]
    if tail:
        k = 0
        for position in range(len(tail) - 1, -1, -1):
            k = (k << 8) | tail[position]
        k = (k * c1) & _MASK
        k = ((k << 15) | (k >> 17)) & _MASK
        h ^= (k * c2) & _MASK
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def hashed_column(term: str, n_features: int) -> int:
    """The column FeatureHasher gives `term` (abs of the signed hash; INT32_MIN as in _hashing_fast.pyx)."""
    h = murmurhash3_32(term.encode("utf-8", "surrogatepass"))
    if h == -(1 << 31):
        return (2147483647 - (n_features - 1)) % n_features
    return abs(h) % n_features


def hashed_counts(terms: Iterable[str], n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(columns ascending, float32 counts): `HashingVectorizer(alternate_sign=False, norm=None)` of one text."""
    counts: dict[int, int] = {}
    for term in terms:
        column = hashed_column(term, n_features)
        counts[column] = counts.get(column, 0) + 1
    columns = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
    values = np.asarray([counts[c] for c in columns.tolist()], dtype=np.float32)
    return columns, values
