//! Which paths `.gitattributes` sends to LFS (`filter=lfs`), with git's own pattern rules
//! (gitoxide's `gix-glob` wildmatch): a pattern without `/` matches the file name at any depth;
//! one with `/` is anchored at the repository root; `**` spans directories; a pattern ending in
//! `/` names a directory and so matches no file; negative (`!`) patterns are ignored, as git
//! ignores them in attributes. Later lines override earlier ones (`-filter`, `!filter` or
//! another filter value unset LFS).
//!
//! Patterns are interpreted, not compiled: parsing a line costs as much as reading it. (A
//! regex per line cost ~3 ms per kilobyte of rules, and `.gitattributes` is read on every
//! commit, up to 1 MiB of it.)

use gix_glob::{Pattern, pattern::Case, wildmatch::Mode as MatchMode};

/// The default `.gitattributes` of a new repository, as the Hub writes it.
pub const DEFAULT_GITATTRIBUTES: &str = "*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lfs.* filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
";

/// Extra patterns the Hub adds for dataset repositories (media and data files).
pub const DATASET_EXTRA_GITATTRIBUTES: &str = "# Audio files - uncompressed
*.pcm filter=lfs diff=lfs merge=lfs -text
*.sam filter=lfs diff=lfs merge=lfs -text
*.raw filter=lfs diff=lfs merge=lfs -text
# Audio files - compressed
*.aac filter=lfs diff=lfs merge=lfs -text
*.flac filter=lfs diff=lfs merge=lfs -text
*.mp3 filter=lfs diff=lfs merge=lfs -text
*.ogg filter=lfs diff=lfs merge=lfs -text
*.wav filter=lfs diff=lfs merge=lfs -text
# Image files - uncompressed
*.bmp filter=lfs diff=lfs merge=lfs -text
*.gif filter=lfs diff=lfs merge=lfs -text
*.png filter=lfs diff=lfs merge=lfs -text
*.tiff filter=lfs diff=lfs merge=lfs -text
# Image files - compressed
*.jpg filter=lfs diff=lfs merge=lfs -text
*.jpeg filter=lfs diff=lfs merge=lfs -text
*.webp filter=lfs diff=lfs merge=lfs -text
# Video files - compressed
*.mp4 filter=lfs diff=lfs merge=lfs -text
*.webm filter=lfs diff=lfs merge=lfs -text
*.mds filter=lfs diff=lfs merge=lfs -text
*.lz4 filter=lfs diff=lfs merge=lfs -text
*.jsonl filter=lfs diff=lfs merge=lfs -text
";

struct Rule {
    pattern: Pattern,
    lfs: bool,
}

/// Compiled LFS rules of one `.gitattributes` file.
pub struct LfsRules {
    rules: Vec<Rule>,
}

impl LfsRules {
    /// Parses `.gitattributes` text; lines that don't mention `filter` or can't be compiled are skipped.
    pub fn parse(text: &str) -> LfsRules {
        let rules = text.lines().filter_map(parse_line).collect();
        LfsRules { rules }
    }

    /// True when the last matching rule for `path` sets `filter=lfs`.
    pub fn is_lfs(&self, path: &str) -> bool {
        // Repository paths are relative; a stray leading `/` is not part of the name.
        let path = path.trim_start_matches('/');
        let basename_start = path.rfind('/').map(|slash| slash + 1);
        self.rules
            .iter()
            .rev()
            .find(|rule| {
                rule.pattern.matches_repo_relative_path(
                    path.into(),
                    basename_start,
                    Some(false),
                    Case::Sensitive,
                    MatchMode::NO_MATCH_SLASH_LITERAL,
                )
            })
            .is_some_and(|rule| rule.lfs)
    }
}

/// Longest pattern kept, and most bracket expressions in one. Matching is backtracking: a
/// 487-byte pattern of nested `[[:` brackets took 1.8 s against one 4 KiB path (found by
/// fuzzing), and `.gitattributes` is matched against every path of a commit. Real patterns
/// (`*.safetensors`, `saved_model/**/*`, one file's name) are far inside both bounds; a rule
/// beyond them is skipped like a line git cannot parse.
const MAX_PATTERN_BYTES: usize = 256;
const MAX_BRACKETS: usize = 8;

fn cheap_to_match(pattern: &str) -> bool {
    pattern.len() <= MAX_PATTERN_BYTES
        && pattern.bytes().filter(|b| *b == b'[').count() <= MAX_BRACKETS
}

fn parse_line(line: &str) -> Option<Rule> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut parts = line.split_whitespace();
    let pattern = parts.next()?;
    let lfs = parts.fold(None, |acc, attr| match attr {
        "filter=lfs" => Some(true),
        a if a.starts_with("filter=") || a == "-filter" || a == "!filter" => Some(false),
        _ => acc,
    })?;
    if pattern.starts_with('!') || !cheap_to_match(pattern) {
        return None;
    }
    let pattern = Pattern::from_bytes_without_negation(pattern.as_bytes())?;
    Some(Rule { pattern, lfs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules() {
        let r = LfsRules::parse(DEFAULT_GITATTRIBUTES);
        assert!(r.is_lfs("model.safetensors"));
        assert!(r.is_lfs("sub/dir/pytorch_model.bin"));
        assert!(r.is_lfs("saved_model/variables/x.data"));
        assert!(r.is_lfs("runs/events.out.tfevents.123"));
        assert!(r.is_lfs("a.tar.gz"));
        assert!(!r.is_lfs("config.json"));
        assert!(!r.is_lfs("README.md"));
    }

    #[test]
    fn later_lines_win_and_anchoring() {
        let r = LfsRules::parse("*.png filter=lfs\nkeep/*.png -filter\n/top.txt filter=lfs\n");
        assert!(r.is_lfs("a/b/image.png"));
        assert!(!r.is_lfs("keep/image.png"));
        assert!(r.is_lfs("top.txt"));
        assert!(!r.is_lfs("sub/top.txt"));
    }

    #[test]
    fn git_pattern_rules() {
        let r = LfsRules::parse(
            "models/**/*.bin filter=lfs\n*.[ch]kpt filter=lfs\ndir/ filter=lfs\n!*.txt filter=lfs\n",
        );
        assert!(r.is_lfs("models/a/b/w.bin"));
        assert!(r.is_lfs("models/w.bin"), "`**/` also matches no directory");
        assert!(
            !r.is_lfs("other/models/w.bin"),
            "a pattern with `/` is anchored"
        );
        assert!(r.is_lfs("x/y.ckpt") && r.is_lfs("y.hkpt") && !r.is_lfs("y.dkpt"));
        assert!(
            !r.is_lfs("dir/file") && !r.is_lfs("dir"),
            "directory patterns match no file"
        );
        assert!(!r.is_lfs("a.txt"), "negative patterns are ignored");
        assert!(!r.is_lfs("") && !r.is_lfs("/"));
    }

    #[test]
    fn patterns_that_backtrack_are_skipped() {
        let nested = format!("*{}x/]{} filter=lfs", "[[:".repeat(40), "[".repeat(40));
        let r = LfsRules::parse(&format!("*.bin filter=lfs\n{nested}\n"));
        assert_eq!(r.rules.len(), 1);
        let long = format!("{}.bin filter=lfs", "a".repeat(MAX_PATTERN_BYTES));
        assert_eq!(LfsRules::parse(&long).rules.len(), 0);
        let classes = "[[:digit:]][[:alpha:]]*.bin filter=lfs";
        assert!(LfsRules::parse(classes).is_lfs("1a-x.bin"));
    }

    #[test]
    fn parsing_is_cheap() {
        // 1 MiB of distinct wildcard rules, the most `.gitattributes` a commit reads.
        let text: String = (0..60_000)
            .map(|i| format!("*.x{i}[ab]* filter=lfs\n"))
            .collect();
        let r = LfsRules::parse(&text);
        assert_eq!(r.rules.len(), 60_000);
        assert!(r.is_lfs("w.x59999b-1") && !r.is_lfs("w.y"));
    }
}
