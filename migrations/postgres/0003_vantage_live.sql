-- (SQLite migration 0010.) Live alerts across vantage points (methodology section 10): each `dispo run` node publishes
-- its own vantage's episodes per series as its tracker opens and closes them (`kind` 'down'),
-- and the spans its own probes failed on its side (`kind` 'gap': it covers nothing there), so
-- every node sharing the store can apply the quorum. `end_at` is NULL while open; `opened_at` is
-- when the node wrote it first (its clock), `updated_at` its last write.
CREATE TABLE vantage_episodes (
    establishment TEXT    NOT NULL,
    interface     TEXT    NOT NULL,
    vantage       TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    start_at      BIGINT  NOT NULL,
    end_at        BIGINT,
    opened_at     BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (establishment, interface, vantage, kind, start_at)
);
CREATE INDEX vantage_episodes_open ON vantage_episodes (end_at);
