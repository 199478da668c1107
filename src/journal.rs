//! The journal of settled lines, so a run that was killed can be resumed
//! without sending again what the gateway already accepted or rejected.
//!
//! Each line of the journal is a range of input line numbers, `first last`,
//! that reached a final state from the gateway (accepted or rejected). Ranges
//! are appended and flushed as shards confirm their windows, so a run killed
//! at any moment (even with SIGKILL) loses at most what was still unconfirmed:
//! on resume those tokens are sent again, and may arrive twice. Lines that
//! were skipped, unsent or unconfirmed are not journaled: a resumed run tries
//! them again.
//!
//! Line numbers mean something only in the list they count: a journal may
//! open with `# list MARK`, a mark of the list it was started for (see
//! [`list_mark`]), so that a resume with another list, or a cut one, is
//! refused instead of skipping lines never sent. Lines starting with `#`
//! are not records.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Sorted, merged ranges of line numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineSet {
    ranges: Vec<(u64, u64)>,
}

impl LineSet {
    /// Builds a set from ranges in any order.
    pub fn from_ranges(mut ranges: Vec<(u64, u64)>) -> LineSet {
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (a, b) in ranges {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        LineSet { ranges: merged }
    }

    /// Reads a journal. A record counts once its newline is written: a torn
    /// last line (the writer was killed mid-line) is ignored, even when what
    /// was written of it reads as a range.
    ///
    /// # Errors
    /// The file cannot be read, or a complete line is not `first last`
    /// (the message names the file and line).
    pub fn load(path: &Path) -> io::Result<LineSet> {
        let mut file = BufReader::new(File::open(path)?);
        let mut ranges = Vec::new();
        let mut line = String::new();
        for number in 1u64.. {
            line.clear();
            if file.read_line(&mut line)? == 0 {
                break;
            }
            let Some(record) = line.strip_suffix('\n') else {
                break;
            };
            let record = record.strip_suffix('\r').unwrap_or(record);
            if record.starts_with('#') {
                continue;
            }
            match record.split_once(' ').and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))) {
                Some((a, b)) if a <= b => ranges.push((a, b)),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} line {number}: expected `first last`, found {record:?}", path.display()),
                    ));
                }
            }
        }
        Ok(LineSet::from_ranges(ranges))
    }

    /// Whether `line` is in the set.
    pub fn contains(&self, line: u64) -> bool {
        let i = self.ranges.partition_point(|&(_, b)| b < line);
        self.ranges.get(i).is_some_and(|&(a, _)| a <= line)
    }

    /// How many lines the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// Appends settled ranges to a journal file.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JournalWriter {
    /// Opens `path` for appending, creating it if needed. A torn last line,
    /// left by a writer that was killed mid-line, is cut off first: appended
    /// to, it would no longer be last, and the journal would not load.
    ///
    /// # Errors
    /// The file cannot be opened or cut.
    pub fn open(path: &Path) -> io::Result<JournalWriter> {
        Self::open_for(path, None)
    }

    /// As [`open`](Self::open); a journal it creates opens with the list's
    /// `mark` ([`list_mark`]), when there is one.
    ///
    /// # Errors
    /// The file cannot be opened, cut or written.
    pub fn open_for(path: &Path, mark: Option<&str>) -> io::Result<JournalWriter> {
        let mut file = OpenOptions::new().create(true).read(true).write(true).truncate(false).open(path)?;
        let complete = complete_len(&mut file)?;
        if complete < file.metadata()?.len() {
            file.set_len(complete)?;
        }
        // Appending from here, so a second writer's records cannot overwrite these.
        let file = OpenOptions::new().append(true).open(path)?;
        let mut writer = JournalWriter { path: path.to_owned(), out: BufWriter::new(file) };
        if let Some(mark) = mark
            && complete == 0
        {
            writeln!(writer.out, "{LIST_MARK}{mark}")?;
            writer.out.flush()?;
        }
        Ok(writer)
    }

    /// Appends ranges and hands them to the operating system, so they survive
    /// the process being killed.
    ///
    /// # Errors
    /// The write failed (the message names the file).
    pub fn record(&mut self, ranges: &[(u64, u64)]) -> io::Result<()> {
        for (a, b) in ranges {
            writeln!(self.out, "{a} {b}")?;
        }
        self.out.flush().map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }
}

/// How a journal names the list it was started for.
const LIST_MARK: &str = "# list ";

/// The bytes of a list its mark covers.
const MARKED_BYTES: u64 = 64 * 1024;

/// A mark of the token list at `path`: the first 8 bytes of a SHA-256 of
/// its first 64 KiB, in hex. Two lists that begin differently (another
/// export, a list cut with `tail`) have different marks; a list appended
/// to keeps its own.
///
/// # Errors
/// The list cannot be read.
pub fn list_mark(path: &Path) -> io::Result<String> {
    use sha2::{Digest as _, Sha256};
    let mut head = Vec::new();
    File::open(path)?.take(MARKED_BYTES).read_to_end(&mut head)?;
    let digest = Sha256::digest(&head);
    Ok(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

/// The mark the journal at `path` was started with, if it has one.
///
/// # Errors
/// The journal cannot be read.
pub fn journal_mark(path: &Path) -> io::Result<Option<String>> {
    let mut first = String::new();
    BufReader::new(File::open(path)?).read_line(&mut first)?;
    Ok(first.trim_end().strip_prefix(LIST_MARK).map(str::to_owned))
}

/// The length of `file` up to and with its last newline: the complete records.
fn complete_len(file: &mut File) -> io::Result<u64> {
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut chunk = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let chunk = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Appends line numbers to a list of ranges, extending the last range when
/// the line follows it (lines of one batch are consecutive).
pub fn push_line(ranges: &mut Vec<(u64, u64)>, line: u64) {
    push_range(ranges, (line, line));
}

/// Appends an inclusive range of lines to a list of ranges, extending the
/// last range when the new one follows it.
pub fn push_range(ranges: &mut Vec<(u64, u64)>, range: (u64, u64)) {
    match ranges.last_mut() {
        Some(last) if last.1 + 1 == range.0 => last.1 = range.1,
        _ => ranges.push(range),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_set_merges_overlapping_ranges_and_finds_lines() {
        let s = LineSet::from_ranges(vec![(10, 12), (1, 3), (4, 5), (11, 20), (30, 30)]);
        assert_eq!(s.ranges, [(1, 5), (10, 20), (30, 30)]);
        assert_eq!(s.len(), 17);
        for (line, inside) in
            [(0, false), (1, true), (5, true), (6, false), (10, true), (20, true), (21, false), (30, true), (31, false)]
        {
            assert_eq!(s.contains(line), inside, "line {line}");
        }
    }

    #[test]
    fn a_new_journal_opens_with_its_lists_mark_and_loads_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let (list, other) = (dir.path().join("list"), dir.path().join("other"));
        std::fs::write(&list, "aa\nbb\n").unwrap();
        std::fs::write(&other, "bb\n").unwrap();
        let mark = list_mark(&list).unwrap();
        assert_eq!(mark.len(), 16);
        assert_ne!(mark, list_mark(&other).unwrap(), "a list cut from the top is another list");
        let path = dir.path().join("j");
        let mut w = JournalWriter::open_for(&path, Some(&mark)).unwrap();
        w.record(&[(1, 2)]).unwrap();
        drop(w);
        let mut w = JournalWriter::open_for(&path, Some("ffffffffffffffff")).unwrap();
        w.record(&[(3, 3)]).unwrap();
        drop(w);
        assert_eq!(journal_mark(&path).unwrap(), Some(mark), "the mark it was started with, once");
        assert_eq!(LineSet::load(&path).unwrap(), LineSet::from_ranges(vec![(1, 3)]));
        let old = dir.path().join("old");
        std::fs::write(&old, "1 4\n").unwrap();
        assert_eq!(journal_mark(&old).unwrap(), None, "a journal from before marks");
    }

    #[test]
    fn round_trips_and_tolerates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut w = JournalWriter::open(&path).unwrap();
        w.record(&[(1, 4), (9, 9)]).unwrap();
        drop(w);
        let mut w = JournalWriter::open(&path).unwrap();
        w.record(&[(5, 6)]).unwrap();
        drop(w);
        // Killed while writing `12 150`: what is there reads as a range, but
        // without its newline it is no record.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"12 15").unwrap();
        let s = LineSet::load(&path).unwrap();
        assert_eq!(s.ranges, [(1, 6), (9, 9)]);
    }

    #[test]
    fn a_resumed_run_appends_after_the_torn_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, "1 4\n9 9\n12 1").unwrap();
        let mut w = JournalWriter::open(&path).unwrap();
        w.record(&[(5, 6)]).unwrap();
        drop(w);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1 4\n9 9\n5 6\n");
        assert_eq!(LineSet::load(&path).unwrap().ranges, [(1, 6), (9, 9)]);

        // A journal that is all torn line, longer than one chunk read from the end.
        std::fs::write(&path, "7".repeat(10_000)).unwrap();
        JournalWriter::open(&path).unwrap().record(&[(2, 3)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "2 3\n");
    }

    #[test]
    fn a_bad_line_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, "1 2\nnonsense\n3 4\n").unwrap();
        let e = LineSet::load(&path).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn push_line_extends_runs() {
        let mut r = vec![];
        for l in [1, 2, 3, 7, 8, 2] {
            push_line(&mut r, l);
        }
        assert_eq!(r, [(1, 3), (7, 8), (2, 2)]);
    }
}
