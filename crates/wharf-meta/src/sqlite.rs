//! The embedded [`MetaStore`]: SQLite through sqlx, schema in `migrations/sqlite`.
//!
//! Conventions of the schema: flags are INTEGER 0/1, times INTEGER epoch milliseconds, JSON TEXT.
//! Names are `COLLATE NOCASE` columns, so equality and uniqueness on them ignore (ASCII) case
//! while the stored value keeps the case it was created with.
//!
//! Every write that spans several statements runs in a `BEGIN IMMEDIATE` transaction: it takes
//! the database's single write lock up front (waiting up to `busy_timeout`), instead of failing
//! with `SQLITE_BUSY` when a deferred transaction tries to upgrade from read to write.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};
use wharf_core::{Error, RepoType, Result, Role};

use crate::{
    Account, AccountKind, MainState, MetaStore, NewAccount, NewRepo, NewSession, NewToken,
    NewXetFile, Repo, RepoQuery, RepoSort, Session, Token, XetChunkRef, XetFile, XetJobState,
    XetRegistration, XetVisibility, XetXorb,
};
use std::collections::HashMap;

/// Connections in the file-backed pool. SQLite has one writer at a time; the others serve reads
/// concurrently thanks to WAL.
const POOL_SIZE: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

// Column lists as macros, so that whole statements stay `&'static str` literals (sqlx 0.9 wants
// `SqlSafeStr`; no runtime string building except in `QueryBuilder`).
macro_rules! account_cols {
    () => {
        "a.id AS id, a.name AS name, a.kind AS kind, a.fullname AS fullname, a.email AS email, \
         a.password_hash AS password_hash, a.is_admin AS is_admin, a.created_at AS created_at"
    };
}

macro_rules! repo_cols {
    () => {
        "r.id AS id, r.storage_id AS storage_id, r.repo_type AS repo_type, \
         r.namespace AS namespace, r.name AS name, r.private AS private, r.gated AS gated, \
         r.created_at AS created_at, r.last_modified AS last_modified, r.sha AS sha, \
         r.card_data AS card_data, r.tags AS tags, r.pipeline_tag AS pipeline_tag, \
         r.library_name AS library_name, r.downloads AS downloads, r.likes AS likes"
    };
}

/// The SQLite metadata store. Cheap to clone (it is a connection pool).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its parent folder if missing) the database file at `path`, and
    /// brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(parent).await?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode, NORMAL syncs the WAL at checkpoints rather than at every commit. A
            // committed transaction survives a crash or kill of the application (the WAL is in
            // the OS page cache and replayed on open); only a power loss or OS crash can roll
            // back the last few commits, never corrupt the database.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options)
            .await
            .map_err(Error::internal)?;
        Self::with_pool(pool).await
    }

    /// A private in-memory database (for tests). It lives on a single connection that the pool
    /// never closes, so the data lasts as long as the store.
    pub async fn open_in_memory() -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(Error::internal)?
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(Error::internal)?;
        Self::with_pool(pool).await
    }

    async fn with_pool(pool: SqlitePool) -> Result<SqliteStore> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(Error::internal)?;
        Ok(SqliteStore { pool })
    }

    /// Closes every connection (checkpointing the WAL). Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.db()
    }
}

// --- error mapping ------------------------------------------------------------------------------

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(crate) trait DbResult<T> {
    /// Unique violations become a generic `Conflict`, everything else `Internal`.
    fn db(self) -> Result<T>;
    /// Unique violations become `Conflict` with this message, everything else `Internal`.
    fn conflict_as(self, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T> DbResult<T> for std::result::Result<T, sqlx::Error> {
    fn db(self) -> Result<T> {
        self.conflict_as(|| "Already exists".to_owned())
    }
    fn conflict_as(self, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            if is_unique_violation(&e) {
                Error::conflict(message())
            } else {
                Error::internal(e)
            }
        })
    }
}

// --- row decoding -------------------------------------------------------------------------------

fn kind_str(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::User => "user",
        AccountKind::Org => "org",
    }
}

fn parse_kind(s: &str) -> Result<AccountKind> {
    match s {
        "user" => Ok(AccountKind::User),
        "org" => Ok(AccountKind::Org),
        other => Err(Error::internal(format!(
            "unknown account kind in database: {other:?}"
        ))),
    }
}

fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| Error::internal(format!("unknown role in database: {s:?}")))
}

/// Rows of `account_cols!()` plus `member_role`, as (account, role) pairs.
fn accounts_with_roles(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<(Account, Role)>> {
    rows.iter()
        .map(|row| {
            let role: String = row.try_get("member_role").db()?;
            Ok((account_from_row(row)?, parse_role(&role)?))
        })
        .collect()
}

fn account_from_row(row: &SqliteRow) -> Result<Account> {
    let kind: String = row.try_get("kind").db()?;
    Ok(Account {
        id: row.try_get("id").db()?,
        name: row.try_get("name").db()?,
        kind: parse_kind(&kind)?,
        fullname: row.try_get("fullname").db()?,
        email: row.try_get("email").db()?,
        password_hash: row.try_get("password_hash").db()?,
        is_admin: row.try_get::<i64, _>("is_admin").db()? != 0,
        created_at: row.try_get("created_at").db()?,
    })
}

fn repo_from_row(row: &SqliteRow) -> Result<Repo> {
    let repo_type: String = row.try_get("repo_type").db()?;
    let repo_type = RepoType::from_singular(&repo_type)
        .ok_or_else(|| Error::internal(format!("unknown repo type in database: {repo_type:?}")))?;
    let card_data: Option<String> = row.try_get("card_data").db()?;
    let card_data = match card_data {
        Some(text) => Some(serde_json::from_str::<Value>(&text).map_err(Error::internal)?),
        None => None,
    };
    let tags: String = row.try_get("tags").db()?;
    let tags: Vec<String> = serde_json::from_str(&tags).map_err(Error::internal)?;
    Ok(Repo {
        id: row.try_get("id").db()?,
        storage_id: row.try_get("storage_id").db()?,
        repo_type,
        namespace: row.try_get("namespace").db()?,
        name: row.try_get("name").db()?,
        private: row.try_get::<i64, _>("private").db()? != 0,
        gated: row.try_get("gated").db()?,
        created_at: row.try_get("created_at").db()?,
        last_modified: row.try_get("last_modified").db()?,
        sha: row.try_get("sha").db()?,
        card_data,
        tags,
        pipeline_tag: row.try_get("pipeline_tag").db()?,
        library_name: row.try_get("library_name").db()?,
        downloads: row.try_get("downloads").db()?,
        likes: row.try_get("likes").db()?,
    })
}

/// Appends the conditions of a listing (type, author, search, tags, pipeline tag, visibility)
/// to a query that has just written `WHERE ` over `repos r`.
fn push_repo_filters(qb: &mut QueryBuilder<Sqlite>, query: &RepoQuery) {
    qb.push("r.repo_type = ")
        .push_bind(query.repo_type.as_str());

    if let Some(author) = &query.author {
        // `namespace` is a NOCASE column: the comparison ignores case.
        qb.push(" AND r.namespace = ").push_bind(author.clone());
    }
    if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
        // instr() rather than LIKE, so that `%` and `_` in the search are plain characters.
        qb.push(" AND instr(lower(r.namespace || '/' || r.name), lower(")
            .push_bind(search.to_owned())
            .push(")) > 0");
    }
    let mut tags: Vec<&String> = query.tags.iter().collect();
    tags.sort();
    tags.dedup();
    for tag in tags {
        qb.push(" AND EXISTS (SELECT 1 FROM repo_tags t WHERE t.repo_id = r.id AND t.tag = ")
            .push_bind(tag.clone())
            .push(")");
    }
    if let Some(pipeline_tag) = &query.pipeline_tag {
        qb.push(" AND r.pipeline_tag = ")
            .push_bind(pipeline_tag.clone());
    }
    if !query.see_all {
        if query.visible_namespaces.is_empty() {
            qb.push(" AND r.private = 0");
        } else {
            // IN compares with the left operand's collation (NOCASE).
            qb.push(" AND (r.private = 0 OR r.namespace IN (");
            let mut list = qb.separated(", ");
            for ns in &query.visible_namespaces {
                list.push_bind(ns.clone());
            }
            qb.push("))");
        }
    }
}

fn token_from_row(row: &SqliteRow) -> Result<Token> {
    let role: String = row.try_get("role").db()?;
    Ok(Token {
        id: row.try_get("id").db()?,
        user_id: row.try_get("user_id").db()?,
        role: parse_role(&role)?,
        label: row.try_get("label").db()?,
        created_at: row.try_get("created_at").db()?,
    })
}

/// `Ok(())` when the statement touched a row, else `RepoNotFound`.
fn require_repo(rows_affected: u64) -> Result<()> {
    if rows_affected == 0 {
        Err(Error::repo_not_found())
    } else {
        Ok(())
    }
}

// --- the store ----------------------------------------------------------------------------------

#[async_trait]
impl MetaStore for SqliteStore {
    async fn create_account(&self, new: NewAccount) -> Result<Account> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (name, kind, fullname, email, password_hash, is_admin, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.name)
        .bind(kind_str(new.kind))
        .bind(&new.fullname)
        .bind(&new.email)
        .bind(&new.password_hash)
        .bind(i64::from(new.is_admin))
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .conflict_as(|| format!("The name '{}' is already taken", new.name))?;
        Ok(Account {
            id,
            name: new.name,
            kind: new.kind,
            fullname: new.fullname,
            email: new.email,
            password_hash: new.password_hash,
            is_admin: new.is_admin,
            created_at: new.created_at,
        })
    }

    async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            " FROM accounts a WHERE a.name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn account_by_id(&self, id: i64) -> Result<Option<Account>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            " FROM accounts a WHERE a.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn set_membership(&self, org_id: i64, user_id: i64, role: Role) -> Result<()> {
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role) VALUES (?, ?, ?) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .db()?;
        Ok(())
    }

    async fn role_in_org(&self, org_id: i64, user_id: i64) -> Result<Option<Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = ? AND user_id = ?")
                .bind(org_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await
                .db()?;
        role.as_deref().map(parse_role).transpose()
    }

    async fn orgs_of_user(&self, user_id: i64) -> Result<Vec<(Account, Role)>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            ", m.role AS member_role FROM memberships m JOIN accounts a ON a.id = m.org_id \
             WHERE m.user_id = ? ORDER BY a.name, a.id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        accounts_with_roles(&rows)
    }

    async fn create_token(&self, new: NewToken) -> Result<Token> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (user_id, token_hash, role, label, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.user_id)
        .bind(&new.token_hash)
        .bind(new.role.as_str())
        .bind(&new.label)
        .bind(new.created_at)
        .fetch_one(&self.pool)
        .await
        .conflict_as(|| "This token already exists".to_owned())?;
        Ok(Token {
            id,
            user_id: new.user_id,
            role: new.role,
            label: new.label,
            created_at: new.created_at,
        })
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<(Token, Account)>> {
        let row = sqlx::query(concat!(
            "SELECT t.id AS token_id, t.user_id AS token_user_id, t.role AS token_role, \
             t.label AS token_label, t.created_at AS token_created_at, ",
            account_cols!(),
            " FROM tokens t JOIN accounts a ON a.id = t.user_id \
             WHERE t.token_hash = ? AND t.revoked_at IS NULL"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("token_role").db()?;
        let token = Token {
            id: row.try_get("token_id").db()?,
            user_id: row.try_get("token_user_id").db()?,
            role: parse_role(&role)?,
            label: row.try_get("token_label").db()?,
            created_at: row.try_get("token_created_at").db()?,
        };
        Ok(Some((token, account_from_row(&row)?)))
    }

    async fn live_token(&self, token_id: i64) -> Result<Option<Token>> {
        let row = sqlx::query(
            "SELECT id, user_id, role, label, created_at FROM tokens \
             WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(token_id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get("role").db()?;
        Ok(Some(Token {
            id: row.try_get("id").db()?,
            user_id: row.try_get("user_id").db()?,
            role: parse_role(&role)?,
            label: row.try_get("label").db()?,
            created_at: row.try_get("created_at").db()?,
        }))
    }

    async fn revoke_token(&self, token_hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(wharf_core::time::now_ms())
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_repo(&self, new: NewRepo) -> Result<Repo> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO repos (storage_id, repo_type, namespace, name, private, created_at, \
             last_modified) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&new.storage_id)
        .bind(new.repo_type.as_str())
        .bind(&new.namespace)
        .bind(&new.name)
        .bind(i64::from(new.private))
        .bind(new.created_at)
        .bind(new.created_at)
        .fetch_one(&mut *tx)
        .await
        .conflict_as(|| {
            format!(
                "You already created this {} repo: {}/{}",
                new.repo_type.as_str(),
                new.namespace,
                new.name
            )
        })?;
        // A new repo takes over its name: an old name of another repo stops redirecting.
        sqlx::query(
            "DELETE FROM repo_redirects WHERE repo_type = ? AND namespace = ? AND name = ?",
        )
        .bind(new.repo_type.as_str())
        .bind(&new.namespace)
        .bind(&new.name)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(Repo {
            id,
            storage_id: new.storage_id,
            repo_type: new.repo_type,
            namespace: new.namespace,
            name: new.name,
            private: new.private,
            gated: None,
            created_at: new.created_at,
            last_modified: new.created_at,
            sha: None,
            card_data: None,
            tags: Vec::new(),
            pipeline_tag: None,
            library_name: None,
            downloads: 0,
            likes: 0,
        })
    }

    async fn repo_by_name(
        &self,
        repo_type: RepoType,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Repo>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            repo_cols!(),
            " FROM repos r WHERE r.repo_type = ? AND r.namespace = ? AND r.name = ?"
        ))
        .bind(repo_type.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(repo_from_row).transpose()
    }

    async fn repo_by_old_name(
        &self,
        repo_type: RepoType,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Repo>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            repo_cols!(),
            " FROM repo_redirects d JOIN repos r ON r.id = d.repo_id \
             WHERE d.repo_type = ? AND d.namespace = ? AND d.name = ?"
        ))
        .bind(repo_type.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(repo_from_row).transpose()
    }

    async fn repo_by_current_or_old_name(
        &self,
        repo_type: RepoType,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Repo>> {
        // Both branches always run (one statement), current names first.
        let row = sqlx::query(concat!(
            "SELECT * FROM (SELECT ",
            repo_cols!(),
            ", 0 AS rank FROM repos r WHERE r.repo_type = ?1 AND r.namespace = ?2 AND r.name = ?3 \
             UNION ALL SELECT ",
            repo_cols!(),
            ", 1 AS rank FROM repo_redirects d JOIN repos r ON r.id = d.repo_id \
             WHERE d.repo_type = ?1 AND d.namespace = ?2 AND d.name = ?3) \
             ORDER BY rank LIMIT 1"
        ))
        .bind(repo_type.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(repo_from_row).transpose()
    }

    async fn repo_by_id(&self, id: i64) -> Result<Option<Repo>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            repo_cols!(),
            " FROM repos r WHERE r.id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(repo_from_row).transpose()
    }

    async fn list_repos(&self, query: &RepoQuery) -> Result<Vec<Repo>> {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(concat!("SELECT ", repo_cols!(), " FROM repos r WHERE "));
        push_repo_filters(&mut qb, query);

        let column = match query.sort {
            RepoSort::Id => None,
            RepoSort::LastModified => Some("r.last_modified"),
            RepoSort::CreatedAt => Some("r.created_at"),
            RepoSort::Downloads => Some("r.downloads"),
            RepoSort::Likes => Some("r.likes"),
        };
        let direction = if query.descending { " DESC" } else { " ASC" };
        qb.push(" ORDER BY ");
        if let Some(column) = column {
            qb.push(column).push(direction).push(", ");
        }
        qb.push("r.id").push(direction);
        // A negative LIMIT means "no limit" to SQLite.
        qb.push(" LIMIT ").push_bind(query.limit);
        qb.push(" OFFSET ").push_bind(query.offset.max(0));

        let rows = qb.build().fetch_all(&self.pool).await.db()?;
        rows.iter().map(repo_from_row).collect()
    }

    async fn delete_repo(&self, id: i64) -> Result<()> {
        // Tags, redirects and LFS links go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM repos WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .db()?;
        require_repo(done.rows_affected())
    }

    async fn move_repo(&self, id: i64, namespace: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let current = sqlx::query("SELECT repo_type, namespace, name FROM repos WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
        let Some(current) = current else {
            return Err(Error::repo_not_found());
        };
        let repo_type: String = current.try_get("repo_type").db()?;
        let old_namespace: String = current.try_get("namespace").db()?;
        let old_name: String = current.try_get("name").db()?;

        sqlx::query("UPDATE repos SET namespace = ?, name = ? WHERE id = ?")
            .bind(namespace)
            .bind(name)
            .bind(id)
            .execute(&mut *tx)
            .await
            .conflict_as(|| {
                format!("A {repo_type} repo named {namespace}/{name} already exists")
            })?;
        // Redirect the old name here. Then drop the redirect the new name shadows (for a move
        // that only changes case, that is the one just written: no redirect is needed).
        sqlx::query(
            "INSERT INTO repo_redirects (repo_type, namespace, name, repo_id) VALUES (?, ?, ?, ?) \
             ON CONFLICT (repo_type, namespace, name) DO UPDATE SET repo_id = excluded.repo_id",
        )
        .bind(&repo_type)
        .bind(&old_namespace)
        .bind(&old_name)
        .bind(id)
        .execute(&mut *tx)
        .await
        .db()?;
        sqlx::query(
            "DELETE FROM repo_redirects WHERE repo_type = ? AND namespace = ? AND name = ?",
        )
        .bind(&repo_type)
        .bind(namespace)
        .bind(name)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }

    async fn set_private(&self, id: i64, private: bool) -> Result<()> {
        let done = sqlx::query("UPDATE repos SET private = ? WHERE id = ?")
            .bind(i64::from(private))
            .bind(id)
            .execute(&self.pool)
            .await
            .db()?;
        require_repo(done.rows_affected())
    }

    async fn set_gated(&self, id: i64, gated: Option<&str>) -> Result<()> {
        if let Some(mode) = gated
            && mode != "auto"
            && mode != "manual"
        {
            return Err(Error::bad_request(format!(
                "Invalid gated value '{mode}': expected 'auto' or 'manual'"
            )));
        }
        let done = sqlx::query("UPDATE repos SET gated = ? WHERE id = ?")
            .bind(gated)
            .bind(id)
            .execute(&self.pool)
            .await
            .db()?;
        require_repo(done.rows_affected())
    }

    async fn record_commit(
        &self,
        id: i64,
        last_modified: i64,
        main: Option<MainState>,
    ) -> Result<()> {
        let Some(main) = main else {
            let done = sqlx::query("UPDATE repos SET last_modified = ? WHERE id = ?")
                .bind(last_modified)
                .bind(id)
                .execute(&self.pool)
                .await
                .db()?;
            return require_repo(done.rows_affected());
        };
        let card_data = main
            .card_data
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(Error::internal)?;
        let tags_json = serde_json::to_string(&main.tags).map_err(Error::internal)?;

        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE repos SET last_modified = ?, sha = ?, card_data = ?, pipeline_tag = ?, \
             library_name = ?, tags = ? WHERE id = ?",
        )
        .bind(last_modified)
        .bind(&main.sha)
        .bind(card_data)
        .bind(&main.pipeline_tag)
        .bind(&main.library_name)
        .bind(tags_json)
        .bind(id)
        .execute(&mut *tx)
        .await
        .db()?;
        require_repo(done.rows_affected())?;
        sqlx::query("DELETE FROM repo_tags WHERE repo_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .db()?;
        for tag in &main.tags {
            sqlx::query("INSERT OR IGNORE INTO repo_tags (repo_id, tag) VALUES (?, ?)")
                .bind(id)
                .bind(tag)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        tx.commit().await.db()
    }

    async fn add_downloads(&self, id: i64, n: i64) -> Result<()> {
        let done = sqlx::query("UPDATE repos SET downloads = downloads + ? WHERE id = ?")
            .bind(n)
            .bind(id)
            .execute(&self.pool)
            .await
            .db()?;
        require_repo(done.rows_affected())
    }

    async fn link_lfs_object(&self, repo_id: i64, oid: &str, size: i64) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO repo_lfs_objects (repo_id, oid, size) VALUES (?, ?, ?) \
             ON CONFLICT (repo_id, oid) DO NOTHING",
        )
        .bind(repo_id)
        .bind(oid)
        .bind(size)
        .execute(&self.pool)
        .await;
        match done {
            // The repository was deleted while its upload ran.
            Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => {
                Err(Error::repo_not_found())
            }
            other => other.db().map(drop),
        }
    }

    async fn repo_lfs_object(&self, repo_id: i64, oid: &str) -> Result<Option<i64>> {
        sqlx::query_scalar("SELECT size FROM repo_lfs_objects WHERE repo_id = ? AND oid = ?")
            .bind(repo_id)
            .bind(oid)
            .fetch_optional(&self.pool)
            .await
            .db()
    }

    async fn repo_lfs_objects(
        &self,
        repo_id: i64,
        oids: &[String],
    ) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for batch in oids.chunks(500) {
            let mut qb: sqlx::QueryBuilder<sqlx::Sqlite> =
                sqlx::QueryBuilder::new("SELECT oid, size FROM repo_lfs_objects WHERE repo_id = ");
            qb.push_bind(repo_id);
            qb.push(" AND oid IN (");
            let mut list = qb.separated(", ");
            for oid in batch {
                list.push_bind(oid.clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&self.pool).await.db()? {
                out.insert(row.try_get("oid").db()?, row.try_get("size").db()?);
            }
        }
        Ok(out)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<Account>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            " FROM accounts a WHERE a.email = ? COLLATE NOCASE AND a.kind = 'user' \
             ORDER BY a.id LIMIT 1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn org_members(&self, org_id: i64) -> Result<Vec<(Account, Role)>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            account_cols!(),
            ", m.role AS member_role FROM memberships m JOIN accounts a ON a.id = m.user_id \
             WHERE m.org_id = ? ORDER BY a.name, a.id"
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        accounts_with_roles(&rows)
    }

    async fn tokens_of_user(&self, user_id: i64) -> Result<Vec<Token>> {
        let rows = sqlx::query(
            "SELECT id, user_id, role, label, created_at FROM tokens \
             WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .db()?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token_of_user(&self, user_id: i64, token_id: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        )
        .bind(wharf_core::time::now_ms())
        .bind(token_id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .db()?;
        Ok(done.rows_affected() > 0)
    }

    async fn count_repos(&self, query: &RepoQuery) -> Result<i64> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT COUNT(*) FROM repos r WHERE ");
        push_repo_filters(&mut qb, query);
        qb.build_query_scalar::<i64>()
            .fetch_one(&self.pool)
            .await
            .db()
    }

    async fn tag_counts(&self, query: &RepoQuery) -> Result<Vec<(String, i64)>> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT g.tag AS tag, COUNT(*) AS n FROM repo_tags g JOIN repos r ON r.id = g.repo_id \
             WHERE ",
        );
        push_repo_filters(&mut qb, query);
        qb.push(" GROUP BY g.tag ORDER BY n DESC, g.tag ASC");
        let rows = qb.build().fetch_all(&self.pool).await.db()?;
        rows.iter()
            .map(|row| Ok((row.try_get("tag").db()?, row.try_get("n").db()?)))
            .collect()
    }

    async fn create_session(&self, new: NewSession) -> Result<Session> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (user_id, session_hash, created_at, expires_at) \
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(new.user_id)
        .bind(&new.session_hash)
        .bind(new.created_at)
        .bind(new.expires_at)
        .fetch_one(&self.pool)
        .await
        .conflict_as(|| "This session already exists".to_owned())?;
        Ok(Session {
            id,
            user_id: new.user_id,
            created_at: new.created_at,
            expires_at: new.expires_at,
        })
    }

    async fn session_by_hash(
        &self,
        session_hash: &str,
        now: i64,
    ) -> Result<Option<(Session, Account)>> {
        let row = sqlx::query(concat!(
            "SELECT s.id AS session_id, s.user_id AS session_user_id, \
             s.created_at AS session_created_at, s.expires_at AS session_expires_at, ",
            account_cols!(),
            " FROM sessions s JOIN accounts a ON a.id = s.user_id \
             WHERE s.session_hash = ? AND s.expires_at > ?"
        ))
        .bind(session_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        let Some(row) = row else { return Ok(None) };
        let session = Session {
            id: row.try_get("session_id").db()?,
            user_id: row.try_get("session_user_id").db()?,
            created_at: row.try_get("session_created_at").db()?,
            expires_at: row.try_get("session_expires_at").db()?,
        };
        Ok(Some((session, account_from_row(&row)?)))
    }

    async fn delete_session(&self, session_hash: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE session_hash = ?")
            .bind(session_hash)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_expired_sessions(&self, now: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .db()?;
        Ok(done.rows_affected())
    }

    async fn insert_xet_xorb(&self, xorb: &XetXorb, dedup: &[XetChunkRef]) -> Result<bool> {
        self.xet_insert_xorb(xorb, dedup).await
    }

    async fn xet_xorb(&self, hash: &str) -> Result<Option<XetXorb>> {
        self.xet_get_xorb(hash).await
    }

    async fn xet_xorbs(&self, hashes: &[String]) -> Result<Vec<XetXorb>> {
        self.xet_get_xorbs(hashes).await
    }

    async fn xet_file(&self, file_hash: &str) -> Result<Option<XetFile>> {
        self.xet_get_file(file_hash).await
    }

    async fn xet_hashes_for_sha256s(&self, sha256s: &[String]) -> Result<HashMap<String, String>> {
        self.xet_hashes_by_sha256(sha256s).await
    }

    async fn register_xet_files(
        &self,
        link_to: Option<i64>,
        files: &[NewXetFile],
        dedup: &[XetChunkRef],
    ) -> Result<XetRegistration> {
        self.xet_register(link_to, files, dedup).await
    }

    async fn repo_has_xet_file(&self, repo_id: i64, file_hash: &str) -> Result<bool> {
        self.xet_repo_has_file(repo_id, file_hash).await
    }

    async fn xet_dedup_lookup(
        &self,
        chunk_hash: &str,
        visible: &XetVisibility,
        limit: i64,
    ) -> Result<Vec<String>> {
        self.xet_dedup(chunk_hash, visible, limit).await
    }

    async fn xet_dedup_siblings(
        &self,
        xorbs: &[String],
        visible: &XetVisibility,
        limit: i64,
    ) -> Result<Vec<String>> {
        self.xet_dedup_siblings(xorbs, visible, limit).await
    }

    async fn enqueue_xet_job(&self, oid: &str, due: i64) -> Result<()> {
        self.xet_enqueue(oid, due).await
    }

    async fn next_xet_job(&self, now: i64) -> Result<Option<String>> {
        self.xet_next_job(now).await
    }

    async fn next_xet_due(&self) -> Result<Option<i64>> {
        self.xet_next_due().await
    }

    async fn finish_xet_job(
        &self,
        oid: &str,
        error: Option<&str>,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<XetJobState> {
        self.xet_finish_job(oid, error, retry_at, now).await
    }

    async fn xet_job_attempts(&self, oid: &str) -> Result<i64> {
        self.xet_attempts(oid).await
    }

    async fn lfs_oids_without_xet(&self, limit: i64) -> Result<Vec<String>> {
        self.xet_backfill(limit).await
    }

    async fn touch_xet_xorb(&self, hash: &str, now: i64) -> Result<bool> {
        self.storage_touch_xorb(hash, now).await
    }

    async fn lfs_links(&self, repo_id: Option<i64>) -> Result<Vec<crate::LfsLink>> {
        self.storage_links(repo_id).await
    }

    async fn linked_lfs_oids(&self, oids: &[String]) -> Result<std::collections::HashSet<String>> {
        self.storage_linked(oids).await
    }

    async fn xet_usage(&self, repo_id: Option<i64>) -> Result<Vec<crate::XetRepoUsage>> {
        self.storage_xet_usage(repo_id).await
    }

    async fn xet_totals(&self) -> Result<crate::XetTotals> {
        self.storage_xet_totals().await
    }

    async fn xet_garbage(&self, cutoff: i64) -> Result<crate::XetGarbage> {
        self.storage_garbage(cutoff).await
    }

    async fn delete_xet_file_if_garbage(&self, file_hash: &str, cutoff: i64) -> Result<bool> {
        self.storage_delete_file(file_hash, cutoff).await
    }

    async fn delete_xet_xorb_if_garbage(&self, hash: &str, cutoff: i64) -> Result<bool> {
        self.storage_delete_xorb(hash, cutoff).await
    }

    async fn repo_by_storage_id(&self, storage_id: &str) -> Result<Option<Repo>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            repo_cols!(),
            " FROM repos r WHERE r.storage_id = ?"
        ))
        .bind(storage_id)
        .fetch_optional(&self.pool)
        .await
        .db()?;
        row.as_ref().map(repo_from_row).transpose()
    }

    async fn repo_heads(&self) -> Result<Vec<crate::RepoHead>> {
        self.fsck_repo_heads().await
    }

    async fn xet_file_xorbs(&self) -> Result<Vec<crate::XetFileXorb>> {
        self.fsck_xet_file_xorbs().await
    }

    async fn folder_last_commits(
        &self,
        repo_id: i64,
        dir: &str,
        commit: &str,
    ) -> Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT entries FROM folder_last_commits WHERE repo_id = ? AND dir = ? AND commit_id = ?",
        )
        .bind(repo_id)
        .bind(dir)
        .bind(commit)
        .fetch_optional(&self.pool)
        .await
        .db()
    }

    async fn store_folder_last_commits(
        &self,
        repo_id: i64,
        dir: &str,
        commit: &str,
        entries: &str,
        keep: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT OR REPLACE INTO folder_last_commits (repo_id, dir, commit_id, entries, stored_at) \
             VALUES (?, ?, ?, ?, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))",
        )
        .bind(repo_id)
        .bind(dir)
        .bind(commit)
        .bind(entries)
        .execute(&mut *tx)
        .await
        .db()?;
        sqlx::query(
            "DELETE FROM folder_last_commits WHERE repo_id = ? AND dir = ? AND commit_id NOT IN \
             (SELECT commit_id FROM folder_last_commits WHERE repo_id = ? AND dir = ? \
              ORDER BY stored_at DESC LIMIT ?)",
        )
        .bind(repo_id)
        .bind(dir)
        .bind(repo_id)
        .bind(dir)
        .bind(keep)
        .execute(&mut *tx)
        .await
        .db()?;
        tx.commit().await.db()
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
