-- Alerts, one row per deduplication key (one per episode, per week, per certificate...).
CREATE TABLE alerts (
    id                INTEGER PRIMARY KEY,
    key               TEXT    NOT NULL UNIQUE,
    kind              TEXT    NOT NULL,
    establishment     TEXT,
    interface         TEXT,
    state             TEXT    NOT NULL,          -- firing | resolved
    starts_at         INTEGER NOT NULL,
    ends_at           INTEGER,
    last_notified_at  INTEGER NOT NULL,
    alert             TEXT    NOT NULL           -- the alert as JSON
);
-- The outbox: every notice to every channel, written before it is sent, marked once delivered.
CREATE TABLE alert_deliveries (
    id               INTEGER PRIMARY KEY,
    alert_key        TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    notice           TEXT    NOT NULL,           -- the notice as JSON
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_error       TEXT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (delivered_at, next_attempt_at);
