//! Property-style check: no input makes the card functions panic.

use wharf_card::{derive_info, parse_card, split_front_matter, validate_card};
use wharf_core::RepoType;

/// xorshift64*: tiny, deterministic, good enough to spread inputs around.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn exercise(readme: &str) {
    let _ = split_front_matter(readme);
    let card = parse_card(readme);
    if let Err(err) = &card {
        assert!(!err.to_string().is_empty());
    }
    let card = card.ok().flatten();
    let files = vec![
        "config.json".to_owned(),
        "model.safetensors".to_owned(),
        readme.chars().take(20).collect(),
    ];
    let info = derive_info(card.as_ref(), &files, Some("bert"));
    assert_eq!(info.tags.last().map(String::as_str), Some("region:us"));
    let result = validate_card(readme, RepoType::Model);
    assert!(result.errors.len() + result.warnings.len() <= 64);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3_000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        exercise(&text);
        // The same bytes as front matter, so the YAML parser sees them too.
        exercise(&format!("---\n{text}\n---\nbody"));
    }
}

#[test]
fn random_yaml_token_soup_never_panics() {
    const TOKENS: &[&str] = &[
        "---",
        "...",
        "\n",
        "\r\n",
        " ",
        "  ",
        "\t",
        "- ",
        "-",
        ": ",
        ":",
        "? ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&a ",
        "&b ",
        "*a",
        "*b",
        "<<: ",
        "!!str ",
        "!!binary ",
        "!!int ",
        "!foo ",
        "!!map ",
        "\"",
        "'",
        "\\u",
        "\\",
        "#",
        "|",
        ">",
        "|-",
        ">+",
        "%YAML 1.2",
        "%TAG ",
        "~",
        "null",
        "yes",
        "no",
        "true",
        ".inf",
        "-.nan",
        "0x1F",
        "0o17",
        "0755",
        "1e999",
        "99999999999999999999999",
        "2024-01-01",
        "license",
        "tags",
        "model-index",
        "language",
        "datasets",
        "base_model",
        "pipeline_tag",
        "library_name",
        "é",
        "\u{feff}",
        "\u{0}",
        "\u{85}",
        "\u{2028}",
        "key",
        "value",
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..5_000 {
        let count = rng.below(60);
        let mut yaml = String::new();
        for _ in 0..count {
            yaml.push_str(TOKENS[rng.below(TOKENS.len())]);
        }
        exercise(&yaml);
        exercise(&format!("---\n{yaml}\n---\n"));
        exercise(&format!("\u{feff}---\r\n{yaml}\r\n---\r\n"));
    }
}
