-- Gateway logs followed by `dispo run` ([[source]]): where reading stopped, per source, so a
-- restarted monitor reads nothing twice and skips nothing. Saved after the rows before it landed.
CREATE TABLE source_offsets (
    source     TEXT    NOT NULL PRIMARY KEY,  -- the [[source]] name
    path       TEXT    NOT NULL,              -- the path followed (for people; identity below)
    dev        INTEGER NOT NULL,              -- device and inode of the file being read
    ino        INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,             -- bytes read, just after a line end
    line       INTEGER NOT NULL,              -- lines read
    fp_len     INTEGER NOT NULL,              -- the file's first bytes (at most 1 KiB) ...
    fp_hash    INTEGER NOT NULL,              -- ... and their FNV-1a hash: tells a reused inode
    last_at    INTEGER,                       -- received_at of the last accepted line
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
