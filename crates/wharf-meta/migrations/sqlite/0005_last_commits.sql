-- The "last commit" column of a folder listing at a commit, kept across restarts: commits are
-- immutable, so an answer never goes stale. `entries` is a JSON object {path: commit id}.
-- Only the newest few answers per (repository, folder) are kept (see wharf-hub last_commits.rs).
CREATE TABLE folder_last_commits (
    repo_id    INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    dir        TEXT    NOT NULL,
    commit_id  TEXT    NOT NULL,
    entries    TEXT    NOT NULL,
    stored_at  INTEGER NOT NULL,
    PRIMARY KEY (repo_id, dir, commit_id)
) WITHOUT ROWID;
