//! Server-side commits: objects first (flushed), then a compare-and-swap on the ref (flushed).

use gix::ObjectId;
use gix::refs::Target;
use gix::refs::transaction::PreviousValue;
use wharf_core::{Error, Result};

use crate::editor::TreeEditor;
use crate::odb::{self, internal};
use crate::refs::{RefFailure, full_ref_name, update_ref};
use crate::{GitRepo, Signature, TreeChange, durable};

impl GitRepo {
    /// Stores `data` as a blob (flushed to disk) and returns its id.
    pub fn write_blob(&self, data: &[u8]) -> Result<String> {
        let id = self.repo().write_blob(data).map_err(internal)?.detach();
        durable::sync_objects(self.objects_dir(), &[id])?;
        Ok(id.to_string())
    }

    /// Commits `changes` on top of `base` and moves `target_ref` from `base` to the new commit.
    ///
    /// The ref must currently be `base`; with `base = None` it must not exist. If the ref is
    /// missing while `base` is given, it is created (e.g. a new PR ref started from a branch).
    /// Otherwise a mismatch is `stale_parent()` and the ref is left untouched.
    pub fn commit(
        &self,
        target_ref: &str,
        base: Option<&str>,
        changes: Vec<TreeChange>,
        author: &Signature,
        message: &str,
    ) -> Result<String> {
        let name = full_ref_name(target_ref)?;
        let repo = self.repo();
        let parent = base.map(|sha| odb::commit_id(&repo, sha)).transpose()?;
        let base_tree = match parent {
            Some(id) => odb::commit_tree_and_parents(&repo, id)?.0,
            None => ObjectId::empty_tree(repo.object_hash()),
        };
        let (tree, mut written) = apply_changes(&repo, base_tree, changes)?;
        let commit = build_commit(tree, parent, author, message);
        let commit_id = repo.write_object(&commit).map_err(internal)?.detach();
        written.push(commit_id);
        // Objects must be on disk before any ref can name them.
        durable::sync_objects(self.objects_dir(), &written)?;
        let expected = match parent {
            Some(p) => PreviousValue::ExistingMustMatch(Target::Object(p)),
            None => PreviousValue::MustNotExist,
        };
        update_ref(&repo, name, commit_id, expected, "wharf: commit").map_err(|f| match f {
            RefFailure::Stale | RefFailure::Exists => Error::stale_parent(),
            RefFailure::Fault(e) => e,
        })?;
        durable::sync_ref(self.git_dir(), target_ref)?;
        Ok(commit_id.to_string())
    }
}

fn apply_changes(
    repo: &gix::Repository,
    base_tree: ObjectId,
    changes: Vec<TreeChange>,
) -> Result<(ObjectId, Vec<ObjectId>)> {
    let mut editor = TreeEditor::new(repo, base_tree)?;
    for change in changes {
        match change {
            TreeChange::Upsert { path, data } => editor.upsert(&path, &data)?,
            TreeChange::Delete { path } => editor.delete_file(&path)?,
            TreeChange::DeleteFolder { path } => editor.delete_folder(&path)?,
        }
    }
    editor.write()
}

fn build_commit(
    tree: ObjectId,
    parent: Option<ObjectId>,
    author: &Signature,
    message: &str,
) -> gix::objs::Commit {
    let signature = to_git_signature(author);
    gix::objs::Commit {
        tree,
        parents: parent.into_iter().collect(),
        author: signature.clone(),
        committer: signature,
        encoding: None,
        message: normalize_message(message).into(),
        extra_headers: Vec::new(),
    }
}

/// Git messages end with exactly one newline.
fn normalize_message(message: &str) -> String {
    format!("{}\n", message.trim_end())
}

/// A git signature cannot carry '<', '>' or line breaks in its name or email; drop them
/// rather than produce an object that fsck (and receive.fsckObjects on clones) rejects.
fn to_git_signature(sig: &Signature) -> gix::actor::Signature {
    let clean = |s: &str| -> String {
        let kept: String = s
            .chars()
            .filter(|c| !matches!(c, '<' | '>' | '\n' | '\r' | '\0'))
            .collect();
        kept.trim().to_string()
    };
    gix::actor::Signature {
        name: clean(&sig.name).into(),
        email: clean(&sig.email).into(),
        time: gix::date::Time::new(sig.time_ms.div_euclid(1000), 0),
    }
}
