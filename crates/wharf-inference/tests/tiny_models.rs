//! Loads every tiny model written by the `make_tiny_models` example and runs every task.

mod common;

use std::path::PathBuf;

use common::{card_tag, models_dir};
use serde_json::{Value, json};
use wharf_inference::{InferenceError, Model, StreamToken, Task, plan_files, wants_stream};

fn load(name: &str) -> Model {
    let tag = card_tag(name);
    Model::load(&models_dir().join(name), tag.as_deref())
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn score(v: &Value) -> f64 {
    v["score"].as_f64().expect("score")
}

#[test]
fn fill_mask_every_architecture() {
    for (name, mask) in [
        ("tiny-bert-fill-mask", "[MASK]"),
        ("tiny-distilbert-fill-mask", "[MASK]"),
        ("tiny-roberta-fill-mask", "<mask>"),
        ("tiny-xlmr-fill-mask", "<mask>"),
    ] {
        let m = load(name);
        assert_eq!(m.task(), Task::FillMask);
        let out = m
            .infer(&json!({"inputs": format!("The goal of life is {mask}.")}))
            .expect(name);
        let arr = out.as_array().expect("list");
        assert_eq!(arr.len(), 5, "{name}: {out}");
        for w in arr.windows(2) {
            assert!(score(&w[0]) >= score(&w[1]));
        }
        let first = &arr[0];
        assert!(
            first["token"].is_u64()
                && first["token_str"].is_string()
                && first["sequence"].is_string()
        );
        let top3 = m.infer(&json!({"inputs": format!("Paris is the {mask} of {mask}."), "parameters": {"top_k": 3}}));
        let top3 = top3.expect("two masks");
        assert_eq!(top3.as_array().map(Vec::len), Some(2), "one list per mask");
        assert_eq!(top3[0].as_array().map(Vec::len), Some(3));
        let err = m
            .infer(&json!({"inputs": "no mask here"}))
            .expect_err("no mask");
        assert!(matches!(err, InferenceError::BadInput(_)));
    }
}

#[test]
fn fill_mask_targets_and_lists() {
    let m = load("tiny-bert-fill-mask");
    let out = m
        .infer(&json!({"inputs": "The goal of life is [MASK].", "parameters": {"targets": ["paris", "food"]}}))
        .expect("targets");
    let toks: Vec<&str> = out
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v["token_str"].as_str())
        .collect();
    assert_eq!(toks.len(), 2);
    assert!(toks.contains(&"paris") && toks.contains(&"food"));
    let out = m
        .infer(&json!({"inputs": ["The goal of life is [MASK].", "Hello [MASK]"]}))
        .expect("list");
    assert_eq!(out.as_array().map(Vec::len), Some(2));
}

#[test]
fn sentence_transformers_embeddings_and_similarity() {
    let m = load("tiny-bert-sentence-similarity");
    assert_eq!(m.task(), Task::SentenceSimilarity);
    assert!(m.tasks().contains(&Task::FeatureExtraction));
    let one = m
        .infer(&json!({"inputs": "A man is eating food."}))
        .expect("features");
    let v: Vec<f64> = one
        .as_array()
        .expect("vector")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(v.len(), 32);
    let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "normalised: {norm}");
    let many = m
        .infer(&json!({"inputs": ["Hello world", "A man is eating food."]}))
        .expect("list");
    assert_eq!(many.as_array().map(Vec::len), Some(2));
    let sim = m
        .infer(
            &json!({"inputs": {"source_sentence": "A man is eating food.",
                                   "sentences": ["A man is eating food.", "Hello world"]}}),
        )
        .expect("similarity");
    let s = sim.as_array().expect("scores");
    assert_eq!(s.len(), 2);
    assert!((s[0].as_f64().expect("f") - 1.0).abs() < 1e-4);
    let as_pipeline = m
        .infer_as(Task::FeatureExtraction, &json!({"inputs": "Hello world"}))
        .expect("pipeline");
    assert_eq!(as_pipeline.as_array().map(Vec::len), Some(32));
    assert!(m.infer_as(Task::FillMask, &json!({"inputs": "x"})).is_err());
}

#[test]
fn plain_encoder_feature_extraction_is_per_token() {
    let m = load("tiny-bert-fill-mask");
    let out = m
        .infer_as(Task::FeatureExtraction, &json!({"inputs": "Hello world"}))
        .expect("features");
    // (1, tokens, hidden): [CLS] hello world [SEP]
    assert_eq!(out.as_array().map(Vec::len), Some(1));
    assert_eq!(out[0].as_array().map(Vec::len), Some(4));
    assert_eq!(out[0][0].as_array().map(Vec::len), Some(32));
}

#[test]
fn text_classification_labels() {
    let m = load("tiny-bert-text-classification");
    let out = m
        .infer(&json!({"inputs": "Hello world"}))
        .expect("classify");
    let inner = out[0].as_array().expect("nested list");
    let labels: Vec<&str> = inner.iter().filter_map(|v| v["label"].as_str()).collect();
    assert_eq!(labels.len(), 2);
    assert!(labels.contains(&"POSITIVE") && labels.contains(&"NEGATIVE"));
    let total: f64 = inner.iter().map(score).sum();
    assert!((total - 1.0).abs() < 1e-5);
    let top1 = m
        .infer(&json!({"inputs": ["Hello world", "A man"], "parameters": {"top_k": 1}}))
        .expect("top1");
    assert_eq!(top1.as_array().map(Vec::len), Some(2));
    assert_eq!(top1[1].as_array().map(Vec::len), Some(1));
    let sig = m
        .infer(&json!({"inputs": "Hello", "parameters": {"function_to_apply": "sigmoid"}}))
        .expect("sigmoid");
    let total: f64 = sig[0].as_array().expect("list").iter().map(score).sum();
    assert!((total - 1.0).abs() > 1e-6 || total > 0.0);
}

#[test]
fn token_classification_strategies() {
    let m = load("tiny-bert-token-classification");
    let text = "My name is Sarah and I live in London";
    let labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
    for agg in ["none", "simple", "first", "average", "max"] {
        let body = json!({"inputs": text, "parameters": {"aggregation_strategy": agg, "ignore_labels": []}});
        let out = m.infer(&body).expect(agg);
        let ents = out.as_array().expect("entities");
        assert!(!ents.is_empty(), "{agg}");
        for e in ents {
            let (start, end) = (
                e["start"].as_u64().expect("start") as usize,
                e["end"].as_u64().expect("end") as usize,
            );
            assert!(start < end && end <= text.len(), "{agg}: {e}");
            let key = if agg == "none" {
                "entity"
            } else {
                "entity_group"
            };
            let label = e[key].as_str().expect("label");
            if agg == "none" {
                assert!(labels.contains(&label));
            } else {
                assert!(["O", "PER", "LOC"].contains(&label), "{label}");
                assert_eq!(
                    e["word"].as_str().map(str::to_lowercase),
                    Some(text[start..end].to_lowercase())
                );
            }
        }
    }
    // "sarah" is two word pieces: word-level strategies give one unit per word.
    let none = m.infer(&json!({"inputs": text, "parameters": {"aggregation_strategy": "none", "ignore_labels": []}}));
    let first = m.infer(&json!({"inputs": text, "parameters": {"aggregation_strategy": "first", "ignore_labels": []}}));
    let (none, first) = (none.expect("none"), first.expect("first"));
    assert_eq!(none.as_array().map(Vec::len), Some(11));
    assert!(first.as_array().map(Vec::len).unwrap_or(0) <= 9);
}

#[test]
fn zero_shot_scores() {
    let m = load("tiny-bert-zero-shot");
    assert_eq!(m.task(), Task::ZeroShotClassification);
    let body = json!({"inputs": "A man is eating food.",
                      "parameters": {"candidate_labels": ["food", "sports", "music"]}});
    let out = m.infer(&body).expect("zero-shot");
    let arr = out.as_array().expect("list");
    assert_eq!(arr.len(), 3);
    let total: f64 = arr.iter().map(score).sum();
    assert!((total - 1.0).abs() < 1e-5);
    let multi = json!({"inputs": "A man is eating food.",
                       "parameters": {"candidate_labels": "food, sports", "multi_label": true}});
    let out = m.infer(&multi).expect("multi");
    assert_eq!(out.as_array().map(Vec::len), Some(2));
    let legacy = wharf_inference::legacy_zero_shot_answer("A man is eating food.", &out);
    assert_eq!(legacy["labels"].as_array().map(Vec::len), Some(2));
    let err = m.infer(&json!({"inputs": "x"})).expect_err("no labels");
    assert!(matches!(err, InferenceError::BadInput(_)));
}

#[test]
fn question_answering_offsets() {
    let m = load("tiny-bert-question-answering");
    let context = "Paris is the capital of France.";
    let out = m
        .infer(
            &json!({"inputs": {"question": "What is the capital of France?", "context": context}}),
        )
        .expect("qa");
    let (start, end) = (
        out["start"].as_u64().expect("start") as usize,
        out["end"].as_u64().expect("end") as usize,
    );
    assert!(start < end && end <= context.len());
    assert_eq!(out["answer"].as_str(), Some(&context[start..end]));
    let many = m
        .infer(&json!({"inputs": {"question": "Where?", "context": context}, "parameters": {"top_k": 3}}))
        .expect("top3");
    assert_eq!(many.as_array().map(Vec::len), Some(3));
}

#[test]
fn question_answering_reads_long_contexts_in_windows() {
    let m = load("tiny-bert-question-answering");
    // Far longer than one window of the tiny model: answers must come from the whole context,
    // with offsets into it, and not all from the first window.
    let words: Vec<String> = (0..400).map(|i| format!("w{}", i % 97)).collect();
    let context = words.join(" ");
    let body = json!({"inputs": {"question": "Which word?", "context": context},
                      "parameters": {"top_k": 20}});
    let out = m.infer(&body).expect("qa");
    let answers = out.as_array().expect("a list");
    assert_eq!(answers.len(), 20);
    let mut spans = std::collections::HashSet::new();
    for a in answers {
        let (start, end) = (
            a["start"].as_u64().expect("start") as usize,
            a["end"].as_u64().expect("end") as usize,
        );
        assert!(start < end && end <= context.len());
        assert_eq!(a["answer"].as_str(), Some(&context[start..end]));
        assert!(spans.insert((start, end)), "a span reported twice");
    }
    let first_window_end = context.len() / 4;
    assert!(
        answers
            .iter()
            .any(|a| a["start"].as_u64().unwrap_or(0) as usize > first_window_end),
        "every answer came from the start of the context"
    );
    // Deterministic: the same body gives the same answers.
    assert_eq!(m.infer(&body).expect("again"), out);
    // A question that leaves no room for the context is the caller's error.
    let long_question = words.join(" ");
    let err = m
        .infer(&json!({"inputs": {"question": long_question, "context": "Paris."}}))
        .expect_err("too long");
    assert!(matches!(err, InferenceError::BadInput(_)), "{err}");
}

#[test]
fn batch_equals_single() {
    let cases = [
        (
            "tiny-bert-sentence-similarity",
            vec![
                json!({"inputs": "A man is eating food."}),
                json!({"inputs": ["Hello world", "Paris is the capital of France."]}),
                json!({"inputs": {"source_sentence": "Hello world", "sentences": ["A man is eating food."]}}),
            ],
        ),
        (
            "tiny-bert-fill-mask",
            vec![
                json!({"inputs": "The goal of life is [MASK]."}),
                json!({"inputs": "Hello [MASK]"}),
            ],
        ),
        (
            "tiny-roberta-fill-mask",
            vec![
                json!({"inputs": "The goal of life is <mask>."}),
                json!({"inputs": "<mask> world"}),
            ],
        ),
        (
            "tiny-bert-text-classification",
            vec![
                json!({"inputs": "Hello"}),
                json!({"inputs": "A man is eating food."}),
            ],
        ),
        (
            "tiny-bert-token-classification",
            vec![
                json!({"inputs": "My name is Sarah and I live in London"}),
                json!({"inputs": "Sarah"}),
            ],
        ),
    ];
    for (name, bodies) in cases {
        let m = load(name);
        let batched = m.infer_batch(&bodies);
        assert_eq!(batched.len(), bodies.len());
        for (body, got) in bodies.iter().zip(batched) {
            let single = m.infer(body).expect("single");
            assert_close(&single, &got.expect("batched"), name);
        }
    }
}

fn assert_close(a: &Value, b: &Value, ctx: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            assert!((x - y).abs() <= 1e-4, "{ctx}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{ctx}");
            x.iter().zip(y).for_each(|(p, q)| assert_close(p, q, ctx));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.len(), y.len(), "{ctx}");
            x.iter().for_each(|(k, v)| assert_close(v, &y[k], ctx));
        }
        _ => assert_eq!(a, b, "{ctx}"),
    }
}

#[test]
fn one_model_serves_threads_concurrently() {
    let enc = load("tiny-bert-sentence-similarity");
    let decoder = load("tiny-llama-text-generation");
    let body = json!({"inputs": "Hello world"});
    let gbody = json!({"inputs": "Hello world", "parameters": {"max_new_tokens": 6}});
    let (e1, g1) = (
        enc.infer(&body).expect("enc"),
        decoder.infer(&gbody).expect("gen"),
    );
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    (
                        enc.infer(&body).expect("enc"),
                        decoder.infer(&gbody).expect("gen"),
                    )
                })
            })
            .collect();
        for h in handles {
            let (e, g) = h.join().expect("thread");
            assert_close(&e, &e1, "threads");
            assert_eq!(g, g1);
        }
    });
}

#[test]
fn batch_reports_errors_per_request() {
    let m = load("tiny-bert-fill-mask");
    let out = m.infer_batch(&[
        json!({"inputs": "Hello [MASK]"}),
        json!({"nope": 1}),
        json!({"inputs": "no mask"}),
    ]);
    assert!(out[0].is_ok());
    assert!(matches!(out[1], Err(InferenceError::BadInput(_))));
    assert!(matches!(out[2], Err(InferenceError::BadInput(_))));
}

const GENERATORS: [&str; 5] = [
    "tiny-gpt2-text-generation",
    "tiny-gpt2-sharded",
    "tiny-llama-text-generation",
    "tiny-qwen2-text-generation",
    "tiny-mistral-text-generation",
];

fn generated(v: &Value) -> String {
    v[0]["generated_text"]
        .as_str()
        .expect("generated_text")
        .to_string()
}

#[test]
fn greedy_generation_is_deterministic_and_streams() {
    for name in GENERATORS {
        let m = load(name);
        assert_eq!(m.task(), Task::TextGeneration);
        let body =
            json!({"inputs": "Hello world", "parameters": {"max_new_tokens": 12, "details": true}});
        let a = m.infer(&body).expect(name);
        let b = m.infer(&body).expect(name);
        assert_eq!(a, b, "{name}: greedy is deterministic");
        let tokens = a[0]["details"]["generated_tokens"]
            .as_u64()
            .expect("details");
        assert!((1..=12).contains(&tokens));
        let mut streamed: Vec<StreamToken> = Vec::new();
        let final_answer = m
            .generate_stream(&body, &mut |t| {
                streamed.push(t.clone());
                true
            })
            .expect("stream");
        assert_eq!(final_answer, a, "{name}");
        let joined: String = streamed.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            joined,
            generated(&a),
            "{name}: stream concatenates to the text"
        );
        let last = streamed.last().expect("tokens");
        assert_eq!(last.generated_text.as_deref(), Some(generated(&a).as_str()));
        assert!(
            streamed[..streamed.len() - 1]
                .iter()
                .all(|t| t.generated_text.is_none())
        );
        let j = last.to_json();
        assert!(
            j["token"]["id"].is_u64() && j["token"]["logprob"].is_f64() && j["details"].is_null()
        );
        let full = m
            .infer(&json!({"inputs": "Hello world", "parameters": {"max_new_tokens": 12, "return_full_text": true}}))
            .expect("full");
        assert_eq!(generated(&full), format!("Hello world{}", generated(&a)));
    }
}

#[test]
fn stop_sequences_trim_and_sampling_is_seeded() {
    for name in GENERATORS {
        let m = load(name);
        let base = m
            .infer(&json!({"inputs": "Hello world", "parameters": {"max_new_tokens": 16}}))
            .expect(name);
        let text = generated(&base);
        let chars: Vec<char> = text.chars().collect();
        if chars.len() >= 4 {
            let stop: String = chars[2..4].iter().collect();
            let cut = text.find(&stop).expect("stop in text");
            let body = json!({"inputs": "Hello world", "parameters": {"max_new_tokens": 16, "stop": [stop]}});
            let out = m.infer(&body).expect("stop");
            assert_eq!(generated(&out), text[..cut], "{name}");
            let mut joined = String::new();
            m.generate_stream(&body, &mut |t| {
                joined.push_str(&t.text);
                true
            })
            .expect("stream");
            assert_eq!(joined, text[..cut], "{name}: streamed text stops too");
        }
        let sampled = json!({"inputs": "Hello", "parameters": {"max_new_tokens": 8, "do_sample": true,
                              "temperature": 1.5, "top_p": 0.9, "top_k": 50, "seed": 7}});
        assert_eq!(
            m.infer(&sampled).expect("s1"),
            m.infer(&sampled).expect("s2"),
            "{name}: seeded"
        );
        let mut n = 0;
        m.generate_stream(
            &json!({"inputs": "Hello", "parameters": {"max_new_tokens": 10}}),
            &mut |_| {
                n += 1;
                n < 3
            },
        )
        .expect("early stop");
        assert_eq!(n, 3, "{name}: stops when the callback says so");
    }
}

#[test]
fn generation_rejects_bad_parameters() {
    let m = load("tiny-gpt2-text-generation");
    for params in [
        json!({"temperature": -1}),
        json!({"top_p": 2.0}),
        json!({"max_new_tokens": "x"}),
    ] {
        let err = m
            .infer(&json!({"inputs": "Hello", "parameters": params}))
            .expect_err("bad");
        assert!(matches!(err, InferenceError::BadInput(_)), "{err}");
    }
    let capped = m
        .infer(&json!({"inputs": "Hello", "parameters": {"max_new_tokens": 100000}}))
        .expect("capped");
    assert!(capped[0]["generated_text"].is_string());
    assert!(wants_stream(&json!({"inputs": "x", "stream": true})));
    assert!(!wants_stream(&json!({"inputs": "x"})));
}

#[test]
fn plans_and_refusals() {
    let dir = models_dir().join("tiny-bert-pickle-only");
    let paths: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let err = plan_files(&paths).expect_err("pickle only");
    assert!(
        matches!(err, InferenceError::Unsupported(ref m) if m.contains("safetensors")),
        "{err}"
    );
    assert!(Model::load(&dir, Some("fill-mask")).is_err());
    let err = Model::load(
        &models_dir().join("tiny-gpt2-text-generation"),
        Some("fill-mask"),
    )
    .err();
    assert!(matches!(err, Some(InferenceError::Unsupported(_))));
    let err = Model::load(
        &models_dir().join("tiny-bert-fill-mask"),
        Some("summarization"),
    )
    .err();
    assert!(matches!(err, Some(InferenceError::Unsupported(_))));
    // Without a card tag, the task comes from config.json.
    let m =
        Model::load(&models_dir().join("tiny-bert-token-classification"), None).expect("derived");
    assert_eq!(m.task(), Task::TokenClassification);
    assert!(m.approx_bytes() > 0);
    assert_eq!(m.architecture(), "bert");
}

#[test]
fn real_minilm_similarity() {
    let Ok(dir) = std::env::var("WHARF_TEST_MINILM_DIR") else {
        eprintln!("note: WHARF_TEST_MINILM_DIR is not set; skipping the all-MiniLM-L6-v2 check");
        return;
    };
    let m =
        Model::load(std::path::Path::new(&dir), Some("sentence-similarity")).expect("load MiniLM");
    let sim = m
        .infer(
            &json!({"inputs": {"source_sentence": "A man is eating food.",
                                   "sentences": ["A man is eating a piece of bread."]}}),
        )
        .expect("similarity");
    let s = sim[0].as_f64().expect("score");
    assert!((s - 0.7553).abs() <= 0.0005, "similarity {s}");
}

/// A checkpoint missing a layer tensor is a load error, never a panic (candle's Llama loader
/// unwraps per-layer errors, so the crate checks tensors first).
#[test]
fn broken_checkpoints_fail_cleanly() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("wharf-broken-{}", std::process::id()));
    for (name, drop) in [
        (
            "tiny-llama-text-generation",
            "model.layers.1.mlp.up_proj.weight",
        ),
        (
            "tiny-bert-fill-mask",
            "bert.encoder.layer.1.output.dense.weight",
        ),
        (
            "tiny-gpt2-text-generation",
            "transformer.h.0.attn.c_attn.bias",
        ),
    ] {
        let src = models_dir().join(name);
        let dst = scratch.join(name);
        std::fs::create_dir_all(&dst).expect("dir");
        for f in [
            "config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
        ] {
            if src.join(f).exists() {
                std::fs::copy(src.join(f), dst.join(f)).expect("copy");
            }
        }
        let mut tensors = candle_core::safetensors::load(
            src.join("model.safetensors"),
            &candle_core::Device::Cpu,
        )
        .expect("read");
        assert!(tensors.remove(drop).is_some(), "{drop}");
        candle_core::safetensors::save(&tensors, dst.join("model.safetensors")).expect("write");
        let err = Model::load(&dst, card_tag(name).as_deref()).err();
        assert!(
            matches!(err, Some(InferenceError::Load(_))),
            "{name}: {err:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
