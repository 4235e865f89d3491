//! Writes tiny random-weight model repos for tests: `make_tiny_models OUT_DIR`.
//!
//! Each OUT_DIR/<name>/ holds config.json, a real tokenizer.json (WordPiece for BERT-likes,
//! byte-level BPE for GPT-2/RoBERTa/Llama-likes) over a small vocabulary, model.safetensors (or
//! shards) with the tensor names transformers uses, and a README.md with the card's pipeline_tag.
//! Weights come from a seeded generator, so the output is the same on every run.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::{Value, json};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Sentences the tests use; the vocabularies are built to cover them.
const CORPUS: &[&str] = &[
    "Paris is the capital of France.",
    "The goal of life is happiness.",
    "My name is Sarah and I live in London",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "Hello world",
    "This example is about sports, politics, music, love or food.",
    "What is the capital of France? Where does Sarah live? Who am I?",
];

const HIDDEN: usize = 32;
const LAYERS: usize = 2;
const HEADS: usize = 4;
const INTER: usize = 64;
const MAX_POS: usize = 128;

fn main() -> Res<()> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: make_tiny_models OUT_DIR")?;
    let out = Path::new(&out);
    write_all(out)?;
    println!("wrote {} models to {}", MODELS.len(), out.display());
    Ok(())
}

/// Writes every tiny model under `out` (the crate's tests include this file as a module).
pub fn write_all(out: &Path) -> Res<()> {
    for (name, f) in MODELS {
        let dir = out.join(name);
        std::fs::create_dir_all(&dir)?;
        f(&dir, name)?;
    }
    Ok(())
}

type Maker = fn(&Path, &str) -> Res<()>;

const MODELS: &[(&str, Maker)] = &[
    ("tiny-bert-fill-mask", |d, n| bert(d, n, "fill-mask")),
    ("tiny-bert-text-classification", |d, n| {
        bert(d, n, "text-classification")
    }),
    ("tiny-bert-token-classification", |d, n| {
        bert(d, n, "token-classification")
    }),
    ("tiny-bert-zero-shot", |d, n| {
        bert(d, n, "zero-shot-classification")
    }),
    ("tiny-bert-question-answering", |d, n| {
        bert(d, n, "question-answering")
    }),
    ("tiny-bert-sentence-similarity", |d, n| {
        bert(d, n, "sentence-similarity")
    }),
    ("tiny-distilbert-fill-mask", distilbert),
    ("tiny-roberta-fill-mask", |d, n| roberta(d, n, "roberta")),
    ("tiny-xlmr-fill-mask", |d, n| roberta(d, n, "xlm-roberta")),
    ("tiny-gpt2-text-generation", |d, n| gpt2(d, n, false)),
    ("tiny-gpt2-sharded", |d, n| gpt2(d, n, true)),
    ("tiny-llama-text-generation", |d, n| {
        llama_like(d, n, "llama")
    }),
    ("tiny-qwen2-text-generation", |d, n| {
        llama_like(d, n, "qwen2")
    }),
    ("tiny-mistral-text-generation", |d, n| {
        llama_like(d, n, "mistral")
    }),
    ("tiny-bert-pickle-only", pickle_only),
];

// ---------------------------------------------------------------- random tensors

/// SplitMix64: tiny, seedable, good enough for test weights.
struct Rng(u64);

impl Rng {
    fn for_tensor(model: &str, tensor: &str) -> Rng {
        // FNV-1a of the names: each tensor gets its own stream, independent of creation order.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in model.bytes().chain([0]).chain(tensor.bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
    }
}

/// Collects the tensors of one checkpoint.
struct Ckpt {
    model: String,
    map: BTreeMap<String, Tensor>,
}

impl Ckpt {
    fn new(model: &str) -> Ckpt {
        Ckpt {
            model: model.to_string(),
            map: BTreeMap::new(),
        }
    }

    fn randn(&mut self, name: &str, shape: &[usize]) -> Res<()> {
        let mut rng = Rng::for_tensor(&self.model, name);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal() * 0.2).collect();
        self.map
            .insert(name.to_string(), Tensor::from_vec(v, shape, &Device::Cpu)?);
        Ok(())
    }

    fn fill(&mut self, name: &str, len: usize, value: f32) -> Res<()> {
        self.map.insert(
            name.to_string(),
            Tensor::from_vec(vec![value; len], len, &Device::Cpu)?,
        );
        Ok(())
    }

    /// `name.weight` (out, in) and `name.bias`.
    fn linear(&mut self, name: &str, out: usize, inp: usize, bias: bool) -> Res<()> {
        self.randn(&format!("{name}.weight"), &[out, inp])?;
        if bias {
            self.randn(&format!("{name}.bias"), &[out])?;
        }
        Ok(())
    }

    fn layer_norm(&mut self, name: &str, n: usize) -> Res<()> {
        self.fill(&format!("{name}.weight"), n, 1.0)?;
        self.fill(&format!("{name}.bias"), n, 0.0)
    }

    fn save(&self, path: &Path) -> Res<()> {
        let map: HashMap<String, Tensor> = self.map.clone().into_iter().collect();
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Two shards and model.safetensors.index.json.
    fn save_sharded(&self, dir: &Path) -> Res<()> {
        let names: Vec<&String> = self.map.keys().collect();
        let half = names.len() / 2;
        let mut weight_map = serde_json::Map::new();
        for (i, part) in [&names[..half], &names[half..]].into_iter().enumerate() {
            let file = format!("model-0000{}-of-00002.safetensors", i + 1);
            let shard: HashMap<String, Tensor> = part
                .iter()
                .map(|n| ((*n).clone(), self.map[*n].clone()))
                .collect();
            candle_core::safetensors::save(&shard, dir.join(&file))?;
            for n in part {
                weight_map.insert((*n).clone(), json!(file));
            }
        }
        write_json(
            dir,
            "model.safetensors.index.json",
            &json!({"metadata": {}, "weight_map": weight_map}),
        )
    }
}

fn write_json(dir: &Path, name: &str, v: &Value) -> Res<()> {
    std::fs::write(dir.join(name), serde_json::to_string_pretty(v)?)?;
    Ok(())
}

fn readme(dir: &Path, name: &str, tag: &str, library: &str, widget: &str) -> Res<()> {
    let text = format!(
        "---\npipeline_tag: {tag}\nlibrary_name: {library}\nlicense: apache-2.0\n{widget}---\n\n# {name}\n\n\
         Tiny random-weight model generated by `make_tiny_models` for tests. Its answers are meaningless.\n"
    );
    std::fs::write(dir.join("README.md"), text)?;
    Ok(())
}

fn widget_for(tag: &str, mask: &str) -> String {
    match tag {
        "fill-mask" => format!("widget:\n- text: \"The goal of life is {mask}.\"\n"),
        "text-generation" => "widget:\n- text: \"Hello world\"\n".to_string(),
        "token-classification" => {
            "widget:\n- text: \"My name is Sarah and I live in London\"\n".to_string()
        }
        _ => String::new(),
    }
}

// ---------------------------------------------------------------- tokenizers

/// Lower-cased words of the corpus, in first-seen order.
fn corpus_words() -> Vec<String> {
    let mut seen = Vec::new();
    for s in CORPUS {
        for w in s
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let w = w.to_lowercase();
            if !seen.contains(&w) {
                seen.push(w);
            }
        }
    }
    seen
}

fn added(id: usize, content: &str, lstrip: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": lstrip, "rstrip": false,
           "normalized": false, "special": true})
}

/// A BERT WordPiece tokenizer. "sarah" and "london" are split into sub-words on purpose, so that
/// token-classification aggregation has something to aggregate.
fn wordpiece_tokenizer(dir: &Path) -> Res<usize> {
    let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    let mut vocab: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    let push = |vocab: &mut Vec<String>, t: String| {
        if !vocab.contains(&t) {
            vocab.push(t);
        }
    };
    for c in ".,?!'-:;".chars().chain('a'..='z').chain('0'..='9') {
        push(&mut vocab, c.to_string());
    }
    for c in ('a'..='z').chain('0'..='9') {
        push(&mut vocab, format!("##{c}"));
    }
    for w in corpus_words() {
        match w.as_str() {
            "sarah" => ["sa", "##rah"]
                .iter()
                .for_each(|t| push(&mut vocab, t.to_string())),
            "london" => ["lon", "##don"]
                .iter()
                .for_each(|t| push(&mut vocab, t.to_string())),
            _ => push(&mut vocab, w),
        }
    }
    let vocab_map: serde_json::Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let tk = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": specials.iter().enumerate().map(|(i, s)| added(i, s, false)).collect::<Vec<_>>(),
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab_map},
    });
    write_json(dir, "tokenizer.json", &tk)?;
    write_json(
        dir,
        "tokenizer_config.json",
        &json!({
        "do_lower_case": true, "model_max_length": 512, "mask_token": "[MASK]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]", "tokenizer_class": "BertTokenizer"}),
    )?;
    write_json(
        dir,
        "special_tokens_map.json",
        &json!({
        "mask_token": "[MASK]", "pad_token": "[PAD]", "cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]"}),
    )?;
    Ok(vocab.len())
}

/// GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 onwards.
fn byte_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut n = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                n += 1;
                char::from_u32(255 + n).unwrap_or('?')
            }
        })
        .collect()
}

/// Byte-level pre-tokenization of the corpus, roughly as GPT-2's regex does it: a word keeps
/// its leading space (as 'Ġ'), punctuation stands alone.
fn byte_level_words() -> Vec<Vec<String>> {
    let table = byte_chars();
    let mut words = Vec::new();
    for s in CORPUS {
        let mut cur = String::new();
        let mut flush = |cur: &mut String| {
            if !cur.is_empty() {
                let w: Vec<String> = cur.bytes().map(|b| table[b as usize].to_string()).collect();
                words.push(w);
                cur.clear();
            }
        };
        for c in s.chars() {
            if c.is_alphanumeric() {
                cur.push(c);
            } else {
                flush(&mut cur);
                if c == ' ' {
                    cur.push(' ');
                } else {
                    cur.push(c);
                    flush(&mut cur);
                }
            }
        }
        flush(&mut cur);
    }
    words
}

/// Learns BPE merges on the corpus (most frequent pair first, ties broken by the pair itself).
fn learn_merges(mut words: Vec<Vec<String>>) -> Vec<(String, String)> {
    let mut merges = Vec::new();
    loop {
        let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
        for w in &words {
            for p in w.windows(2) {
                *counts.entry((p[0].clone(), p[1].clone())).or_default() += 1;
            }
        }
        let Some((best, _)) = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        else {
            return merges;
        };
        for w in &mut words {
            let mut i = 0;
            while i + 1 < w.len() {
                if w[i] == best.0 && w[i + 1] == best.1 {
                    let joined = format!("{}{}", w[i], w[i + 1]);
                    w.splice(i..i + 2, [joined]);
                }
                i += 1;
            }
        }
        merges.push(best);
    }
}

/// Byte-level BPE tokenizer. `style` picks specials and post-processing: "roberta", "gpt2",
/// "llama", "qwen2".
fn bpe_tokenizer(dir: &Path, style: &str) -> Res<usize> {
    let (front, back): (&[&str], &[&str]) = match style {
        "roberta" => (&["<s>", "<pad>", "</s>", "<unk>"], &["<mask>"]),
        "gpt2" => (&[], &["<|endoftext|>"]),
        "qwen2" => (&[], &["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
        _ => (&["<unk>", "<s>", "</s>"], &[]),
    };
    let mut vocab: Vec<String> = front.iter().map(|s| s.to_string()).collect();
    vocab.extend(byte_chars().into_iter().map(|c| c.to_string()));
    let merges = learn_merges(byte_level_words());
    for (a, b) in &merges {
        let t = format!("{a}{b}");
        if !vocab.contains(&t) {
            vocab.push(t);
        }
    }
    vocab.extend(back.iter().map(|s| s.to_string()));
    let id = |t: &str| vocab.iter().position(|v| v == t).unwrap_or(0);
    let added_tokens: Vec<Value> = front
        .iter()
        .chain(back)
        .map(|t| added(id(t), t, *t == "<mask>"))
        .collect();
    let post = match style {
        "roberta" => {
            json!({"type": "RobertaProcessing", "sep": ["</s>", id("</s>")], "cls": ["<s>", id("<s>")],
                            "trim_offsets": true, "add_prefix_space": false})
        }
        "llama" => json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [id("<s>")], "tokens": ["<s>"]}}}),
        _ => {
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true})
        }
    };
    let vocab_map: serde_json::Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let tk = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab_map,
                  "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()},
    });
    write_json(dir, "tokenizer.json", &tk)?;
    let mut cfg =
        json!({"model_max_length": MAX_POS, "tokenizer_class": "PreTrainedTokenizerFast"});
    for (key, tok) in [
        ("bos_token", "<s>"),
        ("eos_token", "</s>"),
        ("pad_token", "<pad>"),
        ("unk_token", "<unk>"),
        ("mask_token", "<mask>"),
        ("eos_token", "<|endoftext|>"),
    ] {
        if vocab.iter().any(|v| v == tok) {
            cfg[key] = json!(tok);
        }
    }
    write_json(dir, "tokenizer_config.json", &cfg)?;
    Ok(vocab.len())
}

// ---------------------------------------------------------------- encoders

fn bert_layers(c: &mut Ckpt, p: &str, distil: bool) -> Res<()> {
    for i in 0..LAYERS {
        if distil {
            let l = format!("{p}transformer.layer.{i}.");
            for n in ["q_lin", "k_lin", "v_lin", "out_lin"] {
                c.linear(&format!("{l}attention.{n}"), HIDDEN, HIDDEN, true)?;
            }
            c.layer_norm(&format!("{l}sa_layer_norm"), HIDDEN)?;
            c.linear(&format!("{l}ffn.lin1"), INTER, HIDDEN, true)?;
            c.linear(&format!("{l}ffn.lin2"), HIDDEN, INTER, true)?;
            c.layer_norm(&format!("{l}output_layer_norm"), HIDDEN)?;
        } else {
            let l = format!("{p}encoder.layer.{i}.");
            for n in ["query", "key", "value"] {
                c.linear(&format!("{l}attention.self.{n}"), HIDDEN, HIDDEN, true)?;
            }
            c.linear(&format!("{l}attention.output.dense"), HIDDEN, HIDDEN, true)?;
            c.layer_norm(&format!("{l}attention.output.LayerNorm"), HIDDEN)?;
            c.linear(&format!("{l}intermediate.dense"), INTER, HIDDEN, true)?;
            c.linear(&format!("{l}output.dense"), HIDDEN, INTER, true)?;
            c.layer_norm(&format!("{l}output.LayerNorm"), HIDDEN)?;
        }
    }
    Ok(())
}

fn embeddings(c: &mut Ckpt, p: &str, vocab: usize, positions: usize, types: usize) -> Res<()> {
    c.randn(
        &format!("{p}embeddings.word_embeddings.weight"),
        &[vocab, HIDDEN],
    )?;
    c.randn(
        &format!("{p}embeddings.position_embeddings.weight"),
        &[positions, HIDDEN],
    )?;
    if types > 0 {
        c.randn(
            &format!("{p}embeddings.token_type_embeddings.weight"),
            &[types, HIDDEN],
        )?;
    }
    c.layer_norm(&format!("{p}embeddings.LayerNorm"), HIDDEN)
}

fn labels_for(tag: &str) -> Vec<&'static str> {
    match tag {
        "text-classification" => vec!["NEGATIVE", "POSITIVE"],
        "token-classification" => vec!["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
        "zero-shot-classification" => vec!["entailment", "neutral", "contradiction"],
        _ => vec![],
    }
}

fn label_maps(cfg: &mut Value, labels: &[&str]) {
    if labels.is_empty() {
        return;
    }
    let id2label: serde_json::Map<String, Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), json!(l)))
        .collect();
    let label2id: serde_json::Map<String, Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| (l.to_string(), json!(i)))
        .collect();
    cfg["id2label"] = Value::Object(id2label);
    cfg["label2id"] = Value::Object(label2id);
}

fn bert(dir: &Path, name: &str, tag: &str) -> Res<()> {
    let vocab = wordpiece_tokenizer(dir)?;
    let st = tag == "sentence-similarity";
    let p = if st { "" } else { "bert." };
    let mut c = Ckpt::new(name);
    embeddings(&mut c, p, vocab, MAX_POS, 2)?;
    bert_layers(&mut c, p, false)?;
    let labels = labels_for(tag);
    let arch = match tag {
        "fill-mask" => {
            c.linear("cls.predictions.transform.dense", HIDDEN, HIDDEN, true)?;
            c.layer_norm("cls.predictions.transform.LayerNorm", HIDDEN)?;
            c.randn("cls.predictions.bias", &[vocab])?;
            "BertForMaskedLM"
        }
        "text-classification" | "zero-shot-classification" => {
            c.linear("bert.pooler.dense", HIDDEN, HIDDEN, true)?;
            c.linear("classifier", labels.len(), HIDDEN, true)?;
            "BertForSequenceClassification"
        }
        "token-classification" => {
            c.linear("classifier", labels.len(), HIDDEN, true)?;
            "BertForTokenClassification"
        }
        "question-answering" => {
            c.linear("qa_outputs", 2, HIDDEN, true)?;
            "BertForQuestionAnswering"
        }
        _ => {
            c.linear("pooler.dense", HIDDEN, HIDDEN, true)?;
            "BertModel"
        }
    };
    c.save(&dir.join("model.safetensors"))?;
    let mut cfg = json!({
        "architectures": [arch], "model_type": "bert", "vocab_size": vocab, "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INTER,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": MAX_POS, "type_vocab_size": 2, "initializer_range": 0.02,
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "torch_dtype": "float32", "transformers_version": "4.44.0",
    });
    label_maps(&mut cfg, &labels);
    write_json(dir, "config.json", &cfg)?;
    if st {
        sentence_transformers_files(dir)?;
    }
    let library = if st {
        "sentence-transformers"
    } else {
        "transformers"
    };
    readme(dir, name, tag, library, &widget_for(tag, "[MASK]"))
}

fn sentence_transformers_files(dir: &Path) -> Res<()> {
    write_json(
        dir,
        "modules.json",
        &json!([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ]),
    )?;
    write_json(
        dir,
        "sentence_bert_config.json",
        &json!({"max_seq_length": 64, "do_lower_case": false}),
    )?;
    std::fs::create_dir_all(dir.join("1_Pooling"))?;
    write_json(
        &dir.join("1_Pooling"),
        "config.json",
        &json!({
        "word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true,
        "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}),
    )?;
    write_json(
        dir,
        "config_sentence_transformers.json",
        &json!({"__version__": {"sentence_transformers": "3.0.1"}}),
    )
}

fn distilbert(dir: &Path, name: &str) -> Res<()> {
    let vocab = wordpiece_tokenizer(dir)?;
    let mut c = Ckpt::new(name);
    embeddings(&mut c, "distilbert.", vocab, MAX_POS, 0)?;
    bert_layers(&mut c, "distilbert.", true)?;
    c.linear("vocab_transform", HIDDEN, HIDDEN, true)?;
    c.layer_norm("vocab_layer_norm", HIDDEN)?;
    c.randn("vocab_projector.bias", &[vocab])?;
    c.save(&dir.join("model.safetensors"))?;
    write_json(
        dir,
        "config.json",
        &json!({
        "architectures": ["DistilBertForMaskedLM"], "model_type": "distilbert", "vocab_size": vocab,
        "dim": HIDDEN, "n_layers": LAYERS, "n_heads": HEADS, "hidden_dim": INTER, "activation": "gelu",
        "max_position_embeddings": MAX_POS, "dropout": 0.1, "attention_dropout": 0.1, "pad_token_id": 0,
        "sinusoidal_pos_embds": false, "tie_weights_": true}),
    )?;
    readme(
        dir,
        name,
        "fill-mask",
        "transformers",
        &widget_for("fill-mask", "[MASK]"),
    )
}

fn roberta(dir: &Path, name: &str, model_type: &str) -> Res<()> {
    let vocab = bpe_tokenizer(dir, "roberta")?;
    let mut c = Ckpt::new(name);
    // RoBERTa positions start at pad_token_id + 1 = 2.
    embeddings(&mut c, "roberta.", vocab, MAX_POS + 2, 1)?;
    bert_layers(&mut c, "roberta.", false)?;
    c.linear("lm_head.dense", HIDDEN, HIDDEN, true)?;
    c.layer_norm("lm_head.layer_norm", HIDDEN)?;
    c.randn("lm_head.bias", &[vocab])?;
    c.save(&dir.join("model.safetensors"))?;
    let arch = if model_type == "roberta" {
        "RobertaForMaskedLM"
    } else {
        "XLMRobertaForMaskedLM"
    };
    write_json(
        dir,
        "config.json",
        &json!({
        "architectures": [arch], "model_type": model_type, "vocab_size": vocab, "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": INTER,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": MAX_POS + 2, "type_vocab_size": 1, "initializer_range": 0.02,
        "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}),
    )?;
    readme(
        dir,
        name,
        "fill-mask",
        "transformers",
        &widget_for("fill-mask", "<mask>"),
    )
}

// ---------------------------------------------------------------- decoders

fn gpt2(dir: &Path, name: &str, sharded: bool) -> Res<()> {
    let vocab = bpe_tokenizer(dir, "gpt2")?;
    let eos = vocab - 1;
    let mut c = Ckpt::new(name);
    c.randn("transformer.wte.weight", &[vocab, HIDDEN])?;
    c.randn("transformer.wpe.weight", &[MAX_POS, HIDDEN])?;
    for i in 0..LAYERS {
        let h = format!("transformer.h.{i}.");
        c.layer_norm(&format!("{h}ln_1"), HIDDEN)?;
        c.layer_norm(&format!("{h}ln_2"), HIDDEN)?;
        // Conv1D weights are (in, out).
        for (n, i_dim, o_dim) in [
            ("attn.c_attn", HIDDEN, 3 * HIDDEN),
            ("attn.c_proj", HIDDEN, HIDDEN),
            ("mlp.c_fc", HIDDEN, 4 * HIDDEN),
            ("mlp.c_proj", 4 * HIDDEN, HIDDEN),
        ] {
            c.randn(&format!("{h}{n}.weight"), &[i_dim, o_dim])?;
            c.randn(&format!("{h}{n}.bias"), &[o_dim])?;
        }
    }
    c.layer_norm("transformer.ln_f", HIDDEN)?;
    if sharded {
        c.save_sharded(dir)?
    } else {
        c.save(&dir.join("model.safetensors"))?
    }
    write_json(
        dir,
        "config.json",
        &json!({
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocab, "n_embd": HIDDEN,
        "n_layer": LAYERS, "n_head": HEADS, "n_positions": MAX_POS, "n_ctx": MAX_POS,
        "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "bos_token_id": eos, "eos_token_id": eos}),
    )?;
    write_json(
        dir,
        "generation_config.json",
        &json!({"bos_token_id": eos, "eos_token_id": eos}),
    )?;
    readme(
        dir,
        name,
        "text-generation",
        "transformers",
        &widget_for("text-generation", ""),
    )
}

fn llama_like(dir: &Path, name: &str, model_type: &str) -> Res<()> {
    let style = if model_type == "qwen2" {
        "qwen2"
    } else {
        "llama"
    };
    let vocab = bpe_tokenizer(dir, style)?;
    let kv_heads = 2;
    let kv = kv_heads * (HIDDEN / HEADS);
    let mut c = Ckpt::new(name);
    c.randn("model.embed_tokens.weight", &[vocab, HIDDEN])?;
    let bias = model_type == "qwen2";
    for i in 0..LAYERS {
        let l = format!("model.layers.{i}.");
        c.linear(&format!("{l}self_attn.q_proj"), HIDDEN, HIDDEN, bias)?;
        c.linear(&format!("{l}self_attn.k_proj"), kv, HIDDEN, bias)?;
        c.linear(&format!("{l}self_attn.v_proj"), kv, HIDDEN, bias)?;
        c.linear(&format!("{l}self_attn.o_proj"), HIDDEN, HIDDEN, false)?;
        c.linear(&format!("{l}mlp.gate_proj"), INTER, HIDDEN, false)?;
        c.linear(&format!("{l}mlp.up_proj"), INTER, HIDDEN, false)?;
        c.linear(&format!("{l}mlp.down_proj"), HIDDEN, INTER, false)?;
        c.fill(&format!("{l}input_layernorm.weight"), HIDDEN, 1.0)?;
        c.fill(&format!("{l}post_attention_layernorm.weight"), HIDDEN, 1.0)?;
    }
    c.fill("model.norm.weight", HIDDEN, 1.0)?;
    let tied = model_type == "qwen2";
    if !tied {
        c.linear("lm_head", vocab, HIDDEN, false)?;
    }
    c.save(&dir.join("model.safetensors"))?;
    let (bos, eos) = if style == "qwen2" {
        (vocab - 3, vocab - 3)
    } else {
        (1, 2)
    };
    let arch = match model_type {
        "llama" => "LlamaForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        _ => "MistralForCausalLM",
    };
    let mut cfg = json!({
        "architectures": [arch], "model_type": model_type, "vocab_size": vocab, "hidden_size": HIDDEN,
        "intermediate_size": INTER, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": kv_heads, "hidden_act": "silu", "max_position_embeddings": MAX_POS,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "bos_token_id": bos, "eos_token_id": eos,
        "tie_word_embeddings": tied, "torch_dtype": "float32"});
    match model_type {
        "qwen2" => {
            cfg["sliding_window"] = json!(MAX_POS);
            cfg["max_window_layers"] = json!(LAYERS);
            cfg["use_sliding_window"] = json!(false);
        }
        "mistral" => cfg["sliding_window"] = Value::Null,
        _ => {}
    }
    write_json(dir, "config.json", &cfg)?;
    write_json(
        dir,
        "generation_config.json",
        &json!({"bos_token_id": bos, "eos_token_id": eos}),
    )?;
    readme(
        dir,
        name,
        "text-generation",
        "transformers",
        &widget_for("text-generation", ""),
    )
}

fn pickle_only(dir: &Path, name: &str) -> Res<()> {
    wordpiece_tokenizer(dir)?;
    // The bytes of a zip-based torch pickle are never read by Wharf; only the name matters.
    std::fs::write(
        dir.join("pytorch_model.bin"),
        b"PK\x03\x04 not a real pickle",
    )?;
    write_json(
        dir,
        "config.json",
        &json!({
        "architectures": ["BertForMaskedLM"], "model_type": "bert", "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS}),
    )?;
    readme(dir, name, "fill-mask", "transformers", "")
}
