//! `wharf_core::gguf` against a file written by llama.cpp's reference writer (PyPI `gguf`
//! 0.19.0, `tests/fixtures/make_tiny_gguf.py`), not by Wharf's own hands.

use wharf_core::gguf::{GgufArray, GgufValue, parse_gguf_header};

const TINY: &[u8] = include_bytes!("fixtures/tiny.gguf-py.gguf");

#[test]
fn reads_the_reference_writers_file() {
    let header = parse_gguf_header(TINY).expect("gguf-py output parses");
    assert_eq!(header.version, 3);
    assert_eq!(header.architecture(), Some("llama"));
    assert_eq!(header.context_length(), Some(2048));
    assert_eq!(header.metadata.len(), 11);
    assert_eq!(
        header.get("general.name").and_then(GgufValue::as_str),
        Some("tiny")
    );
    assert_eq!(
        header.get("tokenizer.ggml.tokens"),
        Some(&GgufValue::Array(GgufArray::String(
            ["<s>", "</s>", "hello", "wörld"].map(String::from).to_vec()
        )))
    );
    assert_eq!(
        header.get("tokenizer.ggml.scores"),
        Some(&GgufValue::Array(GgufArray::F32(vec![
            0.0, 0.0, -1.5, -2.0
        ])))
    );
    assert_eq!(header.get("tiny.flag"), Some(&GgufValue::Bool(true)));
    assert_eq!(
        header.get("tiny.nested"),
        Some(&GgufValue::Array(GgufArray::Array(vec![
            GgufArray::I32(vec![1, 2]),
            GgufArray::I32(vec![3]),
        ])))
    );
    // ggml lists dimensions innermost first: numpy's (4, 8) is [8, 4].
    let shapes: Vec<(&str, &[u64], u32)> = header
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), t.dims.as_slice(), t.ggml_type))
        .collect();
    assert_eq!(
        shapes,
        [
            ("token_embd.weight", &[8u64, 4][..], 0),
            ("output_norm.weight", &[8u64][..], 1)
        ]
    );
    assert_eq!(header.tensors[1].offset, 128);
    assert_eq!(header.parameter_count, 4 * 8 + 8);
    assert!(header.header_len < TINY.len());
}
