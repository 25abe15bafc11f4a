"""The learned urgency detector: fitting, threshold choice, the file it lives in, and its place in the check.

The mechanics are tested on synthetic vectors; what it adds to the shipped bot is tested with the real
model and the committed corpus/safety.model.json.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from qa.errors import CorpusError
from qa.safety import WHOLE_CHARS, SafetyRules
from qa.urgency import NOT_URGENT, UrgencyModel, model_path

from conftest import LABELS

DIM = 16


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _data(seed=0):
    """Three clusters: not urgent (around e0), 'chest_pain' (around e1), 'self_harm' (around e2)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM, dtype=np.float32)[:3]
    xs, ys = [], []
    for k, (label, n) in enumerate([(NOT_URGENT, 300), ("chest_pain", 40), ("self_harm", 40)]):
        xs.append(_unit(centres[k] + 0.35 * rng.standard_normal((n, DIM))))
        ys += [label] * n
    return np.vstack(xs), ys


def test_fit_learns_the_categories_and_keeps_cross_validated_false_alarms_low():
    x, y = _data()
    model, cv = UrgencyModel.fit(x, y, "toy-model", max_false_alarms=0.01)
    assert model.classes == [NOT_URGENT, "chest_pain", "self_harm"]
    assert 0.5 <= model.threshold <= 0.99
    assert cv["urgent"] == 80 and cv["not_urgent"] == 300
    assert cv["false_alarms"] <= 0.01 and cv["recall"] > 0.8
    fresh, labels = _data(seed=1)
    found = [model.predict(v[None, :]) for v in fresh]
    assert sum(f is None for f, lab in zip(found, labels) if lab == NOT_URGENT) >= 290
    hits = [(f, lab) for f, lab in zip(found, labels) if lab != NOT_URGENT and f is not None]
    assert len(hits) >= 70 and sum(f[0] == lab for f, lab in hits) >= 0.95 * len(hits)


def test_the_most_urgent_row_decides_and_vetoed_categories_are_skipped():
    x, y = _data()
    model, _ = UrgencyModel.fit(x, y, "toy-model")
    calm, urgent = _unit(np.eye(DIM)[0]), _unit(np.eye(DIM)[2])
    assert model.predict(np.stack([calm, urgent]))[0] == "self_harm"  # a message and one urgent clause
    # a vetoed category's probability does not pass to another one
    assert model.predict(np.stack([calm, urgent]), skip={"self_harm"}) is None
    assert model.predict(np.stack([calm, urgent]), skip={"chest_pain"})[0] == "self_harm"
    assert model.predict(np.zeros((0, DIM), np.float32)) is None


def test_too_few_urgent_examples_are_refused():
    x, y = _data()
    y = [NOT_URGENT if lab == "self_harm" else lab for lab in y][:310]
    with pytest.raises(ValueError, match="at least"):
        UrgencyModel.fit(x[:310], y, "toy-model")


def test_save_and_load_round_trip(tmp_path):
    x, y = _data()
    model, _ = UrgencyModel.fit(x, y, "toy-model")
    path = tmp_path / "safety.model.json"
    model.save(path)
    again = UrgencyModel.load(path)
    assert again.classes == model.classes and again.threshold == model.threshold and again.model == "toy-model"
    np.testing.assert_allclose(again.probabilities(x[:20]), model.probabilities(x[:20]), atol=1e-4)
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left over


@pytest.mark.parametrize("content", ["{not json", json.dumps({"classes": [""]}),
                                     json.dumps({"classes": ["", "a"], "coef": [[1.0, 2.0]], "intercept": [0, 0],
                                                 "threshold": 0.9}),
                                     json.dumps({"classes": ["a", ""], "coef": [[1.0], [2.0]], "intercept": [0, 0],
                                                 "threshold": 0.9}),
                                     json.dumps({"classes": ["", "a"], "coef": [[1.0], [float("nan")]],
                                                 "intercept": [0, 0], "threshold": 0.9}).replace("NaN", "NaN"),
                                     json.dumps({"classes": ["", "a"], "coef": [[1.0], [2.0]], "intercept": [0, 0],
                                                 "threshold": 0.9, "trained_on": "abc"})])
def test_a_damaged_model_file_is_reported_with_its_name(tmp_path, content):
    path = tmp_path / "safety.model.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match="safety.model.json"):
        UrgencyModel.load(path)


class _TableBot:
    """A bot whose whole check answers from a table (question -> P of a model pin, 1.0 for a rule pin, None for
    no pin), whatever model it is given: what :func:`qa.evaluate.whole_check_threshold` makes of the answers."""

    def __init__(self, table):
        self.table = table
        self.rules = SimpleNamespace(urgency="the shipped model")
        self.encoder = SimpleNamespace(name="toy-model")

    def ask(self, question):
        p = self.table[question]
        assert isinstance(self.rules.urgency, UrgencyModel)  # a model refitted on the other folds
        hit = None if p is None else SimpleNamespace(probability=None if p == 1.0 else p)
        return SimpleNamespace(safety=hit)


def test_the_threshold_is_chosen_on_what_the_whole_check_pins():
    from qa.evaluate import MISS_COST, whole_check_threshold

    x, y = _data()
    classes = [NOT_URGENT, "chest_pain", "self_harm"]
    y_idx = np.array([classes.index(lab) for lab in y])
    urgent = np.flatnonzero(y_idx > 0)
    calm = np.flatnonzero(y_idx == 0)
    p = [None] * len(y)
    for i in urgent[:60]:
        p[i] = 1.0  # a rule pins these at any threshold
    for i in urgent[60:70]:
        p[i] = 0.992  # only the model pins these ten
    for i in calm[:3]:
        p[i] = 0.995  # three false alarms the model is surest of
    for i in calm[3:23]:
        p[i] = 0.97  # twenty more below 0.992
    p[calm[23]] = 1.0  # and one a rule raises
    bot = _TableBot({f"q{i}": v for i, v in enumerate(p)})
    items = [SimpleNamespace(question=f"q{i}") for i in range(len(y))]
    threshold, fig = whole_check_threshold(bot, items, x, y_idx, classes, [f"q{i}" for i in range(len(y))])
    # Above 0.992 the ten are missed (cost 2 x 10 + 4); from 0.971 to 0.992 four false alarms remain; the highest
    # of those wins the tie.
    assert MISS_COST > 0.4 and threshold == 0.992
    assert fig == {"threshold": 0.992, "urgent": 80, "pinned": 70, "false_alarms": 4, "not_urgent": 300}
    assert bot.rules.urgency == "the shipped model"  # put back


def test_qa_tune_fits_the_safety_model_and_chooses_its_threshold_on_the_whole_check(bot):
    from qa.evaluate import load_labelled, tune_urgency
    from qa.urgency import THRESHOLDS

    shipped = bot.rules.urgency
    items = load_labelled(LABELS.parent / "upper_back_tune8.jsonl", bot.corpus, "tune")
    model, cv = tune_urgency(bot, items)
    assert bot.rules.urgency is shipped
    whole = cv["whole"]
    assert model.threshold == whole["threshold"] and model.threshold in THRESHOLDS
    assert whole["urgent"] == sum(bool(it.safety) for it in items) == 100
    assert whole["not_urgent"] == len(items) - 100
    # the rules pin most of these messages whatever the model says; a useless model would not reach this
    assert whole["pinned"] >= 90 and whole["false_alarms"] <= 0.1 * whole["not_urgent"]


class _ToyEncoder:
    name = "another-model"

    def encode(self, texts):
        return _unit(np.ones((len(texts), DIM)))


def _rules_with_model(tmp_path, model_name: str) -> SafetyRules:
    """A one-category rules file (chest_pain) with a model of three classes saved beside it."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("categories:\n  - {id: chest_pain, level: emergency, title: T, message: M, patterns: [x]}\n",
                     encoding="utf-8")
    x, y = _data()
    UrgencyModel.fit(x, y, model_name)[0].save(model_path(rules))
    return SafetyRules.load(rules)


def test_a_model_fitted_with_another_encoder_is_not_used(tmp_path, caplog):
    loaded = _rules_with_model(tmp_path, "toy-model")
    assert loaded.urgency is not None and loaded.urgency.model == "toy-model"
    with caplog.at_level(logging.WARNING):
        loaded.prepare(_ToyEncoder())
    assert loaded.urgency is None and "trained with model 'toy-model'" in caplog.text


# --- the shipped model, with the real encoder ----------------------------------------------------


def test_the_shipped_model_matches_the_shipped_encoder(bot):
    assert bot.rules.urgency is not None, "corpus/safety.model.json missing or fitted with another model"
    assert set(bot.rules.urgency.classes[1:]) <= {c.id for c in bot.rules.categories}


# Written for this test, in words the rules and example sentences do not cover.
@pytest.mark.parametrize("text", [
    "there is no way out for me any more and i have made up my mind about tonight",
])
def test_the_model_pins_what_no_rule_names(bot, text):
    hit = bot.ask(text).safety
    assert hit is not None and hit.category == "self_harm" and hit.reason.startswith("model:"), (text, hit)


@pytest.mark.parametrize("text", ["I fainted and hit my head as a kid",
                                  "I couldn't breathe and passed out last year, all fine now"])
def test_a_vetoed_category_stays_vetoed_for_the_model(bot, text):
    # The model alone is sure (P >= 0.98) of fainting / breathing here, but calm context ("as a kid",
    # "last year ... fine now") vetoes every category except crises, for every detector.
    q = bot.prepare_query(text)
    found = bot.rules.urgency.predict(bot.encoder.encode([q] + bot.rules.meaning_pieces(text)))
    assert found is not None and found[1] >= bot.rules.urgency.threshold
    assert bot.ask(text).safety is None


def test_model_classes_the_rules_do_not_have_are_ignored(tmp_path, caplog):
    loaded = _rules_with_model(tmp_path, "another-model")
    with caplog.at_level(logging.WARNING):
        loaded.prepare(_ToyEncoder())
    assert "self_harm" in caplog.text and loaded._model_skip == {"self_harm"}


# --- confirm patterns: words with harmless senses pin only when the model agrees -----------------


class _AlarmEncoder:
    """'alarm' in a text (of at most ``max_words`` words, and without 'fine') -> the chest_pain cluster
    of `_data`, anything else -> the not-urgent one."""

    name = "toy-model"

    def __init__(self, max_words: int | None = None):
        self.max_words = max_words

    def encode(self, texts):
        eye = np.eye(DIM, dtype=np.float32)
        urgent = [("alarm" in t) and "fine" not in t and (self.max_words is None or len(t.split()) <= self.max_words) for t in texts]
        return np.array([eye[1] if u else eye[0] for u in urgent], np.float32).reshape(len(texts), DIM)


def _toy_rules(tmp_path, rules_yaml: str, with_model: bool = True) -> SafetyRules:
    """A rules file, with a toy model fitted on `_data` beside it, prepared with `_AlarmEncoder`."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_yaml, encoding="utf-8")
    if with_model:
        x, y = _data()
        UrgencyModel.fit(x, y, "toy-model")[0].save(model_path(rules))
    loaded = SafetyRules.load(rules)
    loaded.prepare(_AlarmEncoder())
    return loaded


def _confirm_rules(tmp_path, with_model: bool) -> SafetyRules:
    return _toy_rules(tmp_path, "semantic: {confirm: 0.5}\n"
                                "categories:\n  - {id: chest_pain, level: emergency, title: T, message: M,\n"
                                "     patterns: [firmword], confirm: [bang], unless: [long ago]}\n", with_model)


def test_a_confirm_pattern_pins_only_when_the_model_agrees(tmp_path):
    rules = _confirm_rules(tmp_path, with_model=True)
    encode = _AlarmEncoder().encode
    assert rules.urgency.urgency(encode(["a bang and an alarm"])) >= 0.5 > rules.urgency.urgency(encode(["a bang"]))
    hit = rules.check("a bang and an alarm", encode=encode)
    assert hit is not None and hit.category == "chest_pain" and "P(urgent)" in hit.reason
    assert rules.check("a bang on the door", encode=encode) is None
    assert rules.check("firmword on the door", encode=encode) is not None  # plain patterns need no agreement
    assert rules.check("a bang and an alarm long ago", encode=encode) is None  # vetoes still apply
    # the vectors a caller already has are used as they are: an urgent message vector confirms
    urgent_vec = encode(["alarm"])[0]
    assert rules.check("a bang on the door", encode=encode, text_vector=urgent_vec,
                       piece_vectors=np.zeros((0, DIM))) is not None


def test_the_clause_a_confirm_pattern_matched_in_is_scored_however_short(tmp_path):
    rules = _confirm_rules(tmp_path, with_model=True)
    text = "is yoga any good for posture? bang alarm. which chair is best for a long day at a desk?"
    assert rules.meaning_pieces(text) and "bang alarm." not in rules.meaning_pieces(text)  # too short a piece
    hit = rules.check(text, encode=_AlarmEncoder(max_words=3).encode)  # only the short clause is urgent
    assert hit is not None and "P(urgent)" in hit.reason


def test_a_confirm_pattern_is_judged_on_the_whole_message_not_its_most_urgent_clause(tmp_path):
    # "One of our residents collapsed last week. Paramedics checked her and she's fine": the first clause
    # alone reads as an emergency; the message as a whole does not.
    rules = _confirm_rules(tmp_path, with_model=True)
    rules.urgency.threshold = 2.0  # no pins by the model alone: this is about what a confirm pattern asks it
    encode = _AlarmEncoder().encode
    text = "a bang and an alarm last week. everyone is fine, what about posture?"
    assert "a bang and an alarm last week." in rules.meaning_pieces(text)
    assert rules.urgency.urgency(encode(rules.meaning_pieces(text))) >= 0.5  # the clause alone would pin
    assert rules.check(text, encode=encode) is None
    # a question before the word does not qualify it: the message is also read from the word's clause on
    assert rules.check("is everything fine with my posture? a bang and an alarm in the hall", encode=encode)
    # ... and the clause is read on its own when it says it is happening now
    hit = rules.check("a bang and an alarm just now. everyone is fine, what about posture?", encode=encode)
    assert hit is not None and "P(urgent)" in hit.reason
    # a message longer than the model reads in one vector is judged by its most urgent row
    long_text = text + " " + "what about posture and desks and chairs? " * 25
    assert len(long_text) > WHOLE_CHARS and rules.check(long_text, encode=encode) is not None


def test_a_less_pressing_plain_hit_does_not_hide_a_confirm_pattern(tmp_path):
    loaded = _toy_rules(tmp_path, "categories:\n"
                                  "  - {id: fever, level: urgent, title: F, message: M, patterns: [hotword]}\n"
                                  "  - {id: chest_pain, level: emergency, title: T, message: M, confirm: [bang]}\n")
    encode = _AlarmEncoder().encode
    assert loaded.check("hotword and a bang alarm", encode=encode).category == "chest_pain"
    assert loaded.check("hotword and a bang", encode=encode).category == "fever"  # the model disagrees
    assert loaded.check("hotword only", encode=encode).category == "fever"


def test_a_harmless_phrase_silences_its_own_words_only(tmp_path):
    loaded = _toy_rules(tmp_path, "categories:\n"
                                  "  - {id: chest_pain, level: emergency, title: T, message: M,\n"
                                  "     patterns: [firmword], harmless: [firmword drill, alarm clock]}\n")
    encode = _AlarmEncoder().encode
    assert loaded.check("a firmword drill today", encode=encode) is None
    assert loaded.check("a firmword drill today") is None  # the rules alone
    assert loaded.check("a firmword drill, then a real firmword", encode=encode) is not None  # same clause
    # the meaning checks skip the phrase's category ("alarm" is what the toy model fears) ...
    assert loaded.check("my alarm clock rang", encode=encode) is None
    vectors = encode(["my alarm clock rang"])
    assert loaded.check("my alarm clock rang", encode=encode, text_vector=vectors[0]) is None
    assert loaded.check("my alarm rang", encode=encode).reason.startswith("model")  # ... only then
    assert loaded.check("firmword drill!", encode=encode) is None  # nothing left to read
    # ... on the message as written; the words beside the phrase are judged for it ("alarm" is still there)
    hit = loaded.check("my alarm clock rang and then a real alarm went off", encode=encode)
    assert hit is not None and hit.category == "chest_pain"


def test_a_veto_holds_up_to_a_turn_back_to_the_present(tmp_path):
    rules = _confirm_rules(tmp_path, with_model=True)  # patterns: [firmword], unless: [long ago]
    encode = _AlarmEncoder().encode
    assert rules.check("firmword long ago", encode=encode) is None
    assert rules.check("firmword long ago and now I'm fine", encode=encode) is None  # nothing after the turn
    # after the turn the rules read on, and the model must agree (the toy model fears "alarm")
    assert rules.check("firmword long ago and now I have firmword", encode=encode) is None
    hit = rules.check("firmword long ago and now I have firmword alarm", encode=encode)
    assert hit is not None and "P(urgent)" in hit.reason
    assert rules.check("firmword long ago and now I have firmword alarm") is not None  # no encoder: in doubt, pin
    assert rules.check("firmword long ago and now my firmword alarm") is None  # "now my" is not a turn


def test_without_the_model_or_the_vectors_a_confirm_pattern_pins(tmp_path):
    # When nothing can disagree, the rule pins (when in doubt, pin).
    assert _confirm_rules(tmp_path, with_model=False).check("a bang on the door", encode=_AlarmEncoder().encode)
    assert _confirm_rules(tmp_path, with_model=True).check("a bang on the door") is not None  # no encoder


# Written for this test: harmless senses of confirm words, and urgent messages that use them.
@pytest.mark.parametrize("text", [
    # A harmless sense no `harmless` phrase lists, so the model decides (it gives 0.64).
    pytest.param("we passed out the hymn books at church this morning and my upper back aches from carrying the stack",
                 marks=pytest.mark.xfail(strict=True, reason="the model gives P(urgent) 0.64")),
    "folding the camping chairs and collapsing the tent all weekend, now it aches between my shoulder blades",
    # its first clause alone gives P(urgent) 0.87; the message as a whole is a question (0.16)
    "I read that a heart attack can show up as pain between the shoulder blades. I feel fine, just curious when I should worry?",
])
def test_harmless_senses_of_confirm_words_are_not_pinned(bot, text):
    assert bot.rules.check(text) is not None  # a confirm pattern matches (no model without an encoder) ...
    assert bot.ask(text).safety is None  # ... but the model does not agree


@pytest.mark.parametrize("text, category", [
    ("my husband just collapsed in the garden and he's not making sense", "fainting"),
    ("fell off the shed roof twenty minutes ago, upper back is agony and I feel sick", "injury"),
    ("shivering with a fever of 39 and my back between the shoulder blades is killing me", "fever"),
    ("I keep thinking about suicide and I have pills saved up", "self_harm"),
    ("I feel suicidal tonight", "self_harm"),
    # the message as a whole reads as a question (P(urgent) 0.13): the short clause is read on its own as well
    ("Is rowing good for the upper back? Mum collapsed. What stretches help?", "fainting"),
    # the whole message reads as a question; from the emergency's clause on, it does not (review, session 11)
    ("which stretch is best for the upper back? my mum has collapsed on the kitchen floor and her breathing sounds odd",
     "fainting"),
    ("is foam rolling safe for the thoracic spine? my grandad took a tumble down the garden steps and is lying there "
     "saying his back hurts badly", "injury"),
    ("my dad just collapsed in the kitchen and he is not making sense, also what causes upper back pain", "fainting"),
])
def test_urgent_uses_of_confirm_words_are_pinned(bot, text, category):
    hit = bot.ask(text).safety
    assert hit is not None and hit.category == category, (text, hit)


def test_a_doubt_context_makes_a_plain_rule_ask_the_model(tmp_path):
    loaded = _toy_rules(tmp_path, "doubt_context: [on the telly]\ncategories:\n"
                                  "  - {id: chest_pain, level: emergency, title: T, message: M, patterns: [firmword]}\n")
    encode = _AlarmEncoder().encode
    assert loaded.check("firmword on the telly", encode=encode) is None  # the model disagrees
    assert loaded.check("firmword on the telly, alarm", encode=encode) is not None  # it agrees
    assert loaded.check("firmword on the telly") is not None  # no encoder: the rule pins
    assert loaded.check("on the telly. firmword now", encode=encode) is not None  # another clause, plainly
