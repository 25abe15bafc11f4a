"""Retrieval: score every entry for a question by meaning (FAISS) and by words (BM25), blended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .classifier import EntryModel
from .config import RetrievalSettings
from .corpus import Corpus, Entry
from .index import KINDS, OUT_OF_SCOPE, Bundle
from .lexical import tokenize

#: Below this many vectors every vector is scored; above, the FAISS top candidates.
_SCAN_ALL = 4096
_CANDIDATES = 256


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float  # the blend the bot decides on
    dense: float  # best cosine similarity over the entry's vectors (answers scaled by answer_weight)
    lexical: float  # squashed BM25, 0..1
    similarity: float  # the dense and lexical blend alone, before the entry classifier's share


class Results(NamedTuple):
    hits: list[Hit]  # best first
    out_of_scope: float  # similarity to the nearest out-of-scope question of the corpus (-1 when none)
    #: Two-word phrases the message shares with that nearest out-of-scope question and that no entry
    #: uses ("lower back" in an upper-back FAQ): a sign the message is about the other topic.
    off_topic_phrases: tuple[str, ...] = ()
    #: The entry classifier's probability that the FAQ does not cover the message (0 without one).
    not_covered: float = 0.0


class Retriever:
    """Ranks entries for a question.

    Args:
        corpus: the entries, in the order the bundle was built from.
        bundle: the loaded index bundle.
        settings: weights of the blend.
        classifier: the entry classifier fitted by `qa tune` for these entries, if any.
    """

    def __init__(self, corpus: Corpus, bundle: Bundle, settings: RetrievalSettings,
                 classifier: EntryModel | None = None):
        self.corpus = corpus
        self.bundle = bundle
        self.settings = settings
        self.use_classifier(classifier)
        self._first_decoy = bundle.ntotal - len(corpus.out_of_scope)
        self._decoy_phrases = foreign_phrases(corpus.out_of_scope, set(bundle.lexical.bm25.vocab_dict))

    @property
    def classifier(self) -> EntryModel | None:
        return self._learned[0] if self._learned else None

    def use_classifier(self, classifier: EntryModel | None) -> None:
        """Blend in this entry classifier from now on (None: none); it must fit the corpus's entries."""
        # One attribute, swapped whole: a search running meanwhile sees the old pair or the new one.
        self._learned = (classifier, np.r_[0, classifier.columns([e.id for e in self.corpus.entries])]) \
            if classifier else None

    def learned(self, vectors: np.ndarray) -> np.ndarray:
        """The classifier's P(not covered), then P(entry) in corpus order, per row: (rows, 1 + entries);
        zeros without a classifier."""
        vectors = np.atleast_2d(vectors)
        if (learned := self._learned) is None:
            return np.zeros((len(vectors), len(self.corpus) + 1), np.float32)
        model, columns = learned
        return model.probabilities(vectors)[:, columns].astype(np.float32)

    def search(self, text: str, vector: np.ndarray, k: int = 5, *, kinds: tuple[str, ...] | None = None,
               lexical_weight: float | None = None) -> Results:
        """The ``k`` best entries for a question, best first, and the nearest out-of-scope similarity.

        Args:
            text: the (cleaned) question, for lexical scoring.
            vector: its unit embedding, or a matrix whose first row is the whole message's and whose other
                rows are its clauses' (:func:`qa.textnorm.clauses`); a clause's similarities count times
                ``clause_weight``, and every entry keeps its best row.
            k: how many hits.
            kinds: score only these vector kinds (default: all that were embedded).
            lexical_weight: override the blend weight (0 = dense only, 1 = lexical only).
        """
        s = self.settings
        w = s.lexical_weight if lexical_weight is None else lexical_weight
        n = len(self.corpus)
        dense, (decoy, nearest) = self._dense(vector, kinds)
        lexical = self.bundle.lexical.scores(text, s.lexical_scale) if w > 0 else np.zeros(n, np.float32)
        blend = similarity = (1 - w) * np.clip(dense, 0, None) + w * lexical
        not_covered = 0.0
        if self._learned is not None:
            p = self.learned(np.atleast_2d(vector)[:1])[0]  # the whole message
            not_covered = float(p[0])
            lw = np.float32(s.learned_weight)
            blend = (1 - lw) * blend + lw * p[1:]  # a weighted mean: scores stay within 0..1
        k = min(k, n)
        top = np.argpartition(-blend, k - 1)[:k] if k < n else np.arange(n)
        top = top[np.argsort(-blend[top], kind="stable")]
        hits = [Hit(self.corpus.entries[i], float(blend[i]), float(dense[i]), float(lexical[i]), float(similarity[i]))
                for i in top]
        return Results(hits, decoy, self.off_topic_phrases(text, nearest), not_covered)

    def off_topic_phrases(self, text: str, nearest: int) -> tuple[str, ...]:
        """The phrases of out-of-scope question number ``nearest`` that no entry uses and ``text`` has."""
        if nearest < 0 or not self._decoy_phrases[nearest]:
            return ()
        return tuple(sorted(" ".join(p) for p in self._decoy_phrases[nearest] & bigrams(text)))

    def _dense(self, vector: np.ndarray, kinds: tuple[str, ...] | None) -> tuple[np.ndarray, tuple[float, int]]:
        b = self.bundle
        kv = b.ntotal if b.ntotal <= _SCAN_ALL else _CANDIDATES
        rows = np.atleast_2d(vector).astype(np.float32)
        sims, ids = b.index.search(rows, kv)
        if len(rows) > 1:
            sims[1:] *= np.float32(self.settings.clause_weight)
        return self._merge(sims.ravel(), ids.ravel(), kinds, partial=kv < b.ntotal)

    def _merge(self, sims: np.ndarray, ids: np.ndarray, kinds: tuple[str, ...] | None,
               partial: bool) -> tuple[np.ndarray, tuple[float, int]]:
        """Per entry, its best vector's (weighted) similarity; and the nearest out-of-scope question's
        similarity and position in the corpus's list (-1 when none)."""
        b = self.bundle
        n = len(self.corpus)
        keep = ids >= 0
        sims, ids = sims[keep], ids[keep]
        decoys = b.kind_of[ids] == OUT_OF_SCOPE
        decoy, nearest = -1.0, -1
        if decoys.any():
            best = int(np.argmax(np.where(decoys, sims, -np.inf)))
            decoy, nearest = float(sims[best]), int(ids[best]) - self._first_decoy
        sims, ids = sims[~decoys], ids[~decoys]
        s = self.settings
        weight = np.array([1.0, 1.0, s.answer_weight, s.sentence_weight], np.float32)[b.kind_of[ids]]
        if kinds is not None:
            allowed = np.isin(b.kind_of[ids], [KINDS.index(kind) for kind in kinds])
            weight = np.where(allowed, weight, np.float32(-np.inf))
        scored = np.where(np.isfinite(weight), sims * np.where(np.isfinite(weight), weight, 0), -1.0)
        dense = np.full(n, -1.0, np.float32)
        np.maximum.at(dense, b.entry_of[ids], scored.astype(np.float32))
        if partial and len(sims):
            # Entries none of whose vectors made the candidate list score at most the weakest candidate.
            dense[dense == -1.0] = float(sims.min())
        return dense, (decoy, nearest)


def bigrams(text: str) -> set[tuple[str, str]]:
    """Adjacent pairs of the lexical tokens of a text (stemmed, without stop words)."""
    tokens = tokenize([text])[0]
    return set(zip(tokens, tokens[1:]))


def foreign_phrases(topics, entry_vocabulary: set[str]) -> list[set[tuple[str, str]]]:
    """For each out-of-scope topic, its two-word phrases with a word no entry uses ("lower back")."""
    return [{p for p in bigrams(topic) if not set(p) <= entry_vocabulary} for topic in topics]
