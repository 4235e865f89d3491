//! Storage accounting and garbage collection on [`SqliteStore`]: who links what, which xorbs a
//! repository's files use, and what nothing needs any more. The roots of garbage collection
//! are the `repo_lfs_objects` links (docs/xet.md §3.11): every commit may only name objects
//! linked to its own repository, so the links cover every retained revision.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Row, Sqlite};
use wharf_core::Result;

use crate::sqlite::{DbResult, SqliteStore};
use crate::{GarbageItem, LfsLink, XetGarbage, XetRepoUsage, XetTotals};

/// Bound parameters per `IN (…)` list, well below SQLite's limit.
const IN_BATCH: usize = 500;

/// A live file, as SQL over the alias `f` and the bound cutoff: linked, or young.
macro_rules! live_file {
    () => {
        "(f.created_at >= ?1 OR EXISTS (SELECT 1 FROM repo_lfs_objects o WHERE o.oid = f.sha256))"
    };
}

fn items(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<GarbageItem>> {
    rows.iter()
        .map(|r| {
            Ok(GarbageItem {
                key: r.try_get("key").db()?,
                size: r.try_get("size").db()?,
            })
        })
        .collect()
}

impl SqliteStore {
    pub(crate) async fn storage_touch_xorb(&self, hash: &str, now: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE xet_xorbs SET created_at = MAX(created_at, ?) WHERE hash = ?")
                .bind(now)
                .bind(hash)
                .execute(&self.pool)
                .await
                .db()?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn storage_links(&self, repo_id: Option<i64>) -> Result<Vec<LfsLink>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT repo_id, oid, size FROM repo_lfs_objects");
        if let Some(id) = repo_id {
            qb.push(" WHERE repo_id = ").push_bind(id);
        }
        qb.push(" ORDER BY repo_id, oid");
        let rows = qb.build().fetch_all(&self.pool).await.db()?;
        rows.iter()
            .map(|r| {
                Ok(LfsLink {
                    repo_id: r.try_get("repo_id").db()?,
                    oid: r.try_get("oid").db()?,
                    size: r.try_get("size").db()?,
                })
            })
            .collect()
    }

    pub(crate) async fn storage_linked(&self, oids: &[String]) -> Result<HashSet<String>> {
        let mut out = HashSet::new();
        for batch in oids.chunks(IN_BATCH) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT DISTINCT oid FROM repo_lfs_objects WHERE oid IN (");
            let mut list = qb.separated(", ");
            for oid in batch {
                list.push_bind(oid.clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&self.pool).await.db()? {
                out.insert(row.try_get("oid").db()?);
            }
        }
        Ok(out)
    }

    pub(crate) async fn storage_xet_usage(
        &self,
        repo_id: Option<i64>,
    ) -> Result<Vec<XetRepoUsage>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT u.repo_id AS repo_id, COUNT(*) AS xorbs, SUM(x.stored_size) AS bytes FROM \
             (SELECT DISTINCT o.repo_id AS repo_id, t.xorb_hash AS xorb_hash \
              FROM repo_lfs_objects o \
              JOIN xet_files f ON f.sha256 = o.oid \
              JOIN xet_file_terms t ON t.file_hash = f.file_hash",
        );
        if let Some(id) = repo_id {
            qb.push(" WHERE o.repo_id = ").push_bind(id);
        }
        qb.push(
            ") u JOIN xet_xorbs x ON x.hash = u.xorb_hash GROUP BY u.repo_id ORDER BY u.repo_id",
        );
        let rows = qb.build().fetch_all(&self.pool).await.db()?;
        rows.iter()
            .map(|r| {
                Ok(XetRepoUsage {
                    repo_id: r.try_get("repo_id").db()?,
                    xorbs: r.try_get("xorbs").db()?,
                    stored_bytes: r.try_get("bytes").db()?,
                })
            })
            .collect()
    }

    pub(crate) async fn storage_xet_totals(&self) -> Result<XetTotals> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM xet_files) AS files, COUNT(*) AS xorbs, \
             COALESCE(SUM(stored_size), 0) AS bytes FROM xet_xorbs",
        )
        .fetch_one(&self.pool)
        .await
        .db()?;
        Ok(XetTotals {
            files: row.try_get("files").db()?,
            xorbs: row.try_get("xorbs").db()?,
            stored_bytes: row.try_get("bytes").db()?,
        })
    }

    pub(crate) async fn storage_garbage(&self, cutoff: i64) -> Result<XetGarbage> {
        let files = sqlx::query(concat!(
            "SELECT f.file_hash AS key, f.size AS size FROM xet_files f WHERE NOT ",
            live_file!(),
            " ORDER BY f.file_hash"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await
        .db()?;
        let xorbs = sqlx::query(concat!(
            "SELECT x.hash AS key, x.stored_size AS size FROM xet_xorbs x \
             WHERE x.created_at < ?1 AND NOT EXISTS (SELECT 1 FROM xet_file_terms t \
             JOIN xet_files f ON f.file_hash = t.file_hash WHERE t.xorb_hash = x.hash AND ",
            live_file!(),
            ") ORDER BY x.hash"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await
        .db()?;
        Ok(XetGarbage {
            files: items(&files)?,
            xorbs: items(&xorbs)?,
        })
    }

    pub(crate) async fn storage_delete_file(&self, file_hash: &str, cutoff: i64) -> Result<bool> {
        let done = sqlx::query(concat!(
            "DELETE FROM xet_files AS f WHERE f.file_hash = ?2 AND NOT ",
            live_file!()
        ))
        .bind(cutoff)
        .bind(file_hash)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn storage_delete_xorb(&self, hash: &str, cutoff: i64) -> Result<bool> {
        // ON DELETE CASCADE drops its dedup rows; the foreign key from `xet_file_terms` would
        // refuse the delete anyway if a file used it, the NOT EXISTS makes that a plain "no".
        let done = sqlx::query(
            "DELETE FROM xet_xorbs WHERE hash = ?2 AND created_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM xet_file_terms t WHERE t.xorb_hash = xet_xorbs.hash)",
        )
        .bind(cutoff)
        .bind(hash)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use tempfile::TempDir;
    use wharf_core::RepoType;

    use super::*;
    use crate::{MetaStore, NewRepo, NewXetFile, XetSource, XetTerm, XetXorb};

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn xhash(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn xorb(n: u8, stored: i64, created_at: i64) -> XetXorb {
        XetXorb {
            hash: xhash(n),
            num_chunks: 1,
            raw_size: stored,
            data_size: stored,
            stored_size: stored,
            chunk_ends: vec![0; 8],
            created_at,
        }
    }

    fn file(n: u8, sha: &str, xorbs: &[u8], created_at: i64) -> NewXetFile {
        NewXetFile {
            file_hash: xhash(n),
            sha256: sha.to_owned(),
            size: 1_000,
            source: XetSource::Xet,
            terms: xorbs
                .iter()
                .map(|x| XetTerm {
                    xorb_hash: xhash(*x),
                    chunk_start: 0,
                    chunk_end: 1,
                    raw_size: 500,
                })
                .collect(),
            created_at,
        }
    }

    async fn repo(store: &SqliteStore, name: &str) -> Result<i64> {
        let r = store
            .create_repo(NewRepo {
                storage_id: name.to_owned(),
                repo_type: RepoType::Model,
                namespace: "alice".into(),
                name: name.to_owned(),
                private: false,
                created_at: 1,
            })
            .await?;
        Ok(r.id)
    }

    /// Two repositories sharing xorb 2: a uses xorbs 1 and 2, b uses 2 and 3.
    async fn fixture()
    -> std::result::Result<(TempDir, SqliteStore, i64, i64), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(&dir.path().join("meta.sqlite")).await?;
        let (a, b) = (repo(&store, "a").await?, repo(&store, "b").await?);
        for (n, size) in [(1, 100), (2, 200), (3, 300)] {
            store.insert_xet_xorb(&xorb(n, size, 1_000), &[]).await?;
        }
        let (sa, sb) = ("a".repeat(64), "b".repeat(64));
        store
            .register_xet_files(Some(a), &[file(10, &sa, &[1, 2], 1_000)], &[])
            .await?;
        store
            .register_xet_files(Some(b), &[file(11, &sb, &[2, 3], 1_000)], &[])
            .await?;
        store.link_lfs_object(a, &"c".repeat(64), 50).await?;
        Ok((dir, store, a, b))
    }

    #[tokio::test]
    async fn usage_counts_each_xorb_once_per_repo() -> TestResult {
        let (_dir, store, a, b) = fixture().await?;
        let usage = store.xet_usage(None).await?;
        assert_eq!(
            usage,
            vec![
                XetRepoUsage {
                    repo_id: a,
                    xorbs: 2,
                    stored_bytes: 300
                },
                XetRepoUsage {
                    repo_id: b,
                    xorbs: 2,
                    stored_bytes: 500
                },
            ]
        );
        assert_eq!(store.xet_usage(Some(b)).await?, usage[1..].to_vec());
        let totals = store.xet_totals().await?;
        assert_eq!(
            totals,
            XetTotals {
                files: 2,
                xorbs: 3,
                stored_bytes: 600
            }
        );
        let links = store.lfs_links(Some(a)).await?;
        assert_eq!(links.iter().map(|l| l.size).sum::<i64>(), 1_050);
        assert_eq!(store.lfs_links(None).await?.len(), 3);
        let linked = store
            .linked_lfs_oids(&["a".repeat(64), "d".repeat(64), "c".repeat(64)])
            .await?;
        assert_eq!(linked, HashSet::from(["a".repeat(64), "c".repeat(64)]));
        Ok(())
    }

    #[tokio::test]
    async fn garbage_after_a_repo_is_deleted() -> TestResult {
        let (_dir, store, a, _b) = fixture().await?;
        assert_eq!(store.xet_garbage(5_000).await?, XetGarbage::default());
        store.delete_repo(a).await?;
        // File 10 lost its only link; xorb 1 only it used; xorb 2 is still b's.
        let garbage = store.xet_garbage(5_000).await?;
        let keys = |v: &[GarbageItem]| v.iter().map(|i| i.key.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&garbage.files), vec![xhash(10)]);
        assert_eq!(keys(&garbage.xorbs), vec![xhash(1)]);
        assert_eq!(garbage.xorbs[0].size, 100);
        // Inside the grace period nothing is garbage.
        assert_eq!(store.xet_garbage(1_000).await?, XetGarbage::default());

        // The xorb cannot go before the file that uses it.
        assert!(!store.delete_xet_xorb_if_garbage(&xhash(1), 5_000).await?);
        assert!(
            !store.delete_xet_file_if_garbage(&xhash(10), 1_000).await?,
            "young"
        );
        assert!(
            !store.delete_xet_file_if_garbage(&xhash(11), 5_000).await?,
            "linked"
        );
        assert!(store.delete_xet_file_if_garbage(&xhash(10), 5_000).await?);
        assert!(store.xet_file(&xhash(10)).await?.is_none());
        assert!(
            !store.delete_xet_xorb_if_garbage(&xhash(2), 5_000).await?,
            "used by b"
        );
        assert!(store.delete_xet_xorb_if_garbage(&xhash(1), 5_000).await?);
        assert!(store.xet_xorb(&xhash(1)).await?.is_none());
        assert_eq!(store.xet_totals().await?.xorbs, 2);
        Ok(())
    }

    #[tokio::test]
    async fn a_touched_or_unused_young_xorb_is_kept() -> TestResult {
        let (_dir, store, _a, _b) = fixture().await?;
        // Uploaded, shard not there yet: garbage only once older than the cutoff.
        store.insert_xet_xorb(&xorb(4, 40, 3_000), &[]).await?;
        assert!(store.xet_garbage(3_000).await?.xorbs.is_empty());
        assert_eq!(store.xet_garbage(3_001).await?.xorbs.len(), 1);
        // Re-uploaded after the mark phase: the sweep leaves it.
        assert!(store.touch_xet_xorb(&xhash(4), 9_000).await?);
        assert!(!store.delete_xet_xorb_if_garbage(&xhash(4), 5_000).await?);
        // Touching never moves the time backwards, and says when the xorb is unknown.
        assert!(store.touch_xet_xorb(&xhash(4), 10).await?);
        assert_eq!(
            store.xet_xorb(&xhash(4)).await?.map(|x| x.created_at),
            Some(9_000)
        );
        assert!(!store.touch_xet_xorb(&xhash(99), 10).await?);
        Ok(())
    }

    #[tokio::test]
    async fn dedup_siblings_are_the_other_xorbs_of_visible_files() -> TestResult {
        let (_dir, store, a, _b) = fixture().await?;
        let all = crate::XetVisibility {
            namespaces: Vec::new(),
            see_all: true,
        };
        let got = store.xet_dedup_siblings(&[xhash(1)], &all, 10).await?;
        assert_eq!(got, vec![xhash(1), xhash(2)]);
        let got = store.xet_dedup_siblings(&[xhash(2)], &all, 10).await?;
        assert_eq!(got, vec![xhash(1), xhash(2), xhash(3)]);
        assert_eq!(
            store.xet_dedup_siblings(&[xhash(2)], &all, 1).await?.len(),
            1
        );
        // Repository a turns private: its files no longer widen anyone else's answer.
        store.set_private(a, true).await?;
        let public = crate::XetVisibility::default();
        let got = store.xet_dedup_siblings(&[xhash(2)], &public, 10).await?;
        assert_eq!(got, vec![xhash(2), xhash(3)]);
        let owner = crate::XetVisibility {
            namespaces: vec!["ALICE".into()],
            see_all: false,
        };
        assert_eq!(
            store
                .xet_dedup_siblings(&[xhash(1)], &owner, 10)
                .await?
                .len(),
            2
        );
        assert!(store.xet_dedup_siblings(&[], &all, 10).await?.is_empty());
        Ok(())
    }
}
