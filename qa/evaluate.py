"""Evaluation: how well the bot answers a labelled set of questions, and tuning on part of it.

The labelled set is JSON lines, one question a line (see README, "Evaluating")::

    {"question": "upper back exercises", "ids": ["how-do-you-strengthen-your-upper-back"], "safety": null,
     "kind": "keywords", "split": "test"}

- ``ids``: entries that correctly answer it; ``[]`` when the FAQ does not cover it (must be declined); ``null``
  when it is labelled for the safety check only (neither answered nor declined: a review's message).
- ``safety``: the category that must be pinned, or null (then it must NOT be pinned).
- ``kind``: a free label used to break figures down (paraphrase, misspelling, off_topic, urgent, ...).
- ``split``: ``tune`` (used to choose settings) or ``test`` (only ever reported).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import product
from pathlib import Path

import numpy as np

from .classifier import MIN_LABELLED, NOT_COVERED, EntryModel
from .classifier import model_path as classifier_path
from .config import RetrievalSettings, project_root
from .index import OUT_OF_SCOPE
from .corpus import Corpus, normalize_question, read_text
from .errors import CorpusError, QAError
from .textnorm import clean
from .reader import SafetyReader, reader_data_path, reader_path
from .urgency import NOT_URGENT, THRESHOLDS, UrgencyModel, model_path

logger = logging.getLogger(__name__)

SPLITS = ("tune", "test", "all")
#: How many of the best blends without the classifier `qa tune` tries the classifier with.
LEARNED_CANDIDATES = 8
#: What `qa eval` says of figures on questions the learned models were fitted on.
IN_SAMPLE = ("the entry classifier and the safety model were fitted on the tune split, so these figures "
             "flatter them; qa tune prints held-out ones")


@dataclass(frozen=True)
class Item:
    question: str
    ids: tuple[str, ...]
    safety: str | None
    kind: str
    split: str
    line: int
    file: str = ""  # the labelled file's name, for "file:line" in reports
    scored: bool = True  # False ("ids": null): labelled for the safety check only, not for retrieval

    @property
    def in_scope(self) -> bool:
        return self.scored and bool(self.ids) and not self.safety

    @property
    def off_topic(self) -> bool:
        return self.scored and not self.ids and not self.safety


def load_labelled(paths: str | Path | list, corpus: Corpus | None = None, split: str = "all") -> list[Item]:
    """Read a labelled set, one file or several; ids must exist in ``corpus`` (errors name file and line)."""
    if isinstance(paths, (list, tuple)):
        items = [it for path in paths for it in _load_one(Path(path), corpus, "all")]
        items = [it for it in items if split == "all" or it.split == split]
        if not items:
            raise CorpusError(", ".join(str(p) for p in paths), f"no labelled questions (split {split!r})")
        return items
    return _load_one(Path(paths), corpus, split)


#: What a line of a reader's own messages (``safety.reader.jsonl``) leaves out: labelled for safety only, for tuning.
READER_DATA_DEFAULTS = {"ids": None, "split": "tune"}


def _load_one(path: Path, corpus: Corpus | None, split: str, defaults: dict | None = None) -> list[Item]:
    known = set(corpus.by_id()) if corpus else None
    items = []
    for number, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise CorpusError(path, f"not valid JSON ({exc})", number) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("question"), str):
            raise CorpusError(path, 'expected an object with a "question" string', number)
        obj = {**(defaults or {}), **obj}
        scored = obj.get("ids", []) is not None
        ids = obj.get("ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise CorpusError(path, '"ids" must be a list of entry ids', number)
        if known is not None and (unknown := [i for i in ids if i not in known]):
            raise CorpusError(path, f"unknown entry id(s) {unknown} (not in the corpus)", number)
        item_split = obj.get("split", "test")
        if item_split not in ("tune", "test"):
            raise CorpusError(path, f'"split" must be "tune" or "test", not {item_split!r}', number)
        if split != "all" and item_split != split:
            continue
        kind = obj.get("kind") or ("urgent" if obj.get("safety") else "in_scope" if ids else
                                   "off_topic" if scored else "not_urgent")
        items.append(Item(obj["question"], tuple(ids), obj.get("safety") or None, kind, item_split, number, path.name,
                          scored))
    if not items:
        raise CorpusError(path, f"no labelled questions (split {split!r})")
    return items


def default_labelled_paths(corpus_path: Path) -> list[Path]:
    """Every ``corpus/eval/*.jsonl`` for our corpus; ``<corpus>.eval.jsonl`` beside a custom one."""
    root = project_root()
    if corpus_path.resolve() == (root / "corpus" / "faq").resolve():
        if found := sorted((root / "corpus" / "eval").glob("*.jsonl")):
            return found
    beside = corpus_path.parent / f"{corpus_path.stem}.eval.jsonl"
    return [beside] if beside.exists() else []


# --- running -----------------------------------------------------------------------


@dataclass
class Outcome:
    item: Item
    answer: dict
    ranked: list[tuple[str, float]]  # (entry id, score), best first, ignoring the threshold
    seconds: float


def run(bot, items: list[Item], k: int = 5) -> list[Outcome]:
    """Ask every question (timed) and keep the ranked entries too (for recall@k and MRR)."""
    outcomes = []
    for item in items:
        start = time.perf_counter()
        answer = bot.ask(item.question).to_dict()
        seconds = time.perf_counter() - start
        ranked = [(h.entry.id, h.score) for h in bot.search(item.question, k=k).hits] if item.in_scope or item.off_topic else []
        outcomes.append(Outcome(item, answer, ranked, seconds))
    return outcomes


def _rank(ranked: list[tuple[str, float]], ids: tuple[str, ...]) -> int | None:
    return next((i + 1 for i, (entry_id, _) in enumerate(ranked) if entry_id in ids), None)


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def metrics(outcomes: list[Outcome]) -> dict:
    """The figures `qa eval` prints: accuracy, recall@3, MRR, declines, safety, latency."""
    ins = [o for o in outcomes if o.item.in_scope]
    off = [o for o in outcomes if o.item.off_topic]
    urgent = [o for o in outcomes if o.item.safety]
    calm = [o for o in outcomes if not o.item.safety]
    benign = [o for o in calm if o.item.kind == "benign_alarming"]
    ranks = [_rank(o.ranked, o.item.ids) for o in ins]
    latency = np.array([o.seconds for o in outcomes]) * 1000
    by_kind: dict[str, dict] = {}
    for kind in sorted({o.item.kind for o in ins}):
        group = [o for o in ins if o.item.kind == kind]
        by_kind[kind] = {"n": len(group), "top1": _share(sum(_correct(o) for o in group), len(group))}
    declined_by_kind: dict[str, dict] = {}
    for kind in sorted({o.item.kind for o in off}):
        group = [o for o in off if o.item.kind == kind]
        declined_by_kind[kind] = {"n": len(group), "declined": _share(sum(not o.answer["answered"] for o in group),
                                                                      len(group))}
    return {
        "questions": len(outcomes),
        "in_scope": len(ins),
        "top1": _share(sum(_correct(o) for o in ins), len(ins)),
        "recall_at_3": _share(sum(1 for r in ranks if r and r <= 3), len(ins)),
        "mrr": sum(1 / r for r in ranks if r) / len(ins) if ins else None,
        "in_scope_declined": _share(sum(not o.answer["answered"] for o in ins), len(ins)),
        "off_topic": len(off),
        "off_topic_declined": _share(sum(not o.answer["answered"] for o in off), len(off)),
        "urgent": len(urgent),
        "safety_recall": _share(sum(o.answer["safety"] is not None for o in urgent), len(urgent)),
        "safety_category_match": _share(sum((o.answer["safety"] or {}).get("category") == o.item.safety
                                            for o in urgent), len(urgent)),
        "false_alarms": _share(sum(o.answer["safety"] is not None for o in calm), len(calm)),
        "benign_alarming": len(benign),
        "benign_false_alarms": _share(sum(o.answer["safety"] is not None for o in benign), len(benign)),
        "latency_ms_p50": float(np.percentile(latency, 50)) if len(latency) else None,
        "latency_ms_p95": float(np.percentile(latency, 95)) if len(latency) else None,
        "top1_by_kind": by_kind,
        "declined_by_kind": declined_by_kind,
    }


def _correct(o: Outcome) -> bool:
    return bool(o.answer["answered"]) and o.answer["entry_id"] in o.item.ids


def misses(outcomes: list[Outcome]) -> list[dict]:
    """Every question the bot got wrong, with what it expected and what it did."""
    out = []
    for o in outcomes:
        it, a = o.item, o.answer
        if it.safety:
            if a["safety"] is None:
                out.append({"line": it.line, "file": it.file, "question": it.question, "expected": f"pin {it.safety}",
                            "got": a["kind"] if not a["answered"] else a["entry_id"], "score": a["score"]})
            continue
        if a["safety"] is not None:
            out.append({"line": it.line, "file": it.file, "question": it.question, "expected": "no safety pin",
                        "got": f"pinned {a['safety']['category']}", "score": a["score"]})
            if not a["answered"]:
                continue
        if it.in_scope and not _correct(o):
            out.append({"line": it.line, "file": it.file, "question": it.question, "expected": " | ".join(it.ids),
                        "got": a["entry_id"] if a["answered"] else f"declined ({a['kind']})", "score": a["score"]})
        elif it.off_topic and a["answered"]:
            out.append({"line": it.line, "file": it.file, "question": it.question, "expected": "declined",
                        "got": a["entry_id"], "score": a["score"]})
    return out


# --- comparing methods and tuning ---------------------------------------------------


@dataclass
class Components:
    """Per-question, per-entry score parts, so blends can be recomputed without re-encoding."""

    question_sim: np.ndarray  # (questions, entries): best over question vectors
    alternate_sim: np.ndarray  # best over alternate vectors (-1 when none)
    answer_sim: np.ndarray  # answer vector similarity
    sentence_sim: np.ndarray  # best over the answer's sentence vectors
    bm25: np.ndarray  # raw BM25
    out_of_scope: np.ndarray  # (questions,): nearest out-of-scope question (-1 when none)
    contrast: np.ndarray  # (questions,): shares a phrase no entry uses with that nearest out-of-scope question
    #: (questions, 1 + entries): the entry classifier's P(not covered), then P(entry) in corpus order
    #: (zeros without a classifier; held-out probabilities when tuning, see :func:`held_out_learned`).
    learned: np.ndarray
    vectors: np.ndarray  # (questions, dimension): each whole message's vector, as the classifier sees it
    items: list[Item] = field(default_factory=list)
    entry_ids: list[str] = field(default_factory=list)

    @cached_property
    def right(self) -> np.ndarray:
        """(questions, entries) bool: the entry answers the question."""
        column = {e: j for j, e in enumerate(self.entry_ids)}
        out = np.zeros((len(self.items), len(self.entry_ids)), bool)
        for i, item in enumerate(self.items):
            out[i, [column[e] for e in item.ids if e in column]] = True
        return out

    @cached_property
    def in_scope_rows(self) -> np.ndarray:
        return np.array([i for i, it in enumerate(self.items) if it.in_scope], int)

    @cached_property
    def off_topic_rows(self) -> np.ndarray:
        return np.array([i for i, it in enumerate(self.items) if it.off_topic], int)


def components(bot, items: list[Item]) -> Components:
    """Score every entry for every question, part by part (small FAQs; used by tune and --compare)."""
    b = bot.bundle
    n = len(bot.corpus)
    parts = {kind: np.full((len(items), n), -1.0, np.float32) for kind in range(4)}
    decoy = np.full(len(items), -1.0, np.float32)
    bm = np.zeros((len(items), n), np.float32)
    queries = [bot.prepare_query(it.question) for it in items]
    all_vecs = b.index.reconstruct_n(0, b.ntotal) if b.ntotal <= 200_000 else None
    if all_vecs is None:
        raise QAError("comparisons need a corpus of at most 200,000 vectors")
    # Each question's similarities: the whole message's, or a clause's times clause_weight, whichever is higher.
    sims = np.empty((len(items), b.ntotal), np.float32)
    encoded = _encode_groups(bot.encoder, [bot.query_texts(q) for q in queries])
    vectors = np.stack([vecs[0] for vecs in encoded]) if encoded else np.zeros((0, bot.encoder.dimension), np.float32)
    learned = bot.retriever.learned(vectors)
    for row, vecs in enumerate(encoded):
        block = vecs @ all_vecs.T
        sims[row] = block[0] if len(block) == 1 else np.maximum(block[0], bot.settings.clause_weight * block[1:].max(0))
    for kind in range(4):
        cols = np.flatnonzero(b.kind_of == kind)
        for row in range(len(items)):
            np.maximum.at(parts[kind][row], b.entry_of[cols], sims[row, cols])
    decoy_cols = np.flatnonzero(b.kind_of == OUT_OF_SCOPE)
    contrast = np.zeros(len(items), bool)
    if len(decoy_cols):
        decoy = sims[:, decoy_cols].max(axis=1)
        nearest = sims[:, decoy_cols].argmax(axis=1)
        contrast = np.array([bool(bot.retriever.off_topic_phrases(q, int(j))) for j, q in zip(nearest, queries)], bool)
    for row, q in enumerate(queries):
        bm[row] = b.lexical.scores(q, scale=None)
    return Components(parts[0], parts[1], parts[2], parts[3], bm, decoy, contrast, learned, vectors, items,
                      [e.id for e in bot.corpus.entries])


def learned_labels(items: list[Item]) -> list[tuple[str, ...]]:
    """What the entry classifier learns of each question: the entries that answer it (none: not covered)."""
    return [it.ids if it.in_scope else () for it in items]


def classifier_items(items: list[Item]) -> list[int]:
    """The questions the entry classifier learns from: in-scope and not-covered ones (urgent messages are
    the safety check's)."""
    return [i for i, it in enumerate(items) if it.in_scope or it.off_topic]


def held_out_learned(c: Components) -> np.ndarray:
    """``c.learned`` as a classifier would give it for questions it was not fitted on (see
    :meth:`EntryModel.held_out`): what tuning must see, or it would trust the classifier too much."""
    rows = classifier_items(c.items)
    out = np.zeros_like(c.learned)
    if rows:
        picked = [c.items[i] for i in rows]
        out[rows] = EntryModel.held_out(c.vectors[rows], learned_labels(picked), [NOT_COVERED, *c.entry_ids],
                                        [it.file for it in picked], [_key(it) for it in picked])
    return out


def _key(item: Item) -> str:
    return normalize_question(clean(item.question))  # the corpus's own test for a repeated question


@dataclass
class Scored:
    """Blended scores of every entry for every question, with what the decline rule needs."""

    scores: np.ndarray  # (questions, entries)
    dense: np.ndarray  # (questions, entries)
    out_of_scope: np.ndarray  # (questions,)
    contrast: np.ndarray  # (questions,) bool, as in Components
    use_out_of_scope: bool
    out_of_scope_margin: float = 0.0
    contrast_margin: float = 0.0
    not_covered: np.ndarray | None = None  # (questions,) the classifier's P(not covered)
    not_covered_decline: float = 1.0


def blend(c: Components, kinds: tuple[str, ...], lexical_weight: float, answer_weight: float,
          lexical_scale: float, use_out_of_scope: bool = True, out_of_scope_margin: float = 0.0,
          sentence_weight: float = 0.8, contrast_margin: float = 0.0, learned_weight: float = 0.0,
          not_covered_decline: float = 1.0) -> Scored:
    dense = np.full(c.question_sim.shape, -1.0, np.float32)
    if "question" in kinds:
        dense = np.maximum(dense, c.question_sim)
    if "alternates" in kinds:
        dense = np.maximum(dense, c.alternate_sim)
    if "answer" in kinds:
        dense = np.maximum(dense, answer_weight * c.answer_sim)
    if "sentences" in kinds:
        dense = np.maximum(dense, sentence_weight * c.sentence_sim)
    lex = c.bm25 / (c.bm25 + lexical_scale)
    similarity = (1 - lexical_weight) * np.clip(dense, 0, None) + lexical_weight * lex
    scores = (1 - learned_weight) * similarity + learned_weight * c.learned[:, 1:]
    return Scored(scores, dense, c.out_of_scope, c.contrast, use_out_of_scope, out_of_scope_margin, contrast_margin,
                  c.learned[:, 0], not_covered_decline)


#: The share of in-scope questions a tuned threshold may decline.
MAX_WRONGLY_DECLINED = 0.03


def score_table(c: Components, s: Scored, threshold: float) -> dict:
    """Accuracy figures at a threshold, declining as the bot does (safety pins are not part of retrieval)."""
    return _table(c, _decisions(c, s), threshold)


def _table(c: Components, d: "_Decided", threshold: float) -> dict:
    return {k: float(v[0]) if isinstance(v, np.ndarray) else v
            for k, v in _figures(c, d, np.array([threshold])).items()} | {"threshold": threshold}


def tuned_table(c: Components, s: Scored) -> tuple[float, dict]:
    """:func:`best_threshold` and :func:`score_table` at it, ranking the scores once."""
    d = _decisions(c, s)
    t = _best_threshold(c, d)
    return t, _table(c, d, t)


@dataclass
class _Decided:
    """What the decline rule and the ranking say of each question, apart from the threshold."""

    top_score: np.ndarray  # (questions,) the best entry's score
    declined_anyway: np.ndarray  # (questions,) bool: declined at any threshold (classifier, out-of-scope list)
    rank: np.ndarray  # (questions,) rank of the first right entry within the top 10, 0 when none


def _decisions(c: Components, s: Scored) -> _Decided:
    order = np.argsort(-s.scores, axis=1)
    rows = np.arange(len(order))
    top = order[:, 0]
    anyway = np.zeros(len(order), bool)
    if s.not_covered is not None:
        anyway |= s.not_covered > s.not_covered_decline
    if s.use_out_of_scope:
        gap = s.out_of_scope - s.dense[rows, top]
        anyway |= (gap >= s.out_of_scope_margin) | (s.contrast & (gap >= -s.contrast_margin))
    right = c.right[rows[:, None], order[:, :10]]
    rank = np.where(right.any(axis=1), right.argmax(axis=1) + 1, 0)
    return _Decided(s.scores[rows, top], anyway, rank)


def _figures(c: Components, d: _Decided, thresholds: np.ndarray) -> dict:
    """The figures at every threshold at once: arrays of len(thresholds) (None when nothing to count)."""
    ins, off = c.in_scope_rows, c.off_topic_rows
    declined = (d.top_score[None, :] < thresholds[:, None]) | d.declined_anyway[None, :]  # (thresholds, questions)
    rank = d.rank[ins]
    found = rank[rank > 0]
    n_in, n_off = len(ins), len(off)
    return {
        "top1": ((rank == 1)[None, :] & ~declined[:, ins]).sum(axis=1) / n_in if n_in else None,
        "recall_at_3": float(((rank >= 1) & (rank <= 3)).sum() / n_in) if n_in else None,
        "mrr": float(sum((1 / found).tolist()) / n_in) if n_in else None,
        "in_scope_declined": declined[:, ins].sum(axis=1) / n_in if n_in else None,
        "off_topic_declined": declined[:, off].sum(axis=1) / n_off if n_off else None,
    }


def best_threshold(c: Components, scores: Scored, max_wrongly_declined: float = MAX_WRONGLY_DECLINED) -> float:
    """The threshold that maximises correct answers plus correct declines on this set.

    Among equally good thresholds the midpoint of the best run is taken, which keeps
    the most room on both sides.
    """
    return _best_threshold(c, _decisions(c, scores), max_wrongly_declined)


def _best_threshold(c: Components, d: "_Decided", max_wrongly_declined: float = MAX_WRONGLY_DECLINED) -> float:
    candidates = np.round(np.arange(0.02, 0.98, 0.005), 3)
    f = _figures(c, d, candidates)
    n_in, n_off = len(c.in_scope_rows), len(c.off_topic_rows)
    zeros = np.zeros(len(candidates))
    top1 = f["top1"] if f["top1"] is not None else zeros
    off_declined = f["off_topic_declined"] if f["off_topic_declined"] is not None else zeros
    in_declined = f["in_scope_declined"] if f["in_scope_declined"] is not None else zeros
    gain = np.rint(top1 * n_in + off_declined * n_off)  # counts: equal ones must compare equal
    values = np.where(in_declined <= max_wrongly_declined, gain, -1)
    best = np.flatnonzero(values == values.max())
    # the longest run of consecutive best thresholds, and its middle
    runs = np.split(best, np.flatnonzero(np.diff(best) != 1) + 1)
    run_ = max(runs, key=len)
    return float(candidates[run_[len(run_) // 2]])


ALONE = dict(learned_weight=0.0, not_covered_decline=1.0)  # without the entry classifier
METHODS = {
    "dense: question only": dict(kinds=("question",), lexical_weight=0.0, use_out_of_scope=False, **ALONE),
    "dense: question + answer": dict(kinds=("question", "answer"), lexical_weight=0.0, use_out_of_scope=False,
                                     **ALONE),
    "dense: question + alternates + answer + sentences": dict(
        kinds=("question", "alternates", "answer", "sentences"), lexical_weight=0.0, use_out_of_scope=False, **ALONE),
    "lexical: bm25s": dict(kinds=(), lexical_weight=1.0, use_out_of_scope=False, **ALONE),
    "learned: entry classifier alone": dict(kinds=(), lexical_weight=0.0, use_out_of_scope=False, learned_weight=1.0,
                                            not_covered_decline=1.0),
    "hybrid, no out-of-scope list": dict(use_out_of_scope=False, **ALONE),
    "hybrid, no entry classifier": dict(ALONE),
    "hybrid (shipped)": dict(),
}
NEEDS_CLASSIFIER = {"learned: entry classifier alone", "hybrid, no entry classifier"}


def compare(bot, tune_items: list[Item], test_items: list[Item]) -> list[dict]:
    """Each method with its own threshold chosen on the tuning part, scored on the test part."""
    s = bot.settings
    c_tune, c_test = components(bot, tune_items), components(bot, test_items)
    if bot.retriever.classifier is not None:
        c_tune.learned = held_out_learned(c_tune)  # thresholds are chosen as if on unseen questions
    rows = []
    for name, over in METHODS.items():
        if bot.retriever.classifier is None and name in NEEDS_CLASSIFIER:
            continue  # nothing learned to show, or the same as shipped
        kw = dict(kinds=over.get("kinds", s.embed_fields), lexical_weight=over.get("lexical_weight", s.lexical_weight),
                  answer_weight=s.answer_weight, lexical_scale=s.lexical_scale,
                  use_out_of_scope=over.get("use_out_of_scope", True), out_of_scope_margin=s.out_of_scope_margin,
                  sentence_weight=s.sentence_weight, contrast_margin=s.contrast_margin,
                  learned_weight=over.get("learned_weight", s.learned_weight),
                  not_covered_decline=over.get("not_covered_decline", s.not_covered_decline))
        threshold = s.threshold if not over else best_threshold(c_tune, blend(c_tune, **kw))
        row = score_table(c_test, blend(c_test, **kw), threshold)
        rows.append({"method": name, **row})
    return rows


def tune(bot, tune_items: list[Item], test_items: list[Item] = ()) -> tuple[RetrievalSettings, dict, EntryModel | None]:
    """Choose blend weights and the threshold on the tuning part only, and fit the entry classifier.

    First the similarity blend is grid-searched alone; then, on held-out classifier probabilities
    (:func:`held_out_learned`), the classifier's weight and its "not covered" decline, with the threshold
    chosen again. The classifier returned is fitted on every tuning question whose text is not also in
    the test part (None when there are too few labelled questions).
    """
    c = components(bot, tune_items)
    c.learned = np.zeros_like(c.learned)  # the grid below must not see a classifier fitted on these questions
    base = bot.settings
    tried = []  # (key, weights, threshold, figures) of every blend
    grid = product([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], [0.8, 0.9, 1.0], [2.0, 4.0, 8.0, 16.0], [-0.02, 0.0, 0.03],
                   [0.7, 0.8, 0.9] if "sentences" in base.embed_fields else [base.sentence_weight],
                   [0.0, 0.1, 0.15, 0.2])
    for w, aw, scale, margin, sw, cm in grid:
        scores = blend(c, base.embed_fields, w, aw, scale, True, margin, sw, cm)
        t, f = tuned_table(c, scores)
        key = ((f["top1"] or 0) + (f["off_topic_declined"] or 0), f["mrr"] or 0, -abs(w - base.lexical_weight))
        tried.append((key, dict(lexical_weight=w, answer_weight=aw, lexical_scale=scale, out_of_scope_margin=margin,
                                sentence_weight=sw, contrast_margin=cm, learned_weight=0.0, not_covered_decline=1.0),
                      t, f))
    tried.sort(key=lambda row: row[0], reverse=True)
    best = tried[0]
    classifier = fit_classifier(c, bot.encoder.name, test_items)
    if classifier is not None:
        # The classifier's weight and decline, over the best blends found without it (the best blend
        # alone is not always the best partner for it).
        c.learned = held_out_learned(c)
        learned = None
        for (_, blend_weights, _, _), lw, decline in product(tried[:LEARNED_CANDIDATES],
                                                               [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5],
                                                               [0.6, 0.7, 0.8, 0.9, 1.0]):
            weights = {**blend_weights, "learned_weight": lw, "not_covered_decline": decline}
            scores = blend(c, base.embed_fields, use_out_of_scope=True, **weights)
            t, f = tuned_table(c, scores)
            # ties go to the lighter touch: a smaller weight, then declining less readily
            key = ((f["top1"] or 0) + (f["off_topic_declined"] or 0), f["mrr"] or 0, -lw, decline)
            if learned is None or key > learned[0]:
                learned = (key, weights, t, f)
        if learned[0][:2] > best[0][:2]:  # only if the classifier does better than the blend alone
            best = learned
    _, weights, t, f = best
    high = high_confidence(c, blend(c, base.embed_fields, use_out_of_scope=True, **weights), t)
    tuned = RetrievalSettings(**{**base.to_dict(), "embed_fields": base.embed_fields, **weights, "threshold": t,
                                 "high_confidence": high, "threshold_without_classifier": None,
                                 "high_confidence_without_classifier": None})
    if tuned.uses_classifier:
        # Without a usable classifier file the bot keeps these blend weights, so their own threshold
        # (the blend chosen with the classifier can score on another scale than the best one without it).
        alone = blend(c, base.embed_fields, use_out_of_scope=True, **{**weights, **ALONE})
        t_alone = best_threshold(c, alone)
        tuned = replace(tuned, threshold_without_classifier=t_alone,
                        high_confidence_without_classifier=high_confidence(c, alone, t_alone))
    return tuned, f, classifier if tuned.uses_classifier else None


def fit_classifier(c: Components, encoder_name: str, test_items: list[Item] = ()) -> EntryModel | None:
    """The entry classifier fitted on the questions of ``c`` (the tuning part), leaving out texts that are
    also in the test part; None when there are too few labelled questions."""
    held = {_key(it) for it in test_items}
    rows = [i for i in classifier_items(c.items) if _key(c.items[i]) not in held]
    labelled = sum(c.items[i].in_scope for i in rows)
    if labelled < MIN_LABELLED:
        logger.info("%d labelled in-scope questions: no entry classifier (it needs %d)", labelled, MIN_LABELLED)
        return None
    return EntryModel.fit(c.vectors[rows], learned_labels([c.items[i] for i in rows]), encoder_name, c.entry_ids)


def tune_urgency(bot, tune_items: list[Item], max_false_alarms: float = 0.005,
                 test_items: list[Item] = ()):
    """Fit the learned urgency detector on the tuning part: each message's vector as the bot embeds it,
    labelled with its safety category (or not urgent). Tuning messages whose text is also in the test
    part are left out, so the test figures stay unseen. The threshold is then chosen on the whole check
    (:func:`whole_check_threshold`). Returns (model, cross-validated figures)."""
    items = _safety_items(bot, tune_items, test_items)
    # Per message, what the bot embeds for the check: the prepared message, then its clauses.
    encoded = _encode_groups(bot.encoder, [[bot.prepare_query(clean(it.question)) or it.question,
                                            *bot.rules.meaning_pieces(clean(it.question))] for it in items])
    x = np.stack([v[0] for v in encoded])
    groups = [_key(it) for it in items]
    model, cv = UrgencyModel.fit(x, [it.safety or "" for it in items], bot.encoder.name, max_false_alarms,
                                 pieces=[v[1:] for v in encoded], groups=groups)
    y_idx = np.array([model.classes.index(it.safety or NOT_URGENT) for it in items])
    model.threshold, cv["whole"] = whole_check_threshold(bot, items, x, y_idx, model.classes, groups)
    return model, cv


#: When `qa tune` chooses the safety model's threshold, a missed emergency weighs as much as this many false alarms.
#: (On the upper-back labels, 1, 2 and 3 all choose the same threshold.)
MISS_COST = 2.0


def _own_faq_default_rules(bot) -> bool:
    """Whether the bot answers another FAQ with the default rules, whose models its labels must not replace."""
    root = project_root()
    own_faq = bot.paths.corpus.resolve() != (root / "corpus" / "faq").resolve()
    return own_faq and bot.paths.safety.resolve() == (root / "corpus" / "safety.yaml").resolve()


def _safety_items(bot, tune_items: list[Item], test_items: list[Item]) -> list[Item]:
    """The tuning messages the safety models learn from: those of categories the rules have, and none whose
    text is also in the test part (so the test figures stay unseen)."""
    known = {c.id for c in bot.rules.categories}
    unknown = sorted({it.safety for it in tune_items if it.safety and it.safety not in known})
    if unknown:
        logger.warning("labels name categories the rules do not have, left out of the safety models: %s",
                       ", ".join(unknown))
    held = {_key(it) for it in test_items}
    return [it for it in tune_items if (not it.safety or it.safety in known) and _key(it) not in held]


def whole_check_threshold(bot, items: list[Item], x: np.ndarray, y_idx: np.ndarray, classes: list[str],
                          groups: list[str], folds: int = 5, seed: int = 0) -> tuple[float, dict]:
    """The threshold at which the learned model pins on its own, chosen on what the whole bot does.

    The model alone raises many alarms that the rules never let through (a calm context, a harmless sense, a
    negation vetoes its category), and most urgent messages a rule pins anyway; so its own false-alarm rate
    says little about the bot's. Per fold the model is refitted on the other folds and every held-out message
    is asked of the bot with it at the lowest threshold; a pin by the model alone keeps its P(urgent). The
    threshold chosen has the fewest ``MISS_COST`` x missed urgent messages + false alarms (the highest on a
    tie). A model pin below the threshold is taken as no pin, though the bot would then try its last check
    (the meaning of a clause beside a harmless phrase): the count can be one or two short of the bot's.

    Session 13, on the 5,865 labelled tuning messages: 0.995 by the model's own 0.5% false alarms pinned 1,391
    of 1,420 urgent messages with 78 false alarms; 0.990 pins 1,404 with 85.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    urgent = y_idx > 0
    p = np.full(len(items), -1.0)  # per message: 1.0 pinned by the rules or examples, P if by the model, -1 none
    kept = bot.rules.urgency
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    try:
        for train, test in splitter.split(x, urgent, groups):
            bot.rules.urgency = UrgencyModel.fit_all(x[train], y_idx[train], classes, bot.encoder.name,
                                                     float(THRESHOLDS[0]))
            for i in test:
                hit = bot.ask(items[i].question).safety
                p[i] = -1.0 if hit is None else 1.0 if hit.probability is None else hit.probability
    finally:
        bot.rules.urgency = kept
    pinned = p[None, :] >= THRESHOLDS[:, None]  # (thresholds, messages)
    missed = (urgent & ~pinned).sum(axis=1)
    false = (~urgent & pinned).sum(axis=1)
    cost = MISS_COST * missed + false
    k = int(np.flatnonzero(cost == cost.min())[-1])
    return float(THRESHOLDS[k]), {"threshold": float(THRESHOLDS[k]), "urgent": int(urgent.sum()),
                                  "pinned": int(urgent.sum() - missed[k]), "false_alarms": int(false[k]),
                                  "not_urgent": int((~urgent).sum())}


def _encode_groups(encoder, groups: list[list[str]]) -> list[np.ndarray]:
    """Embed groups of texts in one model call; one (len(group), dimension) array per group."""
    flat = encoder.encode([t for group in groups for t in group])
    bounds = np.cumsum([0] + [len(group) for group in groups])
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def high_confidence(c: Components, s: Scored, threshold: float, precision: float = 0.97) -> float:
    """The lowest score from which at least ``precision`` of the answers given are right (answers to
    not-covered questions count as wrong), so that "high" confidence means what it says."""
    d = _decisions(c, s)
    rows = np.r_[c.in_scope_rows, c.off_topic_rows].astype(int)
    given = rows[~((d.top_score[rows] < threshold) | d.declined_anyway[rows])]  # every answer the bot would give
    score, right = d.top_score[given], np.isin(given, c.in_scope_rows) & (d.rank[given] == 1)
    for h in np.round(np.arange(threshold, 1.0, 0.005), 3):
        above = right[score >= h]
        if len(above) and above.sum() / len(above) >= precision:
            return float(h)
    return 1.0


# --- the commands ---------------------------------------------------------------------


def add_commands(sub, with_paths) -> None:
    """Register `qa eval` and `qa tune`."""
    sp = with_paths(sub.add_parser("eval", help="measure accuracy, declines, safety and latency on a labelled set"))
    sp.add_argument("--labels", type=Path, nargs="+", metavar="FILE.jsonl",
                    help="labelled set, one or more files (default corpus/eval/*.jsonl)")
    sp.add_argument("--split", choices=SPLITS, default="test", help="which part to report (default: test)")
    sp.add_argument("--json", action="store_true", help="print the figures as JSON")
    sp.add_argument("--compare", action="store_true", help="compare retrieval methods side by side")
    sp.add_argument("--plot", type=Path, metavar="FILE.png", help="draw score distributions and per-entry accuracy")
    sp.add_argument("--misses", type=int, default=50, metavar="N", help="list at most N misses (default 50)")
    sp.set_defaults(func=cmd_eval)

    sp = with_paths(sub.add_parser("tune", help="choose the threshold and blend weights on the tuning part"))
    sp.add_argument("--labels", type=Path, nargs="+", metavar="FILE.jsonl",
                    help="labelled set, one or more files (default corpus/eval/*.jsonl)")
    sp.add_argument("--dry-run", action="store_true", help="report, but save nothing")
    sp.add_argument("--safety-only", action="store_true",
                    help="refit only the safety model (after editing the safety rules or the labelled set)")
    sp.add_argument("--reader", action="store_true",
                    help="fine-tune only the safety reader on the tuning part and the rules' safety.reader.jsonl, "
                         "if there is one (about 20 minutes on two cores for 22,000 messages)")
    sp.set_defaults(func=cmd_tune)


def _labels(args, bot) -> list[Path]:
    paths = args.labels or default_labelled_paths(bot.paths.corpus)
    if not paths:
        raise QAError("no labelled set found: pass --labels FILE.jsonl (see README, 'Evaluating')")
    return list(paths)


def _names(paths: list[Path]) -> str:
    return " + ".join(p.name for p in paths)


def _pct(x) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}%"


def cmd_eval(args) -> int:
    from .cli import load_bot

    bot = load_bot(args)
    path = _labels(args, bot)  # one or more files
    items = load_labelled(path, bot.corpus, args.split)
    if args.compare:
        rows = compare(bot, load_labelled(path, bot.corpus, "tune"), items)
        note = _in_sample_note(bot, args.split)
        if args.json:
            print(json.dumps(rows if not note else {"note": note, "methods": rows}, indent=2))
        else:
            print(format_compare(rows, path, args.split) + (f"\nnote: {note}" if note else ""))
        return 0
    outcomes = run(bot, items)
    m = metrics(outcomes)
    missed = misses(outcomes)
    if args.plot:
        plot(bot, outcomes, args.plot)
    if args.json:
        data = {"labels": [str(p) for p in path], "split": args.split, "settings": bot.settings.to_dict(),
                "metrics": m, "misses": missed}
        if note := _in_sample_note(bot, args.split):
            data["note"] = note
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(format_metrics(m, path, args.split))
    if note := _in_sample_note(bot, args.split):
        print(f"note: {note}")
    if missed:
        print(f"\nMisses ({len(missed)}; file:line: question -> expected / got, score):")
        for miss in missed[: args.misses]:
            score = "" if miss["score"] is None else f", {miss['score']:.2f}"
            print(f"  {miss['file']}:{miss['line']}: {miss['question'][:70]!r}\n        expected {miss['expected']} / got {miss['got']}{score}")
    if args.plot:
        print(f"\nplot written to {args.plot}")
    return 0


def _in_sample_note(bot, split: str) -> str | None:
    learned = bot.retriever.classifier is not None or bot.rules.urgency is not None
    return IN_SAMPLE if split != "test" and learned else None


def format_metrics(m: dict, path: list[Path], split: str) -> str:
    rows = [
        ("questions", f"{m['questions']}"),
        (f"in-scope answered correctly (top-1, n={m['in_scope']})", _pct(m["top1"])),
        ("right entry in the top 3 (recall@3)", _pct(m["recall_at_3"])),
        ("mean reciprocal rank", "  n/a" if m["mrr"] is None else f"{m['mrr']:.3f}"),
        ("in-scope wrongly declined", _pct(m["in_scope_declined"])),
        (f"off-topic correctly declined (n={m['off_topic']})", _pct(m["off_topic_declined"])),
        (f"urgent messages pinned (safety recall, n={m['urgent']})", _pct(m["safety_recall"])),
        ("  ... with the expected category", _pct(m["safety_category_match"])),
        (f"false alarms on all non-urgent messages", _pct(m["false_alarms"])),
        (f"false alarms on benign alarming messages (n={m['benign_alarming']})", _pct(m["benign_false_alarms"])),
        ("latency per question p50 / p95",
         f"{m['latency_ms_p50']:.1f} / {m['latency_ms_p95']:.1f} ms" if m["latency_ms_p50"] is not None else "n/a"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"Evaluation on {_names(path)}, split '{split}'", "-" * (width + 16)]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    if m["top1_by_kind"]:
        lines.append("top-1 by kind: " + ", ".join(f"{k} {_pct(v['top1']).strip()} (n={v['n']})"
                                                   for k, v in m["top1_by_kind"].items()))
    if m.get("declined_by_kind"):
        lines.append("not-covered questions declined by kind: " + ", ".join(
            f"{k} {_pct(v['declined']).strip()} (n={v['n']})" for k, v in m["declined_by_kind"].items()))
    return "\n".join(lines)


def format_compare(rows: list[dict], path: list[Path], split: str) -> str:
    head = f"| method | top-1 | recall@3 | MRR | in-scope declined | off-topic declined | threshold |"
    lines = [f"Retrieval methods on {_names(path)}, split '{split}' (thresholds chosen on 'tune'):", "", head,
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {_pct(r['top1']).strip()} | {_pct(r['recall_at_3']).strip()} | "
                     f"{r['mrr']:.3f} | {_pct(r['in_scope_declined']).strip()} | "
                     f"{_pct(r['off_topic_declined']).strip()} | {r['threshold']:.3f} |")
    return "\n".join(lines)


def cmd_tune(args) -> int:
    from .cli import load_bot

    bot = load_bot(args)
    path = _labels(args, bot)  # one or more files
    tune_items = load_labelled(path, bot.corpus, "tune")
    test_items = load_labelled(path, bot.corpus, "test")
    if args.reader:
        if args.safety_only:
            raise QAError("--reader fits only the reader and --safety-only only the safety model: pass one")
        return _tune_reader(args, bot, tune_items, test_items)
    before = metrics(run(bot, test_items))
    if not args.safety_only:
        tuned, fig, classifier = tune(bot, tune_items, test_items)
        _print_tuned(tuned, fig, tune_items, path)
        bot.settings.__dict__.update(tuned.__dict__)
        bot.retriever.use_classifier(classifier)
    if _own_faq_default_rules(bot):
        urgency = None  # another FAQ's labels must not replace the safety model of the default rules
        print(f"  safety model left as it is: {bot.paths.safety} are the default rules; pass --safety with a "
              "copy of them to fit a model on this FAQ's labels")
    else:
        try:
            urgency, cv = tune_urgency(bot, tune_items, test_items=test_items)
        except ValueError as exc:
            urgency = None
            print(f"  safety model not fitted: {exc}")
    if urgency is not None:
        whole = cv["whole"]
        print(f"  safety model: {len(urgency.classes) - 1} categories, threshold {urgency.threshold:.3f}; "
              f"cross-validated on the tuning part, the whole check pinned {whole['pinned']} of {whole['urgent']} "
              f"urgent messages with {whole['false_alarms']} false alarms on {whole['not_urgent']} others")
        if bot.rules.urgency is not None:
            urgency.reader = bot.rules.urgency.reader  # fitted apart (`qa tune --reader`); asked beside it
        bot.rules.urgency = urgency
    after = metrics(run(bot, test_items))
    _print_before_after(before, after)
    if args.dry_run:
        print("\n(dry run: nothing saved)")
        return 0
    if not args.safety_only:
        bot.settings.save(bot.paths.settings)
        print(f"\nsaved to {bot.paths.settings}")
        learned = classifier_path(bot.paths.settings)
        if bot.retriever.classifier is not None:
            bot.retriever.classifier.save(learned)
            print(f"saved to {learned}")
        elif learned.exists():
            learned.unlink()  # fitted for settings that no longer use it
            print(f"removed {learned} (the tuned settings do not use an entry classifier)")
    if urgency is not None:
        urgency.save(model_path(bot.paths.safety))
        print(f"saved to {model_path(bot.paths.safety)}")
        if (reader := urgency.reader) is not None:
            print(f"the safety reader is left as it is (fitted on {reader.trained_on} messages, {reader.trained_at}); "
                  "`qa tune --reader` fits it again")
    return 0


def _tune_reader(args, bot, tune_items: list[Item], test_items: list[Item]) -> int:
    """`qa tune --reader`: fine-tune the safety reader on the tuning part's messages and save it beside the rules."""
    if bot.rules.urgency is None:
        raise QAError(f"{model_path(bot.paths.safety)}: no safety model; the reader is asked beside it, "
                      "so run `qa tune` first")
    if _own_faq_default_rules(bot):
        raise QAError(f"{bot.paths.safety} are the default rules, whose reader this FAQ's labels must not replace: "
                      "pass --safety with a copy of them")
    before = metrics(run(bot, test_items))
    extra = []
    if (data := reader_data_path(bot.paths.safety)).exists():
        seen = {_key(it) for it in tune_items}
        for it in _load_one(data, bot.corpus, "tune", READER_DATA_DEFAULTS):
            if _key(it) not in seen:
                seen.add(_key(it))
                extra.append(it)
        print(f"with {len(extra)} messages of {data.name} beside the labelled set")
    items = _safety_items(bot, tune_items + extra, test_items)
    reader = SafetyReader.fit(bot.encoder, [clean(it.question) for it in items], [it.safety or "" for it in items],
                              show_progress=True)
    reader.attach(bot.encoder)
    urgent = sum(1 for it in items if it.safety)
    print(f"safety reader fine-tuned on {len(items)} messages ({urgent} urgent), {len(reader.classes) - 1} categories")
    bot.rules.urgency.reader = reader
    _print_before_after(before, metrics(run(bot, test_items)))
    if args.dry_run:
        print("\n(dry run: nothing saved)")
        return 0
    reader.save(reader_path(bot.paths.safety))
    print(f"saved to {reader_path(bot.paths.safety)}")
    return 0


def _print_before_after(before: dict, after: dict) -> None:
    print("\ntest part          before    after")
    for key, label in [("top1", "top-1"), ("recall_at_3", "recall@3"), ("in_scope_declined", "in-scope declined"),
                       ("off_topic_declined", "off-topic declined"), ("safety_recall", "urgent pinned"),
                       ("false_alarms", "false alarms")]:
        print(f"{label:<18} {_pct(before[key])}   {_pct(after[key])}")


def _print_tuned(tuned, fig, tune_items, path) -> None:
    print(f"tuned on {len(tune_items)} questions of {_names(path)}: lexical_weight={tuned.lexical_weight}, "
          f"answer_weight={tuned.answer_weight}, lexical_scale={tuned.lexical_scale}, threshold={tuned.threshold}, "
          f"learned_weight={tuned.learned_weight}, not_covered_decline={tuned.not_covered_decline}")
    print(f"  on the tuning part (entry classifier held out): top-1 {_pct(fig['top1'])}, "
          f"off-topic declined {_pct(fig['off_topic_declined'])}, in-scope declined {_pct(fig['in_scope_declined'])}")


def plot(bot, outcomes: list[Outcome], path: Path) -> None:
    """Score distributions (in-scope right / wrong, off-topic) with the threshold, and per-entry top-1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    right = [o.answer["score"] or o.ranked[0][1] for o in outcomes if o.item.in_scope and _correct(o)]
    wrong = [o.ranked[0][1] for o in outcomes if o.item.in_scope and not _correct(o) and o.ranked]
    off = [o.ranked[0][1] for o in outcomes if o.item.off_topic and o.ranked]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.2]})
    bins = np.linspace(0, 1, 41)
    ax1.hist([right, wrong, off], bins=bins, stacked=False, label=[
        f"in-scope, answered right (n={len(right)})", f"in-scope, missed (n={len(wrong)})",
        f"off-topic (n={len(off)})"], color=["#2a9d8f", "#e9c46a", "#e76f51"], alpha=0.85)
    ax1.axvline(bot.settings.threshold, color="black", linestyle="--", label=f"threshold {bot.settings.threshold:.3f}")
    ax1.set_xlabel("best match score")
    ax1.set_ylabel("questions")
    ax1.set_title("Best-match scores")
    ax1.legend(fontsize=8)
    per_entry = {e.id: [0, 0] for e in bot.corpus.entries}
    for o in outcomes:
        if o.item.in_scope:
            first = o.item.ids[0]
            per_entry[first][1] += 1
            per_entry[first][0] += _correct(o)
    names = [e.id for e in bot.corpus.entries if per_entry[e.id][1]]
    acc = [per_entry[n][0] / per_entry[n][1] for n in names]
    ax2.barh(range(len(names)), acc, color=["#2a9d8f" if a >= 0.9 else "#e9c46a" if a >= 0.7 else "#e76f51" for a in acc])
    ax2.set_yticks(range(len(names)), [f"{n[:45]} (n={per_entry[n][1]})" for n in names], fontsize=7)
    ax2.invert_yaxis()
    ax2.set_xlim(0, 1)
    ax2.set_xlabel("top-1 accuracy (by first expected entry)")
    ax2.set_title("Per-entry accuracy")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
