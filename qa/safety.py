"""Safety: spot urgent messages and pin a fixed safety answer above everything else.

Three detectors, driven by the human-editable rules file (``corpus/safety.yaml``) and the labelled set:

1. **Rules**: regular expressions per category, matched on the message after
   cleaning and typo correction ("chset pain" -> "chest pain"), clause by clause (a category's ``across``
   patterns read the sentences together: "motorway bridge. been here since 10. trying to work up the nerve").
   Sub-patterns several rules share are named once in the file's ``vocabulary:`` and used as ``{NAME}``.
   A match right after a negation ("no chest pain, just stiffness") does not count;
   an ``unless`` pattern in the same clause ("sat on my foot") vetoes its category up to a turn
   back to the present ("... and now I have", "suddenly"), and a calm context ("years ago", "if I
   ever") every category below crises unless the clause also says "now"; the learned model then decides.
   A calm context holds its own part of the clause and the story it tells, not a statement in the present
   beside it (:func:`_calm_holds`): "had a fever on sunday, it's gone now" and "years ago, my dad collapsed"
   are held; "he had a stroke years ago, his face is drooping again" and "what are the signs of a heart
   attack? his face is grey" ask the model about what follows.
   A category's ``harmless`` phrases ("fell off the wagon", "chest day") are blanked out before
   matching: they silence their own words only (for every category), so the rest of the clause is still read.
   A category's ``topic`` patterns are the words that name a crisis ("self-harm", "suicidal", "want to die"),
   said of the past, of others and in jokes as often as in one: their pin stands unless the reader (below) is
   sure the message is not urgent (:meth:`SafetyRules._reader_vetoes`).
   ``confirm`` patterns are words with common harmless senses ("collapsed posture", "passed out
   flyers", "the boss gave me a heart attack"): they pin only when the learned model (below) also
   finds the message more likely urgent than not; without a usable model they pin like any rule.
2. **Meaning**: the message (and each clause of a longer one) is compared with the
   category's example sentences by embedding. It fires when it is close to an
   urgent example and clearly closer to it than to any benign example (the benign
   list plus every FAQ question), which catches indirect phrasing ("felt something
   rip between my shoulder blades") without firing on FAQ questions. Its pin, like a ``topic`` word's, stands
   unless the reader is sure the message is not urgent: closeness in meaning is the weakest evidence the
   check has ("what does a 'tearing' back pain mean in general? not me" is close to "sudden tearing pain").
3. **Learned**: a linear model over the same vectors (:mod:`qa.urgency`, ``safety.model.json``) and, when
   the rules file has one, the embedding model fine-tuned on the labelled set (:mod:`qa.reader`,
   ``safety.reader.safetensors``). Either pins on its own at its threshold when nothing else did (the reader
   only where the linear model finds the message at least ``READER_GATE`` urgent); a ``confirm`` word asks
   the linear model only. The reader takes a pin away only from a ``topic`` word or an example's closeness, and
   only when it is sure.

When in doubt the rules pin: a hypothetical "what if I get chest pain" is pinned.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .errors import CorpusError
from .corpus import read_text
from .io import atomic_write_bytes
from .textnorm import SpellFixer, clean, words
from .reader import SafetyReader, reader_path
from .urgency import NOT_URGENT, READER_GATE, UrgencyModel, model_path

logger = logging.getLogger(__name__)

#: Cache of the rules' example vectors, in the index folder (see ``SafetyRules.prepare``).
SAFETY_CACHE = "safety-vectors.npz"
LEVELS = ("emergency", "crisis", "urgent")  # most pressing first
_NEGATIONS = {"no", "not", "never", "without", "nor", "none", "neither", "denies", "deny", "don't",
              "doesn't", "didn't", "isn't", "wasn't", "haven't", "hasn't", "aren't", "weren't", "zero",
              "nae"}
#: Words that end a negation's reach: "never stops and suicide ...".
_SCOPE_ENDS = {"and", "so", "then"}
#: A dash, or an answer "no" with its own punctuation, before a new subject: "my friend isn't - she swallowed ...",
#: "can I stay awake? no, i keep blacking out", but not "no - chest pain was ruled out".
_BREAKS = {"-", "–", "—"}
_ANSWERS = {"no", "nope", "nah"}
_SUBJECTS = {"i", "i'm", "i've", "it", "it's", "he", "he's", "she", "she's", "they", "they're", "we", "we're", "my", "his",
             "her", "their", "our"}
#: Verbs whose negation is about themselves: the negation's reach ends at the person after them ("doesn't know | I
#: took 40 paracetamol", "hasn't moved | she collapsed", "doesn't help | I can't breathe"). Only these: after "think",
#: "say" or "mean" it goes on ("I don't think I blacked out"), as it does past "my" ("not my chest pain"); a
#: session-15 review found 93 false alarms when any subject ended the reach.
_OWN_VERBS = {"know", "knows", "knew", "realise", "realised", "realize", "realized", "notice", "noticed", "understand",
              "care", "tell", "told", "faint", "fainted", "move", "moved", "stop", "stops", "stopped", "help", "helps",
              "helped", "work", "works", "worked", "matter", "matters", "wake", "woke", "answer", "answered", "respond",
              "responded", "budge", "budged", "check", "checked"}
_PERSONS = {"i", "i'm", "i've", "he", "he's", "hes", "she", "she's", "shes", "they", "they're", "theyre", "we", "we're"}
_CLAUSE_SPLIT = re.compile(r"(?<=[.!?;])\s+|\s*[,;]?\s+\b(?:but|however|although|though)\b\s+|\s+[+&]\s+|\n+")
#: Messages up to this long are judged as a whole when a rule asks the model (:meth:`SafetyRules._agreement`):
#: all-MiniLM-L6-v2 reads 256 tokens, about 1,000 characters; longer ones are cut off in their one vector.
WHOLE_CHARS = 800
#: A clause that asks something ("also, which stretch helps?"): left out of what qualifies an alarming word.
_ASKS = re.compile(r"^(?:(?:also|and|anyway|so|btw|but|ok|okay|oh|sorry|quick question|quick one"
                   r"|one more thing)[,:]?\s+)*"
                   r"(?:what|what's|which|how|is|are|can|could|does|do|should|would|will|where|when|why|any)\b(?!')")
#: A part that says what would happen, not what does: "hypothetically, if someone had crushing chest pain ...".
_IF = re.compile(r"(what |even )?if\b")
#: A part of a clause told in the present: "his face is drooping again", "can't breathe", "she's floppy", "same
#: crushing pain", "this feels exactly the same". A part told in the past and not in the present (:data:`_PAST_TENSE`:
#: "years ago, my dad collapsed at a wedding and stopped breathing") goes on with the story a calm context tells.
_PRESENT_TENSE = re.compile(r"\b(is|are|am|isn't|aren't|isnt|arent|can't|cant|cannot|won't|wont|doesn't|doesnt|don't|dont"
                            r"|keeps|keep|has|have|hasn't|haven't|hasnt|havent|still|now|today|tonight|currently|just"
                            r"|feel|feels|hurts|same|again|this time|suddenly|rn|for the (last|past))\b|\b\w+'(s|re|m|ve)\b")
_PAST_TENSE = re.compile(r"\b(was|were|wasn't|weren't|wasnt|werent|had|did|didn't|didnt|went|got|came|took|fell|broke|gave"
                         r"|felt|ended up|couldn't|couldnt|\w{3,}ed)\b")
#: A calm context that dates its story (:func:`_dates`): says it is over ("fine now", "fully recovered", "GP checked
#: her") or old ("years ago", "as a kid", "in 2019", "used to"). Others frame the message ("just in case", "what are
#: the signs of", "kidding aside") and say nothing of when: "just in case, my toddler swallowed a battery".
_OVER = re.compile(r"\b(recover\w*|heal\w*|fine|ok|okay|good|better|great|normal|never happened|cleared|went away|resolved"
                   r"|gone|passed|settled|checked|looked at|examined|saw|seen)\b")
_OLD = re.compile(r"\b(ago|back|last|as a|when (i|he|she|they|we) (was|were)|used to|in the past|19\d\d|20\d\d)\b")
#: A part about anyone or what someone said, not about someone here: "exam question, a man fell off scaffolding",
#: "first aid course today, the trainer said someone who has collapsed and isn't breathing needs cpr".
_GENERAL = re.compile(r"((say|imagine|suppose|supposing|let's say|lets say|if|when|what if) )?(someone|somebody|a person"
                      r"|a man|a woman|a patient|a casualty|people|you|the (patient|casualty|person|victim))\b"
                      r"|(\w+ ){0,4}(said|told (us|me)|taught (us|me)|explained|mentioned|warned)\b")
#: The reader's P(crisis) of the whole message below which none of its clauses alone pins a crisis
#: (:meth:`SafetyRules._crisis_read`): out of context "you'd think stopping would help" reads as despair.
CRISIS_WHOLE = 0.5
#: A clause this short that a ``confirm`` pattern matched in is also read on its own ("Dad collapsed.").
BARE_WORDS = 5
#: A clause that says the trouble is happening now: a calm context there asks the model instead of vetoing.
_NOW = re.compile(r"\b(right now|just now|at the moment|as we speak|tonight|this (morning|afternoon|evening)"
                  r"|(\d+|a few|few|an?|one|two|three|ten|twenty|thirty) (minutes?|mins?|hours?|hrs?) ago"
                  r"|now (i|i'm|i've|he|she|they|he's|she's|they're|my|his|her|their|it's|there's)"
                  r"|(is|are|am|'s|'re|'m) (?!(gone|fine|ok|okay|better|good|great|normal|over|healed|cleared|settled|all|\d+)\b)\w+ now)\b")
#: Someone in the present, after a question or an old story: "what are the signs of a stroke, my dad's face is
#: drooping", "does the faq cover this because my chest is crushing". Lifts a calm context like "now".
_PRESENT = (r"because (my \w+ (is|are|keeps|feels|has)|i'm|i am|i can't|he's|she's|he can't|she can't)"
            r"|(my|his|her|our) (wife|husband|partner|dad|father|mum|mom|mother|son|daughter|baby|child|kid|friend"
            r"|brother|sister|grandad|grandpa|grandma|granny|nan|gran|boyfriend|girlfriend)( is| has| just| won't| can't"
            r"| isn't| keeps|'s (just|not)|'s(?= (face|lips|mouth|arm|arms|leg|legs|speech|breathing|chest|heart|skin)\b))")
_CALM_LIFT = re.compile(rf"\b({_PRESENT}|suddenly(?= (i can't|i cannot|i'm|i am|i have|i've|he's|she's|he can't|she can't)\b)"
                        r"|(i|he|she|they) just (fell|collapsed|passed out|fainted|blacked out))\b")
#: Where a clause's parts meet: a comma, a dash, or "and/then/so" before someone or something new. A calm context
#: holds its own part: "he had a stroke years ago, his face is drooping again" asks the model about the second.
_PARTS = re.compile(r",\s*|\s+[-–—]\s+|\s+(?:and|then|so)\s+(?=(?:i|i'm|i've|he|he's|she|she's|they|they're|we|we're"
                    r"|my|his|her|their|our|the|it|it's|this|that|now|today)\b)")
#: A turn after an ``unless`` veto lifts it: the rules read the clause, and the model must agree ("I had a
#: heart attack last year and now I have crushing chest pain"). Not a bare "now my": "sat on my foot and
#: now my foot is numb" is what the veto explains.
_TURN = re.compile(rf"\b({_PRESENT}|suddenly(?= (the worst|i can't|i cannot|i'm|my (left|right) (side|arm|leg)|my face|he|she)\b)"
                   r"|and now(?= (i|he|she|they|i'm|i've|he's|she's|they're|the same|crushing|severe|sudden|sharp|terrible|awful"
                   r"|my (left arm|jaw|face|lips|speech))\b)"
                   r"|now it's (back|worse|spreading|returned|happening|crushing))\b")
#: A short question about an alarming word that the next clause answers "no", and no more than that: "chest pressure?
#: nope. my drum throne is too low", "dizzy? no. faint? no.", "running a temperature? nah, just the sauna". Not "no
#: response when I talk to him", "no, it's been spurting for 20 mins", "no idea".
_DENIAL = re.compile(r"(no|nope|nah|nay|not really|not at all|none)(\W*$|[,.!]+\s*(just|only|i'm fine|all good|fine)\b)")
#: What a crisis question asks about that a "no" does not deny: "any reason to keep living? no."
_HOPE = re.compile(r"\b(reason|point) (to|in)\b")
#: Escapes in a pattern's source ("\\b", "\\w"): left out of the words the typo fixer learns from the rules.
_ESCAPES = re.compile(r"\\[a-zA-Z]")
#: A vocabulary name in a pattern: ``{CHILD}`` (capitals, so never a repeat count like ``{0,3}``).
_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_PLACEHOLDER = re.compile(rf"\{{({_NAME.pattern})\}}")
#: Contractions typed without their apostrophe, spelled out before and after the typo fixer (which would
#: otherwise make "couldnt" the rules' own word "couldn" and lose "we couldnt breathe").
_CONTRACTIONS = [(re.compile(r"\b(can|don|doesn|didn|isn|wasn|won|couldn|wouldn|shouldn|haven|hasn|hadn|aren|weren)t\b"),
                  r"\1't"),
                 (re.compile(r"\bim\b"), "i'm"), (re.compile(r"\bive\b"), "i've")]


@dataclass(frozen=True)
class SafetyHit:
    """A pinned safety answer for one category."""

    category: str
    level: str
    title: str
    message: str
    reason: str  # what fired: "rule: ..." or "similar to: ..."
    #: P(urgent) when the learned model alone pinned it (below every rule): how `qa tune` chooses its threshold.
    probability: float | None = None

    def to_dict(self) -> dict:
        return {"category": self.category, "level": self.level, "title": self.title, "message": self.message}

    @property
    def blocks_answer(self) -> bool:
        """Emergencies and crises show nothing but the safety message."""
        return self.level in ("emergency", "crisis")


@dataclass
class Category:
    id: str
    level: str
    title: str
    message: str
    patterns: list[re.Pattern]
    unless: list[re.Pattern]
    examples: list[str]
    confirm: list[re.Pattern] = field(default_factory=list)  # pin only if the model agrees
    #: Phrases using an alarming word harmlessly ("fell off the wagon", "felt like I got hit by a truck"):
    #: blanked out before the rules read a clause, so, unlike ``unless``, they silence nothing else in it.
    harmless: list[re.Pattern] = field(default_factory=list)
    #: Patterns read across the sentences of a message, not clause by clause: a crisis told in short
    #: sentences ("motorway bridge by junction 14. I've been here since 10. trying to work up the nerve").
    across: list[re.Pattern] = field(default_factory=list)
    #: Words that name the subject ("self-harm", "suicidal", "want to die"): said of the past, of someone else, in
    #: questions and jokes as often as in a crisis. Read after ``patterns``; their pin stands unless the fine-tuned
    #: reader finds the message at most ``reader_veto`` urgent (:meth:`SafetyRules._reader_vetoes`).
    topic: list[re.Pattern] = field(default_factory=list)


@dataclass
class SafetyRules:
    categories: list[Category]
    benign_examples: list[str]
    #: ``calm_context``: patterns that veto every category below crises in their part of a clause and what came
    #: before it (a fall "years ago", "fully recovered", "not literally", "if I ever ...").
    calm: list[re.Pattern] = field(default_factory=list)
    #: ``doubt_context``: patterns that make every rule in their clause ask the model, as ``confirm``
    #: patterns do (a film, the news, a book: "a character had a heart attack" against "I was watching
    #: the news and got crushing chest pain"); crises included.
    doubt: list[re.Pattern] = field(default_factory=list)
    similarity: float = 0.6  # an urgent example at least this close ...
    margin: float = 0.05  # ... and this much closer than any benign one
    confirm: float = 0.5  # P(urgent) from the learned model at which a ``confirm`` pattern pins
    #: P(urgent) from the reader at or below which a ``topic`` pattern or an urgent example's closeness does not pin
    reader_veto: float = 0.1
    #: ``crisis_reads``: categories the reader's probabilities are summed over for a crisis (a deliberate overdose is
    #: split between self-harm and overdose), the crisis first; it pins their sum at ``crisis_pin`` when nothing
    #: else pinned (:meth:`SafetyRules._crisis_read`). Empty: off.
    crisis_reads: tuple[str, ...] = ()
    crisis_pin: float = 0.95
    fingerprint: str = ""
    path: str = ""
    _fixer: SpellFixer | None = field(default=None, repr=False)
    _urgent_vecs: np.ndarray | None = field(default=None, repr=False)
    _urgent_cat: np.ndarray | None = field(default=None, repr=False)
    _benign_vecs: np.ndarray | None = field(default=None, repr=False)
    #: The learned detector `qa tune` fits on the labelled set (``safety.model.json`` beside the rules).
    urgency: UrgencyModel | None = field(default=None, repr=False)
    _model_skip: frozenset = field(default=frozenset(), repr=False)  # model classes the rules do not have

    @classmethod
    def load(cls, path: str | Path) -> "SafetyRules":
        """Read and validate the rules file; errors name the file and line."""
        path = Path(path)
        text = read_text(path)
        try:
            root = yaml.compose(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise CorpusError(path, f"YAML syntax error: {getattr(exc, 'problem', exc)}",
                              mark.line + 1 if mark else None) from None
        if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
            raise CorpusError(path, "expected 'categories:' with a list of categories", 1)
        names = _vocabulary(path, root, data.get("vocabulary"))
        lines = _item_lines(root, "categories")
        categories = []
        for i, item in enumerate(data["categories"]):
            line = lines[i] if i < len(lines) else None
            categories.append(_category(path, item, line, names))
        settings = data.get("semantic") or {}

        def top_list(key: str) -> list[re.Pattern]:
            node = _value_node(root, key)
            return _compile(path, key, data.get(key), node.start_mark.line + 1 if node else None, names)

        return cls(
            categories=categories,
            benign_examples=[str(x) for x in data.get("benign_examples") or []],
            calm=top_list("calm_context"),
            doubt=top_list("doubt_context"),
            similarity=float(settings.get("similarity", 0.6)),
            margin=float(settings.get("margin", 0.05)),
            confirm=float(settings.get("confirm", 0.5)),
            reader_veto=float(settings.get("reader_veto", 0.1)),
            crisis_reads=_crisis_reads(path, root, settings, categories),
            crisis_pin=float(settings.get("crisis_pin", 0.95)),
            fingerprint=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            path=str(path),
            urgency=UrgencyModel.load(model_path(path)) if model_path(path).exists() else None,
        )

    # --- preparing -----------------------------------------------------------------

    def prepare(self, encoder, extra_benign: np.ndarray | None = None, known_words: set[str] | None = None,
                cache_dir: str | Path | None = None) -> None:
        """Embed the example sentences and set up typo correction (once, at load).

        Args:
            encoder: a :class:`qa.embed.Encoder`.
            extra_benign: unit vectors of more benign examples (the FAQ's questions, which the
                index bundle keeps), shape (n, dimension).
            known_words: real words, so that typo correction leaves them alone.
            cache_dir: keep the vectors of the rules' own examples here (a file keyed by the model
                and the texts), so the next load does not embed them again.
        """
        urgent = [(ex, i) for i, cat in enumerate(self.categories) for ex in cat.examples]
        own = [ex for ex, _ in urgent] + list(self.benign_examples)
        vecs = _cached_vectors(encoder, own, Path(cache_dir) if cache_dir else None)
        extra = np.zeros((0, vecs.shape[1]), np.float32) if extra_benign is None else \
            np.asarray(extra_benign, dtype=np.float32).reshape(-1, vecs.shape[1])
        self._urgent_vecs = vecs[: len(urgent)]
        self._urgent_cat = np.array([i for _, i in urgent], dtype=np.int32)
        self._benign_vecs = np.ascontiguousarray(np.vstack([vecs[len(urgent):], extra]), dtype=np.float32)
        self._set_fixer(known_words or set())
        if self.urgency is not None and (why := self.urgency.other_encoder(encoder.name, vecs.shape[1])):
            logger.warning("%s: %s: not used (run `qa tune` to refit it)", model_path(self.path), why)
            self.urgency = None
        if self.urgency is not None:
            unknown = set(self.urgency.classes[1:]) - {c.id for c in self.categories}
            if unknown:
                logger.warning("%s: categories %s are not in the rules: their probability is ignored",
                               model_path(self.path), ", ".join(sorted(unknown)))
            self._model_skip = frozenset(unknown)
            self._attach_reader(encoder)

    def _attach_reader(self, encoder) -> None:
        """Load the fine-tuned reader beside the rules (``safety.reader.safetensors``), if there is one, and
        give it to the learned model, which asks it (:class:`qa.urgency.UrgencyModel`)."""
        path = reader_path(self.path)
        if not path.exists():
            return
        reader = SafetyReader.load(path)  # CorpusError for a damaged file, as for the safety model
        try:
            reader.attach(encoder)
        except ValueError as exc:  # another encoder, or weights that do not fit this one
            logger.warning("%s: %s: not used (run `qa tune --reader` to fit it again)", path, exc)
            return
        self.urgency.reader = reader

    def _set_fixer(self, known_words: set[str]) -> None:
        # The rules' own words, benign ones included: "crick" must not become "crack" (a broken rib).
        vocab: set[str] = {"nope", "nah", "nay"}  # answers :data:`_DENIAL` reads ("nope" is not "cope")
        for ex in [*self.benign_examples, *(ex for cat in self.categories for ex in cat.examples)]:
            vocab.update(words(ex))
        for pat in [*self.calm, *self.doubt, *(pat for cat in self.categories
                                               for pat in [*cat.patterns, *cat.confirm, *cat.unless, *cat.harmless, *cat.across,
                                                           *cat.topic])]:
            vocab.update(re.findall(r"[a-z]{4,}", _ESCAPES.sub(" ", pat.pattern)))  # not "bwork" from "\\bwork"
        self._fixer = SpellFixer(vocab, known_words)

    # --- checking ------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """Lowercase, typo-corrected text with contractions spelled out ("cant" -> "can't")."""
        text = _spell_out(clean(text).lower())
        if self._fixer is None:
            self._set_fixer(set())
        return _spell_out(self._fixer.fix(text))

    def _clauses(self, text: str) -> list[str]:
        norm = self.normalize(text)
        return [c for c in _CLAUSE_SPLIT.split(norm) if c and c.strip()] or [norm]

    def meaning_pieces(self, text: str) -> list[str]:
        """The clauses of a message that the meaning check embeds on their own (none for one clause),
        so a caller can embed them together with its own texts and pass ``piece_vectors``."""
        return _pieces(self._clauses(text))

    def check(self, text: str, encode=None, text_vector: np.ndarray | None = None,
              piece_vectors: np.ndarray | None = None) -> SafetyHit | None:
        """The most pressing category the message falls in, or None.

        Args:
            text: the user's message (any length; callers cap it).
            encode: ``list[str] -> np.ndarray`` for the meaning check; None skips it.
            text_vector: the embedding of the whole message, if the caller has it already.
            piece_vectors: the embeddings of :meth:`meaning_pieces`, if the caller has them already.
        """
        clauses = self._clauses(text)
        blanked: set[str] = set()  # categories with a harmless phrase in the message
        bare = [self._without_harmless(c, blanked) for c in clauses]  # what the rules read
        vetoed: set[str] = set()  # categories a rule found negated or vetoed (the rules add them)
        calm: set[str] = set()  # categories a calm context vetoed (below crises, all of them)
        # The same for every category: None, no calm context; False, it vetoes; True, "now" lifts it.
        calmed = [None if (at := _first(self.calm, c)) is None else bool(_NOW.search(c) or _CALM_LIFT.search(c, at))
                  for c in bare]
        # Where each held calm context is (:data:`_PARTS`), and whether it dates its story: the same for every category.
        holding = [(_calm_parts(self.calm, c), _dates(self.calm, c)) if k is False else (set(), False)
                   for c, k in zip(bare, calmed)]
        found = [hit for cat in self.categories if (hit := self._rule_hit(cat, bare, calmed, holding, vetoed, calm))]
        seen = {h.category for h, _, _ in found}
        texts = _row_texts(text, clauses)  # what the learned models read: the message, then its clauses
        # The words of the subject alone ("self-harm", "suicidal"), where no other pattern of the category matched in
        # any clause: the reader may find the message not urgent. Vetoed, the category's `across` and `confirm`
        # patterns are still read ("I used to self harm. the cable is tied to the banister").
        topical = [hit for cat in self.categories if cat.topic and cat.id not in seen
                   and (hit := self._rule_hit(cat, bare, calmed, holding, vetoed, calm, topic=True))]
        if topical and self._reader_vetoes(texts):
            vetoed |= {h.category for h, _, _ in topical}
        else:
            found += topical
            seen |= {h.category for h, _, _ in topical}
        found += [hit for cat in self.categories if cat.across and cat.id not in seen
                  and (hit := self._across_hit(cat, bare, calmed))]
        hits = [h for h, _, doubtful in found if not doubtful]
        pending = [(h, clauses[i]) for h, i, doubtful in found if doubtful]  # in a film, the news ...
        # Confirm patterns of categories more pressing than any plain hit: a fever banner must not hide
        # "collapsed" or "suicidal" (they ask the model, so they run only when they can change the answer).
        best = min((LEVELS.index(h.level) for h in hits), default=len(LEVELS))
        seen = {h.category for h, _, _ in found}
        for cat in self.categories:
            if LEVELS.index(cat.level) < best and cat.id not in seen:
                if gated := self._rule_hit(cat, bare, calmed, holding, vetoed, calm, confirm=True):
                    pending.append((gated[0], clauses[gated[1]]))
        # A calm context qualifies its own story ("collapsed at dinner, she's fine now"), not a statement in the
        # present after it ("he had a stroke years ago, his face is drooping again"): that is read again below
        # without its veto (:func:`_calm_holds` for the rules).
        after = self._after_calm(clauses, calmed) if calm else None
        encoded = None
        if pending:
            encoded = self._encoded(text, clauses, encode, text_vector, piece_vectors)
            # a harmless phrase elsewhere in the message is no veto here
            hits += self._confirmed(pending, encoded, encode, text, clauses, vetoed | calm,
                                    after=after and (*after, vetoed))
        negated = vetoed | calm | blanked  # what the meaning checks skip
        # asked only when an example's closeness would pin: the reader's forward pass is not paid on every message
        sure = functools.partial(self._reader_vetoes, texts)
        if not hits and encode is not None and self._urgent_vecs is not None:
            if encoded is None:
                encoded = self._encoded(text, clauses, encode, text_vector, piece_vectors)
            hit = self._example_hit(encoded, negated, sure)
            if hit and self._in_a_story(bare) and not self._agreed(encoded, text, negated):
                hit = None  # "heard on a podcast about tearing back pain": like a rule there, ask the model
            hit = hit or self._model_hit(encoded, texts, negated)
            hit = hit or self._crisis_read(encoded, texts, vetoed | blanked)
            if not hit and after and (rest := [c for c in clauses[after[0] + 1:] if len(words(c)) >= 3
                                               and _present(c, after[2])]):
                hit = self._meaning_after_calm(rest, clauses, encoded, encode, vetoed | blanked, self._in_a_story(bare),
                                               sure)
            if hit:
                hits.append(hit)
        if not hits and encode is not None and self._urgent_vecs is not None and blanked - vetoed - calm:
            if hit := self._beside_harmless(clauses, bare, blanked - vetoed - calm, encode, encoded, vetoed | calm,
                                            sure):
                hits.append(hit)
        if not hits:
            return None
        hits.sort(key=lambda h: LEVELS.index(h.level))
        return hits[0]

    def _crisis_read(self, encoded: np.ndarray, texts: list[str], vetoed: set[str]) -> SafetyHit | None:
        """The reader's pin of a crisis at ``crisis_pin``, lower than its usual threshold: the sum of its
        probabilities over ``crisis_reads`` for the most urgent of ``texts`` (the rows ``encoded``), pinned as the
        likelier category. A calm context never vetoes a crisis, so only a rule's veto of the crisis (a negation,
        an ``unless``, a harmless phrase, a ``topic`` word the reader vetoed) stops it; the other categories count
        unless a rule vetoed them. Asked, like the reader's own pins, only where the linear model finds the
        message at least ``READER_GATE`` urgent, and a clause pins only if the whole message reads at least
        :data:`CRISIS_WHOLE` a crisis: read alone, "i also don't want to waste the gp's time." is one.
        Session 21: on the reviews its reads of 0.95-0.99 were about 40 emergencies that nothing pinned ("I've
        written the notes and I'm doing it tonight", "took a whole strip of my nan's heart tablets on purpose")
        against 9 harmless messages ("I'd rather die than do burpees")."""
        urgency = self.urgency
        if not self.crisis_reads or self.crisis_reads[0] in vetoed or urgency is None or urgency.reader is None:
            return None
        if urgency.urgency(encoded, skip=self._model_skip) < READER_GATE:
            return None
        reader = urgency.reader
        cats = [c for c in self.crisis_reads if c not in vetoed and c in reader.classes]
        if not cats:
            return None
        p = reader.probabilities(texts)[:, [reader.classes.index(c) for c in cats]]
        row = int(np.argmax(p.sum(axis=1)))
        total = float(p[row].sum())
        if total < self.crisis_pin or float(p[0].sum()) < CRISIS_WHOLE:
            return None
        cat = next(c for c in self.categories if c.id == cats[int(np.argmax(p[row]))])
        # no ``probability``: it is not the linear model's pin, whose threshold `qa tune` chooses from them
        return self._hit(cat, f"reader: P(crisis) {total:.2f}")

    def _reader_vetoes(self, texts: list[str]) -> bool:
        """Whether the fine-tuned reader finds each of ``texts`` (the message and its clauses, :func:`_row_texts`) at
        most ``reader_veto`` urgent in every category: what a ``topic`` pattern's pin, or an urgent example's closeness, must not
        contradict. Only a reader this sure vetoes. Session 22, on reviews 1-39 and the tuning part: the urgent
        messages a ``topic`` pattern pinned had at least 0.39 (309 of them), those an example pinned at least 0.08
        (99; at 0.1 or less the linear model pins them instead), while 182 of the 554 harmless ones a ``topic``
        pattern pinned had less than 0.1 ("used to self harm as a teen, 10 years clean"), and 36 of the 80 an
        example pinned ("what does a 'tearing' back pain mean in general? not me"). The rules' own pins never
        ask it: it gives "my dad has no pulse, i'm doing cpr now" 0.03. False without a reader."""
        if self.urgency is None or self.urgency.reader is None:
            return False
        p = self.urgency.reader.probabilities(texts)
        urgent = 1.0 - p[:, self.urgency.reader.classes.index(NOT_URGENT)]
        return float(urgent.max()) <= self.reader_veto

    def _after_calm(self, clauses: list[str], calmed: list[bool | None]) -> tuple[int, str | None, bool] | None:
        """Where the last calm context that holds is: its clause's index, the rest of that clause after the calm
        context's part (:data:`_PARTS`), if any, and whether it dates its story (:func:`_dates`). None without one."""
        held = [i for i, c in enumerate(calmed) if c is False]
        if not held:
            return None
        clause = clauses[held[-1]]
        bounds = list(_PARTS.finditer(clause))
        last = _calm_part(self.calm, clause)
        tail = clause[bounds[last].end():] if last is not None and last < len(bounds) else None
        return held[-1], tail, _dates(self.calm, clause)

    def _meaning_after_calm(self, rest: list[str], clauses: list[str], encoded: np.ndarray, encode,
                            negated: set[str], story: bool, sure=None) -> SafetyHit | None:
        """The meaning checks of the clauses after the last calm one (``rest``), each on its own and without the
        calm context's veto: "He had a stroke years ago. His face is drooping again." In a story the model must
        agree with an example's pin, as for the whole message. (The rest of the calm clause itself is left to the
        rules: read alone, a fragment like "my back hurts from the seats" after "dying of boredom in this
        lecture" is too close to an urgent example.)"""
        rows = _rows(rest, clauses, encoded, encode)
        hit = self._example_hit(rows, negated, sure)
        if hit and story and self.urgency is not None and \
                self.urgency.urgency(rows, skip=negated | self._model_skip) < self.confirm:
            hit = None
        return hit or self._model_hit(rows, rest, negated)

    def _confirmed(self, pending: list[tuple[SafetyHit, str]], encoded: np.ndarray | None, encode, text: str,
                   clauses: list[str], negated: set[str],
                   after: tuple[int, str | None, bool, set[str]] | None = None) -> list[SafetyHit]:
        """The hits of ``confirm`` patterns, if the learned model agrees that the message is urgent.

        The model reads the message as a whole (:meth:`_agreement`) and from the clause a pattern matched in
        to the end, without the questions to the FAQ there: what follows an alarming word is what qualifies
        it ("collapsed last week, paramedics checked her and she's fine"), while a question before or after
        it does not ("what exercises help my upper back? my husband just collapsed"). The clause is also
        read on its own when it is too short to say anything else ("Is yoga good for the upper back? Dad
        collapsed. Which exercises ...?") or says it is happening now ("a few minutes ago"), and for a
        crisis (self-harm) always, as calm contexts never veto one. Categories vetoed elsewhere in the
        message do not count, as for the model's own pins. Without the model or an encoder nothing can
        disagree: they pin.

        ``after``: where the last calm context is (:meth:`_after_calm`) and what is vetoed without it. A pattern
        after it is also read from its clause (or the rest of the calm one) on without the calm context's veto: a
        calm context qualifies what came before it ("collapsed at dinner, she's fine now"), not what follows.

        Until session 11 the most urgent of the message and all its clauses decided. The whole check run on
        each fifth of the labelled tuning set, with the model refitted on the other four fifths: benign false
        alarms 42 -> 30 of 1,739, urgent messages pinned 1,109 of 1,120 both ways.
        """
        if self.urgency is None or encoded is None or encode is None:
            return [hit for hit, _ in pending]
        own = {hit.category for hit, _ in pending}
        skip = (negated - own) | self._model_skip
        p = self._agreement(encoded, text, skip)
        read = set()
        story = self._in_a_story(clauses)
        for hit, clause in pending:
            if hit.level == "crisis" or len(words(clause)) <= BARE_WORDS or _NOW.search(clause):
                read.add(clause)
            # From the clause on, without the questions to the FAQ after it (unless it is a story:
            # "in the film the hero collapsed, does that really happen?" is the question that says so).
            rest = [c for c in clauses[clauses.index(clause):] if c == clause or story or not _ASKS.match(c)]
            if len(rest) < len(clauses):
                read.add(" ".join(rest))
        if read:
            p = max(p, self.urgency.urgency(_rows(sorted(read), clauses, encoded, encode), skip=skip))
        if after is not None:
            at, tail, dated, uncalmed = after
            later = set()
            for hit, clause in pending:
                # in the calm clause itself, a pattern held nothing back only after the calm context's part
                if (i := clauses.index(clause)) > at or (i == at and tail):
                    first = clause if i > at else tail
                    if _present(first, dated):  # not "had a crash last month ... could it be whiplash?"
                        later.add(" ".join([first] + [c for c in clauses[i + 1:] if story or not _ASKS.match(c)]))
            if later:
                skip_after = (uncalmed - own) | self._model_skip
                p = max(p, self.urgency.urgency(_rows(sorted(later), clauses, encoded, encode), skip=skip_after))
        if p < self.confirm:
            logger.debug("not pinned: %s; P(urgent) %.2f < %.2f", pending[0][0].reason, p, self.confirm)
            return []
        return [SafetyHit(h.category, h.level, h.title, h.message, f"{h.reason}, P(urgent) {p:.2f}") for h, _ in pending]

    def _agreement(self, encoded: np.ndarray, text: str, skip: set[str]) -> float:
        """P(urgent) of the message as a whole: what a word with harmless senses is checked against.

        Not the most urgent of its clauses, as for the model's own pins: "one of our residents collapsed last
        week, paramedics checked her and she's fine" has a clause that alone reads as an emergency, and the
        rest of the message is what says it is not. A message longer than the model reads in one vector
        (:data:`WHOLE_CHARS`) is judged by its most urgent row instead, so a late clause is not cut off.
        """
        rows = encoded[:1] if len(text) <= WHOLE_CHARS else encoded
        return self.urgency.urgency(rows, skip=skip)

    def _beside_harmless(self, clauses: list[str], bare: list[str], categories: set[str], encode,
                         encoded: np.ndarray, vetoed: set[str], sure=None) -> SafetyHit | None:
        """The meaning check of a harmless phrase's own category on what the message says beside it: "we did
        suicide drills at practice and nobody would notice if I was gone" is read as "we did ~ at practice and
        ...", and "my posture has collapsed. This morning I woke up on the bathroom floor" clause by clause, the
        second without the phrase. Only that category: the blanked text is not a sentence anyone wrote, and
        for other categories the whole message has been judged already. The model weighs every category not
        vetoed, as for the whole message, and its pin counts only if it is that category. Clauses without a
        phrase were embedded with the message; only the rest is embedded here (:func:`_rows`)."""
        texts = [c for c in bare if len(words(c.replace("~", " "))) >= 3]
        if not texts:
            return None
        rows = _rows(texts, clauses, encoded, encode)
        for cat in self.categories:
            if cat.id in categories:
                others = {c.id for c in self.categories} - {cat.id}
                if hit := self._example_hit(rows, others, sure):
                    return hit
        hit = self._model_hit(rows, texts, vetoed)
        return hit if hit is not None and hit.category in categories else None

    def _in_a_story(self, clauses: list[str]) -> bool:
        return any(_first(self.doubt, clause) is not None for clause in clauses)

    def _agreed(self, encoded: np.ndarray, text: str, negated: set[str]) -> bool:
        """Whether the learned model finds the message urgent enough for a ``confirm`` pin (True without one)."""
        if self.urgency is None:
            return True
        return self._agreement(encoded, text, negated | self._model_skip) >= self.confirm

    def _without_harmless(self, clause: str, blanked: set[str]) -> str:
        """The clause with every category's harmless phrases blanked out ("did chest day" -> "did ~").
        The meaning checks, which read the whole message, skip a category whose phrase was found, as
        after an ``unless`` veto: "chest day" is close in meaning to "my chest feels tight"."""
        def blank(m: re.Match) -> str:
            blanked.add(cat.id)
            return " ~ "  # a mark, so the words either side do not join

        for cat in self.categories:
            for pattern in cat.harmless:
                clause = pattern.sub(blank, clause)
        return clause

    def _rule_hit(self, cat: Category, clauses: list[str], calmed: list[bool | None],
                  holding: list[tuple[set[int], bool]], vetoed: set[str], calm_vetoed: set[str],
                  confirm: bool = False, topic: bool = False) -> tuple[SafetyHit, int, bool] | None:
        """The category's first pattern match (``confirm`` or ``topic`` patterns instead, if asked), the index of its
        clause, and whether it needs the model's agreement (a plain pattern in a clause with a doubt
        context). ``calmed``: per clause, None without a calm context, else whether "now" lifts it; ``holding``:
        per clause, the parts a held calm context is in and whether it dates its story (:func:`_calm_holds`). Adds the
        categories it finds vetoed or negated to ``vetoed``, and those a calm context vetoes to ``calm_vetoed``."""
        kind = "confirm" if confirm else "topic" if topic else "rule"
        patterns = cat.confirm if confirm else cat.topic if topic else cat.patterns
        if not patterns:  # most categories have no confirm or topic patterns: no clause scan for them
            return None
        doubtful = None
        for i, clause in enumerate(clauses):
            # A calm context or an ``unless`` veto silences its clause, unless the clause also says "now":
            # "fell off a ladder years ago and now he has collapsed" asks the model.
            calm = calmed[i] is not None and cat.level != "crisis"
            veto_at = _first(cat.unless, clause)
            # "Now" in a calm clause, or a turn after a veto, puts the clause in the present.
            held = not _TURN.search(clause, veto_at) if veto_at is not None else calm and not calmed[i]
            parts, dated = set(), False
            if held:  # vetoed here: the meaning check must not pin it back either
                (vetoed if veto_at is not None else calm_vetoed).add(cat.id)
                parts, dated = holding[i]
                if veto_at is not None or not parts:
                    continue
            for pattern in patterns:
                for m in pattern.finditer(clause):
                    if parts and _calm_holds(clause, m.start(), parts, dated):
                        continue
                    if _negated(clause, m.start()) or _denied(clauses, i, m):
                        vetoed.add(cat.id)
                        continue
                    hit = self._hit(cat, f"{kind}: {pattern.pattern}")
                    if confirm or not (calm or veto_at is not None or _first(self.doubt, clause) is not None):
                        return hit, i, False
                    doubtful = doubtful or (hit, i, True)  # a later clause may still match plainly
        return doubtful

    def _across_hit(self, cat: Category, clauses: list[str],
                    calmed: list[bool | None]) -> tuple[SafetyHit, int, bool] | None:
        """The first match of the category's ``across`` patterns in the whole message (its clauses joined), the
        index of the clause it starts in, and whether it needs the model's agreement.

        Nothing when an ``unless`` pattern vetoes a clause or (below crises) a calm context does; a veto or a
        calm context lifted by a turn to the present, or a doubt context anywhere, asks the model, as for a
        clause's own rules. A negation counts only in the clause the match starts in: "I'm not ok. Bridge over
        the A38. Can't do this anymore" is a crisis."""
        lifted = False
        for clause, calm in zip(clauses, calmed):
            if (at := _first(cat.unless, clause)) is not None:
                if not _TURN.search(clause, at):
                    return None
                lifted = True
            if calm is not None and cat.level != "crisis":
                if not calm:
                    return None
                lifted = True
        text = " ".join(clauses)
        starts = np.cumsum([0] + [len(c) + 1 for c in clauses])
        for pattern in cat.across:
            for m in pattern.finditer(text):
                i = int(np.searchsorted(starts, m.start(), side="right")) - 1
                if _negated(clauses[i], m.start() - int(starts[i])):
                    continue
                return self._hit(cat, f"rule: {pattern.pattern}"), i, lifted or self._in_a_story(clauses)
        return None

    def _encoded(self, text, clauses, encode, text_vector, piece_vectors) -> np.ndarray | None:
        """The vectors of the message and its clauses (one row each), or None without a way to embed them."""
        pieces = _pieces(clauses)
        # One encode call for everything still to embed: the whole message and its clauses, unless given.
        todo = ([] if text_vector is not None else [clean(text)]) + ([] if piece_vectors is not None else pieces)
        if todo and encode is None:
            return None
        rows = []
        if text_vector is not None:
            rows.append(np.asarray(text_vector, np.float32).reshape(1, -1))
        if todo:
            rows.append(np.asarray(encode(todo), np.float32))
        if piece_vectors is not None and pieces:
            rows.append(np.asarray(piece_vectors, np.float32).reshape(len(pieces), -1))
        return np.vstack(rows)

    def _model_hit(self, encoded: np.ndarray, texts: list[str], negated: set[str]) -> SafetyHit | None:
        """The learned model's pin of the rows ``encoded`` (the vectors of ``texts``), else the reader's."""
        if self.urgency is None:
            return None
        skip = negated | self._model_skip
        source = "model"
        found = self.urgency.predict(encoded, skip=skip)
        if found is None:
            source, found = "reader", self.urgency.read(texts, encoded, skip=skip)
        if found is None:
            return None
        cat = next(c for c in self.categories if c.id == found[0])  # classes the rules lack are skipped
        return self._hit(cat, f"{source}: P(urgent) {found[1]:.2f}", probability=found[1])

    def _example_hit(self, encoded: np.ndarray, negated: set[str], sure=None) -> SafetyHit | None:
        """The pin of the urgent example closest to a row of ``encoded`` (and clearly closer than any benign
        example), unless ``sure()`` (the reader's veto, :meth:`_reader_vetoes`) says the message is not urgent."""
        if not len(self._urgent_vecs):
            return None
        urgent = encoded @ self._urgent_vecs.T  # (message + pieces, examples)
        if urgent.max() < self.similarity:  # the common case: nothing urgent-like, no benign scan at all
            return None
        # The candidates, in the order they are judged: closest first, the 20 best at most.
        candidates = []
        for flat in np.argsort(-urgent, axis=None)[:20]:
            piece, ex = np.unravel_index(int(flat), urgent.shape)
            sim = float(urgent[piece, ex])
            if sim < self.similarity:
                break
            cat = self.categories[int(self._urgent_cat[ex])]
            if cat.id not in negated:
                candidates.append((int(piece), int(ex), sim, cat))
        if not candidates:
            return None
        # Benign similarity only for the pieces judged (the benign set holds every FAQ question).
        judged = sorted({piece for piece, _, _, _ in candidates})
        if len(self._benign_vecs):
            benign = dict(zip(judged, (encoded[judged] @ self._benign_vecs.T).max(axis=1).tolist()))
        else:
            benign = dict.fromkeys(judged, 0.0)
        for piece, ex, sim, cat in candidates:
            if sim - benign[piece] >= self.margin:
                if sure is not None and sure():
                    return None
                return self._hit(cat, f"similar to: {cat.examples[self._example_index(ex)]} ({sim:.2f})")
        return None

    def _example_index(self, flat_example: int) -> int:
        cat_index = int(self._urgent_cat[flat_example])
        return flat_example - int(np.argmax(self._urgent_cat == cat_index))

    @staticmethod
    def _hit(cat: Category, reason: str, probability: float | None = None) -> SafetyHit:
        return SafetyHit(cat.id, cat.level, cat.title, cat.message.strip(), reason, probability)


def _spell_out(text: str) -> str:
    """``text`` with the apostrophes of :data:`_CONTRACTIONS` put back ("cant" -> "can't")."""
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    return text


def _row_texts(text: str, clauses: list[str]) -> list[str]:
    """The texts of the rows :meth:`SafetyRules._encoded` returns: the message, then its clauses (the bot
    embeds the message as it prepares it for retrieval; the reader reads it as written)."""
    return [clean(text), *_pieces(clauses)]


def _pieces(clauses: list[str]) -> list[str]:
    """The clauses of a message of several that the meaning check embeds (three words or more, eight at most)."""
    return [c for c in clauses if len(words(c)) >= 3][:8] if len(clauses) > 1 else []


def _rows(texts: list[str], clauses: list[str], encoded: np.ndarray, encode) -> np.ndarray:
    """One vector per text: a meaning piece's from ``encoded`` (the message's row, then one per piece of
    ``clauses``, as :meth:`SafetyRules._encoded` returns them), the others embedded in one call."""
    known = dict(zip(_pieces(clauses), encoded[1:]))
    todo = sorted({t for t in texts if t not in known})
    if todo:
        known.update(zip(todo, np.asarray(encode(todo), np.float32)))
    return np.vstack([known[t] for t in texts])


def _negated(clause: str, start: int) -> bool:
    """A negation among the three words before ``start`` and after the last "and/so/then", dash, answer "no,"
    or a verb of :data:`_OWN_VERBS` and a person: "no chest pain", "not fully recovered", but not "the pain
    never stops and suicide keeps crossing my mind" or "my mum doesn't know I took 40 paracetamol"."""
    before = clause[:start].split()[-3:]
    for k in range(len(before) - 1, -1, -1):
        after = (before[k + 1:] or clause[start:].split() or [""])[0]  # the person may start the match itself
        if _ends_reach(before[k], after) or (before[k].strip(",.") in _OWN_VERBS and after in _PERSONS):
            before = before[k + 1:]
            break
    return any(w.strip(",.") in _NEGATIONS for w in before)


def _ends_reach(word: str, after: str) -> bool:
    """Whether a negation before ``word`` stops at it: "and/so/then", a closing parenthesis ("(no warning) just
    collapsed"), or a dash, a comma or an answer "no," when a new subject follows it (``after``)."""
    if word.strip(",.") in _SCOPE_ENDS or word.endswith(")"):
        return True
    answer = word[-1] in ",.!:" and word.rstrip(",.!:") in _ANSWERS
    # a comma before a new subject: "isn't responding, his lips look blue" (session 22)
    return after in _SUBJECTS and (word in _BREAKS or answer or word.endswith(","))


def _denied(clauses: list[str], i: int, m: re.Match) -> bool:
    """Whether the match ends a short question (three words before it at most) that the next clause answers
    "no": "chest pressure? nope." (see :data:`_DENIAL`)."""
    clause = clauses[i]
    if _HOPE.search(m.group()):  # "any reason to keep living? no." answers yes to the crisis
        return False
    return (i + 1 < len(clauses) and clause[m.end():].strip().startswith("?")
            and len(clause[:m.start()].split()) <= 3 and _DENIAL.match(clauses[i + 1].strip()) is not None)


def _part(clause: str, at: int) -> tuple[int, int]:
    """The index of the part of ``clause`` (split at :data:`_PARTS`) that position ``at`` falls in, and where it starts."""
    ends = [m.end() for m in _PARTS.finditer(clause) if m.end() <= at]
    return len(ends), (ends[-1] if ends else 0)


def _calm_holds(clause: str, at: int, parts: set[int], dated: bool) -> bool:
    """Whether calm contexts in ``parts`` of ``clause`` (:data:`_PARTS`) hold the match at ``at``.

    Always their own part, and a part after them that asks, says "if", is about anyone or (when they date the
    story, :func:`_dates`) is told in the past (:func:`_present`): "years ago, my dad collapsed at a wedding". A part
    before them is held too, unless they date the story and it is told in the present ("she's gone grey and is
    sweating, she had a heart attack years ago"; but "had a fever on sunday, it's gone now", "worst pain ever -
    joking"). Statements after them are free: "he had a stroke years ago, his face is drooping again", "just in case,
    my toddler swallowed a battery"."""
    index, start = _part(clause, at)
    end = next((m.start() for m in _PARTS.finditer(clause, start) if m.start() >= start), len(clause))
    part = clause[start:end]
    if index in parts:
        return True
    if index < max(parts):
        return not (dated and _PRESENT_TENSE.search(part) and _present(part))
    return not _present(part, dated)


def _present(text: str, dated: bool = True) -> bool:
    """Whether a part of a message (or a clause) after a calm context tells of someone now: in the present, or in
    no tense at all (:data:`_PRESENT_TENSE`), not a question or an "if" (:func:`_asks`), not about anyone
    (:data:`_GENERAL`). Without a ``dated`` calm context beside it the tense does not matter."""
    told_now = not dated or _PRESENT_TENSE.search(text) is not None or _PAST_TENSE.search(text) is None
    return told_now and not _asks(text) and not _GENERAL.match(text)


def _asks(text: str) -> bool:
    """Whether ``text`` asks something or says what would happen (:data:`_ASKS`, :data:`_IF`)."""
    return bool(_ASKS.match(text) or _IF.match(text))


def _calm_parts(calm: list[re.Pattern], clause: str) -> set[int]:
    """The parts of ``clause`` (split at :data:`_PARTS`) that hold a calm context not negated."""
    # where the match ends: "^...last year" starts at the clause's start
    return {_part(clause, m.end() - 1)[0] for p in calm for m in p.finditer(clause) if not _negated(clause, m.start())}


def _dates(calm: list[re.Pattern], clause: str) -> bool:
    """Whether a calm context in ``clause`` dates its story: says it is over or old (:data:`_OVER`, :data:`_OLD`), read
    in the calm context's own part ("... she had angina last summer", not what comes before it)."""
    for p in calm:
        for m in p.finditer(clause):
            if not _negated(clause, m.start()):
                own = clause[max(m.start(), _part(clause, m.end() - 1)[1]):m.end()]
                if _OVER.search(own) or _OLD.search(own):
                    return True
    return False


def _calm_part(calm: list[re.Pattern], clause: str) -> int | None:
    """The last part of ``clause`` that holds a calm context not negated, if any."""
    return max(_calm_parts(calm, clause), default=None)


def _first(patterns: list[re.Pattern], clause: str) -> int | None:
    """Where the first match of any of the patterns starts that is not itself negated (None: no match):
    "haven't recovered" vetoes nothing."""
    return min((m.start() for p in patterns for m in p.finditer(clause) if not _negated(clause, m.start())),
               default=None)


def _cached_vectors(encoder, texts: list[str], cache_dir: Path | None) -> np.ndarray:
    """``encoder.encode(texts)``, kept in ``cache_dir/safety-vectors.npz`` keyed by the model and the texts.

    A missing, stale or unreadable cache file is simply rebuilt; one that cannot be written is skipped.
    """
    if cache_dir is None or not texts:
        return encoder.encode(texts)
    model = [getattr(encoder, "path", None), getattr(encoder, "dimension", None)]
    key = hashlib.sha256(json.dumps([model, texts]).encode("utf-8")).hexdigest()
    path = cache_dir / SAFETY_CACHE
    try:
        with np.load(path, allow_pickle=False) as cached:
            vectors = cached["vectors"]
            if str(cached["key"]) == key and vectors.ndim == 2 and len(vectors) == len(texts):
                return np.ascontiguousarray(vectors, dtype=np.float32)
    except FileNotFoundError:
        pass
    except Exception as exc:  # a damaged cache (zip CRC, truncation, wrong arrays) is just rebuilt
        logger.warning("%s: unreadable, embedding the safety examples again (%s)", path, exc)
    vectors = encoder.encode(texts)
    buffer = io.BytesIO()
    np.savez(buffer, key=np.array(key), vectors=vectors)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:
        logger.warning("%s: cannot cache the safety example vectors (%s)", path, exc)
    return vectors


def _crisis_reads(path: Path, root: yaml.Node, settings: dict, categories: list[Category]) -> tuple[str, ...]:
    """``semantic.crisis_reads``: a list of category ids, the first a crisis; errors name the file and line."""
    raw = settings.get("crisis_reads")
    if raw is None:
        return ()
    node = _value_node(_value_node(root, "semantic"), "crisis_reads")
    line = node.start_mark.line + 1 if node is not None else None
    ids = {c.id: c for c in categories}
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) and x in ids for x in raw):
        raise CorpusError(path, f"semantic: crisis_reads must be a list of category ids (known: {', '.join(ids)})", line)
    if ids[raw[0]].level != "crisis":
        raise CorpusError(path, f"semantic: crisis_reads must start with a crisis category, not {raw[0]!r}", line)
    return tuple(raw)


def _value_node(root: yaml.Node, key: str) -> yaml.Node | None:
    """The node under a key of a mapping node, such as the rules file's top level (for line numbers); None if
    ``root`` is not a mapping or lacks the key."""
    if isinstance(root, yaml.MappingNode):
        return next((v for k, v in root.value if k.value == key), None)
    return None


def _item_lines(root: yaml.Node, key: str) -> list[int]:
    node = _value_node(root, key)
    return [n.start_mark.line + 1 for n in node.value] if isinstance(node, yaml.SequenceNode) else []


def _category(path: Path, item, line: int | None, names: dict[str, str]) -> Category:
    if not isinstance(item, dict):
        raise CorpusError(path, "a category must be a mapping", line)
    for key in ("id", "level", "title", "message"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise CorpusError(path, f"category needs a text '{key}'", line)
    if item["level"] not in LEVELS:
        raise CorpusError(path, f"level must be one of {', '.join(LEVELS)}, not {item['level']!r}", line)

    where = f"category {item['id']!r}"
    return Category(
        id=item["id"], level=item["level"], title=item["title"].strip(), message=item["message"],
        patterns=_compile(path, where, item.get("patterns"), line, names),
        unless=_compile(path, where, item.get("unless"), line, names),
        examples=[str(x) for x in item.get("examples") or []],
        confirm=_compile(path, where, item.get("confirm"), line, names),
        harmless=_compile(path, where, item.get("harmless"), line, names),
        across=_compile(path, where, item.get("across"), line, names),
        topic=_compile(path, where, item.get("topic"), line, names),
    )


def _vocabulary(path: Path, root: yaml.Node, block) -> dict[str, str]:
    """The named sub-patterns of the rules file's ``vocabulary:`` block, each expanded and wrapped in a group.

    A long alternation several patterns share ("baby|toddler|child|..." or the farewell phrases of a crisis) is
    written once under a NAME and used as ``{NAME}`` in any pattern list, and in later vocabulary entries. A
    value is a pattern or a list of alternatives. Errors name the file and the line of the entry.
    """
    if block is None:
        return {}
    node = _value_node(root, "vocabulary")
    line = node.start_mark.line + 1 if node else None
    if not isinstance(block, dict):
        raise CorpusError(path, "vocabulary: expected a mapping of NAME: pattern", line)
    keys = [k for k, _ in node.value] if isinstance(node, yaml.MappingNode) else []
    key_lines = {k.value: k.start_mark.line + 1 for k in keys}
    seen: set[str] = set()
    for k in keys:  # YAML keeps the last of two equal keys: say so rather than guess
        if k.value in seen:
            raise CorpusError(path, f"vocabulary: {k.value} is defined twice", k.start_mark.line + 1)
        seen.add(k.value)
    names: dict[str, str] = {}
    for name, value in block.items():
        where = key_lines.get(str(name), line)
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise CorpusError(path, f"vocabulary: name {name!r} must be capital letters, digits and _", where)
        alternatives = value if isinstance(value, list) else [value]
        if not alternatives or not all(isinstance(a, str) and a.strip() for a in alternatives):
            raise CorpusError(path, f"vocabulary: {name} needs a pattern or a list of patterns", where)
        expanded = "|".join(_expand(path, f"vocabulary {name}", a, where, names) for a in alternatives)
        try:
            re.compile(expanded)
        except re.error as exc:
            raise CorpusError(path, f"vocabulary: bad pattern for {name} ({exc})", where) from None
        names[name] = f"(?:{expanded})"
    return names


def _expand(path: Path, where: str, raw: str, line: int | None, names: dict[str, str]) -> str:
    """``raw`` with each ``{NAME}`` of the vocabulary replaced by its group; an unknown name is an error."""
    def name(m: re.Match) -> str:
        if m[1] not in names:
            known = ", ".join(names) or "none defined"
            raise CorpusError(path, f"{where}: unknown vocabulary name {{{m[1]}}} (known: {known})", line)
        return names[m[1]]

    return _PLACEHOLDER.sub(name, raw)


def _compile(path: Path, where: str, raws, line: int | None, names: dict[str, str] | None = None) -> list[re.Pattern]:
    """Whole-word patterns, ``{NAME}`` expanded from the vocabulary; a bad one is reported with the file and
    line of its list."""
    if raws is None:
        return []
    if not isinstance(raws, list):
        raise CorpusError(path, f"{where}: expected a list of patterns", line)
    out = []
    for raw in raws:
        if isinstance(raw, dict):  # `- {NAME} ...` unquoted is a YAML mapping
            raise CorpusError(path, f"{where}: a pattern that starts with a {{NAME}} must be quoted: '{{NAME}} ...'", line)
        try:
            out.append(re.compile(rf"(?<![\w'])(?:{_expand(path, where, raw, line, names or {})})(?![\w'])"))
        except (re.error, TypeError) as exc:
            raise CorpusError(path, f"{where}: bad pattern {raw!r} ({exc})", line) from None
    return out
