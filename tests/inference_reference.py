"""An independent NumPy implementation of a sentence-transformers BERT model (BERT encoder, mean
pooling, L2 normalisation), used by test_inference.py to check the server's embeddings.

It reads the same files the server gets (config.json, tokenizer.json, model.safetensors,
1_Pooling/config.json, modules.json) and computes everything in float64 with NumPy, so it
shares no code with the Rust side beyond the tokenizer library (the `tokenizers` wheel).
"""
import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x):
    """BERT's exact GELU: x * Φ(x)."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class SentenceEncoder:
    """BERT + pooling + normalise, as sentence-transformers' modules.json describes."""

    def __init__(self, folder):
        folder = Path(folder)
        self.config = json.loads((folder / "config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        raw = load_file(str(folder / "model.safetensors"))
        # Checkpoints save either `bert.embeddings…` or bare `embeddings…`.
        self.w = {k.removeprefix("bert."): v.astype(np.float64) for k, v in raw.items()}
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        self.normalize = "Normalize" in kinds
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens"):
            raise ValueError("this reference implements mean pooling only")

    def _linear(self, x, name):
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def _norm(self, x, name):
        eps = self.config.get("layer_norm_eps", 1e-12)
        return _layer_norm(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"], eps)

    def _embed(self, ids, type_ids):
        positions = np.arange(len(ids))
        x = (self.w["embeddings.word_embeddings.weight"][ids]
             + self.w["embeddings.position_embeddings.weight"][positions]
             + self.w["embeddings.token_type_embeddings.weight"][type_ids])
        return self._norm(x, "embeddings.LayerNorm")

    def _attention(self, x, prefix):
        heads = self.config["num_attention_heads"]
        seq, hidden = x.shape
        d = hidden // heads

        def split(t):
            return t.reshape(seq, heads, d).transpose(1, 0, 2)

        q = split(self._linear(x, f"{prefix}.attention.self.query"))
        k = split(self._linear(x, f"{prefix}.attention.self.key"))
        v = split(self._linear(x, f"{prefix}.attention.self.value"))
        probs = _softmax(q @ k.transpose(0, 2, 1) / math.sqrt(d))
        context = (probs @ v).transpose(1, 0, 2).reshape(seq, hidden)
        out = self._linear(context, f"{prefix}.attention.output.dense")
        return self._norm(out + x, f"{prefix}.attention.output.LayerNorm")

    def _layer(self, x, i):
        prefix = f"encoder.layer.{i}"
        x = self._attention(x, prefix)
        h = _gelu(self._linear(x, f"{prefix}.intermediate.dense"))
        out = self._linear(h, f"{prefix}.output.dense")
        return self._norm(out + x, f"{prefix}.output.LayerNorm")

    def encode(self, sentence):
        """One sentence → its embedding (float64). One sentence at a time needs no mask."""
        enc = self.tokenizer.encode(sentence)
        x = self._embed(np.array(enc.ids), np.array(enc.type_ids))
        for i in range(self.config["num_hidden_layers"]):
            x = self._layer(x, i)
        pooled = x.mean(axis=0)
        if self.normalize:
            pooled = pooled / np.linalg.norm(pooled)
        return pooled


def cosine(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
