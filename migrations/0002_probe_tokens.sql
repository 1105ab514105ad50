-- What the probes learned about their access tokens: when obtained, when they expire, and a
-- fingerprint (first bytes of a SHA-256) to tell them apart. Never the token itself.
CREATE TABLE token_metadata (
    id                 INTEGER PRIMARY KEY,
    establishment      TEXT    NOT NULL,
    grant_type         TEXT    NOT NULL,
    scope              TEXT    NOT NULL,
    obtained_at        INTEGER NOT NULL,
    expires_at         INTEGER,
    has_refresh_token  INTEGER NOT NULL,
    fingerprint        TEXT    NOT NULL
);
CREATE INDEX token_metadata_time ON token_metadata (establishment, obtained_at);
