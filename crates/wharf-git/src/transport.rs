//! git's smart-HTTP transport, served by the git binary itself (`upload-pack` /
//! `receive-pack --stateless-rpc`), as Gitea and GitLab do: we never speak the pack protocol
//! ourselves. Request bodies stream into the child's stdin and its stdout streams back, so a
//! multi-GB clone or push never sits in memory.

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio_util::io::ReaderStream;
use wharf_core::{Error, Result};

/// The two services of smart HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    pub fn parse(name: &str) -> Option<Service> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }
    /// `git-upload-pack` / `git-receive-pack`.
    pub fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }
    fn subcommand(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
        }
    }
}

/// How to run one service.
#[derive(Debug, Clone)]
pub struct ServiceCall {
    pub git_dir: PathBuf,
    pub service: Service,
    /// The client's `Git-Protocol` header, passed on as `GIT_PROTOCOL` when well-formed.
    pub protocol: Option<String>,
    /// Folder with the `pre-receive` hook (receive-pack only).
    pub hooks_dir: Option<PathBuf>,
    /// Extra environment for hooks (who pushes, to which repo).
    pub env: Vec<(String, String)>,
}

/// `version=2` or `version=2:object-format=sha1` style values only; anything else is dropped.
/// The client's `Git-Protocol` value without its `version=` key (None when nothing is left or
/// the value is malformed).
fn without_version(p: &str) -> Option<String> {
    if !valid_protocol(p) {
        return None;
    }
    let kept: Vec<&str> = p
        .split(':')
        .filter(|kv| !kv.starts_with("version="))
        .collect();
    (!kept.is_empty()).then(|| kept.join(":"))
}

fn valid_protocol(p: &str) -> bool {
    !p.is_empty()
        && p.len() < 256
        && p.split(':').all(|kv| {
            kv.split_once('=').is_some_and(|(k, v)| {
                !k.is_empty()
                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            })
        })
}

/// Settings forced on every service, whatever an older repository's config says: pushes are
/// durable (git does not fsync loose objects and refs by default), and a fetch may only ask for
/// objects reachable from a ref (`allowAnySHA1InWant` would serve force-pushed-away secrets
/// to anyone who knows their id; partial clones only need reachable ones).
const SERVICE_CONFIG: [&str; 5] = [
    "core.fsync=all",
    "core.fsyncMethod=fsync",
    "uploadpack.allowAnySHA1InWant=false",
    "uploadpack.allowReachableSHA1InWant=true",
    "uploadpack.allowFilter=true",
];

fn command(call: &ServiceCall, advertise: bool) -> Command {
    let mut cmd = Command::new("git");
    for setting in SERVICE_CONFIG {
        cmd.arg("-c").arg(setting);
    }
    if let Some(hooks) = &call.hooks_dir {
        cmd.arg("-c")
            .arg(format!("core.hooksPath={}", hooks.display()));
    }
    cmd.arg(call.service.subcommand()).arg("--stateless-rpc");
    if advertise {
        cmd.arg("--advertise-refs");
    }
    cmd.arg(&call.git_dir);
    cmd.env_clear();
    for key in ["PATH", "HOME", "LANG", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.env("GIT_CONFIG_NOSYSTEM", "1");
    // Protocol v2 is not offered: git's v2 `fetch` serves any object named by id, reachable or
    // not (it ignores the allow*SHA1InWant settings), while v0 checks reachability. Clients
    // asking for v2 fall back to v0 by themselves; only the protocol's non-version keys pass.
    if let Some(p) = call.protocol.as_deref().and_then(without_version) {
        cmd.env("GIT_PROTOCOL", p);
    }
    cmd.envs(call.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn pkt_line(text: &str) -> Vec<u8> {
    format!("{:04x}{text}", text.len() + 4).into_bytes()
}

/// The ref advertisement for `GET info/refs?service=…`, with the `# service=` preamble.
pub async fn advertise(call: &ServiceCall) -> Result<Vec<u8>> {
    let output = command(call, true).stdin(Stdio::null()).output().await?;
    if !output.status.success() {
        return Err(Error::internal(format!(
            "git {} --advertise-refs failed: {}",
            call.service.subcommand(),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let mut out = pkt_line(&format!("# service={}\n", call.service.name()));
    out.extend_from_slice(b"0000");
    out.extend_from_slice(&output.stdout);
    Ok(out)
}

/// A running service: its output stream, and the child to wait for.
pub struct RunningService {
    pub stdout: BoxStream<'static, std::io::Result<Bytes>>,
    child: Child,
    feeder: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How a service ended.
#[derive(Debug)]
pub struct ServiceExit {
    pub success: bool,
    pub stderr: String,
}

/// Starts the service and feeds `body` into it in the background.
pub fn start(
    call: &ServiceCall,
    body: impl AsyncRead + Send + Unpin + 'static,
) -> Result<RunningService> {
    let mut child = command(call, false).spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| Error::internal("git child has no stdin"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::internal("git child has no stdout"))?;
    let feeder = tokio::spawn(async move {
        let mut body = body;
        tokio::io::copy(&mut body, &mut stdin).await?;
        stdin.shutdown().await
    });
    Ok(RunningService {
        stdout: ReaderStream::with_capacity(stdout, 64 * 1024).boxed(),
        child,
        feeder,
    })
}

impl RunningService {
    /// Waits for the child (after its stdout was drained) and collects its stderr.
    pub async fn finish(mut self) -> Result<ServiceExit> {
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr).await;
        }
        let status = self.child.wait().await?;
        // A client that hangs up mid-body makes the feeder fail; git then fails too.
        let _ = self.feeder.await;
        Ok(ServiceExit {
            success: status.success(),
            stderr,
        })
    }

    /// The output as one stream that reaps the child once stdout ends (failures are logged:
    /// by then the status line has gone out and only the pack stream can show the error).
    pub fn into_stream(mut self) -> BoxStream<'static, std::io::Result<Bytes>> {
        let stdout = std::mem::replace(&mut self.stdout, futures::stream::empty().boxed());
        let reap = futures::stream::once(async move {
            match self.finish().await {
                Ok(exit) if !exit.success => {
                    tracing::warn!(stderr = %exit.stderr.trim(), "git upload-pack failed")
                }
                Err(e) => tracing::warn!(error = %e, "git upload-pack could not be waited for"),
                Ok(_) => {}
            }
        })
        .filter_map(|()| async { None });
        stdout.chain(reap).boxed()
    }

    /// Runs to completion, buffering the (small) output: used for receive-pack, whose report
    /// must only be sent after the push was indexed.
    pub async fn collect(mut self) -> Result<(Vec<u8>, ServiceExit)> {
        let mut out = Vec::new();
        while let Some(chunk) = self.stdout.next().await {
            out.extend_from_slice(&chunk?);
        }
        let exit = self.finish().await?;
        Ok((out, exit))
    }
}

/// Bytes `first..=last` of blob `oid`, streamed from `git cat-file` so that a large blob (or a
/// small range of one) never sits in memory whole. Bytes before `first` are read and dropped.
pub fn blob_stream(
    git_dir: &Path,
    oid: &str,
    first: u64,
    last: u64,
) -> Result<BoxStream<'static, std::io::Result<Bytes>>> {
    if oid.len() != 40 || !oid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::bad_request(format!("Not a blob id: {oid}")));
    }
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["cat-file", "blob", oid])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::internal("git cat-file has no stdout"))?;
    let window = window_of(ReaderStream::with_capacity(stdout, 64 * 1024), first, last);
    // The child lives as long as the stream; dropping the stream kills it.
    let keep_alive = futures::stream::once(async move {
        let _ = child.wait().await;
    })
    .filter_map(|()| async { None });
    Ok(window.chain(keep_alive).boxed())
}

/// The part of `input` between offsets `first` and `last` (inclusive).
fn window_of(
    input: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    first: u64,
    last: u64,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    let end = last.saturating_add(1);
    input
        .scan(0u64, move |offset, item| {
            let start = *offset;
            let piece = match item {
                Ok(b) => b,
                Err(e) => return futures::future::ready(Some(Err(e))),
            };
            *offset = start + piece.len() as u64;
            if start >= end {
                return futures::future::ready(None);
            }
            let from = first.saturating_sub(start).min(piece.len() as u64) as usize;
            let to = (end - start).min(piece.len() as u64) as usize;
            futures::future::ready(Some(Ok(piece.slice(from..to.max(from)))))
        })
        .filter(|item| futures::future::ready(item.as_ref().map_or(true, |b| !b.is_empty())))
        .boxed()
}

/// Whether `ancestor` is an ancestor of `descendant` (for logging forced pushes).
pub async fn is_ancestor(git_dir: &Path, ancestor: &str, descendant: &str) -> bool {
    Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["merge-base", "--is-ancestor", ancestor, descendant])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_version_is_never_passed_on() {
        assert_eq!(without_version("version=2"), None);
        assert_eq!(
            without_version("version=2:object-format=sha1").as_deref(),
            Some("object-format=sha1")
        );
        assert_eq!(without_version("version=2;rm -rf"), None);
    }

    #[test]
    fn protocol_header_is_checked() {
        assert!(valid_protocol("version=2"));
        assert!(valid_protocol("version=2:object-format=sha1"));
        assert!(!valid_protocol("version=2;rm -rf"));
        assert!(!valid_protocol(""));
        assert!(!valid_protocol("=2"));
    }

    #[tokio::test]
    async fn windows_cut_the_stream() {
        let pieces = || {
            futures::stream::iter([&b"abc"[..], b"defg", b"hij"].map(|p| Ok(Bytes::from_static(p))))
        };
        let collect = |first, last| async move {
            let mut out = Vec::new();
            let mut s = window_of(pieces(), first, last);
            while let Some(piece) = s.next().await {
                out.extend_from_slice(&piece.expect("piece"));
            }
            String::from_utf8(out).expect("utf8")
        };
        assert_eq!(collect(0, 9).await, "abcdefghij");
        assert_eq!(collect(2, 4).await, "cde");
        assert_eq!(collect(3, 6).await, "defg");
        assert_eq!(collect(9, 20).await, "j");
        assert_eq!(collect(5, 5).await, "f");
    }

    #[test]
    fn pkt_lines() {
        assert_eq!(
            pkt_line("# service=git-upload-pack\n"),
            b"001e# service=git-upload-pack\n"
        );
    }
}
