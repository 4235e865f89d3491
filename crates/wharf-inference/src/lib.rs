//! Hosted inference for Wharf: loads a model from a local snapshot of a repo (safetensors +
//! tokenizer.json) and answers the Hub's per-task JSON requests on the CPU with candle.
//!
//! Pure library: no HTTP, no hub. The server decides which files to fetch with [`plan_files`],
//! loads a [`Model`] from a directory, and calls [`Model::infer`] / [`Model::infer_batch`] /
//! [`Model::generate_stream`] on worker threads.

mod config;
mod decoder;
mod encoder;
mod error;
mod fastmath;
mod files;
mod generate;
mod guard;
mod hostops;
mod limits;
mod model;
mod params;
mod pipelines;
mod task;
mod tokenize;
mod tokenizer_check;
mod weights;

pub use error::InferenceError;
pub use files::plan_files;
pub use generate::{StreamToken, wants_stream};
pub use model::Model;
pub use pipelines::legacy_zero_shot_answer;
pub use task::Task;

/// Human-readable list of supported tasks and architectures (used in 400 messages).
pub const SUPPORTED: &str = "supported tasks: fill-mask, feature-extraction, sentence-similarity, \
text-classification, token-classification, zero-shot-classification, question-answering \
(BERT, DistilBERT, RoBERTa, CamemBERT, XLM-RoBERTa) and text-generation (GPT-2, Llama, Qwen2, \
Mistral), from safetensors weights and a tokenizer.json";

#[cfg(test)]
mod tests {
    /// The server shares one loaded model between worker threads.
    #[test]
    fn model_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::Model>();
        check::<crate::InferenceError>();
    }
}
