//! git over smart HTTP: access checks around the git binary's own services, the push rules
//! enforced by the `pre-receive` hook (which runs while the pushed objects are still
//! quarantined, so a refused push leaves the repository exactly as it was), and re-indexing
//! after a push so the API shows what git wrote.

use crate::access::Need;
use crate::{Caller, Hub, RepoAddress, RepoHandle, blocking};
use crate::{blob_rules, push_trees};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::process::Command;
use wharf_core::lfs_pointer::MAX_POINTER_SIZE;
use wharf_core::{Error, Result, time::now_ms};
use wharf_git::transport::{self, RunningService, Service, ServiceCall};
use wharf_meta::MetaStore;

const ZERO_OID: &str = "0000000000000000000000000000000000000000";

/// The hook script; it calls back into this binary with the data folder.
fn hook_script(exe: &Path, data: &Path) -> String {
    format!(
        "#!/bin/sh\nexec '{}' --data '{}' hook pre-receive\n",
        exe.display(),
        data.display()
    )
}

/// Writes `{data}/hooks/pre-receive` (atomically) so receive-pack can run it.
pub(crate) fn install_hooks(data: &Path) -> Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = data.join("hooks");
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let data = std::fs::canonicalize(data)?;
    let tmp = dir.join("pre-receive.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(hook_script(&exe, &data).as_bytes())?;
        f.set_permissions(std::fs::Permissions::from_mode(0o755))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join("pre-receive"))?;
    Ok(dir)
}

impl Hub {
    fn service_call(
        &self,
        handle: &RepoHandle,
        service: Service,
        protocol: Option<String>,
        caller: &Caller,
    ) -> ServiceCall {
        let env = vec![
            ("WHARF_REPO_ID".to_string(), handle.repo.id.to_string()),
            (
                "WHARF_PUSHER".to_string(),
                caller.name().unwrap_or_default().to_string(),
            ),
        ];
        ServiceCall {
            git_dir: self.git_dir(handle),
            service,
            protocol,
            hooks_dir: Some(self.hooks_dir.clone()),
            env,
        }
    }

    fn need_for(service: Service) -> Need {
        match service {
            Service::UploadPack => Need::Download,
            Service::ReceivePack => Need::Write,
        }
    }

    /// `GET info/refs?service=…`.
    pub async fn git_advertise(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        service: Service,
        protocol: Option<String>,
    ) -> Result<Vec<u8>> {
        let handle = self.repo(caller, addr, Hub::need_for(service)).await?;
        transport::advertise(&self.service_call(&handle, service, protocol, caller)).await
    }

    /// `POST git-upload-pack`: streams the pack back.
    pub async fn git_upload_pack(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        protocol: Option<String>,
        body: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<RunningService> {
        let handle = self.repo(caller, addr, Need::Download).await?;
        transport::start(
            &self.service_call(&handle, Service::UploadPack, protocol, caller),
            body,
        )
    }

    /// `POST git-receive-pack`: runs the push (hook included), then re-indexes what moved.
    pub async fn git_receive_pack(
        self: &Arc<Self>,
        caller: &Caller,
        addr: &RepoAddress,
        protocol: Option<String>,
        body: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<Vec<u8>> {
        let handle = self.repo(caller, addr, Need::Write).await?;
        let before = self.ref_snapshot(&handle).await?;
        let running = transport::start(
            &self.service_call(&handle, Service::ReceivePack, protocol, caller),
            body,
        )?;
        let (output, exit) = running.collect().await?;
        if !exit.success {
            tracing::warn!(repo = %addr.id(), stderr = %exit.stderr.trim(), "git receive-pack failed");
        }
        let after = self.ref_snapshot(&handle).await?;
        self.after_push(&handle, &before, &after).await?;
        Ok(output)
    }

    async fn ref_snapshot(&self, handle: &RepoHandle) -> Result<HashMap<String, String>> {
        let git = handle.git.clone();
        let refs = blocking(move || git.refs()).await?;
        let all = refs
            .branches
            .into_iter()
            .chain(refs.tags)
            .chain(refs.pull_requests)
            .chain(refs.converts);
        Ok(all.map(|r| (r.full_ref, r.target_commit)).collect())
    }

    async fn after_push(
        self: &Arc<Self>,
        handle: &RepoHandle,
        before: &HashMap<String, String>,
        after: &HashMap<String, String>,
    ) -> Result<()> {
        let mut changed: Vec<&String> = after
            .keys()
            .chain(before.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        changed.sort();
        changed.dedup();
        if changed.is_empty() {
            return Ok(());
        }
        let dir = self.git_dir(handle);
        for name in &changed {
            if let (Some(old), Some(new)) = (before.get(*name), after.get(*name))
                && !transport::is_ancestor(&dir, old, new).await
            {
                tracing::warn!(repo = handle.repo.id, r#ref = %name, %old, %new, "non-fast-forward push accepted");
            }
        }
        let lock = self.write_lock(handle.repo.id);
        let _guard = lock.lock().await;
        if let Some(head) = after
            .get("refs/heads/main")
            .filter(|_| changed.iter().any(|n| n.as_str() == "refs/heads/main"))
        {
            self.warm_last_commits(handle, head).await;
            self.prepare_root_listing(handle, head);
            self.index_main(&handle.repo).await
        } else {
            self.meta
                .record_commit(handle.repo.id, now_ms(), None)
                .await
        }
    }
}

impl Hub {
    /// A push can bring many commits at once, so the root listing's last-commit answer cannot
    /// be derived from its parent's: it is computed in the background (and stored), so the
    /// first visitor after the push does not wait for the history walk and the push does not
    /// wait either.
    fn prepare_root_listing(self: &Arc<Self>, handle: &RepoHandle, head: &str) {
        let (hub, handle, head) = (Arc::clone(self), handle.clone(), head.to_string());
        tokio::spawn(async move {
            if let Err(e) = hub.folder_last_commits(&handle, &head, "").await {
                tracing::debug!(error = %e, "could not prepare the root listing after a push");
            }
        });
    }
}

/// One line of pre-receive input.
struct RefUpdate {
    old: String,
    new: String,
    name: String,
}

fn parse_updates(input: &str) -> Vec<RefUpdate> {
    input
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some(RefUpdate {
                old: it.next()?.to_string(),
                new: it.next()?.to_string(),
                name: it.next()?.to_string(),
            })
        })
        .collect()
}

async fn git_output(args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        tokio::spawn(async move {
            let _ = pipe.write_all(&data).await;
        });
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        return Err(Error::internal(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(out.stdout)
}

/// Commits reachable from `new` and from no existing ref (the pushed ones).
async fn new_commits(new: &str) -> Result<Vec<String>> {
    let listing = git_output(&["rev-list", new, "--not", "--all"], None).await?;
    Ok(String::from_utf8_lossy(&listing)
        .lines()
        .map(str::to_string)
        .collect())
}

/// A new blob and the path it was pushed at.
struct NewBlob {
    oid: String,
    path: String,
    size: u64,
}

/// Blobs reachable from `new` and from no existing ref (the pushed, still quarantined ones).
async fn new_blobs(new: &str) -> Result<Vec<NewBlob>> {
    let listing = git_output(&["rev-list", "--objects", new, "--not", "--all"], None).await?;
    let listing = String::from_utf8_lossy(&listing);
    let mut paths = HashMap::new();
    let mut ids = String::new();
    for line in listing.lines() {
        let (oid, path) = line.split_once(' ').unwrap_or((line, ""));
        paths.insert(oid.to_string(), path.to_string());
        ids.push_str(oid);
        ids.push('\n');
    }
    let checked = git_output(
        &[
            "cat-file",
            "--batch-check=%(objectname) %(objecttype) %(objectsize)",
        ],
        Some(ids.as_bytes()),
    )
    .await?;
    let mut blobs = Vec::new();
    for line in String::from_utf8_lossy(&checked).lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if let [oid, "blob", size] = parts.as_slice() {
            let size = size.parse().unwrap_or(0);
            blobs.push(NewBlob {
                oid: oid.to_string(),
                path: paths.get(*oid).cloned().unwrap_or_default(),
                size,
            });
        }
    }
    Ok(blobs)
}

async fn read_small_blob(oid: &str) -> Result<Vec<u8>> {
    git_output(&["cat-file", "blob", oid], None).await
}

/// Checks one pushed ref against the Hub's rules; returns the reasons to refuse it.
async fn check_update(meta: &dyn MetaStore, repo_id: i64, u: &RefUpdate) -> Result<Vec<String>> {
    let mut refusals = Vec::new();
    let deleting = u.new == ZERO_OID;
    if deleting && u.name == "refs/heads/main" {
        refusals.push("deleting the main branch is not allowed".to_string());
    }
    if !(u.name.starts_with("refs/heads/")
        || u.name.starts_with("refs/tags/")
        || u.name.starts_with("refs/pr/"))
    {
        refusals.push(format!(
            "{}: only branches, tags and refs/pr/* can be pushed",
            u.name
        ));
    }
    if deleting {
        return Ok(refusals);
    }
    if git_output(
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{}^{{commit}}", u.new),
        ],
        None,
    )
    .await
    .is_err()
    {
        refusals.push(format!(
            "{}: only commits (or tags of commits) can be pushed",
            u.name
        ));
        return Ok(refusals);
    }
    let commits = new_commits(&u.new).await?;
    if let Some(refusal) = crate::blocking(move || push_trees::tree_refusal(&commits)).await? {
        // Measured before the blobs are listed: listing a tree bomb would expand it.
        refusals.push(format!("{}: {refusal}", u.name));
        return Ok(refusals);
    }
    for blob in new_blobs(&u.new).await? {
        let content = if blob.size <= MAX_POINTER_SIZE {
            read_small_blob(&blob.oid).await?
        } else {
            Vec::new()
        };
        if let Some(refusal) = blob_rules::refusal_of(meta, repo_id, blob.size, &content).await? {
            refusals.push(refusal.message(&blob.path));
        }
    }
    Ok(refusals)
}

/// The `pre-receive` hook body: reads git's update lines and refuses the whole push when any
/// rule is broken. Runs inside the repository directory with git's quarantine environment.
pub async fn pre_receive(meta: &dyn MetaStore, repo_id: i64, input: &str) -> Result<Vec<String>> {
    let mut refusals = Vec::new();
    let updates = parse_updates(input);
    let created = updates
        .iter()
        .filter(|u| u.old == ZERO_OID && u.new != ZERO_OID)
        .count();
    if created > 0 {
        let existing = git_output(&["for-each-ref", "--format=x"], None).await?;
        let existing = existing.iter().filter(|b| **b == b'\n').count();
        if let Err(e) = crate::ref_rules::check_room(existing, created) {
            refusals.push(e.message);
            return Ok(refusals);
        }
    }
    for update in updates {
        refusals.extend(check_update(meta, repo_id, &update).await?);
    }
    Ok(refusals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_lines() {
        let u = parse_updates("a b refs/heads/main\n\nc d refs/tags/v1\n");
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].name, "refs/tags/v1");
    }
}
