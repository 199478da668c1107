//! `apnsblast gen-tokens`: token lists for trying the tool and for
//! benchmarks, and the generator `demo` streams from.
//!
//! Tokens are distinct by construction (the first 8 bytes are a bijection of
//! the token's index), look random, and depend only on the seed. Junk lines
//! are the kinds real exports contain: bad hex, short and long tokens,
//! comments, blank lines, repeats, and a misspelt NDJSON key.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use super::{Exit, Global};

/// `apnsblast gen-tokens`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// How many distinct tokens to write
    #[arg(value_name = "N")]
    pub count: u64,
    /// Seed: the same seed gives the same list
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of lines (0 to 0.9) that are junk: bad hex, short tokens,
    /// comments, blank lines, repeats, bad NDJSON
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub junk: f64,
    /// Write to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Runs `gen-tokens`.
///
/// # Errors
/// A bad `--junk`, or the output cannot be written.
pub fn run(args: GenArgs, global: &Global) -> anyhow::Result<Exit> {
    if !(0.0..=0.9).contains(&args.junk) {
        bail!("--junk {}: must be between 0 and 0.9", args.junk);
    }
    let mut generator = TokenGen::new(args.count, args.seed, args.junk);
    let target = match &args.out {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("--out {}: cannot create", path.display()))?;
            let mut out = BufWriter::with_capacity(1 << 16, file);
            io::copy(&mut generator, &mut out)
                .and_then(|_| out.flush())
                .with_context(|| format!("--out {}: write failed", path.display()))?;
            path.display().to_string()
        }
        None => {
            let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            io::copy(&mut generator, &mut out).and_then(|_| out.flush()).context("writing to stdout failed")?;
            "stdout".to_owned()
        }
    };
    if !global.quiet {
        let s = &generator.stats;
        eprintln!(
            "apnsblast: wrote {} tokens and {} junk lines to {target} ({} that send will skip, {} blank or comment lines)",
            s.tokens,
            s.skippable + s.ignorable,
            s.skippable,
            s.ignorable
        );
    }
    Ok(Exit::Success)
}

/// What a generator wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GenStats {
    /// Distinct tokens.
    pub tokens: u64,
    /// Junk lines a reader skips (and counts).
    pub skippable: u64,
    /// Blank and comment lines (ignored, not counted).
    pub ignorable: u64,
}

/// Streams a token list as bytes: nothing is held but the current line.
#[derive(Debug)]
pub struct TokenGen {
    count: u64,
    next: u64,
    key: u64,
    junk: f64,
    rng: u64,
    line: Vec<u8>,
    pos: usize,
    last: Option<[u8; 32]>,
    /// Lines written so far, by kind.
    pub stats: GenStats,
}

impl TokenGen {
    /// `count` tokens for `seed`, with a fraction `junk` of junk lines.
    pub fn new(count: u64, seed: u64, junk: f64) -> TokenGen {
        TokenGen {
            count,
            next: 0,
            key: mix(seed ^ 0x5eed_0f70_6b65_6e00),
            junk,
            rng: mix(seed ^ 0x6a75_6e6b) | 1,
            line: Vec::with_capacity(128),
            pos: 0,
            last: None,
            stats: GenStats::default(),
        }
    }

    /// Token number `i` of this generator.
    pub fn token(&self, i: u64) -> [u8; 32] {
        let first = mix(i ^ self.key);
        let mut t = [0u8; 32];
        t[..8].copy_from_slice(&first.to_be_bytes());
        for (k, chunk) in t[8..].chunks_exact_mut(8).enumerate() {
            let w = mix(first ^ self.key.wrapping_add((k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        t
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.random() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Puts the next line in `self.line`; false at the end.
    fn next_line(&mut self) -> bool {
        self.line.clear();
        self.pos = 0;
        if self.next >= self.count {
            return false;
        }
        if self.chance(self.junk) {
            self.junk_line();
        } else {
            let t = self.token(self.next);
            self.next += 1;
            self.stats.tokens += 1;
            self.last = Some(t);
            let style = if self.junk > 0.0 { self.random() % 40 } else { 2 };
            match style {
                // The way iOS prints a token: valid, decorations stripped by the reader.
                0 => {
                    self.line.push(b'<');
                    for (i, pair) in t.chunks(4).enumerate() {
                        if i > 0 {
                            self.line.push(b' ');
                        }
                        push_hex(&mut self.line, pair, false);
                    }
                    self.line.push(b'>');
                }
                1 => push_hex(&mut self.line, &t, true),
                _ => push_hex(&mut self.line, &t, false),
            }
        }
        self.line.push(b'\n');
        true
    }

    fn junk_line(&mut self) {
        let t = self.token(self.next ^ (1 << 63));
        let kind = self.random() % 7;
        match (kind, self.last) {
            (0, _) | (5, None) => {
                push_hex(&mut self.line, &t, false);
                let at = (self.random() % 64) as usize;
                self.line[at] = b'x';
            }
            (1, _) => {
                push_hex(&mut self.line, &t, false);
                self.line.truncate(62);
            }
            (2, _) => {
                push_hex(&mut self.line, &t, false);
                self.line.extend_from_slice(b"ab");
            }
            (3, _) => {
                let text = format!("# exported batch {}", self.next);
                self.line.extend_from_slice(text.as_bytes());
                self.stats.ignorable += 1;
                return;
            }
            (4, _) => {
                self.stats.ignorable += 1;
                return;
            }
            (5, Some(last)) => push_hex(&mut self.line, &last, false),
            _ => {
                self.line.extend_from_slice(b"{\"token\": \"");
                push_hex(&mut self.line, &t, false);
                self.line.extend_from_slice(b"\", \"paylod\": {\"aps\": {\"alert\": \"hi\"}}}");
            }
        }
        self.stats.skippable += 1;
    }
}

impl Read for TokenGen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.pos == self.line.len() && !self.next_line() {
                break;
            }
            let take = (self.line.len() - self.pos).min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&self.line[self.pos..self.pos + take]);
            self.pos += take;
            n += take;
        }
        Ok(n)
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8], upper: bool) {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    for b in bytes {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0xf)]);
    }
}

/// splitmix64: a bijection of u64, so distinct inputs give distinct outputs.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apnsblast::input::{ReaderOptions, Record, TokenReader};

    fn text(n: u64, seed: u64, junk: f64) -> (String, GenStats) {
        let mut g = TokenGen::new(n, seed, junk);
        let mut s = String::new();
        g.read_to_string(&mut s).unwrap();
        (s, g.stats)
    }

    #[test]
    fn the_same_seed_gives_the_same_distinct_sendable_tokens() {
        let (a, stats) = text(5000, 7, 0.0);
        assert_eq!(a, text(5000, 7, 0.0).0);
        assert_ne!(a, text(5000, 8, 0.0).0);
        assert_eq!(stats, GenStats { tokens: 5000, skippable: 0, ignorable: 0 });
        let records: Vec<Record> =
            TokenReader::new(a.as_bytes(), ReaderOptions::default()).map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 5000);
        assert!(records.iter().all(|r| matches!(r, Record::Send(_))), "no duplicates, no junk");
    }

    #[test]
    fn junk_is_what_the_reader_skips() {
        let (text, stats) = text(5000, 3, 0.2);
        assert_eq!(stats.tokens, 5000);
        assert!(stats.skippable > 500, "{stats:?}");
        let (mut send, mut skip) = (0, 0);
        for r in TokenReader::new(text.as_bytes(), ReaderOptions::default()) {
            match r.unwrap() {
                Record::Send(_) => send += 1,
                Record::Skip(_) => skip += 1,
                Record::OtherPartition => unreachable!(),
            }
        }
        assert_eq!((send, skip), (5000, stats.skippable));
    }
}
