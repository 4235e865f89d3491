//! The Xet part of [`SqliteStore`] (`migrations/sqlite/0003_xet.sql`): verified xorbs, registered
//! files and their terms, the dedup index, and the ownership links registration adds.

use std::collections::HashMap;

use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use wharf_core::{Error, Result};

use crate::sqlite::{DbResult, SqliteStore};
use crate::{
    NewXetFile, XetChunkRef, XetFile, XetJobState, XetRegistration, XetTerm, XetVisibility, XetXorb,
};

/// Bound parameters per `IN (…)` list, well below SQLite's limit.
const IN_BATCH: usize = 500;

fn xorb_from_row(row: &SqliteRow) -> Result<XetXorb> {
    Ok(XetXorb {
        hash: row.try_get("hash").db()?,
        num_chunks: row.try_get("num_chunks").db()?,
        raw_size: row.try_get("raw_size").db()?,
        data_size: row.try_get("data_size").db()?,
        stored_size: row.try_get("stored_size").db()?,
        chunk_ends: row.try_get("chunk_ends").db()?,
        created_at: row.try_get("created_at").db()?,
    })
}

fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

async fn insert_dedup_rows(
    tx: &mut Transaction<'static, Sqlite>,
    dedup: &[XetChunkRef],
) -> Result<()> {
    for d in dedup {
        sqlx::query(
            "INSERT OR IGNORE INTO xet_chunks (chunk_hash, xorb_hash, chunk_index) VALUES (?, ?, ?)",
        )
        .bind(&d.chunk_hash)
        .bind(&d.xorb_hash)
        .bind(d.chunk_index)
        .execute(&mut **tx)
        .await
        .db()?;
    }
    Ok(())
}

/// Restricts a query over `repos r` to the repositories `visible` may see.
fn push_visibility(qb: &mut QueryBuilder<Sqlite>, visible: &XetVisibility) {
    if visible.see_all {
        return;
    }
    if visible.namespaces.is_empty() {
        qb.push(" AND r.private = 0");
    } else {
        // IN compares with the left operand's collation (NOCASE).
        qb.push(" AND (r.private = 0 OR r.namespace IN (");
        let mut list = qb.separated(", ");
        for ns in &visible.namespaces {
            list.push_bind(ns.clone());
        }
        qb.push("))");
    }
}

impl SqliteStore {
    pub(crate) async fn xet_insert_xorb(&self, x: &XetXorb, dedup: &[XetChunkRef]) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO xet_xorbs \
             (hash, num_chunks, raw_size, data_size, stored_size, chunk_ends, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING",
        )
        .bind(&x.hash)
        .bind(x.num_chunks)
        .bind(x.raw_size)
        .bind(x.data_size)
        .bind(x.stored_size)
        .bind(&x.chunk_ends)
        .bind(x.created_at)
        .execute(&mut *tx)
        .await
        .db()?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_dedup_rows(&mut tx, dedup).await?;
        tx.commit().await.db()?;
        Ok(true)
    }

    pub(crate) async fn xet_get_xorb(&self, hash: &str) -> Result<Option<XetXorb>> {
        let row = sqlx::query("SELECT * FROM xet_xorbs WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .db()?;
        row.as_ref().map(xorb_from_row).transpose()
    }

    pub(crate) async fn xet_get_xorbs(&self, hashes: &[String]) -> Result<Vec<XetXorb>> {
        let mut out = Vec::with_capacity(hashes.len());
        for batch in hashes.chunks(IN_BATCH) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("SELECT * FROM xet_xorbs WHERE hash IN (");
            let mut list = qb.separated(", ");
            for h in batch {
                list.push_bind(h.clone());
            }
            qb.push(")");
            let rows = qb.build().fetch_all(&self.pool).await.db()?;
            for row in &rows {
                out.push(xorb_from_row(row)?);
            }
        }
        Ok(out)
    }

    pub(crate) async fn xet_get_file(&self, file_hash: &str) -> Result<Option<XetFile>> {
        let row = sqlx::query(
            "SELECT file_hash, sha256, size, created_at FROM xet_files WHERE file_hash = ?",
        )
        .bind(file_hash)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        let terms = sqlx::query(
            "SELECT xorb_hash, chunk_start, chunk_end, raw_size FROM xet_file_terms \
             WHERE file_hash = ? ORDER BY seq",
        )
        .bind(file_hash)
        .fetch_all(&self.pool)
        .await
        .db()?
        .iter()
        .map(|t| {
            Ok(XetTerm {
                xorb_hash: t.try_get("xorb_hash").db()?,
                chunk_start: t.try_get("chunk_start").db()?,
                chunk_end: t.try_get("chunk_end").db()?,
                raw_size: t.try_get("raw_size").db()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(XetFile {
            file_hash: row.try_get("file_hash").db()?,
            sha256: row.try_get("sha256").db()?,
            size: row.try_get("size").db()?,
            terms,
            created_at: row.try_get("created_at").db()?,
        }))
    }

    pub(crate) async fn xet_hashes_by_sha256(
        &self,
        sha256s: &[String],
    ) -> Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        for batch in sha256s.chunks(IN_BATCH) {
            // SQLite takes the bare column `file_hash` from the row that holds the MIN.
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT sha256, file_hash, MIN(created_at) FROM xet_files WHERE sha256 IN (",
            );
            let mut list = qb.separated(", ");
            for s in batch {
                list.push_bind(s.clone());
            }
            qb.push(") GROUP BY sha256");
            let rows = qb.build().fetch_all(&self.pool).await.db()?;
            for row in &rows {
                out.insert(row.try_get("sha256").db()?, row.try_get("file_hash").db()?);
            }
        }
        Ok(out)
    }

    pub(crate) async fn xet_register(
        &self,
        link_to: Option<i64>,
        files: &[NewXetFile],
        dedup: &[XetChunkRef],
    ) -> Result<XetRegistration> {
        let mut tx = self.begin_write().await?;
        if let Some(repo_id) = link_to {
            let repo_exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM repos WHERE id = ?)")
                    .bind(repo_id)
                    .fetch_one(&mut *tx)
                    .await
                    .db()?;
            if !repo_exists {
                return Err(Error::repo_not_found());
            }
        }
        let mut out = XetRegistration::default();
        for f in files {
            let existing = sqlx::query("SELECT sha256, size FROM xet_files WHERE file_hash = ?")
                .bind(&f.file_hash)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
            match existing {
                Some(row) => {
                    let sha256: String = row.try_get("sha256").db()?;
                    let size: i64 = row.try_get("size").db()?;
                    if sha256 != f.sha256 || size != f.size {
                        return Err(Error::bad_request(format!(
                            "file {} does not have sha256 {} and size {}",
                            f.file_hash, f.sha256, f.size
                        )));
                    }
                }
                None => {
                    sqlx::query(
                        "INSERT INTO xet_files (file_hash, sha256, size, source, created_at) \
                         VALUES (?, ?, ?, ?, ?)",
                    )
                    .bind(&f.file_hash)
                    .bind(&f.sha256)
                    .bind(f.size)
                    .bind(f.source.as_str())
                    .bind(f.created_at)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                    for (seq, t) in f.terms.iter().enumerate() {
                        sqlx::query(
                            "INSERT INTO xet_file_terms \
                             (file_hash, seq, xorb_hash, chunk_start, chunk_end, raw_size) \
                             VALUES (?, ?, ?, ?, ?, ?)",
                        )
                        .bind(&f.file_hash)
                        .bind(seq as i64)
                        .bind(&t.xorb_hash)
                        .bind(t.chunk_start)
                        .bind(t.chunk_end)
                        .bind(t.raw_size)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            if is_foreign_key_violation(&e) {
                                Error::bad_request(format!(
                                    "file {} uses a xorb that is not stored",
                                    f.file_hash
                                ))
                            } else {
                                Error::internal(e)
                            }
                        })?;
                    }
                    out.files_added += 1;
                }
            }
            if let Some(repo_id) = link_to {
                let linked = sqlx::query(
                    "INSERT INTO repo_lfs_objects (repo_id, oid, size) VALUES (?, ?, ?) \
                     ON CONFLICT (repo_id, oid) DO NOTHING",
                )
                .bind(repo_id)
                .bind(&f.sha256)
                .bind(f.size)
                .execute(&mut *tx)
                .await
                .db()?;
                out.links_added += linked.rows_affected();
            }
        }
        insert_dedup_rows(&mut tx, dedup).await?;
        tx.commit().await.db()?;
        Ok(out)
    }

    pub(crate) async fn xet_dedup(
        &self,
        chunk_hash: &str,
        visible: &XetVisibility,
        limit: i64,
    ) -> Result<Vec<String>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT c.xorb_hash FROM xet_chunks c WHERE c.chunk_hash = ");
        qb.push_bind(chunk_hash.to_owned());
        qb.push(
            " AND EXISTS (SELECT 1 FROM xet_file_terms t \
             JOIN xet_files f ON f.file_hash = t.file_hash \
             JOIN repo_lfs_objects o ON o.oid = f.sha256 \
             JOIN repos r ON r.id = o.repo_id \
             WHERE t.xorb_hash = c.xorb_hash",
        );
        push_visibility(&mut qb, visible);
        qb.push(") ORDER BY c.xorb_hash LIMIT ").push_bind(limit);
        let rows = qb.build().fetch_all(&self.pool).await.db()?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("xorb_hash").db())
            .collect()
    }

    pub(crate) async fn xet_dedup_siblings(
        &self,
        xorbs: &[String],
        visible: &XetVisibility,
        limit: i64,
    ) -> Result<Vec<String>> {
        if xorbs.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT DISTINCT t2.xorb_hash AS xorb_hash FROM xet_file_terms t1 \
             JOIN xet_files f ON f.file_hash = t1.file_hash \
             JOIN xet_file_terms t2 ON t2.file_hash = f.file_hash \
             WHERE t1.xorb_hash IN (",
        );
        let mut list = qb.separated(", ");
        for x in xorbs.iter().take(IN_BATCH) {
            list.push_bind(x.clone());
        }
        qb.push(
            ") AND EXISTS (SELECT 1 FROM repo_lfs_objects o JOIN repos r ON r.id = o.repo_id \
             WHERE o.oid = f.sha256",
        );
        push_visibility(&mut qb, visible);
        qb.push(") ORDER BY t2.xorb_hash LIMIT ").push_bind(limit);
        let rows = qb.build().fetch_all(&self.pool).await.db()?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("xorb_hash").db())
            .collect()
    }

    pub(crate) async fn xet_repo_has_file(&self, repo_id: i64, file_hash: &str) -> Result<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM xet_files f \
             JOIN repo_lfs_objects o ON o.oid = f.sha256 AND o.repo_id = ? \
             WHERE f.file_hash = ?)",
        )
        .bind(repo_id)
        .bind(file_hash)
        .fetch_one(&self.pool)
        .await
        .db()
    }

    pub(crate) async fn xet_enqueue(&self, oid: &str, due: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO xet_jobs (oid, state, attempts, updated_at) VALUES (?, 'queued', 0, ?) \
             ON CONFLICT (oid) DO UPDATE SET updated_at = excluded.updated_at \
             WHERE xet_jobs.state = 'queued' AND excluded.updated_at > xet_jobs.updated_at",
        )
        .bind(oid)
        .bind(due)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    pub(crate) async fn xet_next_job(&self, now: i64) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT oid FROM xet_jobs WHERE state = 'queued' AND updated_at <= ? \
             ORDER BY updated_at, oid LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .db()
    }

    pub(crate) async fn xet_next_due(&self) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT MIN(updated_at) FROM xet_jobs WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await
            .db()
    }

    pub(crate) async fn xet_finish_job(
        &self,
        oid: &str,
        error: Option<&str>,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<XetJobState> {
        let (state, label, at) = match (error, retry_at) {
            (None, _) => (XetJobState::Done, "done", now),
            (Some(_), Some(at)) => (XetJobState::Queued, "queued", at),
            (Some(_), None) => (XetJobState::Failed, "failed", now),
        };
        let attempts = i64::from(error.is_some());
        sqlx::query(
            "UPDATE xet_jobs SET state = ?, attempts = attempts + ?, last_error = ?, \
             updated_at = ? WHERE oid = ?",
        )
        .bind(label)
        .bind(attempts)
        .bind(error)
        .bind(at)
        .bind(oid)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(state)
    }

    pub(crate) async fn xet_attempts(&self, oid: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT attempts FROM xet_jobs WHERE oid = ?")
                .bind(oid)
                .fetch_optional(&self.pool)
                .await
                .db()?
                .unwrap_or(0),
        )
    }

    pub(crate) async fn xet_backfill(&self, limit: i64) -> Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT DISTINCT o.oid FROM repo_lfs_objects o \
             WHERE NOT EXISTS (SELECT 1 FROM xet_files f WHERE f.sha256 = o.oid) \
             AND NOT EXISTS (SELECT 1 FROM xet_jobs j WHERE j.oid = o.oid) \
             ORDER BY o.oid LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .db()
    }
}
