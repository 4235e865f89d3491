//! Rough embedding throughput of a sentence-transformers model:
//! `embed_bench MODEL_DIR [BATCH] [ROUNDS] [SENTENCES_FILE]` prints sentences/s and the similarity of two
//! reference sentences.

use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::json;
use wharf_inference::{Model, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: embed_bench MODEL_DIR [BATCH] [ROUNDS]")?;
    let batch: usize = args.next().map_or(Ok(32), |s| s.parse())?;
    let rounds: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let t = Instant::now();
    let m = Model::load(std::path::Path::new(&dir), Some("sentence-similarity"))?;
    println!("load: {:?}", t.elapsed());
    let sim = m.infer(
        &json!({"inputs": {"source_sentence": "A man is eating food.",
                                          "sentences": ["A man is eating a piece of bread."]}}),
    )?;
    println!("similarity: {sim}");
    // Sentences from a file (one per line, the first BATCH are used), else one repeated shape.
    let sentences: Vec<String> = match args.next() {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .take(batch)
            .map(str::to_string)
            .collect(),
        None => (0..batch)
            .map(|i| format!("Sentence number {i} says that a man is eating food in the city."))
            .collect(),
    };
    let body = json!({"inputs": sentences});
    m.infer_as(Task::FeatureExtraction, &body)?;
    let t = Instant::now();
    for _ in 0..rounds {
        m.infer_as(Task::FeatureExtraction, &body)?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "batch {batch}: {:.1} sentences/s",
        (batch * rounds) as f64 / secs
    );
    Ok(())
}
