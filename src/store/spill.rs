//! The spill journal: where the monitor puts what the database refuses (disk full, a lock held
//! too long, a file made read-only), so that nothing recorded waits in memory without bound and
//! nothing is lost through a restart.
//!
//! One file beside the database (`<db>-spill.jsonl`, mode 0600: it holds request ids and error
//! texts), one JSON object per line: an observation, or a heartbeat the database refused (the
//! coverage a replayed observation needs: without it, the time it was made would read as not
//! watched). Appends are all or nothing: a line cut short by the disk filling is cut off again
//! before the error is reported, so the next append starts on a line of its own. Each append is
//! synced before it returns, like a commit. Replaying inserts the lines in chunks (inserts skip
//! rows already present, so a replay cut short and run again counts nothing twice), applies the
//! heartbeats, then removes the file.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, StoredObservation};
use crate::domain::{NoReplyKind, Observation, Phases};

/// Observations inserted per transaction on replay.
const REPLAY_CHUNK: usize = 5_000;

/// One line of the journal.
// One line lives at a time, on its way to or from the file: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Line {
    Observation {
        #[serde(flatten)]
        obs: Observation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        no_reply_kind: Option<NoReplyKind>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probe_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phases: Option<Phases>,
        #[serde(default)]
        synthetic: bool,
    },
    /// A heartbeat of monitor run `run` at `at_ms` (epoch ms).
    Beat { run: i64, at_ms: i64 },
}

impl From<&StoredObservation> for Line {
    fn from(r: &StoredObservation) -> Self {
        Line::Observation {
            obs: r.obs.clone(),
            error_text: r.error_text.clone(),
            no_reply_kind: r.no_reply_kind,
            probe_id: r.probe_id.clone(),
            phases: r.phases,
            synthetic: r.synthetic,
        }
    }
}

/// What a replay put back into the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Observations read from the journal (some may have been in the database already).
    pub observations: u64,
    /// Of those, the ones the database did not hold yet.
    pub added: u64,
    pub heartbeats: u64,
}

/// The journal beside one database.
#[derive(Debug, Clone)]
pub struct Spill {
    path: PathBuf,
}

/// Why the journal could not take or give back its lines.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("cannot write the spill journal {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read the spill journal {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the spill journal {path} has a bad line {line}: {why} (the lines before it were replayed; \
         fix or remove that line, then start dispo again)"
    )]
    BadLine {
        path: String,
        line: u64,
        why: String,
    },
    #[error("replaying the spill journal {path}: {source}")]
    Store { path: String, source: StoreError },
}

impl Spill {
    /// The journal of the SQLite database at `db`: `<db>-spill.jsonl`.
    pub fn beside(db: &Path) -> Self {
        Self::of(&super::Target::from(db))
    }

    /// The journal of a database: beside a SQLite file, in the state directory for
    /// PostgreSQL (`<state dir>/pg-<host>-<port>-<database>-spill.jsonl`: one per node, as each
    /// node keeps what the shared database refused it).
    pub fn of(db: &super::Target) -> Self {
        Self {
            path: db.sibling("-spill.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether lines wait in the journal.
    pub fn pending(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0)
    }

    /// Appends observations, durably (synced), all or nothing.
    pub fn append(&self, rows: &[StoredObservation]) -> Result<(), SpillError> {
        self.append_lines(rows.iter().map(Line::from))
    }

    /// Appends a heartbeat the database refused.
    pub fn append_beat(&self, run: i64, at_ms: i64) -> Result<(), SpillError> {
        self.append_lines(std::iter::once(Line::Beat { run, at_ms }))
    }

    fn append_lines(&self, lines: impl Iterator<Item = Line>) -> Result<(), SpillError> {
        let err = |source| SpillError::Write {
            path: self.path.display().to_string(),
            source,
        };
        let mut buf = Vec::new();
        for l in lines {
            serde_json::to_writer(&mut buf, &l).map_err(|e| err(e.into()))?;
            buf.push(b'\n');
        }
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        crate::files::refuse_symlink(&self.path).map_err(err)?;
        let mut o = std::fs::OpenOptions::new();
        o.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o.open(&self.path).map_err(err)?;
        let before = f.metadata().map_err(err)?.len();
        let written = f.write_all(&buf).and_then(|()| f.sync_data());
        if let Err(e) = written {
            // Cut off what got in, so the next append does not continue a broken line.
            let _ = f.set_len(before).and_then(|()| f.sync_data());
            return Err(err(e));
        }
        Ok(())
    }

    /// Puts the journal back into `store` and removes it, each insert waiting at most `wait`
    /// for another writer's lock. On an error the journal stays (what was inserted is skipped
    /// when it is replayed again).
    pub async fn replay(
        &self,
        store: &Store,
        wait: std::time::Duration,
    ) -> Result<Replayed, SpillError> {
        let shown = self.path.display().to_string();
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replayed::default()),
            Err(source) => {
                return Err(SpillError::Read {
                    path: shown,
                    source,
                });
            }
        };
        let mut done = Replayed::default();
        let mut chunk: Vec<StoredObservation> = Vec::with_capacity(REPLAY_CHUNK);
        let mut beats: std::collections::BTreeMap<i64, i64> = Default::default();
        let store_err = |source| SpillError::Store {
            path: shown.clone(),
            source,
        };
        let mut reader = std::io::BufReader::new(file);
        let mut text = String::new();
        let mut n = 0u64;
        loop {
            text.clear();
            let read = reader
                .read_line(&mut text)
                .map_err(|source| SpillError::Read {
                    path: shown.clone(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            n += 1;
            if text.trim().is_empty() {
                continue;
            }
            let line: Line = match serde_json::from_str(&text) {
                Ok(l) => l,
                // The last line, cut short by a crash or a power cut during its append: it was
                // never acknowledged (the batch stayed in memory, then was lost with the process),
                // so there is nothing of it to keep.
                Err(_) if !text.ends_with('\n') => {
                    tracing::warn!(path = %shown, line = n, "the spill journal's last line is incomplete (cut by a crash): left out");
                    break;
                }
                Err(e) => {
                    // What came before it goes in, as the message says.
                    put(store, &mut chunk, wait, &mut done)
                        .await
                        .map_err(store_err)?;
                    return Err(SpillError::BadLine {
                        path: shown.clone(),
                        line: n,
                        why: e.to_string(),
                    });
                }
            };
            match line {
                Line::Beat { run, at_ms } => {
                    let b = beats.entry(run).or_insert(at_ms);
                    *b = (*b).max(at_ms);
                }
                Line::Observation {
                    mut obs,
                    error_text,
                    no_reply_kind,
                    probe_id,
                    phases,
                    synthetic,
                } => chunk.push(StoredObservation {
                    // A line journaled before vantages were kept: logs are the gateway's.
                    obs: {
                        if obs.source == crate::domain::Source::Log {
                            obs.vantage = crate::domain::Vantage::gateway();
                        }
                        obs
                    },
                    error_text,
                    no_reply_kind,
                    probe_id,
                    phases,
                    synthetic,
                }),
            }
            if chunk.len() >= REPLAY_CHUNK {
                put(store, &mut chunk, wait, &mut done)
                    .await
                    .map_err(store_err)?;
            }
        }
        put(store, &mut chunk, wait, &mut done)
            .await
            .map_err(store_err)?;
        for (run, at) in beats {
            store.beat(run, at).await.map_err(store_err)?;
            done.heartbeats += 1;
        }
        std::fs::remove_file(&self.path).map_err(|source| SpillError::Write {
            path: shown.clone(),
            source,
        })?;
        Ok(done)
    }

    /// Lines waiting in the journal (for a warning: one pass over the file).
    pub fn count_lines(&self) -> u64 {
        std::fs::File::open(&self.path)
            .map(|f| std::io::BufReader::new(f).lines().count() as u64)
            .unwrap_or(0)
    }
}

/// Inserts (and empties) `chunk`, counting it into `done`.
async fn put(
    store: &Store,
    chunk: &mut Vec<StoredObservation>,
    wait: std::time::Duration,
    done: &mut Replayed,
) -> Result<(), StoreError> {
    if chunk.is_empty() {
        return Ok(());
    }
    done.observations += chunk.len() as u64;
    done.added += store
        .insert_observations_within(std::mem::take(chunk), wait)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EstablishmentCode, Interface, Outcome, Service, Source};

    const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dispo-spill-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn obs(at: i64, id: &str) -> StoredObservation {
        StoredObservation {
            obs: Observation {
                received_at_ms: at,
                establishment: "13807".parse::<EstablishmentCode>().unwrap(),
                interface: Interface::Api,
                service: Service::new(Service::CBPII).unwrap(),
                source: Source::Probe,
                tpp: None,
                status: None,
                latency_ms: None,
                error_code: None,
                request_id: id.into(),
                outcome: Outcome::NoReply,
                vantage: crate::domain::Vantage::imported(Source::Probe),
            },
            error_text: Some("time-out after 30 s".into()),
            no_reply_kind: Some(NoReplyKind::Timeout),
            probe_id: Some("13807/cbpii".into()),
            phases: None,
            synthetic: false,
        }
    }

    #[tokio::test]
    async fn spilled_rows_and_beats_come_back_once_and_the_journal_goes() {
        let dir = dir("replay");
        let db = dir.join("s.db");
        let store = Store::open(&db).await.unwrap();
        let code: EstablishmentCode = "13807".parse().unwrap();
        let run = store
            .start_monitor("m", &[(code, Interface::Api)], 1_000)
            .await
            .unwrap();
        let spill = Spill::beside(&db);
        assert!(!spill.pending());
        spill.append(&[obs(2_000, "a"), obs(3_000, "b")]).unwrap();
        spill.append_beat(run, 9_000).unwrap();
        spill.append(&[obs(4_000, "c")]).unwrap();
        assert!(spill.pending());
        assert_eq!(spill.count_lines(), 4);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(spill.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // "b" reached the database before the journal took it (a replay cut short, say).
        store
            .insert_observations(vec![obs(3_000, "b")])
            .await
            .unwrap();
        let r = spill.replay(&store, WAIT).await.unwrap();
        assert_eq!(
            r,
            Replayed {
                observations: 3,
                added: 2,
                heartbeats: 1
            }
        );
        assert!(!spill.pending());
        let back = store.load_observations(0, 10_000, &[]).await.unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0], obs(2_000, "a"));
        // The heartbeat moved the run's coverage on to 9 s.
        let cov = store.coverage(0, 20_000, 10_000_000).await.unwrap();
        assert!(cov.iter().any(|c| c.end_ms == 9_000), "{cov:?}");
        // Nothing left: a second replay does nothing.
        assert_eq!(
            spill.replay(&store, WAIT).await.unwrap(),
            Replayed::default()
        );
    }

    #[tokio::test]
    async fn a_bad_line_stops_the_replay_naming_it_and_keeps_the_journal() {
        let dir = dir("bad");
        let db = dir.join("s.db");
        let store = Store::open(&db).await.unwrap();
        let spill = Spill::beside(&db);
        spill.append(&[obs(2_000, "a")]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(spill.path())
            .unwrap()
            .write_all(b"{\"kind\":\"observation\",\"recei\n")
            .unwrap();
        let e = spill.replay(&store, WAIT).await.unwrap_err().to_string();
        assert!(e.contains("bad line 2"), "{e}");
        assert!(spill.pending());
        // The line before it is in the database, as the message says.
        assert_eq!(
            store.load_observations(0, 10_000, &[]).await.unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn a_last_line_cut_by_a_crash_is_left_out_and_the_rest_replayed() {
        let dir = dir("torn");
        let db = dir.join("s.db");
        let store = Store::open(&db).await.unwrap();
        let spill = Spill::beside(&db);
        spill.append(&[obs(2_000, "a"), obs(3_000, "b")]).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(spill.path())
            .unwrap()
            .write_all(b"{\"kind\":\"observation\",\"recei")
            .unwrap();
        let r = spill.replay(&store, WAIT).await.unwrap();
        assert_eq!(r.observations, 2);
        assert!(!spill.pending());
    }
}
