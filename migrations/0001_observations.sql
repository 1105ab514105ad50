-- Observations: one row per request sent to (probe) or received by (gateway log) an interface.
-- Times are integer epoch milliseconds UTC; latencies and phases in (fractional) milliseconds.
CREATE TABLE observations (
    id              INTEGER PRIMARY KEY,
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
    synthetic       INTEGER NOT NULL DEFAULT 0
);
-- Importing the same log twice adds nothing.
CREATE UNIQUE INDEX observations_identity ON observations (request_id, received_at, establishment);
CREATE INDEX observations_series ON observations (establishment, interface, received_at);
CREATE INDEX observations_time ON observations (received_at);

-- One row per monitor run; `last_beat` advances while it runs, so unmonitored time is known.
CREATE TABLE heartbeats (
    id          INTEGER PRIMARY KEY,
    monitor_id  TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    last_beat   INTEGER NOT NULL,
    stopped_at  INTEGER,
    stop_reason TEXT
);
CREATE INDEX heartbeats_time ON heartbeats (started_at, last_beat);
