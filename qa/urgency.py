"""The learned urgency detector: a linear classifier over sentence embeddings.

Rules and example sentences catch the phrasings someone thought of; fresh labelled sets kept showing
urgent messages in words nobody had written down ("gave away most of my stuff this week"). This model
learns from the labelled set itself: `qa tune` fits it on the tuning part (each urgent message labelled
with its category, everything else "not urgent") and saves it beside the rules file
(``corpus/safety.yaml`` -> ``corpus/safety.model.json``). At run time it is one matrix product over the
vectors the bot has already computed (the message and its clauses).

:meth:`UrgencyModel.fit` chooses a pinning threshold by cross-validation on the tuning part: the lowest
probability at which messages the model had not been trained on raised at most ``max_false_alarms`` false
alarms. `qa tune` then replaces it with one chosen on what the whole bot does with the model
(:func:`qa.evaluate.whole_check_threshold`), as most of the model's own alarms are vetoed by a rule.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .linear import NONE, LinearModel, fit_logistic, logistic, now
from .reader import SafetyReader

logger = logging.getLogger(__name__)

NOT_URGENT = NONE
#: Fewer urgent examples than this and `qa tune` does not fit a model (it would only add noise).
MIN_URGENT = 20
#: The reader's P(urgent) at which it pins on its own: of 0.9-0.999, the fewest missed urgent messages (counted
#: twice) plus false alarms for a reader fitted on tune2-30 and asked of the held-out tune31-36 (session 16).
READER_PIN = 0.99
#: The reader reads a message only when this model finds its most urgent row at least this urgent: every message
#: a reader fitted on tune2-30 pinned in the held-out tune31-36 and the reviews had 0.58 or more here (the
#: urgent ones 0.85), while about half of those that nothing else pinned have less. It keeps the reader's
#: forward pass off ordinary questions.
READER_GATE = 0.5
#: The pin thresholds `qa tune` chooses from. Finer steps near 1: with many labelled messages the 0.01 steps end
#: at 0.99 before the false-alarm target is met (0.7% of 2,827 at 0.99 against a target of 0.5%).
THRESHOLDS = np.round(np.concatenate([np.arange(0.5, 0.985, 0.01), np.arange(0.99, 0.9995, 0.001)]), 3)


def model_path(rules_path: str | Path) -> Path:
    """Where the model of a rules file lives: ``safety.yaml`` -> ``safety.model.json``."""
    return Path(rules_path).with_suffix(".model.json")


@dataclass
class UrgencyModel(LinearModel):
    """Classes: NOT_URGENT first, then safety category ids."""

    threshold: float = 0.99  # pin when P(urgent) is at least this
    #: The fine-tuned reader (:mod:`qa.reader`), asked beside this model when the rules file has one.
    reader: SafetyReader | None = field(default=None, repr=False, compare=False)

    WHAT = "safety model"

    def predict(self, vectors: np.ndarray, skip: set[str] = frozenset()) -> tuple[str, float] | None:
        """The category and probability of the most urgent row, if it reaches the threshold.

        Categories in ``skip`` (vetoed by a rule for this message) neither count towards the
        probability nor are returned: "passed out years ago" must not become another category.
        """
        found = self._most_urgent(self.probabilities(vectors), skip)
        return found if found is not None and found[1] >= self.threshold else None

    def urgency(self, vectors: np.ndarray, skip: set[str] = frozenset()) -> float:
        """P(urgent) of the most urgent row (0.0 for no rows): what a rule that needs the model's
        agreement (``confirm`` in the rules file) is checked against. The reader is not asked: it
        only adds pins (:meth:`read`)."""
        found = self._most_urgent(self.probabilities(vectors), skip)
        return 0.0 if found is None else found[1]

    def read(self, texts: list[str], vectors: np.ndarray, skip: set[str] = frozenset()) -> tuple[str, float] | None:
        """The reader's category and probability for the most urgent of ``texts`` (whose vectors are
        ``vectors``), if it reaches :data:`READER_PIN`; None without a reader, and without asking it
        when this model finds them less urgent than :data:`READER_GATE`."""
        if self.reader is None or not texts or self.urgency(vectors, skip) < READER_GATE:
            return None
        read = self.reader.probabilities(texts)
        p = np.zeros((len(texts), len(self.classes)), np.float32)
        for k, cls in enumerate(self.reader.classes):
            # a category this model lacks counts as not urgent (this model's skip list covers the rules)
            p[:, self.classes.index(cls) if cls in self.classes else 0] += read[:, k]
        found = self._most_urgent(p, skip)
        return found if found is not None and found[1] >= READER_PIN else None

    def _most_urgent(self, p: np.ndarray, skip: set[str]) -> tuple[str, float] | None:
        """The category and P(urgent) of the most urgent row of class probabilities ``p``."""
        allowed = [k for k in range(1, len(self.classes)) if self.classes[k] not in skip]
        if len(p) == 0 or not allowed:
            return None
        p = p[:, allowed]
        urgent = p.sum(axis=1)
        row = int(np.argmax(urgent))
        return self.classes[allowed[int(np.argmax(p[row]))]], float(urgent[row])

    # --- fitting -------------------------------------------------------------------

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: list[str], model: str, max_false_alarms: float = 0.01,
            folds: int = 5, c: float = 3.0, seed: int = 0, pieces: list[np.ndarray] | None = None,
            groups: list[str] | None = None) -> tuple["UrgencyModel", dict]:
        """Fit on unit vectors labelled with a category or NOT_URGENT; choose the threshold by
        cross-validation. Returns the model and its cross-validated recall and false-alarm rate.

        Args:
            vectors: one vector per message (what the model is trained on).
            pieces: per message, the vectors of its clauses: at run time the most urgent of the
                message and its clauses decides, so the held-out scores are taken the same way.
            groups: per message, a key for repeated texts (kept in one fold, so none is scored by a
                model that was trained on it).
        """
        from sklearn.model_selection import StratifiedGroupKFold

        x = np.asarray(vectors, np.float32)
        y = np.array([lab or NOT_URGENT for lab in labels])
        classes = [NOT_URGENT] + sorted({str(lab) for lab in y if lab != NOT_URGENT})
        y_idx = np.array([classes.index(lab) for lab in y])
        is_urgent = y_idx > 0
        if is_urgent.sum() < MIN_URGENT:
            raise ValueError(f"{int(is_urgent.sum())} urgent examples; at least {MIN_URGENT} are needed")

        def make():
            return logistic(c, class_weight="balanced")

        # Out-of-fold P(urgent): what the model says of messages it has not seen.
        held_out = np.zeros(len(y))
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        for train, test in splitter.split(x, is_urgent, groups if groups is not None else np.arange(len(y))):
            clf = make().fit(x[train], y_idx[train])
            none = list(clf.classes_).index(0)
            for i in test:
                rows = x[i:i + 1] if pieces is None or not len(pieces[i]) else np.vstack([x[i:i + 1], pieces[i]])
                held_out[i] = float((1.0 - clf.predict_proba(rows)[:, none]).max())
        threshold = float(THRESHOLDS[-1])
        for t in THRESHOLDS:
            if (held_out[~is_urgent] >= t).mean() <= max_false_alarms:
                threshold = float(t)
                break
        cv = {"recall": float((held_out[is_urgent] >= threshold).mean()),
              "false_alarms": float((held_out[~is_urgent] >= threshold).mean()),
              "urgent": int(is_urgent.sum()), "not_urgent": int((~is_urgent).sum())}
        return cls.fit_all(x, y_idx, classes, model, threshold, c), cv

    @classmethod
    def fit_all(cls, x: np.ndarray, y_idx: np.ndarray, classes: list[str], model: str, threshold: float,
                c: float = 3.0) -> "UrgencyModel":
        """The model fitted on every row given (class numbers ``y_idx`` into ``classes``), with this threshold."""
        coef, intercept = fit_logistic(x, y_idx, len(classes), c, class_weight="balanced")
        return cls(model=model, classes=classes, coef=coef, intercept=intercept, threshold=threshold,
                   trained_on=len(y_idx), trained_at=now())

    # --- reading and writing ---------------------------------------------------------------

    def _extra(self) -> dict:
        return {"threshold": self.threshold}

    @classmethod
    def _read_extra(cls, data: dict) -> dict:
        threshold = float(data["threshold"])
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is not in (0, 1]")
        return {"threshold": threshold}
