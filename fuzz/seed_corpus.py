#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz corpora into fuzz/corpus/<target>/seed-*.

Seeds are small valid (and a few nearly valid) inputs of each parser: real LFS pointer texts,
batch bodies as git-lfs and huggingface_hub send them, model cards, Markdown with the HTML
people put in cards, and safetensors/GGUF headers written field by field. The xorb and shard
seeds need Xet hashing and come from Rust instead:
`cargo test -p wharf-xet --test fuzz_corpus -- --ignored write_seed_corpus`.
Fuzzing adds to the corpora and `cargo fuzz cmin` trims them; rerunning this script is
harmless (it only rewrites seed-* files).
"""

import json
import os
import struct

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def paths():
    for i, p in enumerate([
        "README.md", "/a//b.txt", "models/v1/pytorch_model.bin", ".gitattributes",
        "saved_model/variables/variables.data-00000-of-00001", "a/.git/x", ".git:x/y",
        "..\\x", "a\0b", "git~1/x", ".g\u200cit/x", "dossier/données.csv", "a/./b",
        "x/../y", "./", "a/b/", "sub dir/file name.txt", ".GIT. /config", "é/🤗.md",
    ]):
        write("path_normalize", f"{i:02}", p)


def pointers():
    canonical = f"version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n"
    write("lfs_pointer", "canonical", canonical)
    write("lfs_pointer", "crlf", canonical.replace("\n", "\r\n"))
    write("lfs_pointer", "hawser",
          f"version https://hawser.github.com/spec/v1\noid sha256:{OID}\nsize 0\n")
    write("lfs_pointer", "extension",
          "version https://git-lfs.github.com/spec/v1\n"
          f"ext-0-foo sha256:{OID}\noid sha256:{OID}\nsize 99999999999\n")
    write("lfs_pointer", "bad-oid", canonical.replace(OID[:4], "ZZZZ"))


def batches():
    obj = {"oid": OID, "size": 12345}
    bodies = {
        "upload": {"operation": "upload", "transfers": ["basic", "multipart"],
                   "objects": [obj], "hash_algo": "sha256", "ref": {"name": "refs/heads/main"}},
        "download": {"operation": "download", "objects": [obj, {"oid": "x" * 64, "size": -1}]},
        "minimal": {"operation": "upload", "objects": []},
        "verify": obj,
        "big-size": {"operation": "upload", "objects": [{"oid": OID, "size": 2**63 - 1}]},
    }
    for name, body in bodies.items():
        write("lfs_batch", name, json.dumps(body))


def commits():
    header = {"key": "header", "value": {"summary": "Upload", "description": "d",
                                         "parentCommit": "a" * 40}}
    ops = [
        {"key": "file", "value": {"path": "README.md", "content": "aGVsbG8=", "encoding": "base64"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": OID.upper(), "size": 5}},
        {"key": "deletedFile", "value": {"path": "old.txt"}},
        {"key": "deletedFolder", "value": {"path": "dir/"}},
    ]
    lines = [json.dumps(line) for line in [header] + ops]
    write("commit_ndjson", "all-operations", "\n".join(lines) + "\n")
    write("commit_ndjson", "header-only", lines[0])
    write("commit_ndjson", "blank-lines", "\n\n" + lines[0] + "\r\n\n" + lines[3])
    write("commit_ndjson", "no-header", lines[1])
    write("commit_ndjson", "bad-base64", lines[0] + "\n" + lines[1].replace("aGVsbG8=", "a*b"))


def gitattributes():
    write("gitattributes", "hub-default",
          "*.bin filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
          "saved_model/**/* filter=lfs diff=lfs merge=lfs -text\n*tfevents* filter=lfs diff=lfs merge=lfs -text\n")
    write("gitattributes", "unset", "*.png filter=lfs\nkeep/*.png -filter\n/top.txt filter=lfs\n!x !filter\n")
    write("gitattributes", "globs", "# comment\n[ab]*.{json,txt} filter=lfs\n**/data/** filter=lfs\ndocs/ -text\n")


CARD = """---
language:
- en
- fr
license: apache-2.0
library_name: transformers
pipeline_tag: text-classification
tags:
- sentiment
- region:us
datasets:
- imdb
base_model: distilbert-base-uncased
base_model_relation: finetune
model-index:
- name: distilbert-imdb
  results:
  - task:
      type: text-classification
      name: Text Classification
    dataset:
      name: imdb
      type: imdb
      split: test
    metrics:
    - type: accuracy
      value: 0.928
      name: Accuracy
widget:
- text: "I loved this movie!"
---

# distilbert-imdb

This model is a fine-tuned version of [distilbert-base-uncased](https://huggingface.co/distilbert-base-uncased).
"""


def cards():
    write("front_matter", "model-card", CARD)
    write("front_matter", "crlf-bom", "\ufeff" + CARD.replace("\n", "\r\n"))
    write("front_matter", "anchors", "---\na: &x [1, 2]\nb: *x\nc:\n  <<: {k: v}\n  z: 1\n---\nbody\n")
    write("front_matter", "scalars",
          "---\nlanguage: no\na: yes\nd: False\ndate: 2024-01-31\nz: 0755\ninf: .inf\n"
          "big: 99999999999999999999999\nx: !foo bar\nbin: !!binary aGVsbG8=\n---\n")
    write("front_matter", "not-mapping", "---\n- a\n- b\n---\n")
    write("front_matter", "broken", "---\nlicense: mit\ntags: [a, b\ndatasets: x\n---\nbody\n")
    write("front_matter", "dataset-card",
          "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/*.parquet\n"
          "task_categories: [text-generation]\nsize_categories: [1K<n<10K]\nextra_gated_fields:\n  Company: text\n---\n")
    write("front_matter", "empty", "---\n---\n# nothing\n")


MARKDOWN = [
    CARD.split("---\n", 2)[2],
    "| a | b |\n|:-|:-:|\n| 1 | **2** |\n\n- [x] done\n- [ ] todo\n\n~~gone~~ Text[^1].\n\n[^1]: Note.\n",
    "```python\nfrom transformers import pipeline\nx = '<script>alert(1)</script>'\n```\n\n```bash\nls -la\n```\n",
    "> [!WARNING]\n> Careful <b>bold</b>\n\n<details><summary>More</summary>\n\nHidden *text*\n</details>\n",
    '<img src="x.png" onerror="alert(1)" alt="pic"> <a href="javascript:alert(1)">x</a>',
    "<script>alert(1)</script><iframe src=//evil></iframe><object data=x></object><embed src=x>",
    '<p style="color:red" onclick="x()">p</p><table><tr><td style="text-align: left">c</td></tr></table>',
    "[x](JaVaScRiPt:alert(1)) [y](data:text/html;base64,PHNjcmlwdD4=) ![z](vbscript:msgbox)",
    '<a href="java&#x09;script:alert(1)">t</a><a href="&#106;avascript:alert(1)">e</a>',
    "<svg><script>alert(1)</script></svg><math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<div id="app" class="x">d</div><span class="hl-keyword evil">k</span><a href="#top">top</a>',
    "<form action=x><input type=text value=v><textarea>t</textarea></form><style>*{}</style>",
    "<!-- comment --><![CDATA[x]]><?php echo 1; ?><base href=//evil><meta http-equiv=refresh>",
    "Auto link <https://example.com> and <javascript:alert(1)> and www.example.com\n",
]


def markdown():
    for i, text in enumerate(MARKDOWN):
        write("markdown", f"{i:02}", text)


def safetensors_file(header):
    blob = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(blob)) + blob + bytes(64)


def safetensors():
    header = {
        "__metadata__": {"format": "pt"},
        "embed.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
        "norm.bias": {"dtype": "BF16", "shape": [2], "data_offsets": [32, 36]},
        "scalar": {"dtype": "I8", "shape": [], "data_offsets": [36, 37]},
    }
    write("safetensors_header", "file", safetensors_file(header))
    write("safetensors_header", "json", json.dumps(header))
    write("safetensors_header", "overflow",
          json.dumps({"x": {"dtype": "F16", "shape": [2**64 - 1, 2], "data_offsets": [0, 0]}}))
    write("safetensors_header", "metadata-only", safetensors_file({"__metadata__": {"a": "b"}}))


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_file(version, kvs, tensors):
    """kvs: list of (key, type code, encoded value); tensors: (name, dims, type, offset)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + value
    for name, dims, ggml_type, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
    return out + bytes(32)


def gguf():
    tokens = [b"<s>", b"</s>", b"hello"]
    token_array = struct.pack("<IQ", 8, len(tokens)) + b"".join(gguf_string(t.decode()) for t in tokens)
    kvs = [
        ("general.architecture", 8, gguf_string("llama")),
        ("general.name", 8, gguf_string("tiny")),
        ("llama.context_length", 4, struct.pack("<I", 2048)),
        ("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
        ("general.file_type", 4, struct.pack("<I", 1)),
        ("tokenizer.ggml.add_bos_token", 7, b"\x01"),
        ("tokenizer.ggml.tokens", 9, token_array),
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.0, -1.0, -2.5)),
        ("x.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 0, 2) + b"\x01\x02"),
        ("x.i64", 11, struct.pack("<q", -5)),
        ("x.f64", 12, struct.pack("<d", 0.5)),
    ]
    tensors = [("token_embd.weight", [64, 3], 1, 0), ("output_norm.weight", [64], 0, 384)]
    write("gguf_header", "llama-v3", gguf_file(3, kvs, tensors))
    write("gguf_header", "v2-minimal", gguf_file(2, kvs[:3], tensors[1:]))
    write("gguf_header", "bert-no-arch", gguf_file(3, [("bert.context_length", 5, struct.pack("<i", 512))], []))


if __name__ == "__main__":
    for make in (paths, pointers, batches, commits, gitattributes, cards, markdown, safetensors, gguf):
        make()
