"""The safety reader (qa/reader.py): fine-tuning, the file it lives in, and what it adds to the shipped bot.

Everything here uses the real packaged model: the reader is that model's own network, fine-tuned.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.cli import main
from qa.errors import CorpusError
from qa.reader import SafetyReader, reader_data_path, reader_path
from qa.safety import SafetyRules
from qa.urgency import model_path

from conftest import CORPUS, SAFETY, SETTINGS
import test_safety_review as reviews

SAMPLE = CORPUS.parent / "eval" / "upper_back_tune8.jsonl"


def _sample(n_urgent: int, n_other: int) -> list[dict]:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["safety"]][:n_urgent] + [r for r in rows if not r["safety"]][:n_other]


def _tiny_reader(encoder, model: str | None = None) -> SafetyReader:
    rows = _sample(12, 12)
    reader = SafetyReader.fit(encoder, [r["question"] for r in rows], [r["safety"] or "" for r in rows], epochs=1)
    if model is not None:
        reader.model = model
    return reader


def test_a_fitted_reader_is_saved_small_and_reads_the_same_when_loaded(bot, tmp_path):
    reader = _tiny_reader(bot.encoder)
    assert reader.classes[0] == "" and set(reader.classes[1:]) <= {c.id for c in bot.rules.categories}
    reader.attach(bot.encoder)
    texts = ["my dad collapsed and isn't breathing", "which stretch helps between the shoulder blades?"]
    read = reader.probabilities(texts)
    assert read.shape == (2, len(reader.classes)) and np.allclose(read.sum(axis=1), 1.0, atol=1e-5)
    path = tmp_path / "rules.reader.safetensors"
    reader.save(path)
    assert path.stat().st_size < 2_000_000  # the updates and the head, not a copy of the model
    again = SafetyReader.load(path)
    assert (again.model, again.classes, again.trained_on) == (bot.encoder.name, reader.classes, 24)
    again.attach(bot.encoder)
    assert np.array_equal(again.probabilities(texts), read)


def test_fitting_the_reader_leaves_the_encoder_as_it_was(bot):
    text = ["my chest is crushing and my left arm is numb"]
    before = bot.encoder.encode(text).copy()
    _tiny_reader(bot.encoder)
    assert np.array_equal(bot.encoder.encode(text), before)


@pytest.mark.parametrize("content", [b"", b"not a safetensors file", b"\xff" * 64])
def test_a_damaged_reader_file_is_reported_with_its_path(tmp_path, content):
    path = tmp_path / "safety.reader.safetensors"
    path.write_bytes(content)
    with pytest.raises(CorpusError) as err:
        SafetyReader.load(path)
    assert str(path) in str(err.value) and "qa tune --reader" in str(err.value)


def test_a_reader_file_with_an_update_missing_its_other_half_is_reported(bot, tmp_path):
    from safetensors.numpy import save

    reader = _tiny_reader(bot.encoder)
    tensors = dict(reader.tensors)
    tensors.pop(next(k for k in tensors if k.endswith(".B")))
    path = tmp_path / "safety.reader.safetensors"
    path.write_bytes(save(tensors, metadata={"model": reader.model, "classes": json.dumps(reader.classes)}))
    with pytest.raises(CorpusError) as err:
        SafetyReader.load(path)
    assert str(path) in str(err.value) and "inconsistent safety reader" in str(err.value)


def test_readings_are_the_same_when_the_cache_is_full(bot, monkeypatch):
    import qa.reader

    monkeypatch.setattr(qa.reader, "CACHE", 2)
    reader = _tiny_reader(bot.encoder)
    reader.attach(bot.encoder)
    texts = ["a fall", "chest pain", "a cold", "upper back stretches"]
    alone = {t: reader.probabilities([t])[0] for t in texts}  # each read on its own, the cache churning
    mixed = reader.probabilities([texts[3], texts[0], texts[3], texts[1]])  # a cached text beside new ones
    assert np.allclose(mixed, [alone[texts[3]], alone[texts[0]], alone[texts[3]], alone[texts[1]]], atol=1e-5)
    assert len(reader._cache) <= 2


def _rules_copy(tmp_path) -> Path:
    """The shipped rules and their linear model, copied (without the reader)."""
    shutil.copy(SAFETY, tmp_path / "safety.yaml")
    shutil.copy(model_path(SAFETY), model_path(tmp_path / "safety.yaml"))
    return tmp_path / "safety.yaml"


def test_a_reader_of_another_model_is_not_used(bot, tmp_path, caplog):
    rules_path = _rules_copy(tmp_path)
    _tiny_reader(bot.encoder, model="another-model").save(reader_path(rules_path))
    rules = SafetyRules.load(rules_path)
    with caplog.at_level(logging.WARNING):
        rules.prepare(bot.encoder)
    assert rules.urgency is not None and rules.urgency.reader is None
    assert "fine-tuned from model 'another-model'" in caplog.text


def test_the_shipped_reader_is_asked_beside_the_safety_model(bot):
    reader = bot.rules.urgency.reader
    assert reader is not None and reader.attached, "corpus/safety.reader.safetensors missing or of another model"
    assert reader.model == bot.encoder.name
    assert set(reader.classes[1:]) <= {c.id for c in bot.rules.categories}


def _text(case) -> str:
    """The message of a review case: a text, a (text, category) pair, or a pytest.param of either."""
    case = case.values if hasattr(case, "values") and hasattr(case, "marks") else case
    while isinstance(case, tuple):
        case = case[0]
    return case


def _auc(urgent: np.ndarray, harmless: np.ndarray) -> float:
    """P(an urgent message scores above a harmless one), ties half."""
    above = (urgent[:, None] > harmless[None, :]).mean() + 0.5 * (urgent[:, None] == harmless[None, :]).mean()
    return float(above)


def test_the_reader_tells_the_reviews_emergencies_from_their_harmless_messages_better_than_the_linear_model(bot):
    """The code reviews' messages (tests/test_safety_review.py) were written against the rules and no model was
    fitted on them: the reader, fine-tuned on the labelled set, must separate them better than the linear model
    over the same encoder does. Each message as a whole, as a rule's agreement reads it."""
    urgent = [_text(t) for name in dir(reviews) if name.endswith("URGENT") for t in getattr(reviews, name)]
    harmless = [_text(t) for name in dir(reviews) if name.endswith("BENIGN") for t in getattr(reviews, name)]
    assert len(urgent) > 500 and len(harmless) > 300
    model = bot.rules.urgency
    texts = urgent + harmless
    linear = 1.0 - model.probabilities(bot.encoder.encode(texts))[:, 0]
    read = 1.0 - model.reader.probabilities(texts)[:, 0]
    n = len(urgent)
    assert _auc(read[:n], read[n:]) > _auc(linear[:n], linear[n:])  # 0.894 against 0.864 (session 16)


# --- qa tune --reader --------------------------------------------------------------------------


def _labels(tmp_path, rows) -> str:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(dict(r, split="tune")) + "\n" for r in rows)
                    + json.dumps({"question": "I have chest pain", "ids": [], "safety": "chest_pain", "split": "test"})
                    + "\n", encoding="utf-8")
    return str(path)


def test_qa_tune_reader_fine_tunes_and_saves_the_reader_beside_the_rules(bot, capsys, tmp_path):
    rules_path = _rules_copy(tmp_path)
    labels = _labels(tmp_path, _sample(20, 20))
    argv = ["tune", "--reader", "--labels", labels, "--corpus", str(CORPUS), "--index", str(tmp_path / "idx"),
            "--safety", str(rules_path), "--settings", str(SETTINGS)]
    assert main(argv + ["--dry-run"]) == 0
    assert "nothing saved" in capsys.readouterr().out and not reader_path(rules_path).exists()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "safety reader fine-tuned on 40 messages (20 urgent)" in out and f"saved to {reader_path(rules_path)}" in out
    saved = SafetyReader.load(reader_path(rules_path))
    assert saved.trained_on == 40 and saved.model == bot.encoder.name


def test_qa_tune_reader_learns_from_the_messages_beside_the_rules_too(capsys, tmp_path):
    """``safety.reader.jsonl`` beside the rules: messages labelled for the reader only (the blind reviews'), a
    question and its category a line; one already in the labelled set is read once."""
    rules_path = _rules_copy(tmp_path)
    rows = _sample(10, 10)
    extra = [{"question": "my dad has no pulse, i'm doing cpr now", "safety": "chest_pain"},
             {"question": "did cpr training at work today, good to know", "safety": None},
             {"question": rows[0]["question"], "safety": rows[0]["safety"]}]
    reader_data_path(rules_path).write_text("".join(json.dumps(r) + "\n" for r in extra), encoding="utf-8")
    code = main(["tune", "--reader", "--dry-run", "--labels", _labels(tmp_path, rows), "--corpus", str(CORPUS),
                 "--index", str(tmp_path / "idx"), "--safety", str(rules_path), "--settings", str(SETTINGS)])
    out = capsys.readouterr().out
    assert code == 0 and "with 2 messages of safety.reader.jsonl beside the labelled set" in out
    assert "safety reader fine-tuned on 22 messages (11 urgent)" in out


def test_qa_tune_reader_and_safety_only_together_are_refused(capsys, tmp_path):
    labels = _labels(tmp_path, _sample(3, 3))
    code = main(["tune", "--reader", "--safety-only", "--labels", labels, "--corpus", str(CORPUS),
                 "--index", str(tmp_path / "idx"), "--safety", str(_rules_copy(tmp_path)), "--settings", str(SETTINGS)])
    assert code == 1 and "pass one" in capsys.readouterr().err


def test_qa_tune_reader_without_a_safety_model_says_to_fit_one_first(capsys, tmp_path):
    shutil.copy(SAFETY, tmp_path / "safety.yaml")  # the rules without their model
    labels = _labels(tmp_path, _sample(3, 3))
    code = main(["tune", "--reader", "--labels", labels, "--corpus", str(CORPUS), "--index", str(tmp_path / "idx"),
                 "--safety", str(tmp_path / "safety.yaml"), "--settings", str(SETTINGS)])
    err = capsys.readouterr().err
    assert code == 1 and "no safety model" in err and "run `qa tune` first" in err
    assert not reader_path(tmp_path / "safety.yaml").exists()


# --- how the learned model asks it (mechanics, with a stand-in reader) ---------------------------


class _SureReader:
    """A stand-in reader: P(chest_pain) 0.995 for every text."""
    classes = ["", "chest_pain"]

    def probabilities(self, texts):
        return np.tile(np.array([[0.005, 0.995]], np.float32), (len(texts), 1))


def test_the_reader_is_asked_only_where_the_linear_model_finds_the_message_urgent_enough():
    from qa.urgency import READER_GATE, UrgencyModel

    model = UrgencyModel(model="m", classes=["", "chest_pain"], coef=np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
                         intercept=np.zeros(2, np.float32), threshold=0.99)
    model.reader = _SureReader()
    calm, alarming = np.array([[3.0, 0.0]], np.float32), np.array([[0.0, 0.5]], np.float32)
    assert model.urgency(calm) < READER_GATE <= model.urgency(alarming) < model.threshold
    assert model.predict(alarming) is None  # the linear model alone does not pin it
    assert model.read(["calm"], calm) is None  # below the gate the reader is not asked
    category, p = model.read(["alarming"], alarming)
    assert category == "chest_pain" and p == pytest.approx(0.995)
    assert model.read(["alarming"], alarming, skip={"chest_pain"}) is None  # a vetoed category is not pinned
