-- Coverage (methodology revision 2, section 1): which series a monitor run probes, and which
-- time spans imported gateway logs cover. A series is covered only by these; every other
-- instant is unmonitored and its figures are "n.d.".

-- The series (establishment x interface) each monitor run probes: its heartbeats cover those
-- only. A heartbeat row with none here predates this table and covers every series.
CREATE TABLE heartbeat_series (
    heartbeat_id  INTEGER NOT NULL REFERENCES heartbeats (id),
    establishment TEXT    NOT NULL,
    interface     TEXT    NOT NULL,
    PRIMARY KEY (heartbeat_id, establishment, interface)
) WITHOUT ROWID;

-- One row per imported log file and series in it: from its first to its last received_at.
CREATE TABLE log_spans (
    id            INTEGER PRIMARY KEY,
    source        TEXT    NOT NULL,
    establishment TEXT    NOT NULL,
    interface     TEXT    NOT NULL,
    first_at      INTEGER NOT NULL,
    last_at       INTEGER NOT NULL,
    imported_at   INTEGER NOT NULL
);
CREATE INDEX log_spans_time ON log_spans (first_at, last_at);
