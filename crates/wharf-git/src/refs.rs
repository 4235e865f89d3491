//! Revisions and refs: resolving names to commits, listing and moving refs.

use std::collections::HashSet;

use gix::ObjectId;
use gix::objs::Kind;
use gix::refs::file::transaction::prepare::{MustNotExist, ReferenceOutOfDate};
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};
use wharf_core::{Error, Result};

use crate::odb::{self, internal, parse_full_oid, peel_to_commit};
use crate::{GitRepo, RefExpect, RefInfo, Refs, durable, is_valid_ref_name};

/// Shortest abbreviation we try to disambiguate, as git does.
const MIN_PREFIX_LEN: usize = 4;

impl GitRepo {
    /// Resolves a revision (sha, branch, tag, full ref name, unique sha prefix) to a commit sha.
    pub fn resolve(&self, rev: &str) -> Result<Option<String>> {
        let repo = self.repo();
        if let Some(id) = parse_full_oid(rev)
            && let Some(commit) = peel_to_commit(&repo, id)?
        {
            return Ok(Some(commit.to_string()));
        }
        if is_valid_ref_name(rev) {
            let mut candidates = vec![format!("refs/heads/{rev}"), format!("refs/tags/{rev}")];
            if rev.starts_with("refs/") {
                candidates.push(rev.to_string());
            }
            for full in candidates {
                if let Some(commit) = ref_commit(&repo, &full)? {
                    return Ok(Some(commit.to_string()));
                }
            }
        }
        Ok(unique_commit_prefix(&repo, rev)?.map(|id| id.to_string()))
    }

    /// The commit a full ref points to (peeled), None if the ref is missing.
    pub fn ref_target(&self, full_ref: &str) -> Result<Option<String>> {
        Ok(ref_commit(&self.repo(), full_ref)?.map(|id| id.to_string()))
    }

    /// Branches, tags, pull requests and conversion refs, each sorted by name.
    pub fn refs(&self) -> Result<Refs> {
        let repo = self.repo();
        let platform = repo.references().map_err(internal)?;
        let mut out = Refs::default();
        for reference in platform.all().map_err(internal)? {
            let mut reference = reference.map_err(internal)?;
            let Ok(full_ref) = std::str::from_utf8(reference.name().as_bstr()).map(str::to_owned)
            else {
                continue;
            };
            let Some((list, name)) = classify(&mut out, &full_ref) else {
                continue;
            };
            let Ok(id) = reference.follow_to_object() else {
                tracing::warn!(full_ref, "skipping a ref that cannot be peeled");
                continue;
            };
            if let Some(commit) = peel_to_commit(&repo, id.detach())? {
                list.push(RefInfo {
                    name,
                    full_ref,
                    target_commit: commit.to_string(),
                });
            }
        }
        for list in [
            &mut out.branches,
            &mut out.tags,
            &mut out.pull_requests,
            &mut out.converts,
        ] {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
    }

    /// Creates or moves `full_ref` to the commit `target`, if the ref's current state matches `expect`.
    pub fn set_ref(&self, full_ref: &str, target: &str, expect: RefExpect<'_>) -> Result<()> {
        let name = full_ref_name(full_ref)?;
        let repo = self.repo();
        let id = odb::commit_id(&repo, target)?;
        let expected = match expect {
            RefExpect::MustNotExist => PreviousValue::MustNotExist,
            RefExpect::Any => PreviousValue::Any,
            RefExpect::MustEqual(old) => {
                let old = parse_full_oid(old).ok_or_else(Error::stale_parent)?;
                PreviousValue::MustExistAndMatch(Target::Object(old))
            }
        };
        update_ref(&repo, name, id, expected, "wharf: set ref").map_err(|f| match f {
            RefFailure::Exists => Error::conflict(format!("Reference {full_ref} already exists")),
            RefFailure::Stale => Error::stale_parent(),
            RefFailure::Fault(e) => e,
        })?;
        durable::sync_ref(self.git_dir(), full_ref)
    }

    /// Deletes a ref (loose and packed); false if it did not exist.
    pub fn delete_ref(&self, full_ref: &str) -> Result<bool> {
        let name = full_ref_name(full_ref)?;
        let repo = self.repo();
        if find_exact(&repo, full_ref)?.is_none() {
            return Ok(false);
        }
        let edit = RefEdit {
            change: Change::Delete {
                expected: PreviousValue::MustExist,
                log: RefLog::AndReference,
            },
            name,
            deref: false,
        };
        match repo.edit_reference(edit) {
            Ok(_) => {}
            // Someone else deleted it between our look and our lock.
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(internal(e)),
        }
        durable::sync_ref(self.git_dir(), full_ref)?;
        Ok(true)
    }
}

/// Why a compare-and-swap on a ref did not happen.
pub(crate) enum RefFailure {
    /// The ref moved (or appeared, or vanished) since the caller looked, or another writer holds its lock.
    Stale,
    /// The ref exists although it must not.
    Exists,
    Fault(Error),
}

/// Moves `name` to `new` through a git-compatible `.lock` file, checking `expected` under the lock.
pub(crate) fn update_ref(
    repo: &gix::Repository,
    name: FullName,
    new: ObjectId,
    expected: PreviousValue,
    reason: &str,
) -> std::result::Result<(), RefFailure> {
    let log = LogChange {
        mode: RefLog::AndReference,
        force_create_reflog: false,
        message: reason.into(),
    };
    let edit = RefEdit {
        change: Change::Update {
            log,
            expected,
            new: Target::Object(new),
        },
        name,
        deref: false,
    };
    // Reflogs are off in our repositories; the committer only matters if an admin turns them on.
    let committer = gix::actor::Signature {
        name: "wharf".into(),
        email: "wharf@localhost".into(),
        time: gix::date::Time::new(wharf_core::time::now_ms().div_euclid(1000), 0),
    };
    let must_not_exist = matches!(expected_of(&edit), Some(PreviousValue::MustNotExist));
    let mut time_buf = gix::date::parse::TimeBuf::default();
    let applied = repo
        .edit_references_as(Some(edit), Some(committer.to_ref(&mut time_buf)))
        .map_err(classify_ref_error)?;
    // gix accepts MustNotExist when the ref already holds exactly the new value (nothing is
    // written then); it reports the value it found, which for us still means "exists".
    if must_not_exist && applied.iter().any(|e| e.change.previous_value().is_some()) {
        return Err(RefFailure::Exists);
    }
    Ok(())
}

fn expected_of(edit: &RefEdit) -> Option<&PreviousValue> {
    match &edit.change {
        Change::Update { expected, .. } => Some(expected),
        Change::Delete { .. } => None,
    }
}

fn classify_ref_error(e: gix::Error) -> RefFailure {
    if e.downcast_any_ref::<MustNotExist>().is_some() {
        return RefFailure::Exists;
    }
    if e.downcast_any_ref::<ReferenceOutOfDate>().is_some() || e.is_not_found() {
        return RefFailure::Stale;
    }
    if e.is_retryable() {
        // The lock is held by a concurrent push or commit (or left behind by a crash, which
        // git reports the same way): the branch is being moved under us.
        tracing::warn!(error = ?e, "ref lock busy");
        return RefFailure::Stale;
    }
    RefFailure::Fault(internal(e))
}

/// Validates a full ref name for writing.
pub(crate) fn full_ref_name(full_ref: &str) -> Result<FullName> {
    let invalid = || Error::unprocessable(format!("Invalid reference name: {full_ref}"));
    if !full_ref.starts_with("refs/") || !is_valid_ref_name(full_ref) {
        return Err(invalid());
    }
    FullName::try_from(full_ref).map_err(|_| invalid())
}

/// The reference stored under exactly `full` (gix would otherwise also try DWIM spellings).
fn find_exact<'r>(repo: &'r gix::Repository, full: &str) -> Result<Option<gix::Reference<'r>>> {
    if !full.starts_with("refs/") || !is_valid_ref_name(full) || FullName::try_from(full).is_err() {
        return Ok(None);
    }
    let found = repo.try_find_reference(full).map_err(internal)?;
    Ok(found.filter(|r| r.name().as_bstr() == full.as_bytes()))
}

/// The commit a full ref points to, peeling symbolic refs and tags; None if absent or not a commit.
fn ref_commit(repo: &gix::Repository, full: &str) -> Result<Option<ObjectId>> {
    let Some(mut reference) = find_exact(repo, full)? else {
        return Ok(None);
    };
    let id = reference.follow_to_object().map_err(internal)?;
    peel_to_commit(repo, id.detach())
}

/// The single commit whose id starts with `prefix`; None if there is none, or several.
fn unique_commit_prefix(repo: &gix::Repository, prefix: &str) -> Result<Option<ObjectId>> {
    let len = prefix.len();
    if !(MIN_PREFIX_LEN..40).contains(&len) || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Ok(prefix) = gix::hash::Prefix::from_hex(&prefix.to_ascii_lowercase()) else {
        return Ok(None);
    };
    let mut candidates = HashSet::new();
    repo.objects
        .lookup_prefix(prefix, Some(&mut candidates))
        .map_err(internal)?;
    let mut commits = Vec::new();
    for id in candidates {
        if odb::kind_of(repo, id)? == Some(Kind::Commit) {
            commits.push(id);
        }
    }
    Ok(if commits.len() == 1 {
        commits.pop()
    } else {
        None
    })
}

/// Which list a ref belongs to, and its display name there.
fn classify<'o>(out: &'o mut Refs, full_ref: &str) -> Option<(&'o mut Vec<RefInfo>, String)> {
    if let Some(short) = full_ref.strip_prefix("refs/heads/") {
        Some((&mut out.branches, short.to_string()))
    } else if let Some(short) = full_ref.strip_prefix("refs/tags/") {
        Some((&mut out.tags, short.to_string()))
    } else if full_ref.starts_with("refs/pr/") {
        Some((&mut out.pull_requests, full_ref.to_string()))
    } else if full_ref.starts_with("refs/convert/") {
        Some((&mut out.converts, full_ref.to_string()))
    } else {
        None
    }
}
