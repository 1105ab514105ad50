//! Following one file as it is written, like `tail -F`: complete lines only (a line being written
//! waits for its end), across rotation (the file renamed and a new one created: the old one is
//! read to its end, then the new one from its start) and truncation (`copytruncate`: read again
//! from the start). No I/O but the file system; synchronous, run on a blocking thread.
//!
//! A [`Position`] (file identity, byte offset, line number, a fingerprint of the file's first
//! bytes) is what the follower saves once the rows before it landed, and what it resumes from
//! after a restart: the same file if it is still there (same device and inode, same first bytes),
//! else the file it was (rotated while the monitor was stopped, found by its identity in the same
//! directory) read to its end before the new one. Only when neither exists (rotated and
//! compressed, or removed) can lines have been missed, and [`Event::Open`] says so.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Bytes of the file's start that identify it (besides its inode).
const FINGERPRINT_BYTES: u64 = 1024;
/// At most this much is read per call.
const MAX_READ: usize = 4 << 20;

/// Where reading stopped in which file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    /// Bytes consumed (always just after a line end, or 0).
    pub offset: u64,
    /// Lines consumed.
    pub line: u64,
    /// How many of the file's first bytes `fp_hash` covers (at most 1 KiB, never past `offset`).
    pub fp_len: u64,
    pub fp_hash: u64,
}

/// What a poll found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A file is (re)opened. `offset` 0: from its start. `header`: its first line, when reading
    /// resumes inside it. `missed`: lines may have been lost before it (why).
    Open {
        offset: u64,
        header: Option<Vec<u8>>,
        missed: Option<String>,
    },
    /// Complete lines, the first numbered `first_line`.
    Lines { bytes: Vec<u8>, first_line: u64 },
}

struct Open {
    file: File,
    pos: Position,
    /// Inside a line longer than a whole read: its first read went out as one (over-long) line;
    /// the rest of it is skipped up to its end, not numbered as lines of its own.
    in_long_line: bool,
}

/// A followed path.
pub struct Tail {
    path: PathBuf,
    cur: Option<Open>,
    /// Where to resume (saved by an earlier run), until the first poll.
    saved: Option<Position>,
    /// With nothing saved: read what the file already holds (`true`) or only what is added.
    from_start: bool,
}

impl Tail {
    pub fn new(path: PathBuf, saved: Option<Position>, from_start: bool) -> Self {
        Self {
            path,
            cur: None,
            saved,
            from_start,
        }
    }

    /// The position after everything returned so far.
    pub fn position(&self) -> Option<Position> {
        self.cur.as_ref().map(|o| o.pos.clone())
    }

    /// Reads what is new. Call again at once while it returns lines (at most 4 MiB per call).
    pub fn poll(&mut self) -> std::io::Result<Vec<Event>> {
        let mut ev = Vec::new();
        if self.cur.is_none() {
            self.open_first(&mut ev)?;
        }
        let Some(cur) = self.cur.as_mut() else {
            return Ok(ev); // nothing there yet
        };
        let at_path = id_of(&self.path);
        if at_path.map(|(d, i, _)| (d, i)) != Some((cur.pos.dev, cur.pos.ino)) {
            // Rotated (or removed): finish the old file; switch once the new one exists.
            read_lines(cur, &mut ev, at_path.is_some())?;
            if at_path.is_some() && ev.is_empty() {
                self.switch(&mut ev, None)?;
            }
            return Ok(ev);
        }
        let len = cur.file.metadata()?.len();
        if len < cur.pos.offset || !fingerprint_holds(&cur.file, &cur.pos)? {
            // Truncated (copytruncate) or rewritten: what was appended since the last poll and
            // before the truncation is gone.
            let missed = format!(
                "{} was truncated: lines written after byte {} and before the truncation were not read",
                self.path.display(),
                cur.pos.offset
            );
            cur.file.seek(SeekFrom::Start(0))?;
            cur.pos.offset = 0;
            cur.pos.line = 0;
            cur.pos.fp_len = 0;
            cur.pos.fp_hash = fnv(&[]);
            ev.push(Event::Open {
                offset: 0,
                header: None,
                missed: Some(missed),
            });
        }
        read_lines(cur, &mut ev, false)?;
        Ok(ev)
    }

    /// Opens the path from its start after a rotation.
    fn switch(&mut self, ev: &mut Vec<Event>, missed: Option<String>) -> std::io::Result<()> {
        self.cur = open_at(&self.path, 0, 0)?;
        if self.cur.is_some() {
            ev.push(Event::Open {
                offset: 0,
                header: None,
                missed,
            });
        }
        Ok(())
    }

    /// The first open: resume where an earlier run stopped, or start.
    fn open_first(&mut self, ev: &mut Vec<Event>) -> std::io::Result<()> {
        let Some(saved) = self.saved.take() else {
            let Some((_, _, len)) = id_of(&self.path) else {
                return Ok(());
            };
            if self.from_start || len == 0 {
                return self.switch(ev, None);
            }
            // Only what is added from now on: start after the last complete line.
            let (offset, line) = last_line_end(&self.path)?;
            self.cur = open_at(&self.path, offset, line)?;
            if self.cur.is_some() {
                ev.push(Event::Open {
                    offset,
                    header: first_line(&self.path, offset)?,
                    missed: None,
                });
            }
            return Ok(());
        };
        let same = |p: &Path| -> std::io::Result<bool> {
            match id_of(p) {
                Some((d, i, len)) if (d, i) == (saved.dev, saved.ino) && len >= saved.offset => {
                    fingerprint_holds(&File::open(p)?, &saved)
                }
                _ => Ok(false),
            }
        };
        // The same file, still at the path; or the file it was, renamed beside it.
        let found = if same(&self.path)? {
            Some(self.path.clone())
        } else {
            let dir = match self.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
                _ => PathBuf::from("."),
            };
            let mut hit = None;
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if same(&e.path()).unwrap_or(false) {
                        hit = Some(e.path());
                        break;
                    }
                }
            }
            hit
        };
        match found {
            Some(p) => {
                self.cur = open_at(&p, saved.offset, saved.line)?.map(|mut o| {
                    o.pos.fp_len = saved.fp_len;
                    o.pos.fp_hash = saved.fp_hash;
                    o
                });
                if self.cur.is_some() {
                    ev.push(Event::Open {
                        offset: saved.offset,
                        header: first_line(&p, saved.offset)?,
                        missed: None,
                    });
                }
                if p != self.path {
                    tracing::info!(path = %self.path.display(), rotated = %p.display(), "resuming in the rotated file");
                }
                Ok(())
            }
            None => self.switch(
                ev,
                Some(format!(
                    "the file read up to byte {} before is gone (rotated and compressed, or removed, while dispo was stopped): its lines after that were not read",
                    saved.offset
                )),
            ),
        }
    }
}

/// Device, inode and length of a path, if it exists.
fn id_of(p: &Path) -> Option<(u64, u64, u64)> {
    std::fs::metadata(p)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| (m.dev(), m.ino(), m.len()))
}

fn open_at(p: &Path, offset: u64, line: u64) -> std::io::Result<Option<Open>> {
    let mut file = match File::open(p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let m = file.metadata()?;
    file.seek(SeekFrom::Start(offset))?;
    let mut o = Open {
        file,
        in_long_line: false,
        pos: Position {
            dev: m.dev(),
            ino: m.ino(),
            offset,
            line,
            fp_len: 0,
            fp_hash: fnv(&[]),
        },
    };
    update_fingerprint(&mut o)?;
    Ok(Some(o))
}

/// Reads complete lines from the current offset; `to_end`: the file is finished (rotated), so a
/// last line without its end is taken too.
fn read_lines(cur: &mut Open, ev: &mut Vec<Event>, to_end: bool) -> std::io::Result<()> {
    cur.file.seek(SeekFrom::Start(cur.pos.offset))?;
    let mut buf = Vec::new();
    (&mut cur.file)
        .take(MAX_READ as u64)
        .read_to_end(&mut buf)?;
    let full = buf.len() == MAX_READ;
    if cur.in_long_line {
        // The rest of an over-long line: consumed, not handed on (it was refused whole).
        let rest = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                cur.in_long_line = false;
                i + 1
            }
            None => buf.len(),
        };
        cur.pos.offset += rest as u64;
        update_fingerprint(cur)?;
        // More of it, or the lines after it, may be there already: read on.
        if full || !cur.in_long_line {
            return read_lines(cur, ev, to_end);
        }
        return Ok(());
    }
    let take = match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        // A line longer than a whole read, or the last line of a finished file.
        None if full || to_end => buf.len(),
        None => 0,
    };
    let take = if to_end && !full { buf.len() } else { take };
    if take == 0 {
        return Ok(());
    }
    buf.truncate(take);
    let first_line = cur.pos.line + 1;
    cur.pos.offset += take as u64;
    cur.pos.line += buf.iter().filter(|b| **b == b'\n').count() as u64;
    if !buf.ends_with(b"\n") {
        cur.pos.line += 1;
        // A whole read without a line end: a line longer than the parser takes; what follows
        // up to its end belongs to it.
        cur.in_long_line = full;
    }
    update_fingerprint(cur)?;
    ev.push(Event::Lines {
        bytes: buf,
        first_line,
    });
    Ok(())
}

/// Extends the fingerprint to the first `min(offset, 1 KiB)` bytes.
fn update_fingerprint(cur: &mut Open) -> std::io::Result<()> {
    let want = cur.pos.offset.min(FINGERPRINT_BYTES);
    if want > cur.pos.fp_len {
        let head = read_head(&cur.file, want)?;
        if head.len() as u64 == want {
            cur.pos.fp_len = want;
            cur.pos.fp_hash = fnv(&head);
        }
    }
    Ok(())
}

fn fingerprint_holds(f: &File, pos: &Position) -> std::io::Result<bool> {
    if pos.fp_len == 0 {
        return Ok(true);
    }
    let head = read_head(f, pos.fp_len)?;
    Ok(head.len() as u64 == pos.fp_len && fnv(&head) == pos.fp_hash)
}

fn read_head(f: &File, n: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; n as usize];
    let mut got = 0;
    while got < buf.len() {
        let k = f.read_at(&mut buf[got..], got as u64)?;
        if k == 0 {
            break;
        }
        got += k;
    }
    buf.truncate(got);
    Ok(buf)
}

/// The first line of a file read from inside it (a CSV's header), at most 64 KiB.
fn first_line(p: &Path, offset: u64) -> std::io::Result<Option<Vec<u8>>> {
    if offset == 0 {
        return Ok(None);
    }
    let head = read_head(&File::open(p)?, 64 * 1024)?;
    Ok(head
        .iter()
        .position(|b| *b == b'\n')
        .map(|i| head[..=i].to_vec()))
}

/// Byte offset just after the last line end of a file, and the number of lines before it.
fn last_line_end(p: &Path) -> std::io::Result<(u64, u64)> {
    let mut f = File::open(p)?;
    let (mut offset, mut lines, mut at) = (0u64, 0u64, 0u64);
    let mut buf = vec![0; 1 << 20];
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok((offset, lines));
        }
        for (i, b) in buf[..k].iter().enumerate() {
            if *b == b'\n' {
                lines += 1;
                offset = at + i as u64 + 1;
            }
        }
        at += k as u64;
    }
}

/// FNV-1a, 64 bits: enough to tell two log files' first kilobyte apart.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "dispo-tail-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn append(p: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    /// Lines read (with their numbers) and files opened (offset, what was missed).
    type Seen = (Vec<(u64, String)>, Vec<(u64, Option<String>)>);

    /// Polls until nothing new.
    fn drain(t: &mut Tail) -> Seen {
        let (mut lines, mut opens) = (vec![], vec![]);
        loop {
            let ev = t.poll().unwrap();
            if ev.is_empty() {
                return (lines, opens);
            }
            for e in ev {
                match e {
                    Event::Lines { bytes, first_line } => {
                        for (i, l) in String::from_utf8(bytes).unwrap().lines().enumerate() {
                            lines.push((first_line + i as u64, l.to_owned()));
                        }
                    }
                    Event::Open { offset, missed, .. } => opens.push((offset, missed)),
                }
            }
        }
    }

    fn texts(l: &[(u64, String)]) -> Vec<&str> {
        l.iter().map(|(_, s)| s.as_str()).collect()
    }

    #[test]
    fn complete_lines_only_then_rotation_then_truncation() {
        let d = tmp("rot");
        let p = d.join("access.log");
        let mut t = Tail::new(p.clone(), None, true);
        // Nothing yet: waits for the file.
        assert_eq!(drain(&mut t), (vec![], vec![]));
        append(&p, "a\nb\npart");
        let (l, o) = drain(&mut t);
        assert_eq!(l, [(1, "a".to_string()), (2, "b".to_string())]);
        assert_eq!(o, [(0, None)]);
        // The line being written is read once complete.
        append(&p, "ial\n");
        assert_eq!(texts(&drain(&mut t).0), ["partial"]);
        // Rotated: the writer still appends to the old file, then a new file appears.
        std::fs::rename(&p, d.join("access.log.1")).unwrap();
        append(&d.join("access.log.1"), "late\nunterminated");
        assert_eq!(texts(&drain(&mut t).0), ["late"]);
        append(&p, "new1\n");
        let (l, o) = drain(&mut t);
        assert_eq!(texts(&l), ["unterminated", "new1"]);
        assert_eq!(o, [(0, None)]);
        assert_eq!(l[1].0, 1, "the new file's lines count from 1");
        // copytruncate: the file is emptied and written again.
        append(&p, "new2\n");
        assert_eq!(texts(&drain(&mut t).0), ["new2"]);
        std::fs::write(&p, "").unwrap();
        append(&p, "after\n");
        let (l, o) = drain(&mut t);
        assert_eq!(texts(&l), ["after"]);
        assert!(
            o[0].1.as_deref().unwrap().contains("was truncated"),
            "{o:?}"
        );
        // Truncated and rewritten past the old offset before a poll: the first bytes tell.
        append(&p, "x\n");
        drain(&mut t);
        std::fs::write(&p, "rewritten-long-line\nmore\n").unwrap();
        let (l, o) = drain(&mut t);
        assert_eq!(texts(&l), ["rewritten-long-line", "more"]);
        assert_eq!(o.len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_line_longer_than_a_read_is_one_line_and_the_next_keeps_its_number() {
        let d = tmp("long");
        let p = d.join("access.log");
        let mut t = Tail::new(p.clone(), None, true);
        // Line 2 is 9 MiB (over two whole reads of 4 MiB); line 3 follows it.
        let long = "x".repeat(9 << 20);
        append(&p, &format!("a\n{long}\nc\n"));
        let (l, _) = drain(&mut t);
        let shown: Vec<(u64, usize)> = l.iter().map(|(n, s)| (*n, s.len())).collect();
        // Line 2 goes on as its first read only (the parser refuses it as over-long); its
        // other 5 MiB are not taken for lines 3 and 4.
        assert_eq!(shown, [(1, 1), (2, MAX_READ), (3, 1)]);
        assert_eq!(l[2].1, "c");
        append(&p, "d\n");
        assert_eq!(drain(&mut t).0, [(4, "d".to_string())]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_restart_resumes_in_the_same_or_the_rotated_file() {
        let d = tmp("restart");
        let p = d.join("gw.jsonl");
        append(&p, "1\n2\n");
        let mut t = Tail::new(p.clone(), None, true);
        assert_eq!(texts(&drain(&mut t).0), ["1", "2"]);
        let saved = t.position().unwrap();
        drop(t);
        // Same file, more lines: only those.
        append(&p, "3\n");
        let mut t = Tail::new(p.clone(), Some(saved), true);
        let (l, o) = drain(&mut t);
        assert_eq!(l, [(3, "3".to_string())]);
        assert_eq!(o[0].0, 4);
        let saved = t.position().unwrap();
        drop(t);
        // Rotated while stopped: the rest of the old file, then the new one.
        append(&p, "4\n");
        std::fs::rename(&p, d.join("gw.jsonl.1")).unwrap();
        append(&p, "5\n");
        let mut t = Tail::new(p.clone(), Some(saved), true);
        let (l, o) = drain(&mut t);
        assert_eq!(texts(&l), ["4", "5"]);
        assert_eq!(o.iter().filter(|x| x.1.is_some()).count(), 0, "{o:?}");
        let saved = t.position().unwrap();
        drop(t);
        // Rotated away entirely (compressed): the new file from its start, the loss said.
        std::fs::remove_file(d.join("gw.jsonl.1")).unwrap();
        std::fs::rename(&p, d.join("gw.jsonl.1.gz")).unwrap();
        std::fs::remove_file(d.join("gw.jsonl.1.gz")).unwrap();
        append(&p, "6\n");
        let mut t = Tail::new(p.clone(), Some(saved), true);
        let (l, o) = drain(&mut t);
        assert_eq!(texts(&l), ["6"]);
        assert!(o[0].1.as_deref().unwrap().contains("is gone"), "{o:?}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_new_source_starts_at_the_end_unless_asked_and_finds_its_header() {
        let d = tmp("end");
        let p = d.join("gw.csv");
        append(&p, "h1,h2\nold\npart");
        let mut t = Tail::new(p.clone(), None, false);
        let ev = t.poll().unwrap();
        assert_eq!(
            ev[0],
            Event::Open {
                offset: 10,
                header: Some(b"h1,h2\n".to_vec()),
                missed: None
            }
        );
        assert_eq!(ev.len(), 1);
        append(&p, "ial\n");
        assert_eq!(drain(&mut t).0, [(3, "partial".to_string())]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
