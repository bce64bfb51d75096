"""What the tiny pretrained pipelines of the tests share: a tokenizer made in code, and a manifest for a model folder.

The real text encoders (UMT5-XXL for Wan, T5-XXL for LTX) come with SentencePiece tokenizers
from the hub; the tests build a T5 Unigram tokenizer over a few words instead, with T5's special
ids, so no download is ever needed.
"""
from __future__ import annotations

import json
from pathlib import Path

from transformers import T5Tokenizer

from shotfill.engines.pretrained.store import record_entry

#: words the tokenizer knows (anything else becomes ``<unk>``)
WORDS = ("a", "the", "camera", "pans", "left", "right", "slowly", "over", "city", "street", "at", "dusk",
         "night", "rain", "car", "person", "walks", "sky", "clouds", "blurry", "static", "low", "quality")


def tiny_tokenizer() -> T5Tokenizer:
    """A T5 Unigram tokenizer over :data:`WORDS`: ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2, as T5's."""
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(f"\u2581{word}", -1.0) for word in WORDS]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def write_manifest(folder: Path, path: Path, *, name: str, engine: str, pipeline: str, **fields) -> Path:
    """A manifest holding one entry for ``folder`` (every file's size and sha256), written to ``path``."""
    entry = record_entry(folder, name=name, engine=engine, pipeline=pipeline, repo_id=f"shotfill-tests/{name}",
                         revision="0", licence="Apache-2.0", **fields)
    path.write_text(json.dumps({"version": 1, "models": {name: entry}}, indent=2))
    return path
