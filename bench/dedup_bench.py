"""Helpers of bench/dedup.sh (run with the test venv's Python).

  make BASE TUNED --size-mib N --changed F   write a safetensors file and a "fine-tuned" copy
  upload REPO FILE NAME                      HfApi.upload_file (Xet unless HF_HUB_DISABLE_XET)
  download REPO NAME CACHE                   hf_hub_download into a fresh cache, timed
  proxy PORT TARGET_PORT COUNTS              TCP proxy counting the bytes in each direction

Each command prints one JSON object on its last line.
"""
import asyncio
import hashlib
import json
import os
import struct
import sys
import time

import numpy as np

HIDDEN = 1024
FFN = 2816
VOCAB = 32000


def layout(size):
    """Tensor names and shapes of a small decoder-only model of about `size` bytes (float32)."""
    vocab = max(1000, min(VOCAB, size // (HIDDEN * 4 * 4)))  # about a quarter of the bytes at most
    tensors = [("model.embed_tokens.weight", (vocab, HIDDEN))]
    total = vocab * HIDDEN * 4
    layer = 0
    while True:
        block = [
            (f"model.layers.{layer}.input_layernorm.weight", (HIDDEN,)),
            (f"model.layers.{layer}.self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
            (f"model.layers.{layer}.self_attn.k_proj.weight", (HIDDEN // 4, HIDDEN)),
            (f"model.layers.{layer}.self_attn.v_proj.weight", (HIDDEN // 4, HIDDEN)),
            (f"model.layers.{layer}.self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
            (f"model.layers.{layer}.post_attention_layernorm.weight", (HIDDEN,)),
            (f"model.layers.{layer}.mlp.gate_proj.weight", (FFN, HIDDEN)),
            (f"model.layers.{layer}.mlp.up_proj.weight", (FFN, HIDDEN)),
            (f"model.layers.{layer}.mlp.down_proj.weight", (HIDDEN, FFN)),
        ]
        block_bytes = sum(4 * int(np.prod(s)) for _, s in block)
        if total + block_bytes // 2 > size and layer > 0:
            break
        tensors += block
        total += block_bytes
        layer += 1
    tensors.append(("model.norm.weight", (HIDDEN,)))
    return tensors


def header_of(tensors):
    """The safetensors header (padded to 8 bytes) and each tensor's data offsets."""
    meta, offsets, pos = {"__metadata__": {"format": "pt"}}, {}, 0
    for name, shape in tensors:
        n = 4 * int(np.prod(shape))
        meta[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [pos, pos + n]}
        offsets[name] = (pos, pos + n)
        pos += n
    raw = json.dumps(meta, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw, offsets


def values(rng, shape):
    if len(shape) == 1:
        return np.ones(shape, dtype=np.float32) + rng.standard_normal(shape, dtype=np.float32) * 0.01
    return rng.standard_normal(shape, dtype=np.float32) * 0.02


def make(base, tuned, size_mib, changed):
    rng = np.random.default_rng(20261123)
    tensors = layout(size_mib * 1024 * 1024)
    header, offsets = header_of(tensors)
    with open(base, "wb") as f:
        f.write(header)
        for _, shape in tensors:
            f.write(values(rng, shape).tobytes())
    total = sum(b - a for a, b in offsets.values())
    # The "fine-tuned" copy: new values in randomly chosen tensors worth ~`changed` of the bytes.
    order = rng.permutation(len(tensors))
    picked, picked_bytes = [], 0
    for i in order:
        name, shape = tensors[i]
        n = 4 * int(np.prod(shape))
        if picked_bytes + n > changed * total * 1.2:
            continue
        picked.append((name, shape))
        picked_bytes += n
        if picked_bytes >= changed * total:
            break
    os.system(f"cp --reflink=auto '{base}' '{tuned}'")
    with open(tuned, "r+b") as f:
        for name, shape in picked:
            f.seek(len(header) + offsets[name][0])
            f.write(values(rng, shape).tobytes())
    return {"size": os.path.getsize(base), "tensors": len(tensors), "changed_tensors": len(picked),
            "changed_bytes": picked_bytes, "changed_names": [n for n, _ in picked]}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def upload(repo, path, name):
    from huggingface_hub import HfApi
    api = HfApi()
    start = time.perf_counter()
    info = api.upload_file(path_or_fileobj=path, path_in_repo=name, repo_id=repo, commit_message=f"upload {name}")
    return {"seconds": time.perf_counter() - start, "commit": info.oid}


def download(repo, name, cache):
    from huggingface_hub import hf_hub_download
    start = time.perf_counter()
    path = hf_hub_download(repo, name, cache_dir=cache)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "size": os.path.getsize(path), "sha256": sha256_file(path)}


def proxy(port, target_port, counts_file):
    """Forwards 127.0.0.1:port to 127.0.0.1:target_port; after every closed connection writes
    the cumulative bytes client→server ("up") and server→client ("down") to `counts_file`."""
    totals = {"up": 0, "down": 0, "connections": 0}

    def save():
        tmp = counts_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(totals, f)
        os.replace(tmp, counts_file)

    async def pipe(reader, writer, key):
        try:
            while data := await reader.read(1 << 20):
                totals[key] += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        totals["connections"] += 1
        await asyncio.gather(pipe(client_reader, server_writer, "up"), pipe(server_reader, client_writer, "down"))
        save()

    async def main():
        save()
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "make":
        out = make(args[0], args[1], int(args[args.index("--size-mib") + 1]), float(args[args.index("--changed") + 1]))
    elif cmd == "upload":
        out = upload(*args)
    elif cmd == "download":
        out = download(*args)
    elif cmd == "proxy":
        proxy(int(args[0]), int(args[1]), args[2])
        out = {}
    else:
        sys.exit(f"unknown command {cmd}")
    print(json.dumps(out))
