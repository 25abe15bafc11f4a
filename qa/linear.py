"""Linear classifiers over sentence embeddings, fitted by `qa tune` and saved as JSON.

Two models share this: the entry classifier (:mod:`qa.classifier`, which entry answers a question) and
the urgency detector (:mod:`qa.urgency`, which safety category a message falls in). Both are a softmax
over one matrix product with the vectors the bot has already computed, both are tied to the encoder
they were fitted with, and both are written atomically and checked when read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import ClassVar

import numpy as np

from .errors import CorpusError
from .io import atomic_write_text

#: The first class of every model: "none of the others" (not urgent, not covered by the FAQ).
NONE = ""
#: The intercept of a class with no training example: its probability is e^-30 of the others'.
ABSENT = -30.0


@dataclass
class LinearModel:
    model: str  # the encoder it was trained with (its vectors mean nothing to another)
    classes: list[str]  # NONE first
    coef: np.ndarray  # (classes, dimension)
    intercept: np.ndarray  # (classes,)
    trained_on: int = 0
    trained_at: str = ""

    #: What the file is, for error messages ("not a safety model file").
    WHAT: ClassVar[str] = "model"

    @property
    def dimension(self) -> int:
        return int(self.coef.shape[1])

    def other_encoder(self, encoder_name: str, dimension: int) -> str | None:
        """Why this model's weights mean nothing to that encoder's vectors (None when they fit)."""
        if self.model != encoder_name or self.dimension != dimension:
            return f"trained with model {self.model!r}, not {encoder_name!r}"
        return None

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities per row: (rows, classes)."""
        logits = np.atleast_2d(np.asarray(vectors, np.float32)) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    # --- reading and writing ---------------------------------------------------------------

    def _extra(self) -> dict:
        """Fields of a subclass, written to the file beside the weights."""
        return {}

    @classmethod
    def _read_extra(cls, data: dict) -> dict:
        """A subclass's fields from the file (raise ValueError/KeyError/TypeError when malformed)."""
        return {}

    def save(self, path: str | Path) -> None:
        data = {"model": self.model, "dimension": self.dimension, "classes": self.classes, **self._extra(),
                "trained_on": self.trained_on, "trained_at": self.trained_at,
                "intercept": [round(float(v), 6) for v in self.intercept],
                "coef": [[round(float(v), 6) for v in row] for row in self.coef]}
        atomic_write_text(Path(path), json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path):
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            classes = [str(c) for c in data["classes"]]
            coef = np.asarray(data["coef"], np.float32)
            intercept = np.asarray(data["intercept"], np.float32)
            extra = cls._read_extra(data)
            trained_on = int(data.get("trained_on", 0))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise CorpusError(path, f"not a valid {cls.WHAT} file ({exc}); delete it or run `qa tune` again") from None
        if coef.ndim != 2 or coef.shape[0] != len(classes) or intercept.shape != (len(classes),) \
                or not classes or classes[0] != NONE or len(set(classes)) != len(classes) \
                or not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise CorpusError(path, f"inconsistent {cls.WHAT} (classes or weights); run `qa tune` again")
        return cls(model=str(data.get("model", "")), classes=classes, coef=coef, intercept=intercept,
                   trained_on=trained_on, trained_at=str(data.get("trained_at", "")), **extra)


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, c: float, sample_weight: np.ndarray | None = None,
                 class_weight: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic regression of class numbers ``y`` (0..n_classes-1) on ``x``: the weights of
    every class. A class absent from ``y`` is never predicted (zero weights, intercept ABSENT), as a model
    that never saw it would not."""
    if len(set(np.asarray(y).tolist())) < 2:
        raise ValueError("the labels name a single class; a classifier needs at least two")
    clf = logistic(c, class_weight).fit(x, y, sample_weight=sample_weight)
    coef = np.zeros((n_classes, x.shape[1]), np.float32)
    intercept = np.full(n_classes, ABSENT, np.float32)
    for row, k in enumerate(clf.classes_):
        coef[k], intercept[k] = clf.coef_[row], clf.intercept_[row]
    return coef, intercept


def logistic(c: float, class_weight: str | None = None):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight=class_weight, max_iter=3000)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S%z")
