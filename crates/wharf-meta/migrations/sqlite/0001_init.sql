-- Wharf metadata schema (SQLite).
-- Conventions: flags are INTEGER 0/1, times are INTEGER epoch milliseconds, JSON is TEXT.
-- Names compare case-insensitively (COLLATE NOCASE) but are stored as typed.

-- Users and organizations share one namespace.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    kind          TEXT    NOT NULL CHECK (kind IN ('user', 'org')),
    fullname      TEXT    NOT NULL DEFAULT '',
    email         TEXT,
    password_hash TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    created_at    INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role    TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Only the SHA-256 hex of a token value is stored.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash TEXT    NOT NULL UNIQUE,
    role       TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    label      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX tokens_by_user ON tokens (user_id);

CREATE TABLE repos (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    storage_id    TEXT    NOT NULL UNIQUE,
    repo_type     TEXT    NOT NULL CHECK (repo_type IN ('model', 'dataset', 'space')),
    namespace     TEXT    NOT NULL COLLATE NOCASE,
    name          TEXT    NOT NULL COLLATE NOCASE,
    private       INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1)),
    gated         TEXT    CHECK (gated IS NULL OR gated IN ('auto', 'manual')),
    created_at    INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    sha           TEXT,
    card_data     TEXT,
    tags          TEXT    NOT NULL DEFAULT '[]',
    pipeline_tag  TEXT,
    library_name  TEXT,
    downloads     INTEGER NOT NULL DEFAULT 0,
    likes         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (repo_type, namespace, name)
);
CREATE INDEX repos_by_namespace ON repos (namespace);
CREATE INDEX repos_by_last_modified ON repos (repo_type, last_modified);
CREATE INDEX repos_by_downloads ON repos (repo_type, downloads);
CREATE INDEX repos_by_likes ON repos (repo_type, likes);
CREATE INDEX repos_by_pipeline_tag ON repos (repo_type, pipeline_tag);

-- Tag index for listing filters; `repos.tags` keeps the ordered list as JSON.
CREATE TABLE repo_tags (
    repo_id INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    tag     TEXT    NOT NULL,
    PRIMARY KEY (repo_id, tag)
);
CREATE INDEX repo_tags_by_tag ON repo_tags (tag, repo_id);

-- Former names of repos after a move; the key is unique case-insensitively.
CREATE TABLE repo_redirects (
    repo_type TEXT    NOT NULL,
    namespace TEXT    NOT NULL COLLATE NOCASE,
    name      TEXT    NOT NULL COLLATE NOCASE,
    repo_id   INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    PRIMARY KEY (repo_type, namespace, name)
);
CREATE INDEX repo_redirects_by_repo ON repo_redirects (repo_id);

-- LFS objects a repo owns (uploaded and verified).
CREATE TABLE repo_lfs_objects (
    repo_id INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    oid     TEXT    NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (repo_id, oid)
);
CREATE INDEX repo_lfs_objects_by_oid ON repo_lfs_objects (oid);
