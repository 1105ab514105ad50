-- Observations stored in the order of their identity key (a WITHOUT ROWID table).
-- With a rowid table, every row was written twice: once in the table (keyed on a rowid nobody
-- reads) and once in the unique identity index, which also repeats the request id. Clustered on
-- the identity key, a row is written once, imports do one B-tree insert per row instead of two,
-- the file is about a third smaller, and a period's rows are read in place, in time order.
-- Uniqueness is unchanged: the same three columns, now the primary key.
CREATE TABLE observations_clustered (
    received_at     INTEGER NOT NULL,
    establishment   TEXT    NOT NULL,
    interface       TEXT    NOT NULL,
    service         TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    tpp             TEXT,
    status          INTEGER,
    latency_ms      REAL,
    error_code      TEXT,
    error_text      TEXT,
    request_id      TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    no_reply_kind   TEXT,
    probe_id        TEXT,
    resolve_ms      REAL,
    connect_ms      REAL,
    tls_ms          REAL,
    processing_ms   REAL,
    transfer_ms     REAL,
    -- 1 for rows made up by `dispo synth` / the demo: every output marks them.
    synthetic       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (received_at, establishment, request_id)
) WITHOUT ROWID;
INSERT INTO observations_clustered (received_at, establishment, interface, service, source, tpp,
    status, latency_ms, error_code, error_text, request_id, outcome, no_reply_kind, probe_id,
    resolve_ms, connect_ms, tls_ms, processing_ms, transfer_ms, synthetic)
SELECT received_at, establishment, interface, service, source, tpp, status, latency_ms,
    error_code, error_text, request_id, outcome, no_reply_kind, probe_id, resolve_ms, connect_ms,
    tls_ms, processing_ms, transfer_ms, synthetic
FROM observations ORDER BY received_at, establishment, request_id;
DROP TABLE observations;
ALTER TABLE observations_clustered RENAME TO observations;
