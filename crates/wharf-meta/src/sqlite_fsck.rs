//! The queries of `wharf fsck` and of the start-up reconciliation on [`SqliteStore`]: every
//! repository's indexed head in one slim query (no card fields), and which xorbs each
//! registered Xet file needs.

use sqlx::Row;
use wharf_core::{Error, RepoType, Result};

use crate::sqlite::{DbResult, SqliteStore};
use crate::{RepoHead, XetFileXorb};

impl SqliteStore {
    pub(crate) async fn fsck_repo_heads(&self) -> Result<Vec<RepoHead>> {
        let rows = sqlx::query(
            "SELECT id, storage_id, repo_type, namespace, name, sha, last_modified FROM repos \
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                let repo_type: String = r.try_get("repo_type").db()?;
                Ok(RepoHead {
                    id: r.try_get("id").db()?,
                    storage_id: r.try_get("storage_id").db()?,
                    repo_type: RepoType::from_singular(&repo_type).ok_or_else(|| {
                        Error::internal(format!("unknown repo type in database: {repo_type:?}"))
                    })?,
                    namespace: r.try_get("namespace").db()?,
                    name: r.try_get("name").db()?,
                    sha: r.try_get("sha").db()?,
                    last_modified: r.try_get("last_modified").db()?,
                })
            })
            .collect()
    }

    pub(crate) async fn fsck_xet_file_xorbs(&self) -> Result<Vec<XetFileXorb>> {
        let rows = sqlx::query(
            "SELECT DISTINCT f.file_hash AS file_hash, f.sha256 AS sha256, t.xorb_hash AS xorb_hash \
             FROM xet_files f JOIN xet_file_terms t ON t.file_hash = f.file_hash \
             ORDER BY f.file_hash, t.xorb_hash",
        )
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter()
            .map(|r| {
                Ok(XetFileXorb {
                    file_hash: r.try_get("file_hash").db()?,
                    sha256: r.try_get("sha256").db()?,
                    xorb_hash: r.try_get("xorb_hash").db()?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MainState, MetaStore, NewRepo, NewXetFile, XetSource, XetTerm, XetXorb};

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn xhash(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn new_repo(name: &str) -> NewRepo {
        NewRepo {
            storage_id: format!("sid-{name}"),
            repo_type: RepoType::Model,
            namespace: "alice".into(),
            name: name.to_owned(),
            private: false,
            created_at: 5,
        }
    }

    #[tokio::test]
    async fn heads_and_storage_ids() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("meta.sqlite")).await?;
        let a = store.create_repo(new_repo("a")).await?;
        let b = store.create_repo(new_repo("b")).await?;
        let main = MainState {
            sha: "1".repeat(40),
            ..MainState::default()
        };
        store.record_commit(b.id, 77, Some(main)).await?;
        let heads = store.repo_heads().await?;
        assert_eq!(
            heads,
            vec![
                RepoHead {
                    id: a.id,
                    storage_id: "sid-a".into(),
                    repo_type: RepoType::Model,
                    namespace: "alice".into(),
                    name: "a".into(),
                    sha: None,
                    last_modified: 5
                },
                RepoHead {
                    id: b.id,
                    storage_id: "sid-b".into(),
                    repo_type: RepoType::Model,
                    namespace: "alice".into(),
                    name: "b".into(),
                    sha: Some("1".repeat(40)),
                    last_modified: 77
                },
            ]
        );
        let found = store.repo_by_storage_id("sid-b").await?;
        assert_eq!(found.map(|r| r.name), Some("b".to_owned()));
        assert!(store.repo_by_storage_id("sid-c").await?.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn a_link_to_a_deleted_repo_is_not_found() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("meta.sqlite")).await?;
        let a = store.create_repo(new_repo("a")).await?;
        store.delete_repo(a.id).await?;
        // An upload finishing after its repository went: not found, not an internal error.
        let e = store
            .link_lfs_object(a.id, &"c".repeat(64), 3)
            .await
            .err()
            .map(|e| e.kind);
        assert_eq!(e, Some(wharf_core::ErrorKind::RepoNotFound));
        Ok(())
    }

    #[tokio::test]
    async fn xorbs_of_each_file_once() -> TestResult {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("meta.sqlite")).await?;
        assert!(store.xet_file_xorbs().await?.is_empty());
        for n in [1, 2] {
            let xorb = XetXorb {
                hash: xhash(n),
                num_chunks: 1,
                raw_size: 10,
                data_size: 10,
                stored_size: 10,
                chunk_ends: vec![0; 8],
                created_at: 1,
            };
            store.insert_xet_xorb(&xorb, &[]).await?;
        }
        let term = |x: u8| XetTerm {
            xorb_hash: xhash(x),
            chunk_start: 0,
            chunk_end: 1,
            raw_size: 10,
        };
        let file = NewXetFile {
            file_hash: xhash(9),
            sha256: "a".repeat(64),
            size: 30,
            source: XetSource::Xet,
            // Xorb 1 twice: listed once.
            terms: vec![term(1), term(2), term(1)],
            created_at: 1,
        };
        store.register_xet_files(None, &[file], &[]).await?;
        let got: Vec<String> = store
            .xet_file_xorbs()
            .await?
            .into_iter()
            .map(|x| {
                assert_eq!(
                    (x.file_hash.as_str(), x.sha256.len()),
                    (xhash(9).as_str(), 64)
                );
                x.xorb_hash
            })
            .collect();
        assert_eq!(got, vec![xhash(1), xhash(2)]);
        Ok(())
    }
}
