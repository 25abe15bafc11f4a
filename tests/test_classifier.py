"""The learned entry classifier: fitting, held-out probabilities, its file, and its place in retrieval.

The mechanics are tested on synthetic vectors; what it does in the shipped bot is tested with the real
model and the committed corpus/settings.model.json.
"""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from conftest import CORPUS, SAFETY, SETTINGS
from qa.classifier import NOT_COVERED, EntryModel, model_path
from qa.config import RetrievalSettings
from qa.errors import CorpusError

DIM = 16
ENTRIES = ["a", "b", "c"]


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _data(seed=0, per_class=40):
    """Entries a, b, c around e1, e2, e3; not-covered questions around e0."""
    rng = np.random.default_rng(seed)
    xs, labels = [], []
    for k, ids in enumerate([(), ("a",), ("b",), ("c",)]):
        xs.append(_unit(np.eye(DIM)[k] + 0.3 * rng.standard_normal((per_class, DIM))))
        labels += [ids] * per_class
    return np.vstack(xs), labels


def test_fit_learns_which_entry_answers_and_what_is_not_covered():
    x, labels = _data()
    model = EntryModel.fit(x, labels, "toy-model", ENTRIES)
    assert model.classes == [NOT_COVERED, *ENTRIES] and model.trained_on == len(labels)
    fresh, truth = _data(seed=1)
    p = model.probabilities(fresh)
    predicted = [model.classes[k] for k in p.argmax(axis=1)]
    expected = [ids[0] if ids else NOT_COVERED for ids in truth]
    assert np.mean([a == b for a, b in zip(predicted, expected)]) > 0.95
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_a_question_answered_by_two_entries_counts_for_both():
    x, labels = _data()
    both = _unit(np.eye(DIM)[1] + np.eye(DIM)[2])
    model = EntryModel.fit(np.vstack([x, np.repeat(both[None], 30, axis=0)]), labels + [("a", "b")] * 30, "toy", ENTRIES)
    p = model.probabilities(both)[0]
    a, b = model.classes.index("a"), model.classes.index("b")
    assert abs(p[a] - p[b]) < 0.1 and p[a] + p[b] > 0.8


def test_an_entry_no_question_names_is_a_class_that_is_never_predicted():
    x, labels = _data()
    model = EntryModel.fit(x, labels, "toy", [*ENTRIES, "d"])
    assert model.classes == [NOT_COVERED, *ENTRIES, "d"]
    assert model.probabilities(x)[:, -1].max() < 1e-9  # as the held-out probabilities have it: 0
    assert model.fits([*ENTRIES, "d"], "toy", DIM) is None


def test_labels_of_a_single_class_fit_no_classifier():
    x, labels = _data()
    with pytest.raises(ValueError, match="single class"):
        EntryModel.fit(x[40:80], labels[40:80], "toy", ENTRIES)


def test_too_few_labelled_questions_fit_no_classifier():
    x, labels = _data(per_class=8)
    with pytest.raises(ValueError, match="at least"):
        EntryModel.fit(x, labels, "toy", ENTRIES)


def test_held_out_probabilities_come_from_models_that_did_not_see_the_question():
    x, labels = _data()
    classes = [NOT_COVERED, *ENTRIES]
    # Entry "c" is asked only in file 3: held out, its questions are scored by a model that never saw "c".
    files = ["1" if not ids else {"a": "1", "b": "2", "c": "3"}[ids[0]] for ids in labels]
    p = EntryModel.held_out(x, labels, classes, files, [str(i) for i in range(len(x))])
    in_c = [i for i, ids in enumerate(labels) if ids == ("c",)]
    assert p[in_c, classes.index("c")].max() == 0.0
    # ... while a model fitted on everything knows it well.
    assert EntryModel.fit(x, labels, "toy", ENTRIES).probabilities(x[in_c])[:, classes.index("c")].mean() > 0.9


def test_a_text_repeated_in_another_file_is_not_trained_on_when_its_file_is_held_out():
    x, labels = _data()
    classes = [NOT_COVERED, *ENTRIES]
    files = ["1" if not ids else {"a": "1", "b": "2", "c": "3"}[ids[0]] for ids in labels]
    texts = [str(i) for i in range(len(x))]
    in_c = [i for i, ids in enumerate(labels) if ids == ("c",)]
    # the same question about c, once more in file 1: while file 3 is held out, the model must not learn it
    x = np.vstack([x, x[in_c[0]]])
    labels, files, texts = labels + [("c",)], files + ["1"], texts + [texts[in_c[0]]]
    p = EntryModel.held_out(x, labels, classes, files, texts)
    assert p[in_c, classes.index("c")].max() == 0.0


def test_files_of_one_kind_each_are_held_out_in_five_folds_instead():
    x, labels = _data()
    classes = [NOT_COVERED, *ENTRIES]
    # every in-scope question in one file: holding it out would leave nothing but "not covered" to learn
    files = ["in_scope.jsonl" if ids else f"off{i % 2}.jsonl" for i, ids in enumerate(labels)]
    p = EntryModel.held_out(x, labels, classes, files, [str(i) for i in range(len(x))])
    right = [classes.index(ids[0]) if ids else 0 for ids in labels]
    assert np.mean(p.argmax(axis=1) == right) > 0.95


def test_with_one_file_a_repeated_text_is_held_out_with_all_its_copies():
    x, labels = _data()
    classes = [NOT_COVERED, *ENTRIES]
    texts = [str(i) for i in range(len(x))]
    in_c = [i for i, ids in enumerate(labels) if ids == ("c",)]
    for i in in_c:
        texts[i] = "the same question about c"  # written 40 times: never scored by a model trained on it
    p = EntryModel.held_out(x, labels, classes, ["only.jsonl"] * len(x), texts)
    assert p[in_c, classes.index("c")].max() == 0.0
    others = [i for i in range(len(x)) if i not in in_c]
    right = [classes.index(labels[i][0]) if labels[i] else 0 for i in others]
    assert np.mean(p[others].argmax(axis=1) == right) > 0.95


def test_the_file_round_trips_and_a_damaged_one_is_reported(tmp_path):
    x, labels = _data()
    model = EntryModel.fit(x, labels, "toy-model", ENTRIES)
    path = tmp_path / "settings.model.json"
    model.save(path)
    again = EntryModel.load(path)
    assert (again.model, again.classes, again.trained_on) == (model.model, model.classes, model.trained_on)
    np.testing.assert_allclose(again.probabilities(x[:20]), model.probabilities(x[:20]), atol=1e-4)
    data = json.loads(path.read_text())
    for broken in ["{not json", json.dumps({**data, "coef": data["coef"][:-1]}),
                   json.dumps({**data, "classes": ["a", *data["classes"][1:]]}),
                   json.dumps({**data, "classes": [NOT_COVERED, "a", "a", "b"]}),
                   json.dumps(data).replace(str(data["intercept"][0]), "NaN", 1)]:
        path.write_text(broken)
        with pytest.raises(CorpusError, match="settings.model.json"):
            EntryModel.load(path)


def test_it_fits_only_its_own_entries_and_encoder():
    model = EntryModel.fit(*_data(), "toy-model", ENTRIES)
    assert model.fits(ENTRIES, "toy-model", DIM) is None
    assert model.fits(list(reversed(ENTRIES)), "toy-model", DIM) is None  # order does not matter
    assert "trained with model 'toy-model'" in model.fits(ENTRIES, "other", DIM)
    assert "1 entries added, 0 removed" in model.fits([*ENTRIES, "d"], "toy-model", DIM)
    assert "0 entries added, 1 removed" in model.fits(ENTRIES[:2], "toy-model", DIM)
    np.testing.assert_array_equal(model.columns(["c", "a"]), [3, 1])


# --- in the shipped bot (real model, committed classifier) -----------------------------------


def test_the_shipped_bot_blends_in_its_classifier(bot):
    assert bot.retriever.classifier is not None and bot.settings.learned_weight > 0
    question = "my shoulder blades ache when I sit at my desk all day"
    with_it = {h.entry.id: h.score for h in bot.search(question, k=len(bot.corpus)).hits}
    classifier = bot.retriever.classifier
    try:
        bot.retriever.use_classifier(None)
        without = {h.entry.id: h.score for h in bot.search(question, k=len(bot.corpus)).hits}
    finally:
        bot.retriever.use_classifier(classifier)
    query = bot.prepare_query(question)
    p = classifier.probabilities(bot.encoder.encode([query]))[0]
    lw = bot.settings.learned_weight
    for entry_id, score in with_it.items():
        learned = lw * p[classifier.classes.index(entry_id)]
        assert score == pytest.approx((1 - lw) * without[entry_id] + learned, abs=1e-5), entry_id
        assert 0 <= score <= 1


def test_a_message_the_classifier_calls_not_covered_is_declined(bot, monkeypatch):
    question = "How do you strengthen your upper back?"
    assert bot.ask(question).answered
    not_covered = bot.search(question).not_covered
    assert 0.0 < not_covered < bot.settings.not_covered_decline
    monkeypatch.setattr(bot.settings, "not_covered_decline", not_covered / 2)
    answer = bot.ask(question)
    assert not answer.answered and answer.kind == "fallback" and answer.suggestions


def _copy(tmp_path, drop_entry: bool = False, drop_model: bool = False, damage_model: bool = False):
    faq = tmp_path / "faq.yaml"
    shutil.copy(next(CORPUS.glob("*.yaml")), faq)
    if drop_entry:  # the last entry (entries are the file's last list)
        text = faq.read_text(encoding="utf-8")
        faq.write_text(text[: text.rindex("\n- id:") + 1], encoding="utf-8")
    settings = tmp_path / "settings.json"
    shutil.copy(SETTINGS, settings)
    if not drop_model:
        shutil.copy(model_path(SETTINGS), model_path(settings))
    if damage_model:
        model_path(settings).write_text(model_path(settings).read_text()[:-100])
    return faq, settings


@pytest.mark.parametrize("change, warning", [("drop_entry", "the FAQ changed since it was fitted"),
                                             ("drop_model", "missing, though"),
                                             ("damage_model", "not a valid entry classifier file")])
def test_without_a_usable_classifier_the_bot_answers_with_the_settings_tuned_without_it(
        tmp_path, caplog, change, warning):
    from qa import FAQBot

    faq, settings = _copy(tmp_path, **{change: True})
    with caplog.at_level(logging.WARNING):
        bot = FAQBot.load(corpus=faq, index_dir=tmp_path / "index", safety=SAFETY, settings=settings)
    assert bot.retriever.classifier is None and warning in caplog.text
    tuned = RetrievalSettings.load(SETTINGS)
    assert tuned.threshold_without_classifier is not None
    assert (bot.settings.learned_weight, bot.settings.not_covered_decline) == (0.0, 1.0)
    assert bot.settings.threshold == tuned.threshold_without_classifier
    assert bot.settings.high_confidence == tuned.high_confidence_without_classifier
    answer = bot.ask("How do you strengthen your upper back?")
    assert answer.answered and answer.entry_id == "how-do-you-strengthen-your-upper-back"


@pytest.mark.parametrize("value", ["0.2", None, True, [0.2]])
def test_a_setting_of_the_wrong_type_is_reported_by_name(tmp_path, value):
    from qa.errors import ConfigError

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"learned_weight": value}))
    with pytest.raises(ConfigError, match="'learned_weight' must be a number"):
        RetrievalSettings.load(path)
    path.write_text(json.dumps({"threshold_without_classifier": None, "learned_weight": 0.1}))
    assert RetrievalSettings.load(path).learned_weight == 0.1
