//! Hostile repositories and requests: every size a checkpoint or a request declares is refused
//! (a `Load`, `TooLarge` or `BadInput` error) or cut before anything is sized from it. Before
//! these limits, several of these cases aborted the test process (a failed allocation is not
//! an error in Rust) or panicked inside candle.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{card_tag, copy_of, edit_json, models_dir};
use serde_json::{Value, json};
use wharf_inference::{InferenceError, Model, Task};

/// Loads a (broken) copy of a tiny model with its card's task.
fn load(dir: &Path, name: &str) -> Result<Model, InferenceError> {
    Model::load(dir, card_tag(name).as_deref())
}

fn load_error(dir: &Path, name: &str) -> String {
    match load(dir, name) {
        Err(InferenceError::Load(m)) => m,
        Err(other) => panic!("{name}: expected a load error, got {other:?}"),
        Ok(_) => panic!("{name}: the hostile checkpoint loaded"),
    }
}

fn bad_input(m: &Model, body: &Value) -> String {
    bad_input_as(m, m.task(), body)
}

fn bad_input_as(m: &Model, task: Task, body: &Value) -> String {
    match m.infer_as(task, body) {
        Err(InferenceError::BadInput(msg)) => msg,
        Err(other) => panic!("expected a 400, got {other:?}"),
        Ok(v) => panic!(
            "the hostile request was answered: {}",
            &v.to_string()[..200.min(v.to_string().len())]
        ),
    }
}

const ALL: [&str; 6] = [
    "tiny-bert-fill-mask",
    "tiny-distilbert-fill-mask",
    "tiny-gpt2-text-generation",
    "tiny-llama-text-generation",
    "tiny-qwen2-text-generation",
    "tiny-mistral-text-generation",
];

// ------------------------------------------------------------------ checkpoints

/// A 100 KB checkpoint whose config.json declares a billion layers: candle's Qwen2 and
/// Mistral reserved a vector of that many layers up front, which aborted the process.
#[test]
fn a_billion_layers_is_a_load_error() {
    for name in ALL {
        let (_tmp, dir) = copy_of(name);
        let key = if name.contains("distilbert") {
            "n_layers"
        } else if name.contains("gpt2") {
            "n_layer"
        } else {
            "num_hidden_layers"
        };
        edit_json(&dir, "config.json", |c| c[key] = json!(1_000_000_000u64));
        let msg = load_error(&dir, name);
        assert!(
            msg.contains("1000000000") && msg.contains("limit"),
            "{name}: {msg}"
        );
    }
}

/// Every other size config.json declares, far beyond the limits.
#[test]
fn absurd_sizes_are_load_errors() {
    let cases: [(&str, &str, Value); 9] = [
        ("tiny-bert-fill-mask", "hidden_size", json!(1u64 << 40)),
        ("tiny-bert-fill-mask", "num_attention_heads", json!(5)),
        ("tiny-bert-fill-mask", "num_attention_heads", json!(-4)),
        ("tiny-gpt2-text-generation", "n_inner", json!(1u64 << 40)),
        (
            "tiny-llama-text-generation",
            "vocab_size",
            json!(1u64 << 40),
        ),
        (
            "tiny-llama-text-generation",
            "intermediate_size",
            json!(1u64 << 40),
        ),
        (
            "tiny-qwen2-text-generation",
            "num_key_value_heads",
            json!(0),
        ),
        (
            "tiny-qwen2-text-generation",
            "num_key_value_heads",
            json!(3),
        ),
        (
            "tiny-mistral-text-generation",
            "head_dim",
            json!(1u64 << 20),
        ),
    ];
    for (name, key, value) in cases {
        let (_tmp, dir) = copy_of(name);
        edit_json(&dir, "config.json", |c| c[key] = value.clone());
        let msg = load_error(&dir, name);
        assert!(!msg.is_empty(), "{name} {key}");
    }
}

/// A position count of 2^31: candle's Qwen2 and Mistral build their rotary tables that long
/// (gigabytes) at load. The context is capped instead, and the tables count against the budget.
#[test]
fn huge_position_counts_are_capped_and_counted() {
    for name in [
        "tiny-qwen2-text-generation",
        "tiny-mistral-text-generation",
        "tiny-llama-text-generation",
    ] {
        let (_tmp, dir) = copy_of(name);
        let plain = load(&models_dir().join(name), name)
            .expect("load")
            .approx_bytes();
        edit_json(&dir, "config.json", |c| {
            c["max_position_embeddings"] = json!(1u64 << 31)
        });
        let m = load(&dir, name).expect(name);
        // 4096 positions x 8 rotary dims x (sin + cos), over the original 128 positions.
        assert_eq!(m.approx_bytes() - plain, (4096 - 128) * 8 * 4, "{name}");
        let out = m
            .infer(&json!({"inputs": "Hello world", "parameters": {"max_new_tokens": 4}}))
            .expect("generate");
        assert!(out[0]["generated_text"].is_string());
    }
}

/// Tensors whose shapes disagree with config.json are refused from the headers, before the
/// weights are read.
#[test]
fn shapes_that_disagree_with_the_config_are_load_errors() {
    for (name, key, value) in [
        ("tiny-bert-fill-mask", "hidden_size", json!(64)),
        ("tiny-gpt2-text-generation", "n_embd", json!(64)),
        ("tiny-llama-text-generation", "hidden_size", json!(64)),
        ("tiny-qwen2-text-generation", "vocab_size", json!(388)),
        (
            "tiny-mistral-text-generation",
            "intermediate_size",
            json!(65),
        ),
    ] {
        let (_tmp, dir) = copy_of(name);
        edit_json(&dir, "config.json", |c| c[key] = value);
        let msg = load_error(&dir, name);
        assert!(
            msg.contains("shape") || msg.contains("multiple"),
            "{name}: {msg}"
        );
    }
}

/// `num_labels` of a billion built a billion label names; a large id2label was parsed whole.
/// Labels now come from the head's weights; a config.json over 4 MiB is refused unread.
#[test]
fn label_counts_come_from_the_head() {
    let name = "tiny-bert-text-classification";
    let (_tmp, dir) = copy_of(name);
    edit_json(&dir, "config.json", |c| {
        c.as_object_mut().map(|o| o.remove("id2label"));
        c["num_labels"] = json!(1_000_000_000u64);
    });
    let m = load(&dir, name).expect("load");
    let out = m
        .infer(&json!({"inputs": "Hello world"}))
        .expect("classify");
    assert_eq!(out[0].as_array().map(Vec::len), Some(2), "{out}");
    let labels: serde_json::Map<String, Value> = (0..1_000_000)
        .map(|i| (i.to_string(), json!(format!("label number {i}"))))
        .collect();
    edit_json(&dir, "config.json", |c| {
        c["id2label"] = Value::Object(labels)
    });
    let msg = load_error(&dir, name);
    assert!(
        msg.contains("config.json") && msg.contains("limit"),
        "{msg}"
    );
}

#[test]
fn a_model_over_the_budget_is_refused_before_loading() {
    let dir = models_dir().join("tiny-bert-fill-mask");
    let full = Model::load(&dir, Some("fill-mask"))
        .expect("load")
        .approx_bytes();
    // Weights as f32 plus the tokenizer counted at several times its file.
    let weights = std::fs::metadata(dir.join("model.safetensors"))
        .expect("size")
        .len();
    assert!(full > weights, "{full} <= {weights}");
    match Model::load_within(&dir, Some("fill-mask"), full - 1) {
        Err(InferenceError::TooLarge(m)) => assert!(m.contains("budget"), "{m}"),
        other => panic!("expected TooLarge, got {:?}", other.err()),
    }
    assert!(Model::load_within(&dir, Some("fill-mask"), full).is_ok());
}

/// A normalizer that doubles the text forty times turned one byte into a terabyte at the first
/// request; a lying Precompiled header reserved gigabytes; a Unigram vocabulary with very long
/// pieces made lattices of hundreds of millions of nodes; an oversized tokenizer.json was read
/// whole.
#[test]
fn pathological_tokenizers_are_load_errors() {
    let name = "tiny-bert-fill-mask";
    let doubling = json!({"type": "Replace", "pattern": {"String": "a"}, "content": "aa"});
    let chain = json!({"type": "Sequence", "normalizers": vec![doubling; 40]});
    // Trie size 2^31 - 1 in a 6-byte map.
    let lying = json!({"type": "Precompiled", "precompiled_charsmap": "/////3hh"});
    for normalizer in [chain, lying] {
        let (_tmp, dir) = copy_of(name);
        edit_json(&dir, "tokenizer.json", |t| t["normalizer"] = normalizer);
        let msg = load_error(&dir, name);
        assert!(msg.contains("tokenizer.json"), "{msg}");
    }
    // Each ByteLevel pre-tokenizer turns a two-byte character into two of them.
    let (_tmp, dir) = copy_of(name);
    let byte_levels = json!({"type": "Sequence",
        "pretokenizers": vec![json!({"type": "ByteLevel", "add_prefix_space": false}); 40]});
    edit_json(&dir, "tokenizer.json", |t| t["pre_tokenizer"] = byte_levels);
    let msg = load_error(&dir, name);
    assert!(msg.contains("pre-tokenizer"), "{msg}");
    let (_tmp, dir) = copy_of(name);
    edit_json(&dir, "tokenizer.json", |t| {
        let vocab: Vec<Value> = (1..200).map(|n| json!(["a".repeat(n), -1.0])).collect();
        t["model"] = json!({"type": "Unigram", "unk_id": 0, "vocab": vocab});
    });
    assert!(load_error(&dir, name).contains("Unigram"));
    let (_tmp, dir) = copy_of(name);
    let file = std::fs::File::create(dir.join("tokenizer.json")).expect("create");
    file.set_len(65 << 20).expect("sparse file");
    assert!(load_error(&dir, name).contains("tokenizer.json"));
}

// ------------------------------------------------------------------ requests

fn tiny(name: &str) -> Model {
    load(&models_dir().join(name), name).expect(name)
}

/// Answers within a few seconds even on a loaded machine (unoptimised build).
fn quickly<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "{what} took {:?}",
        t0.elapsed()
    );
    out
}

#[test]
fn long_texts_are_cut_before_tokenizing() {
    let m = tiny("tiny-bert-text-classification");
    let sentence = "Paris is the capital of France. ";
    let huge = sentence.repeat((16 << 20) / sentence.len());
    let short = sentence.repeat(64);
    let a = quickly("a 16 MiB text", || m.infer(&json!({"inputs": huge}))).expect("huge");
    let b = m.infer(&json!({"inputs": short})).expect("short");
    assert_eq!(a, b, "truncation keeps the same first tokens");
    let g = tiny("tiny-gpt2-text-generation");
    let out = quickly("a 16 MiB prompt", || {
        g.infer(&json!({"inputs": huge, "parameters": {"max_new_tokens": 2}}))
    })
    .expect("prompt");
    assert!(out[0]["generated_text"].is_string());
}

#[test]
fn zero_shot_sizes_are_bounded_before_expanding() {
    let m = tiny("tiny-bert-zero-shot");
    let many = vec!["x"; 100_000].join(",");
    for params in [
        json!({"candidate_labels": many}),
        json!({"candidate_labels": (0..65).map(|i| i.to_string()).collect::<Vec<_>>()}),
        json!({"candidate_labels": ["a", "b"], "hypothesis_template": format!("{{}}{}", "x".repeat(16 << 20))}),
        json!({"candidate_labels": ["a".repeat(100_000)]}),
    ] {
        let body = json!({"inputs": "A man is eating food.", "parameters": params});
        quickly("zero-shot", || bad_input(&m, &body));
    }
}

#[test]
fn question_answering_contexts_are_bounded() {
    let m = tiny("tiny-bert-question-answering");
    let huge = "w1 ".repeat((16 << 20) / 3);
    let body = json!({"inputs": {"question": "Which?", "context": huge}});
    let msg = quickly("a 16 MiB context", || bad_input(&m, &body));
    assert!(msg.contains("context"), "{msg}");
    // Under the byte limit but more windows than allowed.
    let dense = "w1 ".repeat(20_000);
    let msg = bad_input(
        &m,
        &json!({"inputs": {"question": "Which?", "context": dense}}),
    );
    assert!(msg.contains("windows"), "{msg}");
    let long_question = "w1 ".repeat(1 << 20);
    bad_input(
        &m,
        &json!({"inputs": {"question": long_question, "context": "Paris."}}),
    );
}

#[test]
fn per_request_tokens_and_answer_sizes_are_bounded() {
    let m = tiny("tiny-bert-fill-mask");
    let long = "Paris is the capital of France. ".repeat(40);
    let many: Vec<&str> = vec![long.as_str(); 256];
    // 256 x 282 tokens of per-token embeddings.
    let msg = bad_input_as(&m, Task::FeatureExtraction, &json!({"inputs": many}));
    assert!(msg.contains("tokens"), "{msg}");
    let masks = "[MASK] ".repeat(17);
    bad_input(&m, &json!({"inputs": masks}));
    let answers = vec!["Paris [MASK] [MASK]"; 256];
    let msg = bad_input(
        &m,
        &json!({"inputs": answers, "parameters": {"top_k": 100}}),
    );
    assert!(msg.contains("answers"), "{msg}");
    let target = "x".repeat(1 << 20);
    bad_input(
        &m,
        &json!({"inputs": "[MASK]", "parameters": {"targets": [target]}}),
    );
}

#[test]
fn generation_parameters_are_bounded() {
    let m = tiny("tiny-gpt2-text-generation");
    let ok = quickly("huge max_new_tokens and top_k", || {
        m.infer(
            &json!({"inputs": "Hello", "parameters": {"max_new_tokens": 1_000_000_000u64,
            "top_k": 1_000_000_000u64, "do_sample": true, "seed": 1}}),
        )
    })
    .expect("capped");
    let tokens = ok[0]["generated_text"].as_str().map_or(0, str::len);
    assert!(tokens > 0);
    bad_input(
        &m,
        &json!({"inputs": "Hello", "parameters": {"stop": vec!["a"; 9]}}),
    );
    bad_input(
        &m,
        &json!({"inputs": "Hello", "parameters": {"stop": ["x".repeat(1 << 20)]}}),
    );
}
