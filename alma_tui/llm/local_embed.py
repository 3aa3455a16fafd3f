"""Offline embeddings: hashed bag of words + bigrams, L2-normalised.

Why: the offline mode (no key, no network) still needs ``Services.embed`` so
retrieval-based designs behave like they would with a real embedding model:
texts sharing words and word pairs get high cosine similarity. Stdlib only,
deterministic across processes (crc32, not Python's salted ``hash``).
"""

from __future__ import annotations

import itertools
import math
import re
import zlib

__all__ = ["hash_embed"]

_TOKEN = re.compile(r"[a-z0-9]+")


def _embed_one(text: str, dim: int) -> list[float]:
    vec = [0.0] * dim
    toks = _TOKEN.findall(text.lower())
    feats = toks + [f"{a}_{b}" for a, b in itertools.pairwise(toks)]
    for f in feats:
        h = zlib.crc32(f.encode("utf-8"))
        vec[h % dim] += 1.0 if (h >> 16) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec] if norm > 0 else vec


def hash_embed(texts: list[str], dim: int = 256) -> list[list[float]]:
    """One ``dim``-dimensional unit vector per text (all-zero for a text without words)."""
    if dim <= 0:
        raise ValueError("dim must be positive")
    return [_embed_one(t or "", dim) for t in texts]
