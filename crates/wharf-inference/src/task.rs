//! The Hub pipeline tasks this crate answers.

/// One Hub pipeline task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    FillMask,
    FeatureExtraction,
    SentenceSimilarity,
    TextClassification,
    TokenClassification,
    ZeroShotClassification,
    QuestionAnswering,
    TextGeneration,
}

const ALL: [Task; 8] = [
    Task::FillMask,
    Task::FeatureExtraction,
    Task::SentenceSimilarity,
    Task::TextClassification,
    Task::TokenClassification,
    Task::ZeroShotClassification,
    Task::QuestionAnswering,
    Task::TextGeneration,
];

impl Task {
    /// The task for a card's `pipeline_tag` (None when we do not serve it).
    pub fn from_pipeline_tag(tag: &str) -> Option<Task> {
        let tag = tag.trim();
        // "ner" is the Hub's old alias of token-classification.
        if tag == "ner" {
            return Some(Task::TokenClassification);
        }
        ALL.into_iter().find(|t| t.as_str() == tag)
    }

    /// The pipeline tag.
    pub fn as_str(&self) -> &'static str {
        match self {
            Task::FillMask => "fill-mask",
            Task::FeatureExtraction => "feature-extraction",
            Task::SentenceSimilarity => "sentence-similarity",
            Task::TextClassification => "text-classification",
            Task::TokenClassification => "token-classification",
            Task::ZeroShotClassification => "zero-shot-classification",
            Task::QuestionAnswering => "question-answering",
            Task::TextGeneration => "text-generation",
        }
    }

    /// Everything but text generation runs on an encoder.
    pub fn is_encoder(&self) -> bool {
        !matches!(self, Task::TextGeneration)
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
