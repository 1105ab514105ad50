//! Each vantage's live episodes (methodology section 10), published by the `dispo run` node that
//! probes from it, so every node sharing the store applies the same quorum: one row per vantage,
//! series and episode, `end_at` NULL while open. Plain `INSERT ... ON CONFLICT`, so it ports to
//! any SQL store.

use std::str::FromStr;

use sqlx::Row;

use super::{Store, StoreError, bad_row};
use crate::domain::{EstablishmentCode, Interface, Vantage};

/// One vantage's episode of one series, as its node published it, or a span its own probes
/// failed on its side (`gap`: it covered nothing there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VantageEpisode {
    pub vantage: Vantage,
    pub gap: bool,
    pub start_ms: i64,
    /// `None` while open.
    pub end_ms: Option<i64>,
    /// When the node confirmed it (the node's clock).
    pub opened_at_ms: i64,
}

fn kind(gap: bool) -> &'static str {
    if gap { "gap" } else { "down" }
}

impl Store {
    /// Publishes this vantage's episode (or gap) of a series: opened (`end_ms` None) or ended.
    /// Written again with its end once it ends; the first write's `opened_at` stays.
    pub async fn publish_vantage_episode(
        &self,
        series: (EstablishmentCode, Interface),
        vantage: &Vantage,
        gap: bool,
        start_ms: i64,
        end_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.q(
            "INSERT INTO vantage_episodes (establishment, interface, vantage, kind, start_at, end_at, opened_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (establishment, interface, vantage, kind, start_at) \
             DO UPDATE SET end_at = excluded.end_at, updated_at = excluded.updated_at",
        )
        .bind(series.0.as_str())
        .bind(series.1.as_str())
        .bind(vantage.as_str())
        .bind(kind(gap))
        .bind(start_ms)
        .bind(end_ms)
        .bind(now_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends this vantage's episodes still open, of every series, at `at_ms` (or at their start,
    /// if later): what a killed run of this node left open ends where its coverage did.
    pub async fn end_open_vantage_episodes(
        &self,
        vantage: &Vantage,
        at_ms: i64,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        Ok(self.q(
            "UPDATE vantage_episodes SET end_at = CASE WHEN start_at > ? THEN start_at ELSE ? END, \
             updated_at = ? WHERE vantage = ? AND end_at IS NULL",
        )
        .bind(at_ms)
        .bind(at_ms)
        .bind(now_ms)
        .bind(vantage.as_str())
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Every vantage's episodes of a series open now or ended at `from_ms` or later, by start.
    pub async fn vantage_episodes(
        &self,
        series: (EstablishmentCode, Interface),
        from_ms: i64,
    ) -> Result<Vec<VantageEpisode>, StoreError> {
        let rows = self
            .q(
                "SELECT vantage, start_at, end_at, opened_at, kind FROM vantage_episodes \
             WHERE establishment = ? AND interface = ? AND (end_at IS NULL OR end_at >= ?) \
             ORDER BY start_at, vantage",
            )
            .bind(series.0.as_str())
            .bind(series.1.as_str())
            .bind(from_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let v: String = r.try_get(0)?;
                let start_ms: i64 = r.try_get(1)?;
                Ok(VantageEpisode {
                    vantage: Vantage::from_str(&v).map_err(|e| {
                        bad_row(start_ms, series.0.as_str(), "(vantage episode)", e)
                    })?,
                    gap: r.try_get::<String, _>(4)? == kind(true),
                    start_ms,
                    end_ms: r.try_get(2)?,
                    opened_at_ms: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// The series with a vantage episode open now or ended at `from_ms` or later.
    pub async fn series_with_vantage_episodes(
        &self,
        from_ms: i64,
    ) -> Result<Vec<(EstablishmentCode, Interface)>, StoreError> {
        let rows = self
            .q(
                "SELECT DISTINCT establishment, interface FROM vantage_episodes \
             WHERE end_at IS NULL OR end_at >= ? ORDER BY establishment, interface",
            )
            .bind(from_ms)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let (e, i): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                let bad = |source| bad_row(from_ms, &e, "(vantage episode)", source);
                Ok((
                    EstablishmentCode::from_str(&e).map_err(bad)?,
                    Interface::from_str(&i).map_err(bad)?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{Backend, on_both};

    on_both!(
        an_episode_is_published_open_then_ended_keeping_when_it_opened,
        what_a_killed_run_left_open_ends_at_its_coverage,
    );

    fn series() -> (EstablishmentCode, Interface) {
        ("13807".parse().unwrap(), Interface::Api)
    }

    async fn an_episode_is_published_open_then_ended_keeping_when_it_opened(b: Backend) {
        let s = b.store("vantages-publish").await;
        let (a, b) = (Vantage::new("a").unwrap(), Vantage::new("b").unwrap());
        s.publish_vantage_episode(series(), &a, false, 1_000, None, 5_000)
            .await
            .unwrap();
        s.publish_vantage_episode(series(), &b, false, 2_000, Some(9_000), 9_500)
            .await
            .unwrap();
        // Ended later: the same row, its end set, its opening time kept.
        s.publish_vantage_episode(series(), &a, false, 1_000, Some(20_000), 20_100)
            .await
            .unwrap();
        let got = s.vantage_episodes(series(), 0).await.unwrap();
        assert_eq!(
            got,
            [
                VantageEpisode {
                    vantage: a.clone(),
                    gap: false,
                    start_ms: 1_000,
                    end_ms: Some(20_000),
                    opened_at_ms: 5_000
                },
                VantageEpisode {
                    vantage: b.clone(),
                    gap: false,
                    start_ms: 2_000,
                    end_ms: Some(9_000),
                    opened_at_ms: 9_500
                },
            ]
        );
        // Ended before 10 000: b's is left out; a's reaches past it.
        assert_eq!(s.vantage_episodes(series(), 10_000).await.unwrap().len(), 1);
        assert_eq!(
            s.series_with_vantage_episodes(10_000).await.unwrap(),
            [series()]
        );
        assert!(
            s.series_with_vantage_episodes(30_000)
                .await
                .unwrap()
                .is_empty()
        );
    }

    async fn what_a_killed_run_left_open_ends_at_its_coverage(b: Backend) {
        let s = b.store("vantages-killed").await;
        let a = Vantage::new("a").unwrap();
        s.publish_vantage_episode(series(), &a, false, 1_000, None, 1_500)
            .await
            .unwrap();
        // And a gap of its own from 900. Its run's last beat at 950: both end there, the
        // episode, begun later, at its start.
        s.publish_vantage_episode(series(), &a, true, 900, None, 1_500)
            .await
            .unwrap();
        assert_eq!(
            s.end_open_vantage_episodes(&a, 950, 2_000).await.unwrap(),
            2
        );
        let ends: Vec<Option<i64>> = s
            .vantage_episodes(series(), 0)
            .await
            .unwrap()
            .iter()
            .map(|e| e.end_ms)
            .collect();
        assert_eq!(ends, [Some(950), Some(1_000)]);
    }
}
