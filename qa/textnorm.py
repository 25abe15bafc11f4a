"""Cleaning user text before matching: control characters, HTML, whitespace, typos."""

from __future__ import annotations

import gzip
import html
import json
import re
import unicodedata
from functools import lru_cache

from rapidfuzz.distance import DamerauLevenshtein
from rapidfuzz import process

_TAG = re.compile(r"<\s*(script|style)\b.*?<\s*/\s*\1\s*>|<[^>]{0,500}>", re.IGNORECASE | re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "“": '"', "”": '"'})


def clean(text: str) -> str:
    """Text as a person meant it: NFKC, no control or bidi characters, no HTML tags, single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.translate(_QUOTES).split())


# Sentence ends, and a comma or dash before a word that starts a new thought ("..., but why does it hurt").
_CLAUSE_BREAK = re.compile(r"(?<=[.?!;:])\s+|\s+[-–—]+\s+|,\s+(?=(?:but|so|anyway|anyways|btw|also|and "
                           r"(?:what|how|why|which|is|are|can|should|do|does)|what|how|why|which|is|are|can|could|"
                           r"should|would|do|does|will)\b)", re.IGNORECASE)
#: Clauses shorter than this many words ("ok.", "thanks!") are not matched on their own.
MIN_CLAUSE_WORDS = 3
#: At most this many clauses of a message are matched on their own (the longest ones).
MAX_CLAUSES = 6


def clauses(text: str) -> list[str]:
    """The sentences and clauses of a message of several, each of at least three words; ``[]`` for a
    message of one (it is matched whole)."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(text) if p and p.strip()]
    parts = [p for p in parts if len(words(p)) >= MIN_CLAUSE_WORDS]
    if len(parts) < 2:
        return []
    if len(parts) > MAX_CLAUSES:
        keep = sorted(sorted(range(len(parts)), key=lambda i: -len(parts[i]))[:MAX_CLAUSES])
        parts = [parts[i] for i in keep]
    return parts


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def latin_share(text: str) -> float:
    """Share of letters that are ASCII: a cheap "is this English-like" signal."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(ch.isascii() for ch in letters) / len(letters)


#: English words seen at least this often in pyspellchecker's word list are never "corrected". Its
#: rarest band (seen 50 times, 103k of its 160k words) holds typos of their own ("brest") and is left out.
ENGLISH_MIN_COUNT = 51


@lru_cache(maxsize=4)
def english_words(min_count: int = ENGLISH_MIN_COUNT) -> frozenset[str]:
    """Real English words (pyspellchecker's frequency list, shipped inside the package): a word in it is
    not a typo, so "lats", "bloke" and "kilo" stay themselves instead of becoming "last", "broke", "kill"."""
    try:  # the package's own data file, read directly: 0.25 s instead of 1.2 s for SpellChecker(), at every start
        from importlib.resources import files

        with files("spellchecker").joinpath("resources/en.json.gz").open("rb") as f:
            counts = json.loads(gzip.decompress(f.read()))
    except (OSError, ValueError, ModuleNotFoundError):
        from spellchecker import SpellChecker

        counts = SpellChecker(language="en", distance=1).word_frequency.dictionary
    return frozenset(w for w, n in counts.items() if n >= min_count and w.isalpha())


# (ending, what replaces it) for recognising inflected forms of known words; "shovelling" -> "shovel".
_SUFFIXES = [("ies", "y"), ("ied", "y"), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""),
             ("er", ""), ("ers", ""), ("est", ""), ("ly", ""), ("ness", "")]


def _typo_rank(typed: str, meant: str) -> int:
    """How likely a typo of the same distance is, most likely first: a letter left out ("fevr" for
    "fever", not "fear"), two letters swapped, one letter wrong, one letter too many."""
    if len(meant) == len(typed) + 1:
        return 0
    if len(meant) == len(typed):
        return 1 if sorted(meant) == sorted(typed) else 2
    return 3


class SpellFixer:
    """Corrects words that are in no dictionary to a close word of the corpus.

    A word is left alone when it is a known English word (the model's tokenizer
    vocabulary) or a corpus word; otherwise it becomes the corpus word within one
    edit (two for words of eight letters or more), if there is one.
    """

    def __init__(self, corpus_words: set[str], known_words: set[str]):
        self.targets = sorted(w for w in corpus_words if len(w) >= 4)
        self.known = known_words | corpus_words
        self._memo: dict[str, str] = {}

    def fix_word(self, word: str) -> str:
        if len(word) < 4 or word in self.known or not word.isalpha():
            return word
        if word in self._memo:
            return self._memo[word]
        fixed = word
        if not self._inflected(word):
            limit = 1 if len(word) < 8 else 2
            close = process.extract(word, self.targets, scorer=DamerauLevenshtein.distance, score_cutoff=limit,
                                    limit=None)
            fixed = min(close, key=lambda c: (c[1], _typo_rank(word, c[0]), c[2]))[0] if close else word
        if len(self._memo) < 100_000:
            self._memo[word] = fixed
        return fixed

    def _inflected(self, word: str) -> bool:
        """A known word with an English ending ("shoveling", "mins", "stiffer"): not a typo."""
        for suffix, repl in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                stem = word[: -len(suffix)] + repl
                if stem in self.known or (len(stem) > 3 and stem[-1] == stem[-2] and stem[:-1] in self.known):
                    return True
        return False

    def fix(self, text: str) -> str:
        """``text`` lowercased with its unknown words corrected."""
        return _WORD.sub(lambda m: self.fix_word(m.group(0)), text.lower())


class Synonyms:
    """Rewrites a FAQ's own synonyms to the words its entries use ("scapula" -> "shoulder blade").

    Built from the corpus's ``synonyms`` mapping, ``{canonical: [variant, ...]}``. Whole words
    and phrases only, case-insensitive, longest variant first, so "mid traps" wins over "traps".
    """

    def __init__(self, mapping: dict[str, list[str]] | None = None):
        pairs = {v.lower().strip(): canon.lower().strip()
                 for canon, variants in (mapping or {}).items() for v in variants if v.strip()}
        self.mapping = pairs
        alternatives = "|".join(re.escape(v) for v in sorted(pairs, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w'-])(?:{alternatives})(?![\w'-])", re.IGNORECASE) if pairs else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def words(self) -> set[str]:
        """Every word of every variant and canonical form (so spelling fixes aim at them)."""
        return {w for pair in self.mapping.items() for phrase in pair for w in words(phrase)}

    def apply(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self.mapping[m.group(0).lower()], text)
