//! Unified diffs (as the hub produces them) turned into rows for the coloured diff tables.

/// At most this many rows of one file's diff are shown; the rest is summarised.
pub const MAX_ROWS: usize = 3000;

/// One row of a diff table.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    /// `add`, `del`, `ctx`, `hunk` or `meta` (the CSS class of the row).
    pub kind: &'static str,
    /// Line number in the old file ("" when not applicable).
    pub old: String,
    /// Line number in the new file.
    pub new: String,
    /// The line's text without its `+`/`-`/` ` marker.
    pub text: String,
}

/// Parses a unified diff into at most [`MAX_ROWS`] rows (and at most `max_rows`). File
/// headers (`diff --git`, `---`, `+++`, `index`) are skipped. Returns the rows and whether some
/// were left out.
pub fn parse_patch(patch: &str, max_rows: usize) -> (Vec<DiffRow>, bool) {
    let limit = max_rows.min(MAX_ROWS);
    let mut rows = Vec::new();
    let (mut old, mut new) = (0u64, 0u64);
    let mut in_hunk = false;
    for line in patch.lines() {
        if rows.len() >= limit {
            return (rows, true);
        }
        if let Some(header) = line.strip_prefix("@@") {
            let (o, n) = hunk_starts(header);
            old = o;
            new = n;
            in_hunk = true;
            rows.push(row("hunk", String::new(), String::new(), line));
            continue;
        }
        if !in_hunk {
            continue;
        }
        match line.as_bytes().first() {
            Some(b'+') => {
                rows.push(row("add", String::new(), new.to_string(), &line[1..]));
                new += 1;
            }
            Some(b'-') => {
                rows.push(row("del", old.to_string(), String::new(), &line[1..]));
                old += 1;
            }
            Some(b'\\') => rows.push(row("meta", String::new(), String::new(), line)),
            Some(b' ') | None => {
                let text = line.get(1..).unwrap_or("");
                rows.push(row("ctx", old.to_string(), new.to_string(), text));
                old += 1;
                new += 1;
            }
            // A new file header inside a multi-file patch.
            Some(_) => in_hunk = false,
        }
    }
    (rows, false)
}

fn row(kind: &'static str, old: String, new: String, text: &str) -> DiffRow {
    DiffRow {
        kind,
        old,
        new,
        text: text.to_string(),
    }
}

/// The starting line numbers of `@@ -a,b +c,d @@`.
fn hunk_starts(header: &str) -> (u64, u64) {
    let mut old = 1;
    let mut new = 1;
    for part in header.split_whitespace() {
        let number = |p: &str| p.split(',').next().and_then(|n| n.parse::<u64>().ok());
        if let Some(o) = part.strip_prefix('-').and_then(number) {
            old = o;
        } else if let Some(n) = part.strip_prefix('+').and_then(number) {
            new = n;
        }
    }
    (old, new)
}

/// Counts added and removed lines of a patch.
pub fn stats(rows: &[DiffRow]) -> (usize, usize) {
    let added = rows.iter().filter(|r| r.kind == "add").count();
    let removed = rows.iter().filter(|r| r.kind == "del").count();
    (added, removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hunks_with_line_numbers() {
        let patch =
            "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\\ No newline at end of file\n";
        let (rows, cut) = parse_patch(patch, MAX_ROWS);
        assert!(!cut);
        let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["hunk", "ctx", "del", "add", "ctx", "meta"]);
        assert_eq!(rows[2].old, "2");
        assert_eq!(rows[3].new, "2");
        assert_eq!(rows[4].old, "3");
        assert_eq!(rows[4].new, "3");
        assert_eq!(stats(&rows), (1, 1));
    }

    #[test]
    fn odd_headers_do_not_panic() {
        let (rows, _) = parse_patch("@@ garbage @@\n+x\n", MAX_ROWS);
        assert_eq!(rows[1].new, "1");
        let (rows, _) = parse_patch("no hunk at all\n", MAX_ROWS);
        assert!(rows.is_empty());
        let (rows, cut) = parse_patch("@@ -1,3 +1,3 @@\n a\n b\n c\n", 2);
        assert_eq!((rows.len(), cut), (2, true));
    }
}
