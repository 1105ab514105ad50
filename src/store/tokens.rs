//! Token metadata recorded by the probes (expiry, fingerprint; never a secret).

use super::{Store, StoreError};
use crate::probe::steps::TokenEvent;

impl Store {
    pub async fn record_tokens(&self, events: &[TokenEvent]) -> Result<(), StoreError> {
        for e in events {
            self.q(
                "INSERT INTO token_metadata (establishment, grant_type, scope, obtained_at, expires_at, \
                 has_refresh_token, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.establishment.as_str())
            .bind(e.grant)
            .bind(&e.scope)
            .bind(e.obtained_at_ms)
            .bind(e.expires_at_ms)
            .bind(i64::from(e.has_refresh_token))
            .bind(&e.fingerprint)
            .execute(self.pool())
            .await?;
        }
        Ok(())
    }
}
