//! Each inconsistency built by hand in a temporary data folder, found, and repaired (or
//! reported as beyond repair); the start-up form on the same cases.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use wharf_blob::{ObjectKind, Space};
use wharf_core::RepoType;
use wharf_core::lfs_pointer::LfsPointer;
use wharf_git::{GitRepo, Signature, TreeChange};
use wharf_meta::{MainState, Repo};
use wharf_xet::testdata::{DET_SHA256, det_bin};

use super::*;
use crate::repo_folders::{CREATING, DELETING, TRASH};
use crate::web::test_support::{hub, user_caller};
use crate::{Caller, CommitHeader, CommitOp, RepoAddress};

const HOUR: Duration = Duration::from_secs(3600);

fn options(repair: bool) -> FsckOptions {
    FsckOptions {
        repair,
        grace: HOUR,
        full: false,
    }
}

async fn fixture() -> (tempfile::TempDir, Hub, Caller, Repo) {
    let (dir, hub) = hub().await;
    let alice = user_caller(&hub, "alice").await;
    let repo = hub
        .create_repo(&alice, RepoType::Model, None, "a", false)
        .await
        .expect("repo");
    (dir, hub, alice, repo)
}

async fn fsck(hub: &Hub, repair: bool) -> FsckReport {
    hub.fsck(options(repair)).await.expect("fsck")
}

fn found(report: &FsckReport, check: Check) -> Vec<Finding> {
    report
        .checks
        .iter()
        .filter(|c| c.check == check)
        .flat_map(|c| c.findings.clone())
        .collect()
}

/// The only findings of `report` are `n` of `check`, all repaired (or all not).
fn only(report: &FsckReport, check: Check, n: usize, repaired: bool) -> Vec<Finding> {
    let f = found(report, check);
    assert_eq!(f.len(), n, "{check:?}: {report:#?}");
    assert_eq!(report.problems(), n, "{report:#?}");
    assert!(f.iter().all(|f| f.repaired == repaired), "{report:#?}");
    f
}

async fn assert_clean(hub: &Hub) {
    let report = fsck(hub, false).await;
    assert_eq!(report.problems(), 0, "{report:#?}");
    assert!(report.is_clean());
}

fn author() -> Signature {
    Signature {
        name: "t".into(),
        email: "t@example.com".into(),
        time_ms: wharf_core::time::now_ms(),
    }
}

/// Commits `files` on main straight through git (bypassing the Hub's rules).
fn git_commit(hub: &Hub, repo: &Repo, files: &[(&str, &[u8])]) -> String {
    let git = GitRepo::open(&hub.repo_path(&repo.storage_id)).expect("open");
    let parent = git.ref_target("refs/heads/main").expect("main");
    let changes = files
        .iter()
        .map(|(path, data)| TreeChange::Upsert {
            path: (*path).to_string(),
            data: data.to_vec(),
        })
        .collect();
    git.commit(
        "refs/heads/main",
        parent.as_deref(),
        changes,
        &author(),
        "by hand",
    )
    .expect("commit")
}

fn body(data: Vec<u8>) -> wharf_blob::ByteStream {
    futures::stream::once(async move { Ok(Bytes::from(data)) }).boxed()
}

fn make_old(path: &std::path::Path) {
    let old = std::time::SystemTime::now() - 2 * HOUR;
    std::fs::File::open(path)
        .and_then(|f| f.set_modified(old))
        .expect("age");
}

#[tokio::test]
async fn a_consistent_data_folder_is_clean() {
    let (_dir, hub, alice, _repo) = fixture().await;
    hub.create_repo(&alice, RepoType::Dataset, None, "d", true)
        .await
        .expect("dataset");
    let report = fsck(&hub, false).await;
    assert_eq!((report.problems(), report.repos), (0, 2), "{report:#?}");
    assert!(!report.server_running);
    let examined = |c: Check| found_examined(&report, c);
    assert_eq!(examined(Check::GitFsck), 2);
    assert_eq!(examined(Check::Index), 2);
    // Creating leaves nothing in the side areas.
    for area in [CREATING, DELETING, TRASH] {
        let left = std::fs::read_dir(hub.repos_dir().join(area)).map_or(0, |d| d.count());
        assert_eq!(left, 0, "{area}");
    }
}

fn found_examined(report: &FsckReport, check: Check) -> u64 {
    report
        .checks
        .iter()
        .find(|c| c.check == check)
        .map_or(0, |c| c.examined)
}

#[tokio::test]
async fn deleting_leaves_no_folder_behind() {
    let (_dir, hub, alice, repo) = fixture().await;
    hub.delete_repo(&alice, &RepoAddress::new(RepoType::Model, "alice", "a"))
        .await
        .expect("delete");
    assert!(!hub.repo_path(&repo.storage_id).exists());
    for area in [DELETING, TRASH] {
        let left = std::fs::read_dir(hub.repos_dir().join(area)).map_or(0, |d| d.count());
        assert_eq!(left, 0, "{area}");
    }
    assert_clean(&hub).await;
}

#[tokio::test]
async fn a_lost_folder_is_reported_and_cannot_be_repaired() {
    let (_dir, hub, _alice, repo) = fixture().await;
    std::fs::remove_dir_all(hub.repo_path(&repo.storage_id)).expect("rm");
    let report = fsck(&hub, true).await;
    let f = only(&report, Check::RepoFolders, 1, false);
    assert_eq!(f[0].subject, "alice/a");
    assert!(!report.is_clean());
    // Start-up logs it and goes on.
    let start = hub.reconcile_at_start().await.expect("start");
    assert_eq!((start.fixed, start.left), (0, 1));
}

#[tokio::test]
async fn an_interrupted_delete_is_undone_or_finished() {
    let (_dir, hub, alice, repo) = fixture().await;
    // Crash after the folder went aside, before the row went: the folder comes back.
    assert!(
        hub.set_repo_folder_aside(&repo.storage_id)
            .await
            .expect("aside")
    );
    let report = fsck(&hub, false).await;
    only(&report, Check::RepoFolders, 1, false);
    let report = fsck(&hub, true).await;
    only(&report, Check::RepoFolders, 1, true);
    assert!(hub.repo_path(&repo.storage_id).join("HEAD").is_file());
    assert_clean(&hub).await;

    // Crash after the row went: the folder set aside is discarded.
    let b = hub
        .create_repo(&alice, RepoType::Model, None, "b", false)
        .await
        .expect("b");
    assert!(
        hub.set_repo_folder_aside(&b.storage_id)
            .await
            .expect("aside")
    );
    hub.meta.delete_repo(b.id).await.expect("row");
    let report = fsck(&hub, true).await;
    let f = only(&report, Check::OrphanFolders, 1, true);
    assert!(f[0].subject.starts_with("repos/.deleting/"), "{f:?}");
    assert!(!hub.side_path(DELETING, &b.storage_id).exists());
    assert_clean(&hub).await;
}

#[tokio::test]
async fn an_interrupted_create_is_finished_or_discarded() {
    let (_dir, hub, _alice, repo) = fixture().await;
    // Crash after the row, before the rename: the create finishes at start-up.
    let built = hub.side_path(CREATING, &repo.storage_id);
    crate::repo_folders::move_folder(&hub.repo_path(&repo.storage_id), &built).expect("move");
    // Crash before the row: nothing needs the folder.
    let stray = "f".repeat(32);
    hub.build_repo_folder(&stray, |p| GitRepo::init(p).map(drop))
        .await
        .expect("build");
    // And a removal the crash interrupted.
    std::fs::create_dir_all(hub.repos_dir().join(TRASH).join("x.git-1")).expect("trash");
    let start = hub.reconcile_at_start().await.expect("start");
    assert_eq!((start.fixed, start.left), (3, 0));
    assert!(start.exclusive);
    assert!(hub.repo_path(&repo.storage_id).join("HEAD").is_file());
    assert!(!hub.side_path(CREATING, &stray).exists());
    assert_eq!(
        std::fs::read_dir(hub.repos_dir().join(TRASH)).map_or(0, |d| d.count()),
        0
    );
    drop(start);
    assert_clean(&hub).await;
}

#[tokio::test]
async fn orphan_folders_go_unless_a_running_server_may_be_creating_them() {
    let (_dir, hub, _alice, _repo) = fixture().await;
    let orphan = hub.repo_path(&"e".repeat(32));
    GitRepo::init(&orphan).expect("init");
    // A server holds the lock: a young folder may be work in progress.
    let server = ServerLock::try_acquire(hub.data_dir())
        .expect("lock")
        .expect("free");
    let report = fsck(&hub, true).await;
    assert!(report.server_running);
    assert_eq!(report.problems(), 0, "{report:#?}");
    make_old(&orphan);
    let report = fsck(&hub, false).await;
    only(&report, Check::OrphanFolders, 1, false);
    drop(server);
    // Start-up only logs it (a database restored from a backup looks the same).
    let start = hub.reconcile_at_start().await.expect("start");
    assert_eq!((start.fixed, start.left), (0, 1));
    drop(start);
    let report = fsck(&hub, true).await;
    only(&report, Check::OrphanFolders, 1, true);
    assert!(!orphan.exists());
    assert_clean(&hub).await;
}

#[tokio::test]
async fn a_stale_index_is_reindexed() {
    let (_dir, hub, _alice, repo) = fixture().await;
    let head = git_commit(
        &hub,
        &repo,
        &[("README.md", b"---\nlicense: mit\ntags: [x1]\n---\n")],
    );
    // The crash came between the ref update and the index: the row still shows the old head.
    let report = fsck(&hub, false).await;
    let f = only(&report, Check::Index, 1, false);
    assert!(f[0].problem.contains("the index shows main"), "{f:?}");
    let report = fsck(&hub, true).await;
    only(&report, Check::Index, 1, true);
    let row = hub
        .meta
        .repo_by_id(repo.id)
        .await
        .expect("row")
        .expect("repo");
    assert_eq!(row.sha.as_deref(), Some(head.as_str()));
    assert!(row.tags.iter().any(|t| t == "x1"), "{:?}", row.tags);
    assert_clean(&hub).await;

    // Same sha, wrong card fields.
    let wrong = MainState {
        sha: head.clone(),
        tags: vec!["bogus".into()],
        ..MainState::default()
    };
    hub.meta
        .record_commit(repo.id, row.last_modified, Some(wrong))
        .await
        .expect("desync");
    let report = fsck(&hub, true).await;
    let f = only(&report, Check::Index, 1, true);
    assert!(f[0].problem.contains("card"), "{f:?}");
    assert_clean(&hub).await;

    // Main moved after the time the index says it last changed.
    let right = hub
        .meta
        .repo_by_id(repo.id)
        .await
        .expect("row")
        .expect("repo");
    let state = MainState {
        sha: head,
        card_data: right.card_data.clone(),
        tags: right.tags.clone(),
        pipeline_tag: right.pipeline_tag.clone(),
        library_name: right.library_name.clone(),
    };
    hub.meta
        .record_commit(repo.id, 1, Some(state))
        .await
        .expect("old time");
    let report = fsck(&hub, true).await;
    let f = only(&report, Check::Index, 1, true);
    assert!(f[0].problem.contains("last modified"), "{f:?}");
    assert_clean(&hub).await;
}

#[tokio::test]
async fn a_stale_index_that_stays_stale_while_a_server_runs_is_reindexed() {
    let (_dir, hub, _alice, repo) = fixture().await;
    let head = git_commit(&hub, &repo, &[("a.txt", b"a")]);
    let server = ServerLock::try_acquire(hub.data_dir())
        .expect("lock")
        .expect("free");
    // Confirmed over the pauses (nothing moves), then re-indexed.
    let report = fsck(&hub, true).await;
    assert!(report.server_running);
    only(&report, Check::Index, 1, true);
    let row = hub
        .meta
        .repo_by_id(repo.id)
        .await
        .expect("row")
        .expect("repo");
    assert_eq!(row.sha.as_deref(), Some(head.as_str()));
    drop(server);
}

#[tokio::test]
async fn start_up_reindexes_a_stale_index() {
    let (_dir, hub, _alice, repo) = fixture().await;
    let head = git_commit(&hub, &repo, &[("a.txt", b"a")]);
    let start = hub.reconcile_at_start().await.expect("start");
    assert_eq!((start.repos, start.fixed, start.left), (1, 1, 0));
    let row = hub
        .meta
        .repo_by_id(repo.id)
        .await
        .expect("row")
        .expect("repo");
    assert_eq!(row.sha.as_deref(), Some(head.as_str()));
    drop(start);
    assert_clean(&hub).await;
}

#[tokio::test]
async fn a_stale_ref_lock_blocks_commits_until_removed() {
    let (_dir, hub, alice, repo) = fixture().await;
    let addr = RepoAddress::new(RepoType::Model, "alice", "a");
    let lock = hub.repo_path(&repo.storage_id).join("refs/heads/main.lock");
    std::fs::write(&lock, b"").expect("lock");
    let commit = || {
        let ops = vec![CommitOp::File {
            path: "f.txt".into(),
            content: b"x".to_vec(),
        }];
        hub.commit(&alice, &addr, "main", CommitHeader::default(), ops, false)
    };
    assert!(commit().await.is_err(), "the stale lock refuses the commit");
    // A young lock may belong to a running server's write.
    let server = ServerLock::try_acquire(hub.data_dir())
        .expect("lock")
        .expect("free");
    assert_eq!(fsck(&hub, true).await.problems(), 0);
    drop(server);
    let report = fsck(&hub, true).await;
    let f = only(&report, Check::GitLeftovers, 1, true);
    assert!(f[0].problem.starts_with("refs/heads/main.lock"), "{f:?}");
    assert!(!lock.exists());
    commit().await.expect("commit after the repair");
    assert_clean(&hub).await;
}

#[tokio::test]
async fn git_fsck_reports_a_missing_object() {
    let (_dir, hub, _alice, repo) = fixture().await;
    git_commit(&hub, &repo, &[("kept.txt", b"some content")]);
    hub.reconcile_at_start().await.expect("index");
    let blob = GitRepo::open(&hub.repo_path(&repo.storage_id))
        .expect("open")
        .write_blob(b"some content")
        .expect("blob id");
    let loose: PathBuf = hub
        .repo_path(&repo.storage_id)
        .join("objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    std::fs::remove_file(&loose).expect("rm object");
    let report = fsck(&hub, true).await;
    let f = found(&report, Check::GitFsck);
    assert_eq!(f.len(), 1, "{report:#?}");
    assert!(!f[0].repaired && f[0].problem.contains(&blob), "{f:?}");
    assert!(!report.is_clean());
}

#[tokio::test]
async fn a_broken_repository_is_reported_and_the_run_goes_on() {
    let (_dir, hub, alice, repo) = fixture().await;
    hub.create_repo(&alice, RepoType::Model, None, "fine", false)
        .await
        .expect("second repo");
    std::fs::remove_file(hub.repo_path(&repo.storage_id).join("HEAD")).expect("rm HEAD");
    let report = fsck(&hub, true).await;
    assert_eq!(report.repos, 2);
    for check in [Check::GitFsck, Check::Index, Check::LfsPointers] {
        let f = found(&report, check);
        assert_eq!(f.len(), 1, "{check:?}: {report:#?}");
        assert_eq!((f[0].subject.as_str(), f[0].repaired), ("alice/a", false));
    }
    assert_eq!(report.problems(), 3, "alice/fine is fine: {report:#?}");
}

/// det.bin stored as a blob, linked to `repo`, converted to Xet, and committed as a pointer.
async fn with_det_bin(hub: &Hub, alice: &Caller, repo: &Repo) -> u64 {
    let data = det_bin();
    let size = data.len() as u64;
    hub.blobs
        .put_verified(DET_SHA256, size, body(data))
        .await
        .expect("blob");
    hub.meta
        .link_lfs_object(repo.id, DET_SHA256, size as i64)
        .await
        .expect("link");
    hub.convert_lfs_object(DET_SHA256).await.expect("convert");
    let ops = vec![CommitOp::LfsFile {
        path: "det.bin".into(),
        oid: DET_SHA256.into(),
        size: Some(size as i64),
    }];
    let addr = RepoAddress::new(RepoType::Model, "alice", &repo.name);
    hub.commit(alice, &addr, "main", CommitHeader::default(), ops, false)
        .await
        .expect("commit");
    size
}

#[tokio::test]
async fn lfs_pointers_must_name_uploaded_objects() {
    let (_dir, hub, alice, repo) = fixture().await;
    with_det_bin(&hub, &alice, &repo).await;
    assert_clean(&hub).await;
    // A pointer the Hub's rules would refuse, written straight into git.
    let foreign = LfsPointer {
        oid: "9".repeat(64),
        size: 5,
    };
    git_commit(
        &hub,
        &repo,
        &[("foreign.bin", foreign.to_text().as_bytes())],
    );
    hub.reconcile_at_start().await.expect("index");
    let report = fsck(&hub, true).await;
    let f = only(&report, Check::LfsPointers, 1, false);
    assert!(
        f[0].problem
            .starts_with("foreign.bin: names LFS object 9999"),
        "{f:?}"
    );
    assert_eq!(found_examined(&report, Check::LfsPointers), 2);
}

#[tokio::test]
async fn lost_blobs_and_xorbs_are_reported() {
    let (dir, hub, alice, repo) = fixture().await;
    let size = with_det_bin(&hub, &alice, &repo).await;
    // The blob alone lost: the Xet file still holds the bytes.
    let blob = dir
        .path()
        .join("data/lfs/objects")
        .join(&DET_SHA256[..2])
        .join(&DET_SHA256[2..4])
        .join(DET_SHA256);
    std::fs::remove_file(&blob).expect("rm blob");
    assert_clean(&hub).await;
    // Then a xorb: the file is broken, and so is the object.
    let xorbs = hub
        .blobs
        .list(ObjectKind::Keyed(Space::Xorb))
        .await
        .expect("xorbs");
    let xorb = &xorbs.first().expect("a xorb").key;
    let path = dir
        .path()
        .join("data/xet/xorbs")
        .join(&xorb[..2])
        .join(&xorb[2..4])
        .join(xorb);
    std::fs::remove_file(&path).expect("rm xorb");
    let report = fsck(&hub, true).await;
    assert_eq!(found(&report, Check::XetXorbs).len(), 1, "{report:#?}");
    let lost = found(&report, Check::LfsObjects);
    assert_eq!(lost.len(), 1, "{report:#?}");
    assert!(lost[0].problem.contains("misses xorbs") && !lost[0].repaired);
    // A link to something never stored at all.
    hub.meta
        .link_lfs_object(repo.id, &"7".repeat(64), size as i64)
        .await
        .expect("link");
    let report = fsck(&hub, false).await;
    let lost = found(&report, Check::LfsObjects);
    assert_eq!(lost.len(), 2, "{report:#?}");
    assert!(lost.iter().any(|f| f.problem.starts_with("stored nowhere")));
}

#[tokio::test]
async fn objects_left_aside_by_gc_are_put_back() {
    let (_dir, hub, alice, repo) = fixture().await;
    let data = b"only a blob, never converted".to_vec();
    let (oid, size) = hub
        .blobs
        .put_hashing(body(data), 1 << 20)
        .await
        .expect("blob");
    hub.meta
        .link_lfs_object(repo.id, &oid, size as i64)
        .await
        .expect("link");
    let _ = alice;
    hub.blobs
        .quarantine(ObjectKind::Lfs, &oid)
        .await
        .expect("aside");
    let report = fsck(&hub, false).await;
    assert_eq!(found(&report, Check::GcQuarantine).len(), 1, "{report:#?}");
    assert_eq!(found(&report, Check::LfsObjects).len(), 1, "{report:#?}");
    // Repaired first, so the object counts as stored.
    let report = fsck(&hub, true).await;
    only(&report, Check::GcQuarantine, 1, true);
    assert_eq!(hub.blobs.size(&oid).await.expect("size"), Some(size));
    assert_clean(&hub).await;
}

#[tokio::test]
async fn stale_staging_files_are_removed() {
    let (dir, hub, _alice, _repo) = fixture().await;
    let data = dir.path().join("data");
    let files = [data.join("lfs/tmp/upload"), data.join("xet/tmp/xorb")];
    for f in &files {
        std::fs::write(f, b"partial").expect("write");
    }
    let server = ServerLock::try_acquire(&data).expect("lock").expect("free");
    assert_eq!(
        fsck(&hub, true).await.problems(),
        0,
        "young: uploads in progress"
    );
    let zero = FsckOptions {
        grace: Duration::ZERO,
        ..options(false)
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = hub.fsck(zero).await.expect("fsck");
    only(&report, Check::TempFiles, 2, false);
    drop(server);
    let start = hub.reconcile_at_start().await.expect("start");
    assert_eq!((start.fixed, start.left), (2, 0));
    assert!(files.iter().all(|f| !f.exists()));
}

/// How long start-up takes for many repositories (copies of one, each with its row):
/// `WHARF_STARTUP_REPOS=2000 cargo test -p wharf-hub --release startup_scales -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn startup_scales() {
    let n: usize = std::env::var("WHARF_STARTUP_REPOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let (_dir, hub, _alice, repo) = fixture().await;
    let source = hub.repo_path(&repo.storage_id);
    let row = hub
        .meta
        .repo_by_id(repo.id)
        .await
        .expect("row")
        .expect("repo");
    for i in 0..n {
        let sid = format!("{i:032x}");
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&source)
            .arg(hub.repo_path(&sid))
            .status()
            .expect("cp");
        assert!(copied.success());
        let new = wharf_meta::NewRepo {
            storage_id: sid,
            repo_type: RepoType::Model,
            namespace: "alice".into(),
            name: format!("copy-{i}"),
            private: false,
            created_at: row.created_at,
        };
        let copy = hub.meta.create_repo(new).await.expect("row");
        let state = MainState {
            sha: row.sha.clone().expect("sha"),
            card_data: row.card_data.clone(),
            tags: row.tags.clone(),
            pipeline_tag: row.pipeline_tag.clone(),
            library_name: row.library_name.clone(),
        };
        hub.meta
            .record_commit(copy.id, row.last_modified, Some(state))
            .await
            .expect("index");
    }
    let start = hub.reconcile_at_start().await.expect("start");
    println!(
        "start-up reconciliation: {} repositories in {} ms ({} fixed)",
        start.repos,
        start.elapsed.as_millis(),
        start.fixed
    );
    assert_eq!((start.fixed, start.left), (0, 0));
}
