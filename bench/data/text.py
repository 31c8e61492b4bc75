"""Language modelling data: a BPE tokenizer (whitespace pre-tokenizer) and windows of `context` tokens.

source=wikitext2 reads WikiText-2's wiki.train.raw / wiki.test.raw under root and caches the tokenizer there
(bpe-<vocab_size>.json, trained once on the training text). source=pydoc uses the English prose of Python's own
documentation (pydoc_data.topics, ~0.5 MB, always installed): 90% for training, the last 10% for testing; its
tokenizer takes a fraction of a second to train and is not cached.
Inputs are (N, context) token ids, targets the next token at each position (N, context).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.data.vision import DataMissing
from bench.runfolder import atomic_write_text

WIKITEXT_FILES = ("wiki.train.raw", "wiki.test.raw")


def missing_message(cfg) -> str | None:
    if cfg.source != "wikitext2":
        return None
    missing = [f for f in WIKITEXT_FILES if not (Path(cfg.root) / f).exists()]
    if not missing:
        return None
    return (
        f"dataset=text dataset.source=wikitext2: {missing[0]} not found under dataset.root={cfg.root}; put "
        f"WikiText-2's raw files (wiki.train.raw, wiki.valid.raw, wiki.test.raw, from wikitext-2-raw-v1.zip) "
        f"there, or use dataset.source=pydoc (offline)"
    )


def pydoc_text() -> tuple[list[str], list[str]]:
    import pydoc_data.topics

    docs = [pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)]
    cut = len(docs) - len(docs) // 10
    return docs[:cut], docs[cut:]


def wikitext_text(root: str) -> tuple[list[str], list[str]]:
    read = lambda name: (Path(root) / name).read_text(encoding="utf-8").splitlines()  # noqa: E731
    return read("wiki.train.raw"), read("wiki.test.raw")


def train_tokenizer(lines: list[str], vocab_size: int):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["[UNK]"], show_progress=False)
    tok.train_from_iterator(lines, trainer)
    return tok


def cached_tokenizer(lines: list[str], vocab_size: int, folder: str):
    """Load bpe-<vocab_size>.json from folder, or train it and write it there (atomically: sweeps share it)."""
    from tokenizers import Tokenizer

    path = Path(folder) / f"bpe-{vocab_size}.json"
    if path.exists():
        return Tokenizer.from_file(str(path))
    tok = train_tokenizer(lines, vocab_size)
    atomic_write_text(path, tok.to_str())
    return tok


def windows(ids: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of `context` tokens and their next-token targets."""
    n = (len(ids) - 1) // context
    return ids[: n * context].view(n, context), ids[1 : n * context + 1].view(n, context)


def load_text(cfg):
    from bench.data import Data

    message = missing_message(cfg)
    if message:
        raise DataMissing(message)
    if cfg.source == "pydoc":
        train, test = pydoc_text()
        tok = train_tokenizer(train, cfg.vocab_size)
    else:
        train, test = wikitext_text(cfg.root)
        tok = cached_tokenizer(train, cfg.vocab_size, cfg.root)

    def encode(lines):
        return torch.tensor([i for e in tok.encode_batch(lines) for i in e.ids], dtype=torch.long)

    x_train, y_train = windows(encode(train), cfg.context)
    x_test, y_test = windows(encode(test), cfg.context)
    return Data(x_train, y_train, x_test, y_test, num_classes=tok.get_vocab_size())
