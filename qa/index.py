"""The index bundle: FAISS vectors, a BM25 index and a manifest, built and checked as one.

Layout of the index folder::

    index/manifest.json          which bundle is current, and what it was built from
    index/bundle-<time>-<rand>/  vectors.faiss, vectors.npy (entry and kind per vector), bm25/
    index/safety-vectors.npz     a cache of the safety rules' example vectors (see qa.safety)

``manifest.json`` is replaced atomically only after its bundle is complete, so a
build killed halfway leaves the previous index in use. ``load`` checks the
manifest against the corpus and model and the files against their checksums: a
stale or damaged bundle raises :class:`IndexBundleError` and is never served.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from . import __version__
from .corpus import Corpus
from .errors import IndexBundleError
from .io import atomic_write_text, sha256_file
from .lexical import Lexical

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
#: Up to this many vectors an exact (flat) inner-product search is fast enough; above it, IVF.
EXACT_MAX_VECTORS = 50_000
#: Vector kinds: which text of an entry a vector embeds; "out_of_scope" vectors belong to no entry (entry -1).
KINDS = ("question", "alternates", "answer", "sentences", "out_of_scope")
OUT_OF_SCOPE = KINDS.index("out_of_scope")


@dataclass
class Bundle:
    index: faiss.Index
    entry_of: np.ndarray  # int32, entry position of each vector
    kind_of: np.ndarray  # int8, position in KINDS of each vector
    lexical: Lexical
    manifest: dict

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)


def entry_texts(corpus: Corpus, fields: tuple[str, ...]) -> tuple[list[str], list[int], list[int]]:
    """The texts to embed, with the entry and kind of each: one vector per question, alternate and answer,
    plus one per out-of-scope question of the corpus (entry -1)."""
    texts: list[str] = []
    entry_of: list[int] = []
    kind_of: list[int] = []
    for i, entry in enumerate(corpus.entries):
        parts = []
        if "question" in fields:
            parts.append((entry.question, 0))
        if "alternates" in fields:
            parts.extend((alt, 1) for alt in entry.alternates)
        if "answer" in fields:
            parts.append((entry.answer, 2))
        if "sentences" in fields:
            parts.extend((sentence, 3) for sentence in answer_sentences(entry.answer))
        for text, kind in parts:
            texts.append(text)
            entry_of.append(i)
            kind_of.append(kind)
    for text in corpus.out_of_scope:
        texts.append(text)
        entry_of.append(-1)
        kind_of.append(OUT_OF_SCOPE)
    return texts, entry_of, kind_of


def answer_sentences(answer: str) -> list[str]:
    """The sentences and list items of an answer (only when there are two or more)."""
    pieces = [p.strip(" •-\t") for line in answer.splitlines() for p in re.split(r"(?<=[.!?])\s+(?=[A-Z“\"])", line)]
    pieces = [p for p in pieces if len(p.split()) >= 3]
    return pieces if len(pieces) >= 2 else []


def make_faiss_index(vectors: np.ndarray) -> faiss.Index:
    """Exact inner product for small collections (on unit vectors that is cosine), IVF for large ones.

    IVF uses about 4*sqrt(n) cells, the usual rule of thumb, and probes enough of
    them that recall against exact search stays high (measured in `make bench`).
    """
    n, dim = vectors.shape
    if n <= EXACT_MAX_VECTORS:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = int(4 * math.sqrt(n))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
        index.train(sample)
        index.nprobe = 32
    index.add(vectors)
    return index


def build(corpus: Corpus, encoder, index_dir: Path, fields: tuple[str, ...],
          show_progress: bool = False) -> Bundle:
    """Embed the corpus, write a new bundle and switch the manifest to it.

    Args:
        corpus: the validated corpus.
        encoder: a :class:`qa.embed.Encoder`.
        index_dir: the index folder (created if missing).
        fields: which texts of an entry to embed (see :data:`KINDS`).
        show_progress: draw a progress bar while embedding.

    Returns:
        The freshly built bundle.
    """
    started = time.time()
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    texts, entry_of, kind_of = entry_texts(corpus, fields)
    logger.info("embedding %d texts of %d entries", len(texts), len(corpus))
    vectors = encoder.encode(texts, show_progress=show_progress)
    index = make_faiss_index(vectors)
    lexical = Lexical.build([_lexical_text(e) for e in corpus.entries])

    bundle_name = f"bundle-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    tmp = index_dir / f".tmp-{bundle_name}"
    tmp.mkdir()
    faiss.write_index(index, str(tmp / "vectors.faiss"))
    np.save(tmp / "vectors.npy", np.stack([np.asarray(entry_of, np.int32), np.asarray(kind_of, np.int32)]))
    lexical.save(tmp / "bm25")
    files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp).rename(index_dir / bundle_name)

    manifest = {
        "format": FORMAT,
        "version": __version__,
        "bundle": bundle_name,
        "model": encoder.path,
        "model_name": encoder.name,
        "dimension": encoder.dimension,
        "normalized": True,
        "metric": "inner_product",
        "index_type": type(index).__name__,
        "fields": list(fields),
        "corpus_fingerprint": corpus.fingerprint(),
        "entries": len(corpus),
        "vectors": int(index.ntotal),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(time.time() - started, 3),
        "files": files,
    }
    previous = read_manifest(index_dir)  # a damaged one must not block the rebuild that replaces it
    atomic_write_text(index_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    _clean_old_bundles(index_dir, keep=bundle_name, previous=(previous or {}).get("bundle"))
    logger.info("built index: %d entries, %d vectors (%s) in %.1fs", len(corpus), index.ntotal,
                manifest["index_type"], manifest["build_seconds"])
    return Bundle(index, np.asarray(entry_of, np.int32), np.asarray(kind_of, np.int8), lexical, manifest)


def load(corpus: Corpus, encoder, index_dir: Path, fields: tuple[str, ...]) -> Bundle:
    """Load the current bundle after checking it matches the corpus, model and fields.

    Raises:
        IndexBundleError: missing, stale (says what changed) or damaged.
    """
    index_dir = Path(index_dir)
    manifest = _read_manifest(index_dir)
    if manifest is None:
        raise IndexBundleError(f"{index_dir}: no index built yet")
    stale = []
    if manifest.get("format") != FORMAT:
        stale.append(f"format {manifest.get('format')} != {FORMAT}")
    if manifest.get("corpus_fingerprint") != corpus.fingerprint():
        stale.append("the corpus changed")
    if manifest.get("model") != encoder.path or manifest.get("dimension") != encoder.dimension:
        stale.append(f"model {manifest.get('model_name')} -> {encoder.name}")
    if tuple(manifest.get("fields", ())) != tuple(fields):
        stale.append(f"embedded fields {manifest.get('fields')} -> {list(fields)}")
    if stale:
        raise IndexBundleError(f"{index_dir}: index is stale ({'; '.join(stale)})")
    folder = index_dir / str(manifest.get("bundle", ""))
    files = manifest.get("files") or {}
    if not files:
        raise IndexBundleError(f"{index_dir / MANIFEST}: damaged (no file list)")
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            raise IndexBundleError(f"{path}: missing")
        if sha256_file(path) != digest:
            raise IndexBundleError(f"{path}: damaged (checksum mismatch)")
    try:
        index = faiss.read_index(str(folder / "vectors.faiss"))
        maps = np.load(folder / "vectors.npy")
        lexical = Lexical.load(folder / "bm25")
    except Exception as exc:  # faiss raises RuntimeError, numpy ValueError/OSError
        raise IndexBundleError(f"{folder}: damaged ({exc})") from exc
    if index.ntotal != manifest.get("vectors") or maps.shape != (2, index.ntotal) or index.d != encoder.dimension:
        raise IndexBundleError(f"{folder}: damaged (sizes do not match the manifest)")
    if hasattr(index, "nprobe"):
        index.nprobe = 32
    return Bundle(index, maps[0].astype(np.int32), maps[1].astype(np.int8), lexical, manifest)


def question_vectors(bundle: Bundle, corpus: Corpus, encoder) -> np.ndarray:
    """The vectors of every entry's question and alternates, in no particular order.

    Read back from the FAISS index where the bundle embedded them (both index types keep
    vectors whole, so they are exactly what was embedded); embedded now where it did not.
    The safety check compares each message with all of them.
    """
    fields = tuple(bundle.manifest.get("fields") or ())
    stored = [KINDS.index(kind) for kind in ("question", "alternates") if kind in fields]
    ids = np.flatnonzero(np.isin(bundle.kind_of, stored))
    index = bundle.index
    if len(ids) and isinstance(index, faiss.IndexIVF) and index.direct_map.type == faiss.DirectMap.NoMap:
        index.make_direct_map()  # IVF needs it to look vectors up by id (8 bytes per vector)
    vectors = index.reconstruct_batch(ids.astype(np.int64)) if len(ids) else np.zeros((0, index.d), np.float32)
    missing = [text for e in corpus.entries
               for text in ([e.question] if "question" not in fields else [])
               + (list(e.alternates) if "alternates" not in fields else [])]
    if missing:
        vectors = np.vstack([vectors, encoder.encode(missing)])
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _read_manifest(index_dir: Path) -> dict | None:
    path = index_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexBundleError(f"{path}: damaged ({exc})") from exc
    if not isinstance(data, dict):
        raise IndexBundleError(f"{path}: damaged (not a JSON object)")
    return data


def read_manifest(index_dir: Path) -> dict | None:
    """The manifest of the current bundle, or None when nothing was built (for `qa status`)."""
    try:
        return _read_manifest(Path(index_dir))
    except IndexBundleError:
        return None


def _clean_old_bundles(index_dir: Path, keep: str, previous: str | None) -> None:
    """Remove the bundle just replaced and leftovers of killed builds older than an hour."""
    now = time.time()
    for path in index_dir.iterdir():
        if not path.is_dir() or path.name == keep:
            continue
        if path.name == previous or (path.name.startswith((".tmp-bundle-", "bundle-"))
                                     and now - path.stat().st_mtime > 3600):
            shutil.rmtree(path, ignore_errors=True)


def _lexical_text(entry) -> str:
    return "\n".join([entry.question, *entry.alternates, entry.answer])
