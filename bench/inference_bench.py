"""Inference benchmark: Wharf's hosted inference API against the Python reference on this machine.

Measures, in one run:
  * MiniLM (sentence-transformers/all-MiniLM-L6-v2) embedding throughput, batch 32:
    Wharf = one POST /models/{id} with 32 sentences per request (HTTP and JSON included);
    reference = SentenceTransformer.encode(batch_size=32) in-process (no HTTP at all).
  * fill-mask p50 latency of a BERT-base-sized masked LM (random weights, bert-base-uncased
    vocabulary): Wharf = one POST per sentence; reference = transformers' fill-mask pipeline.

Run by bench/inference.sh, which starts the server and provides the reference venv.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import requests

WORDS = (
    "the a man woman child dog cat eats reads writes runs walks quickly slowly house garden city "
    "river mountain book letter song model data server network small large green red old new "
    "yesterday today tomorrow because while after before under over near far bright dark"
).split()


def sentences(n: int, seed: int = 7) -> list[str]:
    """Deterministic, varied sentences of 8 to 16 words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        out.append(" ".join(words).capitalize() + ".")
    return out


def post(session, url, token, body, timeout=600):
    r = session.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    if r.status_code != 200:
        raise SystemExit(f"{url}: HTTP {r.status_code}: {r.text[:300]}")
    return r.json()


def upload(endpoint: str, token: str, repo_id: str, folder: Path) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder))


def make_fill_mask_model(out: Path, tokenizer_dir: Path) -> None:
    """A BERT-base masked LM with random weights and the bert-base-uncased vocabulary."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=30522))
    model.save_pretrained(out, safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)
    (out / "README.md").write_text("---\npipeline_tag: fill-mask\nlibrary_name: transformers\n---\n")


def bench_embeddings(args, batches: list[list[str]]) -> dict:
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(args.minilm), device="cpu")
    ref.encode(batches[0], batch_size=32)  # warm-up
    t0 = time.perf_counter()
    for b in batches:
        ref.encode(b, batch_size=32)
    ref_rate = len(batches) * 32 / (time.perf_counter() - t0)

    url = f"{args.endpoint}/models/{args.namespace}/minilm"
    s = requests.Session()
    post(s, url, args.token, {"inputs": batches[0], "options": {"wait_for_model": True}})
    t0 = time.perf_counter()
    for b in batches:
        out = post(s, url, args.token, {"inputs": b})
        assert len(out) == 32 and len(out[0]) == 384, "unexpected embedding shape"
    wharf_rate = len(batches) * 32 / (time.perf_counter() - t0)
    return {"reference_sentences_per_s": ref_rate, "wharf_sentences_per_s": wharf_rate}


def bench_fill_mask(args, texts: list[str]) -> dict:
    from transformers import pipeline

    ref = pipeline("fill-mask", model=str(args.fill_mask_dir), device="cpu")
    ref(texts[0])
    ref_times = []
    for t in texts:
        t0 = time.perf_counter()
        ref(t)
        ref_times.append(time.perf_counter() - t0)

    url = f"{args.endpoint}/models/{args.namespace}/bert-base-fill-mask"
    s = requests.Session()
    post(s, url, args.token, {"inputs": texts[0], "options": {"wait_for_model": True}})
    wharf_times = []
    for t in texts:
        t0 = time.perf_counter()
        out = post(s, url, args.token, {"inputs": t})
        assert len(out) == 5 and "token_str" in out[0], "unexpected fill-mask answer"
        wharf_times.append(time.perf_counter() - t0)
    return {
        "reference_p50_ms": statistics.median(ref_times) * 1000,
        "wharf_p50_ms": statistics.median(wharf_times) * 1000,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--minilm", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--fill-mask-calls", type=int, default=50)
    args = p.parse_args()
    args.fill_mask_dir = args.work / "bert-base-fill-mask"

    make_fill_mask_model(args.fill_mask_dir, args.minilm)
    upload(args.endpoint, args.token, f"{args.namespace}/minilm", args.minilm)
    upload(args.endpoint, args.token, f"{args.namespace}/bert-base-fill-mask", args.fill_mask_dir)

    all_sentences = sentences(32 * args.batches)
    batches = [all_sentences[i : i + 32] for i in range(0, len(all_sentences), 32)]
    masked = [
        " ".join(w if i != 3 else "[MASK]" for i, w in enumerate(s.split()))
        for s in sentences(args.fill_mask_calls, seed=11)
    ]
    result = {"embeddings": bench_embeddings(args, batches), "fill_mask": bench_fill_mask(args, masked)}
    e, f = result["embeddings"], result["fill_mask"]
    e["ratio"] = e["wharf_sentences_per_s"] / e["reference_sentences_per_s"]
    f["ratio"] = f["reference_p50_ms"] / f["wharf_p50_ms"]
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
