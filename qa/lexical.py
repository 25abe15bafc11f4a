"""Lexical scoring: BM25 (bm25s) over stemmed entry text, squashed to [0, 1)."""

from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

logger = logging.getLogger(__name__)
# bm25s sets its own logger to DEBUG at import, which floods any console handler; put it back.
logging.getLogger("bm25s").setLevel(logging.WARNING)

_stemmer = Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lowercased, stop words removed, Snowball-stemmed tokens."""
    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer.stemWords,
                          show_progress=False, return_ids=False)


class Lexical:
    """BM25 over one text per entry."""

    def __init__(self, bm25: bm25s.BM25):
        self.bm25 = bm25

    @classmethod
    def build(cls, texts: list[str]) -> "Lexical":
        bm25 = bm25s.BM25()
        bm25.index(tokenize(texts), show_progress=False)
        return cls(bm25)

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> "Lexical":
        return cls(bm25s.BM25.load(str(folder), show_progress=False, verbosity=0))

    def scores(self, query: str, scale: float | None) -> np.ndarray:
        """BM25 score of every entry for ``query``, mapped to [0, 1) by s / (s + scale) (raw if scale is None)."""
        tokens = [t for t in tokenize([query])[0] if t in self.bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.bm25.scores["num_docs"], dtype=np.float32)
        raw = self.bm25.get_scores(tokens).astype(np.float32)
        return raw if scale is None else raw / (raw + np.float32(scale))
