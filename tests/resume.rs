//! Interrupt a run, resume it from its journal: nothing the gateway settled
//! is sent again, and every valid token ends up delivered.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use apnsblast::journal::{JournalWriter, LineSet};
use apnsblast::report::Failure;
use apnsblast::run::{Blaster, Observer};
use common::*;
use mock_gateway::Config;

/// Journals settled lines and pulls the cancel flag once `stop_after` lines are settled.
struct Interrupter {
    journal: JournalWriter,
    settled: u64,
    stop_after: u64,
    cancel: Arc<AtomicBool>,
}

impl Observer for Interrupter {
    fn failure(&mut self, _f: &Failure) {}
    fn settled(&mut self, lines: &[(u64, u64)]) {
        self.journal.record(lines).unwrap();
        self.settled += lines.iter().map(|(a, b)| b - a + 1).sum::<u64>();
        if self.settled >= self.stop_after {
            self.cancel.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn interrupted_run_resumes_without_resending_what_was_settled() {
    let gw = gateway(Config { bad_rate: 0.002, seed: 5, ..Config::default() });
    let tokens = tokens(60_000, 21);
    let text = list(&tokens);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");

    // First run: small windows so settled lines are journaled as it goes; interrupted.
    let mut c = config(&gw, 3);
    c.confirm_every = 2_000;
    let blaster = Blaster::new(c.clone()).unwrap();
    let mut obs = Interrupter {
        journal: JournalWriter::open(&path).unwrap(),
        settled: 0,
        stop_after: 15_000,
        cancel: blaster.cancel_flag(),
    };
    let reader =
        apnsblast::input::TokenReader::new(std::io::Cursor::new(text.clone().into_bytes()), Default::default());
    let first = blaster.run(reader, &mut obs).unwrap();
    assert!(first.interrupted || first.unsent > 0, "the run was stopped part way: {first:#?}");
    assert_eq!(first.unaccounted(), 0);
    drop(obs);

    let done = LineSet::load(&path).unwrap();
    assert_eq!(done.len(), first.accepted + first.rejected_total(), "the journal holds exactly what was settled");
    let delivered_before = gw.deliveries();

    // Second run: the same list, the journal says what to skip.
    c.skip_lines = Some(Arc::new(done.clone()));
    let (second, failures) = blast(c, &text);
    assert_eq!(second.unaccounted(), 0);
    assert_eq!(second.previously_settled, done.len());
    assert_eq!(second.tokens_read + second.previously_settled, tokens.len() as u64);
    assert!(failures.iter().all(|f| !done.contains(f.line)));

    let after = gw.deliveries();
    for (i, t) in tokens.iter().enumerate() {
        let line = i as u64 + 1;
        let n = after.get(t.as_bytes()).copied().unwrap_or(0);
        if gw.is_bad(t.as_bytes()) {
            assert_eq!(n, 0);
        } else {
            assert!(n >= 1, "line {line} never delivered");
        }
        if done.contains(line) {
            let before = delivered_before.get(t.as_bytes()).copied().unwrap_or(0);
            assert_eq!(n, before, "line {line} was settled in the first run and sent again");
        }
    }
    assert_eq!(first.accepted + second.accepted, tokens.iter().filter(|t| !gw.is_bad(t.as_bytes())).count() as u64);
}
