"""The safety reader: the embedding model itself, fine-tuned on the labelled set to tell urgent messages apart.

The learned urgency detector (:mod:`qa.urgency`) is a linear model over the vectors the bot already has: it
can only say how close a message is in meaning to urgent and to harmless ones, and the model that made the
vectors was never told what matters. Fine-tuning the model on the labelled messages teaches it that: on the
code reviews' messages (tests/test_safety_review.py, never trained on) it tells the 1,008 emergencies from
the 802 harmless messages with an AUC of 0.894, the linear model 0.864. `qa tune --reader` fits it, on the
tuning part and on the messages of :func:`reader_data_path` (since session 23 the blind reviews': on the
held-out and fresh reviews 43-52 emergencies pinned 1,056 -> 1,157 of 1,200, harmless ones 302 -> 245 of 2,400).

It only adds pins: when no rule, example or linear-model pin fired and the linear model finds the message at
least :data:`qa.urgency.READER_GATE` urgent, a reader probability of an urgent category (not vetoed for the
message) of at least :data:`qa.urgency.READER_PIN` pins. Session 16, with a
reader fitted on tune2-30 and asked of the held-out tune31-36: urgent messages missed 12 -> 5 of 300, no
false alarm more on their 900 other messages, 3 more of the reviews' 596 harmless messages pinned. Also
asked where a ``confirm`` word needs agreement (the mean of the two models), it cut false alarms on unread
files but lost 6 of the reviews' emergencies ("I think my dad just had a heart attack at the shops, what do
I do": P 0.03): a fine-tuned model learns the labelled set's habits and is sure of them, so it never
overrules a pin.

Only low-rank updates of the model's linear layers (LoRA, rank 8) and a softmax head are trained and saved:
about 330,000 numbers, 1.3 MB beside the rules (``safety.yaml`` -> ``safety.reader.safetensors``). At load
they are merged into a copy of the encoder's network, so a reading is one forward pass of the model.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CorpusError
from .io import atomic_write_bytes
from .linear import NONE, now

logger = logging.getLogger(__name__)

#: The layers of each transformer block that get low-rank updates (BERT names).
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
           "intermediate.dense", "output.dense")
RANK = 8
#: The updates' weight (alpha / rank in the LoRA paper, with alpha = 2 x rank).
SCALE = 2.0
#: Tokens read per message: the labelled messages fit (a rambling one is about 100 tokens).
MAX_TOKENS = 128
#: Training: epochs, batch, learning rates of the updates and of the head (session 16, tune2-30 held out).
EPOCHS = 3
BATCH = 32
LR = 5e-4
HEAD_LR = 1e-2
#: Readings kept per process, keyed by text: a check asks about the same message more than once.
CACHE = 2048


def reader_path(rules_path: str | Path) -> Path:
    """Where the reader of a rules file lives: ``safety.yaml`` -> ``safety.reader.safetensors``."""
    return Path(rules_path).with_suffix(".reader.safetensors")


def reader_data_path(rules_path: str | Path) -> Path:
    """Messages the reader of a rules file learns from besides the labelled set, if the file is there
    (labelled-set lines whose ``"ids"`` default to null and ``"split"`` to ``tune``, so ``{"question": ...,
    "safety": ...}`` is enough): ``safety.yaml`` -> ``safety.reader.jsonl``."""
    return Path(rules_path).with_suffix(".reader.jsonl")


@dataclass
class SafetyReader:
    """Classes: NONE (not urgent) first, then safety category ids."""

    model: str  # the encoder it was fine-tuned from (its updates mean nothing to another)
    classes: list[str]
    tensors: dict[str, np.ndarray]  # "<layer>.A", "<layer>.B" per updated layer; "head.weight", "head.bias"
    trained_on: int = 0
    trained_at: str = ""
    _encoder: object = field(default=None, repr=False)
    _net: object = field(default=None, repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- reading messages ------------------------------------------------------------

    def attach(self, encoder) -> None:
        """Build the network: a copy of the encoder's, with the updates merged in (on the model's thread).
        ValueError when the reader was fitted from another model or its weights do not fit this one."""
        if self.model != encoder.name or self.dimension != encoder.dimension:
            raise ValueError(f"fine-tuned from model {self.model!r} ({self.dimension} dimensions), "
                             f"not {encoder.name!r} ({encoder.dimension})")
        self._encoder = encoder
        self._net = encoder.on_model_thread(self._build, encoder)

    @property
    def dimension(self) -> int:
        return int(self.tensors["head.weight"].shape[1])

    @property
    def attached(self) -> bool:
        return self._net is not None

    def _build(self, encoder):
        import torch

        Net, _ = _modules()
        net = Net(copy.deepcopy(_transformer(encoder)), len(self.classes))
        merged = 0
        with torch.no_grad():
            for name, module in net.encoder.named_modules():
                if f"{name}.A" in self.tensors:
                    a = torch.from_numpy(self.tensors[f"{name}.A"]).float()
                    b = torch.from_numpy(self.tensors[f"{name}.B"]).float()
                    if getattr(getattr(module, "weight", None), "shape", None) != (b.shape[0], a.shape[1]):
                        raise ValueError(f"{name}: update of shape {tuple(b.shape)}x{tuple(a.shape)} does not fit")
                    module.weight += (b @ a) * SCALE
                    merged += 1
            if merged != len(_pairs(self.tensors)):
                raise ValueError(f"{len(_pairs(self.tensors)) - merged} updates name layers this model lacks")
            net.head.weight.copy_(torch.from_numpy(self.tensors["head.weight"]))
            net.head.bias.copy_(torch.from_numpy(self.tensors["head.bias"]))
        net.eval()
        return net

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Class probabilities per text: (texts, classes). Not to be called on the model's thread (it waits
        for that thread)."""
        if self._net is None:
            raise RuntimeError("the reader is not attached to an encoder")
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        todo = [t for t in dict.fromkeys(texts) if t not in found]
        if todo:
            found.update(zip(todo, self._encoder.on_model_thread(self._read, todo)))
            with self._lock:
                for text in todo:
                    self._cache[text] = found[text]
                while len(self._cache) > CACHE:
                    self._cache.popitem(last=False)  # the least recently read
        return np.array([found[t] for t in texts], np.float32).reshape(len(texts), len(self.classes))

    def _read(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.no_grad():
            batch = _tokens(self._encoder, texts)
            return torch.softmax(self._net(batch), dim=-1).numpy()

    # --- fitting -------------------------------------------------------------------

    @classmethod
    def fit(cls, encoder, texts: list[str], labels: list[str], epochs: int = EPOCHS, seed: int = 0,
            show_progress: bool = False) -> "SafetyReader":
        """Fine-tune on messages labelled with a category or NONE (not urgent); urgent and not urgent weigh
        the same in total. Runs on the encoder's thread, a batch at a time (minutes for thousands of messages)."""
        classes = [NONE] + sorted({lab for lab in labels if lab != NONE})
        if len(classes) < 2:
            raise ValueError("the labels name no urgent message; the reader needs some")
        y = [classes.index(lab) for lab in labels]
        tensors = _train(encoder, texts, y, len(classes), epochs, seed, show_progress)
        return cls(model=encoder.name, classes=classes, tensors=tensors, trained_on=len(texts), trained_at=now())

    # --- reading and writing ---------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save

        meta = {"model": self.model, "classes": json.dumps(self.classes),
                "trained_on": str(self.trained_on), "trained_at": self.trained_at}
        atomic_write_bytes(Path(path), save({k: np.ascontiguousarray(v, np.float32) for k, v in self.tensors.items()},
                                            metadata=meta))

    @classmethod
    def load(cls, path: str | Path) -> "SafetyReader":
        from safetensors import safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="np") as fh:
                meta = fh.metadata() or {}
                tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            classes = [str(c) for c in json.loads(meta["classes"])]
            trained_on = int(meta.get("trained_on", 0))
            head = tensors["head.weight"]
            pairs = _pairs(tensors)
            ok = (classes and classes[0] == NONE and len(set(classes)) == len(classes) and head.ndim == 2
                  and head.shape[0] == len(classes) and tensors["head.bias"].shape == (len(classes),)
                  and pairs and set(tensors) == {"head.weight", "head.bias"} | {f"{n}.{m}" for n in pairs for m in "AB"}
                  and all(tensors[f"{n}.A"].ndim == tensors[f"{n}.B"].ndim == 2
                          and tensors[f"{n}.A"].shape[0] == tensors[f"{n}.B"].shape[1] for n in pairs)
                  and all(np.isfinite(v).all() for v in tensors.values()))
        except Exception as exc:  # safetensors raises its own errors for a damaged file
            raise CorpusError(path, f"not a valid safety reader file ({exc}); delete it or run `qa tune --reader` "
                                    "again") from None
        if not ok:
            raise CorpusError(path, "inconsistent safety reader (classes or weights); run `qa tune --reader` again")
        return cls(model=str(meta.get("model", "")), classes=classes, tensors=tensors, trained_on=trained_on,
                   trained_at=str(meta.get("trained_at", "")))


def _pairs(tensors: dict[str, np.ndarray]) -> set[str]:
    """The layers a reader's tensors update (each has "<layer>.A" and, in a valid file, "<layer>.B")."""
    return {k[:-2] for k in tensors if k.endswith(".A")}


def _transformer(encoder):
    """The Hugging Face network inside the encoder's SentenceTransformer (its first module)."""
    return encoder.model[0].auto_model


def _tokens(encoder, texts: list[str]):
    return encoder.model.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")


@functools.cache
def _modules():
    """The two torch modules of the reader (defined on first use: importing qa does not load torch)."""
    import torch

    class Net(torch.nn.Module):
        """Mean of the token vectors, normalised (as the encoder pools), then a softmax head."""

        def __init__(self, encoder, n_classes: int):
            super().__init__()
            self.encoder = encoder
            self.head = torch.nn.Linear(encoder.config.hidden_size, n_classes)

        def forward(self, batch):
            out = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(torch.nn.functional.normalize(pooled, dim=-1))

    class LowRank(torch.nn.Module):
        """``base(x) + x A^T B^T * SCALE``: B starts at zero, so training starts from the model as it is."""

        def __init__(self, base):
            super().__init__()
            self.base = base
            self.A = torch.nn.Parameter(torch.randn(RANK, base.in_features) * 0.01)
            self.B = torch.nn.Parameter(torch.zeros(base.out_features, RANK))

        def forward(self, x):
            return self.base(x) + (x @ self.A.T @ self.B.T) * SCALE

    return Net, LowRank


def _train(encoder, texts: list[str], y: list[int], n_classes: int, epochs: int, seed: int,
           show_progress: bool) -> dict[str, np.ndarray]:
    """The low-rank updates and head fitted on ``texts``. Each batch is one job on the model's thread, so
    Ctrl+C stops the training between two batches (as a bulk encode stops between chunks)."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    state = encoder.on_model_thread(_Training, encoder, y, n_classes, seed, epochs * -(-len(texts) // BATCH))
    with tqdm(total=state.steps, desc="Fine-tuning the safety reader", unit=" batches",
              disable=not show_progress) as bar:
        for _ in range(epochs):
            order = rng.permutation(len(texts))
            for start in range(0, len(texts), BATCH):
                idx = order[start:start + BATCH]
                encoder.on_model_thread(state.step, encoder, [texts[i] for i in idx], idx)
                bar.update(1)
    return encoder.on_model_thread(state.tensors)


class _Training:
    """The network with its low-rank updates, the optimiser and its schedule (built on the model's thread)."""

    def __init__(self, encoder, y: list[int], n_classes: int, seed: int, steps: int):
        import torch

        torch.manual_seed(seed)
        Net, LowRank = _modules()
        self.net = Net(copy.deepcopy(_transformer(encoder)), n_classes)
        for p in self.net.encoder.parameters():
            p.requires_grad = False
        self.updates = {}
        for name, module in list(self.net.encoder.named_modules()):
            if name.endswith(TARGETS) and isinstance(module, torch.nn.Linear):
                parent, _, child = name.rpartition(".")
                low = LowRank(module)
                setattr(self.net.encoder.get_submodule(parent), child, low)
                self.updates[name] = low
        if not self.updates:
            raise ValueError("the model has none of the layers the reader updates (a BERT-like encoder is needed)")
        self.labels = torch.tensor(y)
        urgent = int((self.labels > 0).sum())
        self.weight = torch.full((n_classes,), 0.5 * len(y) / max(urgent, 1))
        self.weight[0] = 0.5 * len(y) / max(len(y) - urgent, 1)  # urgent and not urgent weigh the same in total
        params = [p for low in self.updates.values() for p in (low.A, low.B)]
        self.opt = torch.optim.AdamW([{"params": params, "lr": LR}, {"params": self.net.head.parameters(),
                                                                      "lr": HEAD_LR}], weight_decay=0.01)
        self.steps = steps
        warm = max(1, steps // 10)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / steps))
        self.net.train()

    def step(self, encoder, texts: list[str], idx: np.ndarray) -> None:
        import torch

        loss = torch.nn.functional.cross_entropy(self.net(_tokens(encoder, texts)), self.labels[idx],
                                                 weight=self.weight)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()

    def tensors(self) -> dict[str, np.ndarray]:
        out = {}
        for name, low in self.updates.items():
            out[f"{name}.A"] = low.A.detach().numpy().copy()
            out[f"{name}.B"] = low.B.detach().numpy().copy()
        out["head.weight"] = self.net.head.weight.detach().numpy().copy()
        out["head.bias"] = self.net.head.bias.detach().numpy().copy()
        return out
