//! Lines of bounded length, read without holding a longer line in memory (issue 13, point 2).
//!
//! [`CapLines`] wraps a buffered input (plain or gunzipped) and passes it through, except that a
//! line longer than `max` bytes (its line end not counted) is cut: its first `max` bytes and its
//! line end are passed on, the rest is skipped as it streams by (`fill_buf`/`consume`, never
//! collected), and its number is noted. The readers refuse a noted line with its reason; line
//! numbers stay those of the file, since every line keeps its one line end.

use std::io::{BufRead, Read};

/// Default longest line, in bytes: a gateway's access-log line is a few KB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;

pub struct CapLines<R> {
    inner: R,
    max: usize,
    /// 1-based number of the line being read.
    line: u64,
    /// Bytes of the current line passed on so far.
    col: usize,
    /// The rest of a cut line is being skipped.
    skipping: bool,
    /// A cut line's line end is owed to the reader.
    owe_newline: bool,
    /// The last slice handed out ended with the line end.
    ends_line: Option<usize>,
    /// Lines cut, in increasing order (pruned by the reader as it passes them).
    cut: Vec<u64>,
    /// Bytes passed on since the reader's last [`CapLines::mark`], and the most allowed (a CSV
    /// record spread over many lines by an unclosed quote).
    since_mark: usize,
    record_budget: Option<usize>,
}

impl<R: BufRead> CapLines<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max: max.max(1),
            line: 1,
            col: 0,
            skipping: false,
            owe_newline: false,
            ends_line: None,
            cut: Vec::new(),
            since_mark: 0,
            record_budget: None,
        }
    }

    /// Past `budget` bytes without a [`CapLines::mark`], reading fails (a CSV reader marks
    /// each record: a quote left open would otherwise gather the rest of the file into one).
    pub fn with_record_budget(mut self, budget: usize) -> Self {
        self.record_budget = Some(budget);
        self
    }

    /// A record ended here.
    pub fn mark(&mut self) {
        self.since_mark = 0;
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// The first cut line in `from..to` (forgetting every cut line before `to`).
    pub fn cut_in(&mut self, from: u64, to: u64) -> Option<u64> {
        let found = self.cut.iter().copied().find(|l| (from..to).contains(l));
        self.cut.retain(|l| *l >= to);
        found
    }

    /// Why a cut line is refused.
    pub fn reason(&self, line: u64) -> String {
        format!(
            "line {line} is longer than {} bytes (--max-line-bytes): refused, the rest of it was not read",
            self.max
        )
    }
}

impl<R: BufRead> Read for CapLines<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for CapLines<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if let Some(b) = self.record_budget
            && self.since_mark > b
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "near line {}: one CSV record runs over more than {b} bytes \
                     (a quote left open?): the rest of the file cannot be read as records",
                    self.line
                ),
            ));
        }
        loop {
            if self.owe_newline {
                self.ends_line = Some(1);
                return Ok(b"\n");
            }
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                self.ends_line = None;
                return Ok(&[]);
            }
            if self.skipping {
                match buf.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        self.inner.consume(i + 1);
                        self.skipping = false;
                        self.owe_newline = true;
                    }
                    None => {
                        let n = buf.len();
                        self.inner.consume(n);
                    }
                }
                continue;
            }
            let room = self.max - self.col;
            // Up to the line end, at most `room` bytes before it.
            let window = &buf[..buf.len().min(room + 1)];
            if let Some(i) = window.iter().position(|b| *b == b'\n') {
                self.ends_line = Some(i + 1);
                // Reborrow to satisfy the borrow checker.
                let buf = self.inner.fill_buf()?;
                return Ok(&buf[..i + 1]);
            }
            if room == 0 {
                // Past the limit with no line end: cut here.
                self.cut.push(self.line);
                self.skipping = true;
                continue;
            }
            let n = window.len().min(room);
            self.ends_line = None;
            let buf = self.inner.fill_buf()?;
            return Ok(&buf[..n]);
        }
    }

    fn consume(&mut self, amt: usize) {
        if amt == 0 {
            return;
        }
        if self.owe_newline {
            self.owe_newline = false;
            self.line += 1;
            self.col = 0;
            return;
        }
        self.inner.consume(amt);
        self.since_mark = self.since_mark.saturating_add(amt);
        if self.ends_line == Some(amt) {
            self.line += 1;
            self.col = 0;
        } else {
            self.col += amt;
        }
        self.ends_line = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads everything through a cap of `max` with a tiny inner buffer (so lines straddle
    /// buffer ends), returning what came out and the lines cut.
    fn through(input: &[u8], max: usize, inner_cap: usize) -> (Vec<u8>, Vec<u64>) {
        let mut c = CapLines::new(std::io::BufReader::with_capacity(inner_cap, input), max);
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        let cut = c.cut.clone();
        (out, cut)
    }

    #[test]
    fn long_lines_are_cut_and_noted_short_ones_pass() {
        for inner in [1, 3, 7, 64, 4096] {
            let (out, cut) = through(b"abc\nabcdef\nabcd\n\nxyzxyzxyz", 4, inner);
            assert_eq!(out, b"abc\nabcd\nabcd\n\nxyzx", "inner {inner}");
            assert_eq!(cut, [2, 5], "inner {inner}");
        }
        // read_until sees at most max + 1 bytes of a line.
        let big = format!("{}\nok\n", "x".repeat(1 << 20));
        let mut c = CapLines::new(std::io::BufReader::new(big.as_bytes()), 100);
        let mut line = Vec::new();
        c.read_until(b'\n', &mut line).unwrap();
        assert_eq!(line.len(), 101);
        assert_eq!(c.cut_in(1, 2), Some(1));
        line.clear();
        c.read_until(b'\n', &mut line).unwrap();
        assert_eq!(line, b"ok\n");
        assert_eq!(c.cut_in(2, 3), None);
    }

    #[test]
    fn a_record_over_its_budget_fails_the_read() {
        let many = "\"open\n".to_owned() + &"short line\n".repeat(100_000);
        let mut c =
            CapLines::new(std::io::BufReader::new(many.as_bytes()), 100).with_record_budget(1000);
        let mut out = Vec::new();
        let e = c.read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
        assert!(out.len() < 2000, "{}", out.len());
        // Marked as records end, the same bytes pass.
        let mut c =
            CapLines::new(std::io::BufReader::new(many.as_bytes()), 100).with_record_budget(1000);
        let mut line = Vec::new();
        while c.read_until(b'\n', &mut line).unwrap() > 0 {
            c.mark();
            line.clear();
        }
    }
}
