"""The learned entry classifier: which entry answers a question, learned from the labelled questions.

Similarity to an entry's own texts (question, alternates, answer) ranks well for the phrasings the FAQ
owner thought of; the labelled set holds hundreds more, in the words people type. `qa tune` fits a
multinomial logistic regression over their sentence vectors (classes: every entry, and NOT_COVERED for
the questions the FAQ must decline) and saves it beside the settings
(``corpus/settings.json`` -> ``corpus/settings.model.json``). The retriever mixes P(entry) into each
entry's blended score with weight ``learned_weight`` (a weighted mean), and the bot declines when
P(NOT_COVERED) is above ``not_covered_decline``.

The model is only used with the encoder and the set of entries it was fitted on: a FAQ with entries
added or removed since `qa tune` gets a warning, and the classifier stays out until it is refitted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .linear import NONE, LinearModel, fit_logistic, logistic, now

logger = logging.getLogger(__name__)

NOT_COVERED = NONE
#: Fewer labelled in-scope questions than this and `qa tune` fits no classifier.
MIN_LABELLED = 30
#: Regularisation (inverse strength) of the logistic regression; chosen on the eight upper-back tuning
#: files, each held out in turn (1, 3, 10, 30 tried; 10 best).
C = 10.0


def model_path(settings_path: str | Path) -> Path:
    """Where the classifier of a settings file lives: ``settings.json`` -> ``settings.model.json``."""
    return Path(settings_path).with_suffix(".model.json")


@dataclass
class EntryModel(LinearModel):
    """Classes: NOT_COVERED first, then entry ids."""

    WHAT = "entry classifier"

    def fits(self, entry_ids: Sequence[str], encoder_name: str, dimension: int) -> str | None:
        """Why this model cannot be used with these entries and this encoder (None when it can)."""
        if why := self.other_encoder(encoder_name, dimension):
            return why
        if set(self.classes[1:]) != set(entry_ids):
            added = len(set(entry_ids) - set(self.classes[1:]))
            removed = len(set(self.classes[1:]) - set(entry_ids))
            return f"the FAQ changed since it was fitted ({added} entries added, {removed} removed)"
        return None

    def columns(self, entry_ids: Sequence[str]) -> np.ndarray:
        """Class numbers of the given entries, in their order (after :meth:`fits`)."""
        position = {c: k for k, c in enumerate(self.classes)}
        return np.array([position[e] for e in entry_ids], np.intp)

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: Sequence[Sequence[str]], model: str, entry_ids: Sequence[str],
            c: float = C) -> "EntryModel":
        """Fit on one vector per question, labelled with the ids of the entries that answer it (none: the
        FAQ does not cover it). A question answered by several entries counts for each with a share.
        Every entry of ``entry_ids`` is a class; one no question names is never predicted."""
        classes = [NOT_COVERED, *entry_ids]
        x, y, w = _rows(np.asarray(vectors, np.float32), labels, classes)
        if (y > 0).sum() < MIN_LABELLED:
            raise ValueError(f"{int((y > 0).sum())} labelled in-scope questions; at least {MIN_LABELLED} are needed")
        coef, intercept = fit_logistic(x, y, len(classes), c, sample_weight=w)
        return cls(model=model, classes=classes, coef=coef, intercept=intercept, trained_on=len(labels),
                   trained_at=now())

    @staticmethod
    def held_out(vectors: np.ndarray, labels: Sequence[Sequence[str]], classes: Sequence[str],
                 files: Sequence[str], texts: Sequence[str], c: float = C) -> np.ndarray:
        """Out-of-fold probabilities, (questions, classes) in the order of ``classes``: each question is
        scored by a model fitted without it. With three labelled files or more, each file is held out in
        turn (its writers' phrasings unseen); otherwise five folds, a repeated text kept in one."""
        from sklearn.model_selection import GroupKFold

        x = np.asarray(vectors, np.float32)
        names, keys = np.asarray(files), np.asarray(texts)
        folds = [names == f for f in sorted(set(files))]
        if len(folds) < 3 or not all(_classes(labels, ~held) >= 2 for held in folds):
            # Few files, or files of one kind each (all in-scope questions in one): five folds instead.
            splits = GroupKFold(n_splits=min(5, len(set(texts)))).split(x, groups=list(texts))
            folds = [np.isin(np.arange(len(x)), test) for _, test in splits]
        out = np.zeros((len(x), len(classes)))
        for held in folds:
            # A text repeated in another file is left out of training too: it would be seen already.
            train = np.flatnonzero(~held & ~np.isin(keys, keys[held]))
            if _classes([labels[i] for i in train], np.ones(len(train), bool)) < 2:
                continue  # nothing to learn from: these questions keep probability 0 everywhere
            xs, y, w = _rows(x[train], [labels[i] for i in train], list(classes))
            clf = logistic(c).fit(xs, y, sample_weight=w)
            out[np.ix_(held, clf.classes_)] = clf.predict_proba(x[held])
        return out


def _classes(labels: Sequence[Sequence[str]], rows: np.ndarray) -> int:
    """How many classes the selected questions name (NOT_COVERED counts as one)."""
    return len({i for ids, keep in zip(labels, rows) if keep for i in (ids or [NOT_COVERED])})


def _rows(x: np.ndarray, labels: Sequence[Sequence[str]], classes: list[str]):
    """One training row per (question, entry) pair, weighted 1/number of entries; one NOT_COVERED row
    for an unanswered question."""
    position = {c: k for k, c in enumerate(classes)}
    rows, y, w = [], [], []
    for i, ids in enumerate(labels):
        for entry in ids or [NOT_COVERED]:
            rows.append(i)
            y.append(position[entry])
            w.append(1 / max(len(ids), 1))
    return x[rows], np.array(y), np.array(w)
