//! Evidence for the supervisor (issue 6): packs for an Art. 33(3) notification to the ACPR
//! ([`pack`]), their SHA-256 manifest and its verification ([`manifest`]), and the dossier an
//! ASPSP gives for an exemption from the fallback under Art. 33(6) ([`exemption`]).
//!
//! In: the store, a period or an episode id, the counting settings. Figures come from
//! [`engine::compute`](crate::engine) only: evidence formats what the engine found and never
//! recounts it. Out: a directory of files (HTML, Markdown, CSV, JSON, XLSX) with a
//! `MANIFEST.sha256` that `sha256sum -c` accepts.

pub mod doc;
pub mod exemption;
pub mod manifest;
pub mod pack;
pub mod redact;

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::domain::{EstablishmentCode, Interface};
use crate::engine::{EngineInput, Episode, Kpis, Period, Settings};
use crate::store::{Store, StoreError, StoredObservation};

/// Language of the human-readable files. French by default: the ACPR reads French.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    /// Picks the French or the English text.
    pub fn t<'a>(self, fr: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

/// What can stop an evidence export.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("counting: {0}")]
    Engine(String),
    #[error(
        "episode id {0:?} is malformed: expected <establishment>-<interface>-<start UTC>, e.g. 13807-api-20240704T100000.000Z (as printed by `dispo kpi` and in packs)"
    )]
    BadEpisodeId(String),
    #[error("no episode {id} in the data{}", near_list(.near))]
    NoSuchEpisode { id: String, near: Vec<String> },
    #[error("the database holds no observations")]
    Empty,
    #[error(
        "the exemption dossier needs at least three months of data: {from} to {to} (exclusive) is shorter; widen --from/--to, or pass --allow-short-period to build it anyway (marked as such)"
    )]
    ShortPeriod { from: NaiveDate, to: NaiveDate },
    #[error("--from {from} must come before --to {to} (--to is exclusive)")]
    EmptyPeriod { from: NaiveDate, to: NaiveDate },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the spreadsheet {path}: {source}")]
    Xlsx {
        path: String,
        source: rust_xlsxwriter::XlsxError,
    },
    #[error("cannot seal the manifest: {0}")]
    Seal(String),
}

fn near_list(near: &[String]) -> String {
    if near.is_empty() {
        " (no episode at all around that time)".into()
    } else {
        format!("; episodes around that time: {}", near.join(", "))
    }
}

/// The stable id of an episode: `<establishment>-<interface>-<start UTC>`, the start written
/// `YYYYMMDDTHHMMSS.mmmZ`, e.g. `13807-api-20240704T100000.000Z`. The same series cannot start two
/// episodes at the same millisecond, so the id is unique.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EpisodeId {
    pub establishment: EstablishmentCode,
    pub interface: Interface,
    pub start_ms: i64,
}

impl EpisodeId {
    pub fn of(e: &Episode) -> Self {
        Self {
            establishment: e.establishment,
            interface: e.interface,
            start_ms: e.start_ms,
        }
    }
    pub fn matches(&self, e: &Episode) -> bool {
        e.establishment == self.establishment
            && e.interface == self.interface
            && e.start_ms == self.start_ms
    }
}

impl fmt::Display for EpisodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = utc(self.start_ms);
        write!(
            f,
            "{}-{}-{}",
            self.establishment,
            self.interface,
            t.format("%Y%m%dT%H%M%S%.3fZ")
        )
    }
}

impl FromStr for EpisodeId {
    type Err = EvidenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || EvidenceError::BadEpisodeId(s.to_owned());
        let mut parts = s.splitn(3, '-');
        let (Some(e), Some(i), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let establishment = e.parse().map_err(|_| bad())?;
        let interface = i.parse().map_err(|_| bad())?;
        let t = t.strip_suffix('Z').ok_or_else(bad)?;
        let naive =
            chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S%.f").map_err(|_| bad())?;
        Ok(Self {
            establishment,
            interface,
            start_ms: naive.and_utc().timestamp_millis(),
        })
    }
}

/// The stable id of an episode as text (what `dispo kpi` may print beside each episode).
pub fn episode_id(e: &Episode) -> String {
    EpisodeId::of(e).to_string()
}

// Time helpers are the engine's (one implementation of local days and DST).
pub(crate) use crate::engine::time::{rfc3339, utc};

/// Local wall time in the settings' zone, with its offset.
pub(crate) fn local(ms: i64, tz: Tz) -> String {
    utc(ms)
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S%.3f %:z")
        .to_string()
}

pub(crate) fn local_date(ms: i64, tz: Tz) -> NaiveDate {
    crate::engine::time::local_date(tz, ms)
}

/// Loads what the engine needs for a period of local days and runs it.
pub(crate) async fn compute(
    store: &Store,
    period: Period,
    settings: &Settings,
    establishments: &[EstablishmentCode],
) -> Result<(Kpis, Vec<StoredObservation>), EvidenceError> {
    if period.to <= period.from {
        return Err(EvidenceError::EmptyPeriod {
            from: period.from,
            to: period.to,
        });
    }
    let now = chrono::Utc::now().timestamp_millis();
    let (input, stored) = crate::period::load_full(store, period, settings, establishments, now)
        .await
        .map_err(|e| EvidenceError::Engine(e.to_string()))?;
    let kpis = run_engine(&input, period, settings)?;
    Ok((kpis, stored))
}

/// The one call into the counting engine.
fn run_engine(
    input: &EngineInput,
    period: Period,
    settings: &Settings,
) -> Result<Kpis, EvidenceError> {
    crate::engine::compute(input, period, settings)
        .map_err(|e| EvidenceError::Engine(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episode_ids_round_trip() {
        // 2024-07-04T10:00:00.250Z = 1720087200250.
        let id = EpisodeId {
            establishment: "13807".parse().unwrap(),
            interface: Interface::Api,
            start_ms: 1_720_087_200_250,
        };
        assert_eq!(id.to_string(), "13807-api-20240704T100000.250Z");
        assert_eq!(
            "13807-api-20240704T100000.250Z"
                .parse::<EpisodeId>()
                .unwrap(),
            id
        );
        assert_eq!(
            "16807-psu_web-20240704T100000.000Z"
                .parse::<EpisodeId>()
                .unwrap()
                .interface,
            Interface::PsuWeb
        );
        for bad in [
            "13807-api",
            "1380-api-20240704T100000.000Z",
            "13807-api-2024",
        ] {
            assert!(bad.parse::<EpisodeId>().is_err(), "{bad}");
        }
    }
}
