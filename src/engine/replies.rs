//! The response times of a whole period per series and service, for its exact percentiles and
//! mean (the publication's summary). Each closed day hands its replies over, sorted; past a
//! bound they go to an unnamed temporary file (about 8 bytes a reply), so a quarter of a
//! hundred million replies never sits in memory at once. At the end each series' service is read
//! back alone and counted as the day figures are ([`super::days::stats`]).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use rustc_hash::FxHashMap;

use super::EngineError;
use crate::domain::Service;

/// Replies held in memory before they are written out (8 bytes each: 128 MiB).
pub const DEFAULT_IN_MEMORY: usize = 16 * 1024 * 1024;

type Key = (usize, Service);

#[derive(Debug)]
pub struct PeriodReplies {
    memory: FxHashMap<Key, Vec<f64>>,
    held: usize,
    limit: usize,
    spill: Option<Spill>,
}

#[derive(Debug)]
struct Spill {
    file: File,
    len: u64,
    /// Where each key's values were written: (offset, count).
    chunks: FxHashMap<Key, Vec<(u64, usize)>>,
}

fn spill_error(e: std::io::Error) -> EngineError {
    EngineError::Spill {
        why: format!(
            "cannot keep the period's response times in {}: {e}",
            std::env::temp_dir().display()
        ),
    }
}

impl PeriodReplies {
    /// At most `limit` replies in memory (0: every day's go to the file).
    pub fn new(limit: usize) -> Self {
        Self {
            memory: FxHashMap::default(),
            held: 0,
            limit,
            spill: None,
        }
    }

    /// Adds replies of series `series` (an index of the caller's) for `service`.
    pub fn add(
        &mut self,
        series: usize,
        service: &Service,
        v: Vec<f64>,
    ) -> Result<(), EngineError> {
        self.held += v.len();
        match self.memory.get_mut(&(series, service.clone())) {
            Some(e) => e.extend_from_slice(&v),
            None => {
                self.memory.insert((series, service.clone()), v);
            }
        }
        if self.held > self.limit {
            self.write_out().map_err(spill_error)?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> std::io::Result<()> {
        let spill = match &mut self.spill {
            Some(s) => s,
            None => self.spill.insert(Spill {
                file: temp_file()?,
                len: 0,
                chunks: FxHashMap::default(),
            }),
        };
        let mut bytes = Vec::new();
        for (k, v) in self.memory.drain() {
            bytes.clear();
            bytes.reserve(v.len() * 8);
            for x in &v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
            (&spill.file).write_all(&bytes)?;
            spill
                .chunks
                .entry(k)
                .or_default()
                .push((spill.len, v.len()));
            spill.len += bytes.len() as u64;
        }
        self.held = 0;
        Ok(())
    }

    /// Every reply of `(series, service)`, in no particular order.
    pub fn take(&mut self, series: usize, service: &Service) -> Result<Vec<f64>, EngineError> {
        let key = (series, service.clone());
        let mut out = Vec::new();
        if let Some(s) = &mut self.spill
            && let Some(chunks) = s.chunks.remove(&key)
        {
            out.reserve(chunks.iter().map(|c| c.1).sum());
            let mut bytes = Vec::new();
            for (offset, n) in chunks {
                bytes.resize(n * 8, 0);
                s.file
                    .read_exact_at(&mut bytes, offset)
                    .map_err(spill_error)?;
                out.extend(
                    bytes
                        .chunks_exact(8)
                        .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
                );
            }
        }
        if let Some(v) = self.memory.remove(&key) {
            out.extend_from_slice(&v);
        }
        Ok(out)
    }
}

/// A file of our own in the temporary directory, unlinked at once (it goes when closed).
fn temp_file() -> std::io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "dispo-replies-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}
