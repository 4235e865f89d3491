//! Reconstruction planning: which chunk ranges of which xorbs make up a byte range of a file,
//! which physical byte ranges to fetch, and the JSON answers of `GET /v1|v2/reconstructions`.
//!
//! Planning (§3.4.6 of `docs/xet.md`): keep the terms overlapping the inclusive byte range
//! `[a, b]`; in the first kept term drop the leading whole chunks that end at or before `a`
//! (the remainder of `a` becomes `offset_into_first_range`); in the last drop the trailing chunks
//! that start after `b`; recompute each shortened term's `unpacked_length`. Then, per xorb, merge
//! the kept chunk ranges that overlap or touch (never across a gap) and map each merged range to
//! the physical bytes to fetch. hf_xet requires that every term's chunk range lies inside one
//! fetch entry, which merging preserves.
//!
//! The same plan serves Wharf's own reads (resolve of a Xet-only file): see
//! [`Plan::emit_windows`].

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Result, XetError};
use crate::hash::XetHash;
use crate::shard::Term;
use crate::xorb::ChunkTable;

/// One kept (possibly shortened) term and its physical byte range in the xorb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedTerm {
    pub term: Term,
    /// Physical bytes of the term's chunks, end inclusive.
    pub bytes: (u64, u64),
}

/// One fetch: a merged chunk range of one xorb and its physical bytes (end inclusive). Sign one
/// URL per fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetch {
    pub xorb: XetHash,
    /// Chunk indices, end exclusive.
    pub chunks: (u32, u32),
    /// Physical byte range, end inclusive.
    pub bytes: (u64, u64),
}

/// The answer to "which data makes up bytes `[a, b]` of this file".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Size of the whole file.
    pub file_size: u64,
    /// The satisfied range, inclusive and clamped to the file (`(0, 0)` with no terms for an
    /// empty file read without a range).
    pub range: (u64, u64),
    /// Bytes of the first term's (shortened) output to skip.
    pub offset_into_first_range: u64,
    pub terms: Vec<PlannedTerm>,
    /// Merged fetches, grouped by xorb in order of first use, then by chunk start.
    pub fetches: Vec<Fetch>,
}

impl Plan {
    /// Number of bytes the range holds (`Content-Length`).
    pub fn content_length(&self) -> u64 {
        if self.terms.is_empty() {
            0
        } else {
            self.range.1 - self.range.0 + 1
        }
    }

    /// For a server-side read: per kept term, `(skip, take)` — of the term's decoded output,
    /// skip the first `skip` bytes, then emit `take` bytes. Walking the terms in order with these
    /// windows yields exactly [`content_length`](Plan::content_length) bytes.
    pub fn emit_windows(&self) -> Vec<(u64, u64)> {
        let mut remaining = self.content_length();
        let mut out = Vec::with_capacity(self.terms.len());
        for (k, t) in self.terms.iter().enumerate() {
            let len = u64::from(t.term.raw_len);
            let skip = if k == 0 {
                self.offset_into_first_range.min(len)
            } else {
                0
            };
            let take = (len - skip).min(remaining);
            remaining -= take;
            out.push((skip, take));
        }
        out
    }
}

/// The distinct xorbs whose chunk tables [`plan`] needs for this range, in order of first use:
/// load only these (a ranged read of a large file touches a few terms).
pub fn required_xorbs(terms: &[Term], range: Option<(u64, Option<u64>)>) -> Result<Vec<XetHash>> {
    let size = file_size(terms);
    let Some((a, b)) = clamp(size, range)? else {
        return Ok(Vec::new());
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut offset = 0u64;
    for t in terms {
        let len = u64::from(t.raw_len);
        if offset <= b && offset + len > a && seen.insert(t.xorb) {
            out.push(t.xorb);
        }
        offset += len;
    }
    Ok(out)
}

fn file_size(terms: &[Term]) -> u64 {
    terms.iter().map(|t| u64::from(t.raw_len)).sum()
}

/// Clamps a requested range (`start`, optional inclusive `end`) to a file of `size` bytes.
/// `None` means "nothing to read" (an empty file without a range).
fn clamp(size: u64, range: Option<(u64, Option<u64>)>) -> Result<Option<(u64, u64)>> {
    match range {
        None if size == 0 => Ok(None),
        None => Ok(Some((0, size - 1))),
        Some((start, end)) => {
            if let Some(end) = end
                && end < start
            {
                return Err(XetError::BadRange);
            }
            if start >= size {
                return Err(XetError::RangeNotSatisfiable { size });
            }
            let last = end.unwrap_or(u64::MAX).min(size - 1);
            Ok(Some((start, last)))
        }
    }
}

/// Plans the reconstruction of bytes `range` (start, optional inclusive end; `None` = whole
/// file) of the file made of `terms`. `tables` must hold the chunk table of every xorb returned
/// by [`required_xorbs`] for the same range.
///
/// Errors: `BadRange` (end before start), `RangeNotSatisfiable` (start ≥ size), and `Corrupt`
/// when a term disagrees with its xorb's table (bad indices or length: a fault in stored data).
pub fn plan(
    terms: &[Term],
    tables: &HashMap<XetHash, ChunkTable>,
    range: Option<(u64, Option<u64>)>,
) -> Result<Plan> {
    let size = file_size(terms);
    let Some((a, b)) = clamp(size, range)? else {
        return Ok(Plan {
            file_size: 0,
            range: (0, 0),
            offset_into_first_range: 0,
            terms: Vec::new(),
            fetches: Vec::new(),
        });
    };

    let mut kept: Vec<PlannedTerm> = Vec::new();
    let mut offset_into_first_range = 0;
    let mut offset = 0u64; // file offset where the current term starts
    for t in terms {
        let len = u64::from(t.raw_len);
        let term_start = offset;
        offset += len;
        if term_start > b || term_start + len <= a {
            continue;
        }
        let table = tables.get(&t.xorb).ok_or_else(|| {
            XetError::Internal(format!("no chunk table loaded for xorb {}", t.xorb))
        })?;
        let mismatch =
            || XetError::corrupt(format!("term of xorb {} disagrees with its table", t.xorb));
        if table.raw_len(t.start, t.end).map_err(|_| mismatch())? != len {
            return Err(mismatch());
        }
        let base = table.raw_start(t.start)?; // raw offset of the term's first chunk in the xorb

        // First chunk: the last one starting at or before `a` (when `a` falls in this term).
        let mut first = t.start;
        if kept.is_empty() && a > term_start {
            let want = base + (a - term_start);
            while first + 1 < t.end && table.raw_start(first + 1)? <= want {
                first += 1;
            }
            offset_into_first_range = want - table.raw_start(first)?;
        }
        // End chunk (exclusive): just past the chunk holding `b` (when `b` falls in this term).
        let mut end = t.end;
        if b < term_start + len - 1 {
            let want = base + (b - term_start);
            while end - 1 > first && table.raw_start(end - 1)? > want {
                end -= 1;
            }
        }
        let raw_len = table.raw_len(first, end)?;
        kept.push(PlannedTerm {
            term: Term {
                xorb: t.xorb,
                start: first,
                end,
                // ≤ the original term's length, which is a u32.
                raw_len: raw_len as u32,
            },
            bytes: table.physical_range(first, end)?,
        });
    }

    let fetches = merge_fetches(&kept, tables)?;
    Ok(Plan {
        file_size: size,
        range: (a, b),
        offset_into_first_range,
        terms: kept,
        fetches,
    })
}

/// Per xorb (in order of first use), the union of the kept chunk ranges, merging ranges that
/// overlap or touch.
fn merge_fetches(
    kept: &[PlannedTerm],
    tables: &HashMap<XetHash, ChunkTable>,
) -> Result<Vec<Fetch>> {
    let mut order: Vec<XetHash> = Vec::new();
    let mut ranges: HashMap<XetHash, Vec<(u32, u32)>> = HashMap::new();
    for k in kept {
        let entry = ranges.entry(k.term.xorb).or_insert_with(|| {
            order.push(k.term.xorb);
            Vec::new()
        });
        entry.push((k.term.start, k.term.end));
    }
    let mut fetches = Vec::new();
    for xorb in order {
        let Some(mut rs) = ranges.remove(&xorb) else {
            continue;
        };
        let table = tables
            .get(&xorb)
            .ok_or_else(|| XetError::Internal(format!("no chunk table loaded for xorb {xorb}")))?;
        rs.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(rs.len());
        for (s, e) in rs {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        for (s, e) in merged {
            fetches.push(Fetch {
                xorb,
                chunks: (s, e),
                bytes: table.physical_range(s, e)?,
            });
        }
    }
    Ok(fetches)
}

// ---------------------------------------------------------------------------------------------
// JSON answers (field names as hf_xet's `cas_types` expect them)

/// `{"start": …, "end": …}`: chunk indices (end exclusive) or bytes (end inclusive), by context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonRange {
    pub start: u64,
    pub end: u64,
}

/// `XorbReconstructionTerm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconstructionTerm {
    pub hash: XetHash,
    pub unpacked_length: u32,
    /// Chunk indices, end exclusive.
    pub range: JsonRange,
}

/// `XorbReconstructionFetchInfo` (v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchInfoV1 {
    /// Chunk indices, end exclusive.
    pub range: JsonRange,
    pub url: String,
    /// Physical bytes, end inclusive: the `Range` header the client sends.
    pub url_range: JsonRange,
}

/// `QueryReconstructionResponse` (v1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconstructionV1 {
    pub offset_into_first_range: u64,
    pub terms: Vec<ReconstructionTerm>,
    pub fetch_info: BTreeMap<XetHash, Vec<FetchInfoV1>>,
}

/// `XorbRangeDescriptor` (v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDescriptor {
    /// Chunk indices, end exclusive.
    pub chunks: JsonRange,
    /// Physical bytes, end inclusive.
    pub bytes: JsonRange,
}

/// `XorbMultiRangeFetch` (v2). Wharf always puts exactly one range in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRangeFetch {
    pub url: String,
    pub ranges: Vec<RangeDescriptor>,
}

/// `QueryReconstructionResponseV2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconstructionV2 {
    pub offset_into_first_range: u64,
    pub terms: Vec<ReconstructionTerm>,
    pub xorbs: BTreeMap<XetHash, Vec<MultiRangeFetch>>,
}

fn json_terms(plan: &Plan) -> Vec<ReconstructionTerm> {
    plan.terms
        .iter()
        .map(|t| ReconstructionTerm {
            hash: t.term.xorb,
            unpacked_length: t.term.raw_len,
            range: JsonRange {
                start: u64::from(t.term.start),
                end: u64::from(t.term.end),
            },
        })
        .collect()
}

impl ReconstructionV1 {
    /// Builds the v1 answer; `sign(xorb, (first byte, last byte))` returns the fetch URL.
    pub fn from_plan(plan: &Plan, mut sign: impl FnMut(&XetHash, (u64, u64)) -> String) -> Self {
        let mut fetch_info: BTreeMap<XetHash, Vec<FetchInfoV1>> = BTreeMap::new();
        for f in &plan.fetches {
            fetch_info.entry(f.xorb).or_default().push(FetchInfoV1 {
                range: JsonRange {
                    start: u64::from(f.chunks.0),
                    end: u64::from(f.chunks.1),
                },
                url: sign(&f.xorb, f.bytes),
                url_range: JsonRange {
                    start: f.bytes.0,
                    end: f.bytes.1,
                },
            });
        }
        ReconstructionV1 {
            offset_into_first_range: plan.offset_into_first_range,
            terms: json_terms(plan),
            fetch_info,
        }
    }
}

impl ReconstructionV2 {
    /// Builds the v2 answer; `sign(xorb, (first byte, last byte))` returns the fetch URL.
    pub fn from_plan(plan: &Plan, mut sign: impl FnMut(&XetHash, (u64, u64)) -> String) -> Self {
        let mut xorbs: BTreeMap<XetHash, Vec<MultiRangeFetch>> = BTreeMap::new();
        for f in &plan.fetches {
            xorbs.entry(f.xorb).or_default().push(MultiRangeFetch {
                url: sign(&f.xorb, f.bytes),
                ranges: vec![RangeDescriptor {
                    chunks: JsonRange {
                        start: u64::from(f.chunks.0),
                        end: u64::from(f.chunks.1),
                    },
                    bytes: JsonRange {
                        start: f.bytes.0,
                        end: f.bytes.1,
                    },
                }],
            });
        }
        ReconstructionV2 {
            offset_into_first_range: plan.offset_into_first_range,
            terms: json_terms(plan),
            xorbs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xet_core_structures::merklehash::compute_data_hash;

    fn h(name: &str) -> XetHash {
        XetHash::from_merkle(compute_data_hash(name.as_bytes()))
    }

    /// Xorb X: 4 chunks of raw 100, 200, 300, 400 (physical +8 header + 50/100/150/200 payload).
    /// Xorb Y: 2 chunks of raw 1000, 1000.
    fn tables() -> HashMap<XetHash, ChunkTable> {
        let mut m = HashMap::new();
        m.insert(
            h("x"),
            ChunkTable::new(vec![(58, 100), (166, 300), (324, 600), (532, 1000)]).expect("x"),
        );
        m.insert(
            h("y"),
            ChunkTable::new(vec![(1008, 1000), (2016, 2000)]).expect("y"),
        );
        m
    }

    fn term(x: &str, start: u32, end: u32, raw_len: u32) -> Term {
        Term {
            xorb: h(x),
            start,
            end,
            raw_len,
        }
    }

    /// File: X[0,2) (300) | Y[0,2) (2000) | X[2,4) (700)  → size 3000.
    fn file() -> Vec<Term> {
        vec![
            term("x", 0, 2, 300),
            term("y", 0, 2, 2000),
            term("x", 2, 4, 700),
        ]
    }

    #[test]
    fn full_file() {
        let p = plan(&file(), &tables(), None).expect("plan");
        assert_eq!(p.file_size, 3000);
        assert_eq!(p.range, (0, 2999));
        assert_eq!(p.content_length(), 3000);
        assert_eq!(p.offset_into_first_range, 0);
        assert_eq!(p.terms.len(), 3);
        // X[0,2) and X[2,4) touch: one fetch of the whole xorb.
        assert_eq!(
            p.fetches,
            vec![
                Fetch {
                    xorb: h("x"),
                    chunks: (0, 4),
                    bytes: (0, 531)
                },
                Fetch {
                    xorb: h("y"),
                    chunks: (0, 2),
                    bytes: (0, 2015)
                },
            ]
        );
        // The client's own range header form gives the same plan.
        assert_eq!(
            plan(&file(), &tables(), Some((0, Some(2999)))).expect("plan"),
            p
        );
        assert_eq!(
            plan(&file(), &tables(), Some((0, Some(1 << 40)))).expect("plan"),
            p
        );
        assert_eq!(plan(&file(), &tables(), Some((0, None))).expect("plan"), p);
    }

    #[test]
    fn range_inside_one_chunk() {
        // Bytes 120..=150 are in chunk 1 of X (raw 100..300).
        let p = plan(&file(), &tables(), Some((120, Some(150)))).expect("plan");
        assert_eq!(p.terms.len(), 1);
        assert_eq!(p.terms[0].term, term("x", 1, 2, 200));
        assert_eq!(p.terms[0].bytes, (58, 165));
        assert_eq!(p.offset_into_first_range, 20);
        assert_eq!(p.content_length(), 31);
        assert_eq!(p.emit_windows(), vec![(20, 31)]);
        assert_eq!(
            p.fetches,
            vec![Fetch {
                xorb: h("x"),
                chunks: (1, 2),
                bytes: (58, 165)
            }]
        );
    }

    #[test]
    fn range_across_terms_shortens_both_ends() {
        // 150..=2450: starts in X chunk 1, spans Y, ends in X chunk 2 (file 2300..2600).
        let p = plan(&file(), &tables(), Some((150, Some(2450)))).expect("plan");
        assert_eq!(
            p.terms.iter().map(|t| t.term).collect::<Vec<_>>(),
            vec![
                term("x", 1, 2, 200),
                term("y", 0, 2, 2000),
                term("x", 2, 3, 300)
            ]
        );
        assert_eq!(p.offset_into_first_range, 50);
        assert_eq!(p.content_length(), 2301);
        // X[1,2) and X[2,3) touch → merged; Y separate.
        assert_eq!(
            p.fetches,
            vec![
                Fetch {
                    xorb: h("x"),
                    chunks: (1, 3),
                    bytes: (58, 323)
                },
                Fetch {
                    xorb: h("y"),
                    chunks: (0, 2),
                    bytes: (0, 2015)
                },
            ]
        );
        let windows = p.emit_windows();
        assert_eq!(windows, vec![(50, 150), (0, 2000), (0, 151)]);
        assert_eq!(windows.iter().map(|w| w.1).sum::<u64>(), p.content_length());
    }

    #[test]
    fn range_on_chunk_boundaries() {
        // Exactly chunk 1 of X: 100..=299.
        let p = plan(&file(), &tables(), Some((100, Some(299)))).expect("plan");
        assert_eq!(p.terms.len(), 1);
        assert_eq!(p.terms[0].term, term("x", 1, 2, 200));
        assert_eq!(p.offset_into_first_range, 0);
        // First byte of the second term only.
        let p = plan(&file(), &tables(), Some((300, Some(300)))).expect("plan");
        assert_eq!(p.terms.len(), 1);
        assert_eq!(p.terms[0].term, term("y", 0, 1, 1000));
        assert_eq!(p.content_length(), 1);
        // Last byte of the file.
        let p = plan(&file(), &tables(), Some((2999, None))).expect("plan");
        assert_eq!(p.terms[0].term, term("x", 3, 4, 400));
        assert_eq!(p.offset_into_first_range, 399);
        assert_eq!(p.content_length(), 1);
    }

    #[test]
    fn repeated_xorb_with_a_gap_gives_two_fetches() {
        let terms = vec![
            term("x", 0, 1, 100),
            term("y", 0, 1, 1000),
            term("x", 2, 3, 300),
        ];
        let p = plan(&terms, &tables(), None).expect("plan");
        assert_eq!(
            p.fetches,
            vec![
                Fetch {
                    xorb: h("x"),
                    chunks: (0, 1),
                    bytes: (0, 57)
                },
                Fetch {
                    xorb: h("x"),
                    chunks: (2, 3),
                    bytes: (166, 323)
                },
                Fetch {
                    xorb: h("y"),
                    chunks: (0, 1),
                    bytes: (0, 1007)
                },
            ]
        );
        // Overlapping ranges of the same xorb merge.
        let terms = vec![term("x", 0, 3, 600), term("x", 1, 4, 900)];
        let p = plan(&terms, &tables(), None).expect("plan");
        assert_eq!(
            p.fetches,
            vec![Fetch {
                xorb: h("x"),
                chunks: (0, 4),
                bytes: (0, 531)
            }]
        );
    }

    #[test]
    fn unsatisfiable_and_bad_ranges() {
        assert_eq!(
            plan(&file(), &tables(), Some((3000, None))),
            Err(XetError::RangeNotSatisfiable { size: 3000 })
        );
        assert_eq!(
            plan(&file(), &tables(), Some((u64::MAX, Some(u64::MAX)))),
            Err(XetError::RangeNotSatisfiable { size: 3000 })
        );
        assert_eq!(
            plan(&file(), &tables(), Some((10, Some(9)))),
            Err(XetError::BadRange)
        );
        // Empty file: whole read is empty, any range is unsatisfiable.
        let p = plan(&[], &tables(), None).expect("plan");
        assert_eq!(p.content_length(), 0);
        assert!(p.terms.is_empty() && p.fetches.is_empty());
        assert_eq!(
            plan(&[], &tables(), Some((0, None))),
            Err(XetError::RangeNotSatisfiable { size: 0 })
        );
    }

    #[test]
    fn inconsistent_terms_are_errors_not_panics() {
        for bad in [
            term("x", 0, 9, 300),
            term("x", 3, 2, 300),
            term("x", u32::MAX, u32::MAX, 300),
            term("x", 0, 2, 301),
            term("z", 0, 1, 10),
        ] {
            assert!(plan(&[bad], &tables(), None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn required_xorbs_only_for_the_range() {
        assert_eq!(
            required_xorbs(&file(), None).expect("x"),
            vec![h("x"), h("y")]
        );
        assert_eq!(
            required_xorbs(&file(), Some((400, Some(500)))).expect("x"),
            vec![h("y")]
        );
        // Planning a ranged read needs only those tables.
        let mut only_y = tables();
        only_y.remove(&h("x"));
        assert!(plan(&file(), &only_y, Some((400, Some(500)))).is_ok());
    }

    #[test]
    fn json_shapes() {
        let p = plan(&file(), &tables(), Some((150, Some(2450)))).expect("plan");
        let sign = |x: &XetHash, (a, b): (u64, u64)| format!("https://w/fetch/{x}?r={a}-{b}");
        let v2 = serde_json::to_value(ReconstructionV2::from_plan(&p, sign)).expect("json");
        assert_eq!(v2["offset_into_first_range"], 50);
        assert_eq!(v2["terms"][0]["hash"], h("x").to_string());
        assert_eq!(v2["terms"][0]["unpacked_length"], 200);
        assert_eq!(
            v2["terms"][0]["range"],
            serde_json::json!({"start": 1, "end": 2})
        );
        let xe = &v2["xorbs"][h("x").to_string()][0];
        assert_eq!(xe["url"], format!("https://w/fetch/{}?r=58-323", h("x")));
        assert_eq!(
            xe["ranges"][0]["chunks"],
            serde_json::json!({"start": 1, "end": 3})
        );
        assert_eq!(
            xe["ranges"][0]["bytes"],
            serde_json::json!({"start": 58, "end": 323})
        );

        let v1 = serde_json::to_value(ReconstructionV1::from_plan(&p, sign)).expect("json");
        let fe = &v1["fetch_info"][h("y").to_string()][0];
        assert_eq!(fe["range"], serde_json::json!({"start": 0, "end": 2}));
        assert_eq!(
            fe["url_range"],
            serde_json::json!({"start": 0, "end": 2015})
        );
        assert!(fe["url"].as_str().expect("url").ends_with("r=0-2015"));
        // And back.
        let back: ReconstructionV2 = serde_json::from_value(v2).expect("parse");
        assert_eq!(back.terms.len(), 3);
    }
}
