//! Property checks for the fuzz targets of this crate (`fuzz/fuzz_targets/`), shared with the
//! corpus replay in `tests/fuzz_corpus.rs`. Not part of Wharf's API. Each check panics when a
//! property fails.

use std::collections::BTreeMap;

use wharf_core::lfs_pointer::is_sha256_hex;

use crate::attributes::LfsRules;
use crate::batch::{Action, BatchObject, BatchRequest, BatchResponse, VerifyRequest};
use crate::signing::{Grant, Signer, TransferKind};

/// The batch and verify request bodies: parsing never panics, and for every object the Hub
/// would sign (sha256 oid, size ≥ 0) the signature verifies for that grant only; the response
/// built from the request serialises to JSON that parses back.
pub fn check_lfs_batch(data: &[u8]) {
    if let Ok(verify) = serde_json::from_slice::<VerifyRequest>(data) {
        check_signing(&verify.oid, verify.size);
    }
    let Ok(request) = serde_json::from_slice::<BatchRequest>(data) else {
        return;
    };
    let _ = (&request.operation, &request.transfers, &request.hash_algo);
    let _ = request.git_ref.as_ref().map(|r| &r.name);
    let mut objects = Vec::with_capacity(request.objects.len());
    for object in request.objects {
        check_signing(&object.oid, object.size);
        objects.push(answer(object.oid, object.size));
    }
    let response = BatchResponse {
        transfer: "basic",
        objects,
        hash_algo: "sha256",
    };
    let json = serde_json::to_vec(&response);
    assert!(json.is_ok(), "a batch response always serialises");
    let back = serde_json::from_slice::<serde_json::Value>(&json.unwrap_or_default());
    assert!(back.is_ok(), "and parses back");
}

/// What the Hub answers for one object: an upload action for a valid one, an error otherwise.
fn answer(oid: String, size: i64) -> BatchObject {
    if !is_sha256_hex(&oid) || size < 0 {
        return BatchObject::with_error(oid, size, 422, "Invalid object id or size");
    }
    let action = Action {
        href: format!("https://wharf.test/api/lfs/upload/1/{oid}/{size}"),
        header: BTreeMap::new(),
        expires_in: 3600,
    };
    BatchObject {
        oid,
        size,
        authenticated: Some(true),
        actions: BTreeMap::from([("upload", action)]),
        error: None,
    }
}

/// A signature binds the grant it was made for: it verifies for that grant and not for one
/// with another size, kind or principal, and a garbage signature never verifies.
fn check_signing(oid: &str, size: i64) {
    let Ok(size) = u64::try_from(size) else {
        return;
    };
    if !is_sha256_hex(oid) {
        return;
    }
    let signer = Signer::new(b"fuzz secret");
    let grant = Grant {
        kind: TransferKind::Upload,
        repo_id: 7,
        oid,
        size,
        expires: 1_000,
        principal: "7.-",
    };
    let sig = signer.sign(&grant);
    assert!(signer.verify(&grant, 999, &sig));
    assert!(!signer.verify(&grant, 1_001, &sig), "expired");
    let other_size = Grant {
        size: size.wrapping_add(1),
        ..grant
    };
    assert!(!signer.verify(&other_size, 999, &sig));
    let download = Grant {
        kind: TransferKind::Download,
        ..grant
    };
    assert!(!signer.verify(&download, 999, &sig));
    let someone_else = Grant {
        principal: "8.-",
        ..grant
    };
    assert!(!signer.verify(&someone_else, 999, &sig));
    assert!(!signer.verify(&grant, 999, oid));
}

/// `.gitattributes` rules: parsing and matching never panic, and rules appended after the
/// input decide for the paths they match (later lines win). One parse per input: compiling
/// globs is what costs.
pub fn check_gitattributes(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let first_line = text.lines().next().unwrap_or_default();
    let rules = LfsRules::parse(&format!(
        "{text}\n*.fuzzlfs filter=lfs\n*.fuzzoff filter=lfs\n*.fuzzoff -filter\n"
    ));
    for path in [
        first_line,
        "model.safetensors",
        "a/b/c.bin",
        "README.md",
        "",
    ] {
        let _ = rules.is_lfs(path);
    }
    assert!(rules.is_lfs("dir/x.fuzzlfs"), "a later rule wins");
    assert!(!rules.is_lfs("dir/x.fuzzoff"), "a later unset wins");
}
