//! The fingerprints of the tokens passed so far, for the exact check: written
//! once, read back only sequentially.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// The fingerprints of every token passed so far, in a temporary file (in
/// memory if none can be made).
#[derive(Debug)]
pub(super) enum Spool {
    File(BufWriter<File>),
    Memory(Vec<u64>),
}

impl Spool {
    pub(super) fn new() -> Spool {
        match tempfile::tempfile() {
            Ok(file) => Spool::File(BufWriter::with_capacity(64 << 10, file)),
            Err(e) => {
                log::warn!(
                    "cannot create a temporary file for duplicate detection ({e}); \
                     keeping 8 bytes per token in memory instead (set TMPDIR to a writable directory)"
                );
                Spool::Memory(Vec::new())
            }
        }
    }

    pub(super) fn push(&mut self, fp: u64) {
        match self {
            Spool::File(out) => {
                if let Err(e) = out.write_all(&fp.to_le_bytes()) {
                    self.spill_failed(&e);
                    self.push(fp);
                }
            }
            Spool::Memory(v) => v.push(fp),
        }
    }

    /// Calls `f` with every fingerprint pushed so far.
    pub(super) fn scan(&mut self, mut f: impl FnMut(u64)) {
        if let Spool::File(out) = self {
            match Self::scan_file(out, &mut f) {
                Ok(()) => return,
                Err(e) => self.spill_failed(&e),
            }
        }
        if let Spool::Memory(v) = self {
            v.iter().copied().for_each(f);
        }
    }

    fn scan_file(out: &mut BufWriter<File>, f: &mut impl FnMut(u64)) -> io::Result<()> {
        out.flush()?;
        let file = out.get_mut();
        let end = file.stream_position()?;
        file.rewind()?;
        let mut chunk = vec![0u8; 256 << 10];
        let mut left = end;
        while left > 0 {
            let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            file.read_exact(&mut chunk[..n])?;
            left -= n as u64;
            for word in chunk[..n].chunks_exact(8) {
                f(u64::from_le_bytes(word.try_into().expect("8-byte chunk")));
            }
        }
        file.seek(SeekFrom::Start(end))?;
        Ok(())
    }

    /// The temporary file failed mid-run (a full disk): carry on in memory
    /// with what the file and the write buffer held. If the file cannot be
    /// read back, repeats of the tokens it held could be sent again: say so.
    fn spill_failed(&mut self, e: &io::Error) {
        let Spool::File(out) = std::mem::replace(self, Spool::Memory(Vec::new())) else { return };
        let (mut file, buffered) = out.into_parts();
        let mut bytes = Vec::new();
        match file.rewind().and_then(|()| file.read_to_end(&mut bytes)) {
            Ok(_) => {
                log::warn!("the duplicate-detection file failed ({e}); keeping 8 bytes per token in memory instead")
            }
            Err(_) => log::error!(
                "the duplicate-detection file failed ({e}) and cannot be read back; \
                 repeats of tokens read so far may be sent again"
            ),
        }
        // BufWriter drops from its buffer exactly what reached the file, so
        // the file's bytes and the buffer's are the whole sequence.
        bytes.extend_from_slice(&buffered.unwrap_or_default());
        let kept = bytes.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))).collect();
        *self = Spool::Memory(kept);
    }
}
