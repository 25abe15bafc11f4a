"""The bot: safety first, then small talk, then retrieval, then a decision on what to say."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import index as index_mod
from .classifier import EntryModel, model_path
from .config import MAX_QUESTION_CHARS, MAX_SAFETY_CHARS, Paths, RetrievalSettings, default_model, resolve_paths
from .corpus import Corpus, load_faq
from .embed import Encoder
from .errors import CorpusError, IndexBundleError
from .retrieve import Hit, Results, Retriever
from .safety import SafetyHit, SafetyRules
from .textnorm import SpellFixer, Synonyms, clauses, clean, english_words, has_letters, latin_share, words

logger = logging.getLogger(__name__)

_GREETING = re.compile(r"^(hi+|hello+|hey+|hiya|howdy|yo|greetings|good (morning|afternoon|evening|day))"
                       r"( there| bot| everyone| all)?\b[\s!.,:;)-]*", re.IGNORECASE)
_THANKS = re.compile(r"^(thanks?|thank you|thx|ty|cheers|ta|great|ok|okay|cool|perfect|awesome|nice|got it|"
                     r"that helps|that helped|helpful)( (so|very) much| a lot| again| you)?[\s!.]*$", re.IGNORECASE)
_BYE = re.compile(r"^(bye|goodbye|good bye|see you|see ya|cya|later)[\s!.]*$", re.IGNORECASE)
_ABOUT = re.compile(r"^(who|what) are you\??$|^what can you (do|answer|help with)\??$|^(help|menu|start)[!.?]*$",
                    re.IGNORECASE)


@dataclass(frozen=True)
class Suggestion:
    id: str
    question: str
    score: float

    def to_dict(self) -> dict:
        return {"id": self.id, "question": self.question, "score": round(self.score, 4)}


@dataclass
class Answer:
    """What the bot says about one message; ``to_dict()`` is exactly what ``qa ask --json`` prints."""

    question: str
    answered: bool
    kind: str  # answer | fallback | smalltalk | safety | invalid
    answer: str | None = None
    matched_question: str | None = None
    entry_id: str | None = None
    source: dict | None = None
    score: float | None = None
    confidence: str | None = None  # high | medium | low
    suggestions: list[Suggestion] = field(default_factory=list)
    safety: SafetyHit | None = None

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answered": self.answered,
            "kind": self.kind,
            "matched_question": self.matched_question,
            "entry_id": self.entry_id,
            "answer": self.answer,
            "source": self.source,
            "score": None if self.score is None else round(self.score, 4),
            "confidence": self.confidence,
            "suggestions": [s.to_dict() for s in self.suggestions],
            "safety": self.safety.to_dict() if self.safety else None,
        }


class FAQBot:
    """Answers questions from a FAQ corpus.

    Use :meth:`load`; then :meth:`ask` for each message. Thread-safe.
    """

    def __init__(self, corpus: Corpus, bundle: index_mod.Bundle, encoder: Encoder, rules: SafetyRules,
                 settings: RetrievalSettings, paths: Paths, classifier: EntryModel | None = None):
        self.corpus = corpus
        self.encoder = encoder
        self.rules = rules
        self.settings = settings
        self.paths = paths
        self.retriever = Retriever(corpus, bundle, settings, classifier)
        self.synonyms = Synonyms(corpus.synonyms)
        corpus_words: set[str] = self.synonyms.words()
        for e in corpus.entries:
            corpus_words.update(words(" ".join([e.question, e.answer, *e.alternates])))
        self.known_words = encoder.known_words() | english_words()
        self.spelling = SpellFixer(corpus_words, self.known_words)

    @property
    def bundle(self) -> index_mod.Bundle:
        return self.retriever.bundle

    @classmethod
    def load(cls, corpus: str | Path | None = None, index_dir: str | Path | None = None,
             model: str | None = None, safety: str | Path | None = None, settings: str | Path | None = None,
             rebuild: str = "auto", show_progress: bool = False) -> "FAQBot":
        """Load the corpus, safety rules, model and index.

        Args:
            corpus: FAQ folder or file (default ``corpus/faq``; env ``QA_CORPUS``).
            index_dir: index folder (default ``index/``; env ``QA_INDEX``).
            model: local sentence-transformers folder (default: the packaged all-MiniLM-L6-v2; env ``QA_MODEL``).
            safety: safety rules file (default ``corpus/safety.yaml``; env ``QA_SAFETY``).
            settings: tuned retrieval settings file (default ``corpus/settings.json``; env ``QA_SETTINGS``).
            rebuild: "auto" rebuilds a missing, stale or damaged index; "never" raises instead; "always" rebuilds.
            show_progress: progress bar while building.

        Raises:
            CorpusError: a FAQ or rules file is malformed (names file and line).
            ConfigError: the model cannot be loaded.
            IndexBundleError: with ``rebuild="never"``, the index cannot be used.
        """
        paths = resolve_paths(corpus, index_dir, safety, settings)
        faq = load_faq(paths.corpus)
        rules = SafetyRules.load(paths.safety)
        retrieval = RetrievalSettings.load(paths.settings)
        encoder = Encoder.load(model or default_model())
        bundle = None
        if rebuild != "always":
            try:
                bundle = index_mod.load(faq, encoder, paths.index, retrieval.embed_fields)
            except IndexBundleError as exc:
                if rebuild == "never":
                    raise
                logger.warning("%s: rebuilding", exc)
        if bundle is None:
            bundle = index_mod.build(faq, encoder, paths.index, retrieval.embed_fields, show_progress=show_progress)
        classifier = _classifier(paths.settings, retrieval, faq, encoder)
        if classifier is None and retrieval.uses_classifier:
            retrieval = retrieval.without_classifier()
        bot = cls(faq, bundle, encoder, rules, retrieval, paths, classifier)
        # Every FAQ question is a benign example for the safety check; the index has their vectors.
        rules.prepare(encoder, extra_benign=index_mod.question_vectors(bundle, faq, encoder),
                      known_words=bot.known_words, cache_dir=paths.index)
        return bot

    # --- asking --------------------------------------------------------------------

    def ask(self, question: str) -> Answer:
        """Answer one message. Never raises for any string (or bytes) input."""
        if isinstance(question, bytes):
            question = question.decode("utf-8", errors="replace")
        elif not isinstance(question, str):
            question = "" if question is None else str(question)
        # Lone surrogates (a JSON "\ud800" escape, a non-UTF-8 argv byte) cannot be tokenized or printed.
        question = question.encode("utf-8", errors="replace").decode("utf-8")
        text = clean(question[: MAX_SAFETY_CHARS * 2])
        original = question

        if not text:
            return self._reply(original, "invalid",
                               f"Please type a question about the {self.corpus.title}, for example: "
                               f"“{self.corpus.entries[0].question}”")
        if len(text) > MAX_QUESTION_CHARS:
            hit = self.rules.check(text[:MAX_SAFETY_CHARS])
            if hit and hit.blocks_answer:
                return Answer(original, False, "safety", safety=hit)
            return self._reply(original, "invalid",
                               f"That message is too long ({len(text):,} characters; the limit is "
                               f"{MAX_QUESTION_CHARS:,}). Please ask one question in a sentence or two.", hit)
        if not has_letters(text):
            return self._reply(original, "invalid",
                               "I couldn't find any words in that message. Please type your question "
                               f"about the {self.corpus.title}.")

        query = self.prepare_query(text)
        # One model call for the query, its clauses and the clauses the safety check compares by meaning.
        mine = self.query_texts(query)
        vectors = self.encoder.encode(mine + self.rules.meaning_pieces(text))
        hit = self.rules.check(text, encode=self.encoder.encode, text_vector=vectors[0],
                               piece_vectors=vectors[len(mine):])
        vectors = vectors[: len(mine)]
        if hit and hit.blocks_answer:
            return Answer(original, False, "safety", safety=hit)

        if small := self._small_talk(text):
            return self._reply(original, "smalltalk", small, hit)
        if latin_share(text) < 0.5:
            return self._reply(original, "invalid",
                               f"Sorry, I can only answer questions in English about the {self.corpus.title}.", hit)

        results = self.retriever.search(query, vectors, k=self.settings.max_suggestions + 1)
        return self._decide(original, results, hit)

    def _decide(self, question: str, results: Results, safety: SafetyHit | None) -> Answer:
        s = self.settings
        hits = results.hits
        best = hits[0]
        if best.similarity < s.suggestion_floor:  # far from every entry in words and meaning alike
            examples = "”, “".join(e.question for e in self.corpus.entries[:2])
            return Answer(
                question, False, "fallback",
                answer=(f"Sorry, that isn't something the {self.corpus.title} covers. "
                        f"You can ask me things like “{examples}”"),
                score=best.score, confidence="low", safety=safety,
            )
        gap = results.out_of_scope - best.dense  # how much nearer the nearest out-of-scope question is
        if (best.score < s.threshold or gap >= s.out_of_scope_margin
                or (results.off_topic_phrases and gap >= -s.contrast_margin)
                or results.not_covered > s.not_covered_decline):
            return Answer(
                question, False, "fallback",
                answer=(f"Sorry, I couldn't find that in the {self.corpus.title}. "
                        "It only covers the questions it was written for; here are the closest ones."),
                score=best.score, confidence="low",
                suggestions=[_suggest(h) for h in hits[: s.max_suggestions]], safety=safety,
            )
        ties = [h for h in hits[1:] if best.score - h.score <= s.tie_margin][: s.max_suggestions]
        confidence = "high" if best.score >= s.high_confidence and not ties else "medium"
        e = best.entry
        return Answer(
            question, True, "answer", answer=e.answer, matched_question=e.question, entry_id=e.id,
            source=e.source.to_dict(e.question), score=best.score, confidence=confidence,
            suggestions=[_suggest(h) for h in ties], safety=safety,
        )

    def _small_talk(self, text: str) -> str | None:
        t = text.strip()
        topic = self.corpus.title
        if _THANKS.match(t):
            return "You're welcome! Ask me anything else about the " + topic + "."
        if _BYE.match(t):
            return "Take care! Come back any time you have a question about the " + topic + "."
        if _ABOUT.match(t):
            return (f"I'm a FAQ assistant: I answer questions from the {topic}, with the source of each answer. "
                    "I don't give medical advice. Try: “" + self.corpus.entries[0].question + "”")
        if _GREETING.fullmatch(t) or (_GREETING.match(t) and not words(_GREETING.sub("", t, count=1))):
            return f"Hello! Ask me a question about the {topic}, for example: “{self.corpus.entries[0].question}”"
        return None

    @staticmethod
    def _reply(question: str, kind: str, text: str, safety: SafetyHit | None = None) -> Answer:
        return Answer(question, False, kind, answer=text, safety=safety)

    # --- for evaluation --------------------------------------------------------------

    def prepare_query(self, text: str) -> str:
        """The text retrieval works on: cleaned, without a leading greeting, typos corrected,
        the FAQ's synonyms in the FAQ's own words."""
        text = clean(text)
        return self.synonyms.apply(self.spelling.fix(_GREETING.sub("", text, count=1) or text))

    def query_texts(self, query: str) -> list[str]:
        """What retrieval embeds for a prepared query: the whole of it, then the clauses that are matched
        on their own (none when ``clause_weight`` is 0)."""
        return [query, *(clauses(query) if self.settings.clause_weight > 0 else [])]

    def search(self, question: str, k: int = 5, **overrides) -> Results:
        """Rank entries for a question exactly as :meth:`ask` does (for evaluation and comparisons)."""
        query = self.prepare_query(question)
        return self.retriever.search(query, self.encoder.encode(self.query_texts(query)), k=k, **overrides)


def _classifier(settings_path: Path, settings: RetrievalSettings, corpus: Corpus,
                encoder: Encoder) -> EntryModel | None:
    """The entry classifier fitted for this FAQ, if there is one and it still fits it."""
    path = model_path(settings_path)
    if not path.exists():
        if settings.uses_classifier:
            logger.warning("%s: missing, though %s was tuned with it; answering without it until `qa tune` "
                           "fits it again", path, settings_path)
        return None
    try:
        model = EntryModel.load(path)
    except CorpusError as exc:  # the bot answers without it: it is an aid, not a part
        logger.warning("%s; answering without it", exc)
        return None
    if why := model.fits([e.id for e in corpus.entries], encoder.name, encoder.dimension):
        logger.warning("%s: not used, %s; answering without it until `qa tune` fits it again", path, why)
        return None
    return model


def _suggest(hit: Hit) -> Suggestion:
    return Suggestion(hit.entry.id, hit.entry.question, hit.score)


