//! Text generation: TGI's parameters, greedy or seeded sampling, stop sequences and streaming.

use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde_json::{Value, json};

use crate::decoder::{DecoderModel, logprob};
use crate::error::{InferenceError, Result, bad};
use crate::limits::{
    MAX_BYTES_PER_TOKEN, MAX_NEW_TOKENS, MAX_STOP_BYTES, MAX_STOP_SEQUENCES, check_bytes, clip_end,
};
use crate::params::Params;

const DEFAULT_NEW_TOKENS: usize = 20;

/// One streamed token, as TGI streams it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamToken {
    pub index: usize,
    pub id: u32,
    pub text: String,
    pub logprob: f32,
    pub special: bool,
    /// Some(full text) on the last token only.
    pub generated_text: Option<String>,
}

impl StreamToken {
    /// The JSON object of one server-sent event in TGI's format, as
    /// `InferenceClient.text_generation(stream=True)` parses it.
    pub fn to_json(&self) -> Value {
        json!({
            "index": self.index,
            "token": {"id": self.id, "text": self.text, "logprob": self.logprob as f64, "special": self.special},
            "generated_text": self.generated_text,
            "details": null,
        })
    }
}

/// Whether the body asks for streaming (`{"stream": true}`).
pub fn wants_stream(body: &Value) -> bool {
    let top = body.get("stream").and_then(Value::as_bool);
    let nested = body
        .get("parameters")
        .and_then(|p| p.get("stream"))
        .and_then(Value::as_bool);
    top.or(nested).unwrap_or(false)
}

/// Generation settings parsed from the request.
struct GenParams {
    max_new: usize,
    sampling: Sampling,
    seed: u64,
    repetition_penalty: Option<f32>,
    stop: Vec<String>,
    full_text: bool,
    details: bool,
    truncate: Option<usize>,
}

impl GenParams {
    fn parse(p: &Params) -> Result<GenParams> {
        let temperature = p.f64("temperature")?;
        if temperature.is_some_and(|t| t < 0.0) {
            return Err(bad("temperature must be >= 0"));
        }
        let top_p = p.f64("top_p")?;
        if top_p.is_some_and(|v| v <= 0.0 || v > 1.0) {
            return Err(bad("top_p must be in (0, 1]"));
        }
        let top_k = p.usize("top_k")?.filter(|&k| k > 0);
        let wants_sampling = temperature.is_some() || top_k.is_some() || top_p.is_some();
        let sample = p.bool("do_sample")?.unwrap_or(wants_sampling) && temperature != Some(0.0);
        let t = temperature.unwrap_or(1.0);
        let top_p = top_p.filter(|v| *v < 1.0);
        let sampling = match (sample, top_k, top_p) {
            (false, _, _) => Sampling::ArgMax,
            (true, Some(k), Some(p)) => Sampling::TopKThenTopP {
                k,
                p,
                temperature: t,
            },
            (true, Some(k), None) => Sampling::TopK { k, temperature: t },
            (true, None, Some(p)) => Sampling::TopP { p, temperature: t },
            (true, None, None) => Sampling::All { temperature: t },
        };
        let mut stop = p
            .strings("stop", false)?
            .or(p.strings("stop_sequences", false)?)
            .unwrap_or_default();
        stop.retain(|s| !s.is_empty());
        if stop.len() > MAX_STOP_SEQUENCES {
            return Err(bad(format!("at most {MAX_STOP_SEQUENCES} stop sequences")));
        }
        // Every generated token is matched against every prefix of every stop sequence.
        for s in &stop {
            check_bytes("a stop sequence", s, MAX_STOP_BYTES)?;
        }
        let repetition_penalty = p.f64("repetition_penalty")?.map(|r| r as f32);
        if repetition_penalty.is_some_and(|r| r <= 0.0) {
            return Err(bad("repetition_penalty must be > 0"));
        }
        Ok(GenParams {
            max_new: p
                .usize("max_new_tokens")?
                .unwrap_or(DEFAULT_NEW_TOKENS)
                .clamp(1, MAX_NEW_TOKENS),
            sampling,
            seed: p.usize("seed")?.map_or_else(clock_seed, |s| s as u64),
            repetition_penalty,
            stop,
            full_text: p.bool("return_full_text")?.unwrap_or(false),
            details: p.bool("details")?.unwrap_or(false),
            truncate: p.usize("truncate")?,
        })
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn prompt_of(p: &Params) -> Result<String> {
    match p.inputs()? {
        Value::String(s) => Ok(s.clone()),
        Value::Array(a) if a.len() == 1 => a[0]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| bad("inputs must be a string")),
        _ => Err(bad("text-generation inputs must be a string")),
    }
}

/// Text released to the stream so far, and what is held back because it may be the start of a
/// stop sequence or an incomplete UTF-8 character.
struct Emitter<'a> {
    stop: &'a [String],
    emitted: usize,
}

impl Emitter<'_> {
    /// Where `text` is cut by the first stop sequence, if any.
    fn stop_at(&self, text: &str) -> Option<usize> {
        self.stop.iter().filter_map(|s| text.find(s.as_str())).min()
    }

    /// The newly releasable part of `text`.
    fn release(&mut self, text: &str) -> String {
        let mut end = text.len();
        if text.ends_with('\u{FFFD}') {
            end -= '\u{FFFD}'.len_utf8();
        }
        // Hold back the longest tail that could still grow into a stop sequence.
        let mut hold = 0;
        for s in self.stop {
            for (k, _) in s.char_indices().skip(1) {
                if text[..end].ends_with(&s[..k]) {
                    hold = hold.max(k);
                }
            }
        }
        self.take(text, end - hold)
    }

    fn take(&mut self, text: &str, end: usize) -> String {
        if end <= self.emitted
            || !text.is_char_boundary(end)
            || !text.is_char_boundary(self.emitted)
        {
            return String::new();
        }
        let out = text[self.emitted..end].to_string();
        self.emitted = end;
        out
    }
}

/// Runs one generation request; `on_token` sees every token (return false to stop early).
pub(crate) fn run(
    m: &DecoderModel,
    body: &Value,
    on_token: &mut dyn FnMut(&StreamToken) -> bool,
) -> Result<Value> {
    let p = Params::new(body)?;
    let prompt = prompt_of(&p)?;
    let gp = GenParams::parse(&p)?;
    let mut ids = prompt_ids(m, &prompt, &gp)?;
    let max_new = gp
        .max_new
        .min(m.max_context.saturating_sub(ids.len()))
        .max(1);
    let mut proc = LogitsProcessor::from_sampling(gp.seed, gp.sampling.clone());
    let mut session = m.session()?;
    let mut logits = m.step(&mut session, &ids, 0)?;
    let prompt_len = ids.len();
    let mut emitter = Emitter {
        stop: &gp.stop,
        emitted: 0,
    };
    let mut tokens: Vec<Value> = Vec::new();
    let mut text = String::new();
    let mut finish = "length";
    for i in 0..max_new {
        let scored = match gp.repetition_penalty {
            Some(r) if r != 1.0 => {
                candle_transformers::utils::apply_repeat_penalty(&logits, r, &ids)?
            }
            _ => logits.clone(),
        };
        let id = proc.sample(&scored)?;
        let lp = logprob(&logits, id)?;
        ids.push(id);
        let special = m.eos.contains(&id);
        let full = m.tok.decode(&ids[prompt_len..], true)?;
        let mut last = i + 1 == max_new;
        let chunk = if special {
            finish = "eos_token";
            last = true;
            emitter.take(&text, text.len())
        } else if let Some(cut) = emitter.stop_at(&full) {
            finish = "stop_sequence";
            last = true;
            text = full[..cut].to_string();
            emitter.take(&text, text.len())
        } else {
            text = full;
            if last {
                emitter.take(&text, text.len())
            } else {
                emitter.release(&text)
            }
        };
        let token_text = if special {
            String::new()
        } else {
            m.tok.decode(&[id], false)?
        };
        tokens
            .push(json!({"id": id, "text": token_text, "logprob": lp as f64, "special": special}));
        let answer = if gp.full_text {
            format!("{prompt}{text}")
        } else {
            text.clone()
        };
        let st = StreamToken {
            index: i + 1,
            id,
            text: chunk,
            logprob: lp,
            special,
            generated_text: last.then(|| answer.clone()),
        };
        if !on_token(&st) || last {
            break;
        }
        logits = m.step(&mut session, &[id], prompt_len + i)?;
    }
    let answer = if gp.full_text {
        format!("{prompt}{text}")
    } else {
        text
    };
    let mut out = json!({"generated_text": answer});
    if gp.details {
        out["details"] = json!({
            "finish_reason": finish,
            "generated_tokens": tokens.len(),
            // TGI reports no seed for greedy decoding.
            "seed": if matches!(gp.sampling, Sampling::ArgMax) { Value::Null } else { json!(gp.seed) },
            "prefill": [],
            "tokens": tokens,
        });
    }
    Ok(json!([out]))
}

/// The prompt's token ids, keeping the end when it (plus room to generate) is too long. Only
/// the prompt's last bytes that the context can hold are tokenized.
fn prompt_ids(m: &DecoderModel, prompt: &str, gp: &GenParams) -> Result<Vec<u32>> {
    let prompt = clip_end(prompt, m.max_context.saturating_mul(MAX_BYTES_PER_TOKEN));
    let enc = m
        .tok
        .tk
        .encode(prompt, true)
        .map_err(|e| InferenceError::Internal(format!("tokenizer: {e}")))?;
    let mut ids = enc.get_ids().to_vec();
    if ids.is_empty() {
        // GPT-2 style models start an empty prompt from their end-of-text token.
        ids.extend(m.eos.first().copied());
    }
    if ids.is_empty() {
        return Err(bad("the prompt is empty"));
    }
    let room = m.max_context.saturating_sub(gp.max_new).max(1);
    let keep = gp.truncate.map_or(room, |t| t.clamp(1, room));
    if ids.len() > keep {
        ids.drain(..ids.len() - keep);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitter_holds_back_possible_stop_prefixes() {
        let stop = vec!["END".to_string()];
        let mut e = Emitter {
            stop: &stop,
            emitted: 0,
        };
        assert_eq!(e.release("abc E"), "abc ");
        assert_eq!(e.release("abc EN"), "");
        assert_eq!(e.release("abc ENx"), "ENx");
        assert_eq!(e.stop_at("abc ENx END"), Some(8));
        let mut e = Emitter {
            stop: &[],
            emitted: 0,
        };
        assert_eq!(e.release("caf\u{FFFD}"), "caf");
        assert_eq!(e.release("café"), "é");
    }
}
