//! The sample every trial sends: generated tokens, or the first lines of
//! `--tokens` held in memory so that every trial sends the same ones (stdin
//! can be read only once).

use std::io::{BufRead, Cursor, Read};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use apnsblast::input::{ReaderOptions, Record, TokenReader};

use crate::cli::generate::TokenGen;
use crate::cli::tokens::{self, Input};

/// The sample every trial sends.
pub(super) enum Sample {
    /// `count` generated tokens (the strict trials take the first `strict`).
    Generated { count: u64, strict: u64, seed: u64 },
    /// The first lines of a list, held in memory; the strict trials read `strict_bytes` of them.
    Lines { name: String, bytes: Arc<[u8]>, strict_bytes: usize, tokens: u64, strict_tokens: u64 },
}

impl Sample {
    /// Notifications one trial sends.
    pub(super) fn tokens(&self, strict: bool) -> u64 {
        match (self, strict) {
            (Sample::Generated { count, .. }, false) => *count,
            (Sample::Generated { strict, .. }, true) => *strict,
            (Sample::Lines { tokens, .. }, false) => *tokens,
            (Sample::Lines { strict_tokens, .. }, true) => *strict_tokens,
        }
    }

    /// A fresh reader over the sample, and its token count when known.
    pub(super) fn input(&self, strict: bool) -> (Input, Option<u64>) {
        match self {
            Sample::Generated { seed, .. } => {
                let n = self.tokens(strict);
                (Input::from_reader(TokenGen::new(n, *seed, 0.0), "generated tokens", None), Some(n))
            }
            Sample::Lines { name, bytes, strict_bytes, .. } => {
                let len = if strict { *strict_bytes } else { bytes.len() };
                let reader = Cursor::new(Arc::clone(bytes)).take(len as u64);
                (Input::from_reader(reader, name, Some(len as u64)), None)
            }
        }
    }
}

/// Reads the first `n` lines of `--tokens` into memory (the first `strict_n`
/// of them make the strict trials' sample).
pub(super) fn load(path: &Path, n: u64, strict_n: u64, options: &ReaderOptions) -> anyhow::Result<Sample> {
    let mut input = tokens::open(path, false, options)?;
    let (mut bytes, mut lines, mut strict_bytes) = (Vec::new(), 0u64, 0usize);
    while lines < n {
        let read = input
            .reader
            .read_until(b'\n', &mut bytes)
            .with_context(|| format!("--tokens {}: read failed", input.name))?;
        if read == 0 {
            break;
        }
        lines += 1;
        if lines == strict_n {
            strict_bytes = bytes.len();
        }
    }
    if lines < strict_n {
        strict_bytes = bytes.len();
    }
    let count = |text: &[u8]| {
        TokenReader::new(text, options.clone()).filter(|r| matches!(r, Ok(Record::Send(_)))).count() as u64
    };
    let (tokens, strict_tokens) = (count(&bytes), count(&bytes[..strict_bytes]));
    if tokens == 0 {
        bail!("--tokens {}: no usable token in the first {lines} lines", input.name);
    }
    if lines < n {
        log::warn!("--tokens {}: holds {lines} lines, fewer than --sample {n}: each trial sends them all", input.name);
    }
    Ok(Sample::Lines { name: input.name, bytes: bytes.into(), strict_bytes, tokens, strict_tokens })
}
