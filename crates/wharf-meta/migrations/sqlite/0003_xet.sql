-- Xet storage (docs/xet.md §3.3). Hashes are Xet hash strings: 64 lowercase hex characters in
-- the Xet print order. Ownership stays in repo_lfs_objects: registering a Xet file with a write
-- token for repo R links its (sha256, size) to R exactly as an LFS upload does.

-- Xorbs Wharf verified itself (every chunk decompressed and hashed) and stored durably.
CREATE TABLE xet_xorbs (
    hash        TEXT    PRIMARY KEY,
    num_chunks  INTEGER NOT NULL,
    raw_size    INTEGER NOT NULL,   -- sum of the uncompressed chunk sizes
    data_size   INTEGER NOT NULL,   -- bytes of the chunk stream; the footer starts here
    stored_size INTEGER NOT NULL,   -- bytes in the blob store, footer included
    chunk_ends  BLOB    NOT NULL,   -- num_chunks x (u32 LE physical end, u32 LE raw end)
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Files registered from verified shards. Their sha256 was recomputed by Wharf from the
-- reconstructed bytes, so the sha256 -> file lookup may be global.
CREATE TABLE xet_files (
    file_hash  TEXT    PRIMARY KEY,
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    source     TEXT    NOT NULL CHECK (source IN ('xet', 'lfs')),
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX xet_files_by_sha256 ON xet_files (sha256, created_at);

-- The terms of each file, in order: chunks [chunk_start, chunk_end) of a xorb.
CREATE TABLE xet_file_terms (
    file_hash   TEXT    NOT NULL REFERENCES xet_files (file_hash) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    xorb_hash   TEXT    NOT NULL REFERENCES xet_xorbs (hash),
    chunk_start INTEGER NOT NULL,
    chunk_end   INTEGER NOT NULL,
    raw_size    INTEGER NOT NULL,
    PRIMARY KEY (file_hash, seq)
) WITHOUT ROWID;
CREATE INDEX xet_file_terms_by_xorb ON xet_file_terms (xorb_hash);

-- Global dedup index, filled only from data Wharf verified: the eligible chunks of every stored
-- xorb (hash % 1024 == 0) and the first chunk of every registered file.
CREATE TABLE xet_chunks (
    chunk_hash  TEXT    NOT NULL,
    xorb_hash   TEXT    NOT NULL REFERENCES xet_xorbs (hash) ON DELETE CASCADE,
    chunk_index INTEGER NOT NULL,
    PRIMARY KEY (chunk_hash, xorb_hash)
) WITHOUT ROWID;
CREATE INDEX xet_chunks_by_xorb ON xet_chunks (xorb_hash);
