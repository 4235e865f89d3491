//! Git LFS pointer files: the small text blob git stores in place of a large file.

/// An LFS pointer: the sha256 (lowercase hex) and size of the real content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsPointer {
    pub oid: String,
    pub size: u64,
}

/// Pointers are tiny; anything larger is certainly a regular file.
pub const MAX_POINTER_SIZE: u64 = 1024;

impl LfsPointer {
    /// Parses a pointer file; `None` when the bytes are not a valid v1 pointer.
    pub fn parse(data: &[u8]) -> Option<LfsPointer> {
        if data.len() as u64 > MAX_POINTER_SIZE {
            return None;
        }
        let text = std::str::from_utf8(data).ok()?;
        let mut lines = text.lines();
        let version = lines.next()?;
        if !version.starts_with("version https://git-lfs.github.com/spec/")
            && version != "version https://hawser.github.com/spec/v1"
        {
            return None;
        }
        let (mut oid, mut size) = (None, None);
        for line in lines {
            if let Some(rest) = line.strip_prefix("oid sha256:") {
                oid = Some(rest.to_string());
            } else if let Some(rest) = line.strip_prefix("size ") {
                size = rest.parse::<u64>().ok();
            }
        }
        let oid = oid?;
        if !is_sha256_hex(&oid) {
            return None;
        }
        Some(LfsPointer { oid, size: size? })
    }

    /// The canonical pointer text, exactly as git-lfs writes it.
    pub fn to_text(&self) -> String {
        format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
            self.oid, self.size
        )
    }
}

/// True for 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p = LfsPointer {
            oid: "a".repeat(64),
            size: 5000,
        };
        let text = p.to_text();
        assert_eq!(text.len(), 129);
        assert_eq!(LfsPointer::parse(text.as_bytes()), Some(p));
    }

    #[test]
    fn rejects_non_pointers() {
        assert_eq!(LfsPointer::parse(b"hello"), None);
        assert_eq!(
            LfsPointer::parse(
                b"version https://git-lfs.github.com/spec/v1\noid sha256:zz\nsize 1\n"
            ),
            None
        );
    }
}
