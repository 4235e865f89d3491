-- LFS objects waiting to be converted into Xet storage (docs/xet.md §3.10). `updated_at` is
-- also the earliest time a queued job may run again (back-off after a failure).
CREATE TABLE xet_jobs (
    oid        TEXT    PRIMARY KEY,
    state      TEXT    NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX xet_jobs_by_state ON xet_jobs (state, updated_at);
