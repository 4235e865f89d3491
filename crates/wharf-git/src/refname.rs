//! Ref name rules of `git check-ref-format`, so names we accept are names git accepts.

/// A component becomes a file name plus ".lock"; stay below the usual 255-byte limit.
const MAX_COMPONENT_LEN: usize = 200;

/// True when `name` (a branch or tag short name, or a full ref name) is a valid git ref name.
pub fn is_valid_ref_name(name: &str) -> bool {
    if name.is_empty() || name == "@" || name.starts_with('-') {
        return false;
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return false;
    }
    if name.contains("..") || name.contains("//") || name.contains("@{") {
        return false;
    }
    if name.bytes().any(is_forbidden_byte) {
        return false;
    }
    name.split('/').all(is_valid_component)
}

fn is_forbidden_byte(b: u8) -> bool {
    b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b)
}

fn is_valid_component(c: &str) -> bool {
    !c.starts_with('.') && !c.ends_with(".lock") && c.len() <= MAX_COMPONENT_LEN
}

#[cfg(test)]
mod tests {
    use super::is_valid_ref_name;

    #[test]
    fn accepts_ordinary_names() {
        for name in [
            "main",
            "v1.0",
            "feature/x",
            "refs/pr/1",
            "refs/convert/parquet",
            "a-b_c",
            "ünï",
        ] {
            assert!(is_valid_ref_name(name), "{name}");
        }
    }

    #[test]
    fn rejects_what_git_rejects() {
        let bad = [
            "",
            "@",
            "-x",
            "/x",
            "x/",
            "x.",
            "a..b",
            "a//b",
            "a@{b",
            "a b",
            "a~b",
            "a^b",
            "a:b",
            "a?b",
            "a*b",
            "a[b",
            "a\\b",
            "a\0b",
            "a\tb",
            "x.lock",
            "a/.b",
            ".a",
            "a/b.lock/c",
            "\u{7f}",
        ];
        for name in bad {
            assert!(!is_valid_ref_name(name), "{name:?}");
        }
    }
}
