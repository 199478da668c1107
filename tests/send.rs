//! The sender against the mock gateway: every token accounted for, for any
//! shard count and under every fault the mock can inject.

mod common;

use std::io::Cursor;
use std::time::Duration;

use apnsblast::ConnectAhead;
use apnsblast::input::{ReaderOptions, TokenReader};
use apnsblast::run::Blaster;
use common::*;
use mock_gateway::{Chaos, Config};

fn clean_list_with_invalid_tokens(shards: usize) {
    let gw = gateway(Config { bad_rate: 0.001, seed: 7, ..Config::default() });
    let tokens = tokens(100_000, 1);
    let (report, failures) = blast(config(&gw, shards), &list(&tokens));
    assert_accounted(&report, &failures, &gw, &tokens);
    assert!(report.rejected_total() > 50, "the list has invalid tokens");
    assert_eq!(report.possibly_duplicated, 0, "no silent closes, so no doubt");
    assert_eq!(report.shards, shards);
    let stats = gw.stop();
    assert_eq!(stats.duplicates, 0);
    // Every connection the gateway saw was the sender's check, one it used,
    // or one made ahead and left unused (by default only if a connect was
    // slow, which a loaded machine can make it even on loopback).
    let used: u64 = report.per_shard.iter().map(|s| s.connections).sum();
    let wasted: u64 = report.per_shard.iter().map(|s| s.connect_ahead_wasted).sum();
    assert!(stats.connections <= 1 + used + wasted, "{} connections for {used} used", stats.connections);
    assert_eq!(stats.accepted, report.accepted);
    assert_eq!(stats.rejected_with(8), report.rejected["8"]);
}

#[test]
fn one_shard() {
    clean_list_with_invalid_tokens(1);
}

#[test]
fn two_shards() {
    clean_list_with_invalid_tokens(2);
}

#[test]
fn four_shards() {
    clean_list_with_invalid_tokens(4);
}

#[test]
fn eight_shards() {
    clean_list_with_invalid_tokens(8);
}

/// Connecting ahead, every reconnect after a rejection goes to a connection
/// made ahead, and nothing is lost or sent twice.
#[test]
fn connecting_ahead_hands_each_reconnect_a_ready_connection() {
    let gw = gateway(Config { bad_rate: 0.001, seed: 7, ..Config::default() });
    let tokens = tokens(50_000, 3);
    let mut config = config(&gw, 4);
    config.connect_ahead = ConnectAhead::Always;
    let (report, failures) = blast(config, &list(&tokens));
    assert_accounted(&report, &failures, &gw, &tokens);
    assert!(report.reconnects > 20, "the list has invalid tokens: {} reconnects", report.reconnects);
    let ahead: u64 = report.per_shard.iter().map(|s| s.connected_ahead).sum();
    assert_eq!(ahead, report.reconnects, "every reconnect went to a connection made ahead");
    let used: u64 = report.per_shard.iter().map(|s| s.connections).sum();
    let wasted: u64 = report.per_shard.iter().map(|s| s.connect_ahead_wasted).sum();
    assert!(wasted <= 4, "with no faults, only the spare each shard has left at the end goes unused: {wasted}");
    let stats = gw.stop();
    assert_eq!(stats.duplicates, 0);
    // The gateway check, the connections used, and the spares left over.
    assert!(stats.connections <= 1 + used + wasted, "{} connections for {used} used", stats.connections);
}

/// Spares that the gateway refuses, resets or closes cost nothing but a
/// fallback to connecting the usual way.
#[test]
fn connecting_ahead_survives_refused_and_closed_connections() {
    let chaos = Chaos { seed: 21, fault_rate: 0.3, mean_after: 500, refuse_rate: 0.3, ..Chaos::default() };
    let gw = gateway(Config { bad_rate: 0.001, seed: 13, chaos: Some(chaos), ..Config::default() });
    let tokens = tokens(20_000, 4);
    let mut config = config(&gw, 2);
    config.connect_ahead = ConnectAhead::Always;
    config.max_failures = 10;
    let (report, failures) = blast(config, &list(&tokens));
    assert_accounted(&report, &failures, &gw, &tokens);
    assert_eq!(report.unconfirmed + report.unsent, 0, "with retries left, nothing is given up: {report:#?}");
    let ahead: u64 = report.per_shard.iter().map(|s| s.connected_ahead).sum();
    assert!(ahead > 0 && ahead < report.reconnects, "{ahead} of {} reconnects were ready ahead", report.reconnects);
    assert!(gw.stop().handshakes_refused > 0);
}

fn with_fault(config: Config, n: usize) -> apnsblast::report::Report {
    let gw = gateway(Config { bad_rate: 0.001, seed: 11, ..config });
    let tokens = tokens(n, 2);
    let (report, failures) = blast(common::config(&gw, 2), &list(&tokens));
    assert_accounted(&report, &failures, &gw, &tokens);
    gw.stop();
    report
}

#[test]
fn delayed_error_responses() {
    with_fault(Config { error_delay: Duration::from_millis(200), ..Config::default() }, 20_000);
}

#[test]
fn shutdowns_every_few_thousand() {
    let r = with_fault(Config { shutdown_after: Some(3_000), ..Config::default() }, 50_000);
    assert!(r.reconnects > 10);
    assert_eq!(r.possibly_duplicated, 0, "a shutdown names the last accepted: no doubt");
}

#[test]
fn silent_closes() {
    let r = with_fault(Config { close_after: Some(2_000), ..Config::default() }, 30_000);
    assert!(r.possibly_duplicated > 0);
}

#[test]
fn resets_mid_stream() {
    with_fault(Config { reset_after: Some(2_500), ..Config::default() }, 30_000);
}

#[test]
fn reset_after_each_error_response() {
    with_fault(Config { reset_after_error: true, ..Config::default() }, 30_000);
}

/// A gateway that loses one error response in five (rejections and the
/// confirmations alike): the connection ends with nothing said, so what was
/// written on it is in doubt and sent again, and each token still ends
/// accepted, rejected, or unconfirmed and listed, with every duplicate declared.
#[test]
fn lost_error_responses() {
    let chaos = Chaos { seed: 5, lost_response_rate: 0.2, ..Chaos::default() };
    let gw = gateway(Config { bad_rate: 0.002, seed: 11, chaos: Some(chaos), ..Config::default() });
    let tokens = tokens(20_000, 2);
    let mut config = config(&gw, 1);
    config.max_failures = 10;
    let (report, failures) = blast(config, &list(&tokens));
    assert_each_token_accounted(&report, &failures, &gw, &tokens);
    let stats = gw.stop();
    assert!(stats.responses_lost > 5, "{stats:?}");
    assert!(report.possibly_duplicated > 0, "tokens in doubt were sent again and declared: {report:#?}");
    assert!(report.unconfirmed * 100 < report.tokens_read, "one loss in five gives up hardly anything: {report:#?}");
}

#[test]
fn slow_gateway() {
    with_fault(Config { read_rate: Some(2_000_000), ..Config::default() }, 20_000);
}

#[test]
fn refused_first_handshakes() {
    let r = with_fault(Config { refuse_handshakes: 3, ..Config::default() }, 20_000);
    assert_eq!(r.unconfirmed + r.unsent, 0);
}

/// A token list that stops after `first` tokens (more than one batch) until
/// the run reports something settled.
struct Stalling {
    tokens: std::vec::IntoIter<apnsblast::DeviceToken>,
    line: u64,
    first: u64,
    settled: crossbeam_channel::Receiver<()>,
}

impl Iterator for Stalling {
    type Item = std::io::Result<apnsblast::input::Record>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.line == self.first {
            // Without the idle confirmation nothing would ever settle here.
            self.settled
                .recv_timeout(Duration::from_secs(20))
                .expect("what was sent is confirmed while the input stalls");
        }
        let token = self.tokens.next()?;
        self.line += 1;
        Some(Ok(apnsblast::input::Record::Send(apnsblast::input::Entry { line: self.line, token, extras: None })))
    }
}

struct Signal(crossbeam_channel::Sender<()>);

impl apnsblast::Observer for Signal {
    fn settled(&mut self, _lines: &[(u64, u64)]) {
        let _ = self.0.try_send(());
    }
}

#[test]
fn a_stalled_input_does_not_leave_tokens_in_doubt() {
    let gw = gateway(Config::default());
    let (tx, rx) = crossbeam_channel::bounded(1);
    let input = Stalling { tokens: tokens(1_000, 8).into_iter(), line: 0, first: 600, settled: rx };
    let report = apnsblast::Blaster::new(config(&gw, 1)).unwrap().run(input, &mut Signal(tx)).unwrap();
    assert_eq!(report.accepted, 1_000);
    assert!(report.reconnects >= 1, "the stall closed a window early");
}

/// A list that trickles in (a slow pipe): tokens go out while the list is
/// still being read, not when it ends.
#[test]
fn a_trickling_list_is_sent_as_it_comes() {
    let gw = gateway(Config::default());
    const MOST: usize = 500;
    let mut records = TokenReader::new(Cursor::new(list(&tokens(MOST, 3)).into_bytes()), ReaderOptions::default());
    let mut produced = 0;
    // The slow producer is what this test is about: one token every 60 ms, so
    // the splitter's 50 ms clock ticks between tokens. It ends the list as
    // soon as the gateway has accepted something, so the list ends early
    // only if tokens go out while it is being read.
    let slow = std::iter::from_fn(|| {
        if gw.stats().accepted > 0 {
            return None;
        }
        std::thread::sleep(Duration::from_millis(60));
        produced += 1;
        records.next()
    });
    let blaster = Blaster::new(config(&gw, 2)).expect("config");
    let report = blaster.run(slow, &mut ()).expect("run");
    assert!(produced < MOST, "nothing was sent until the list ended ({MOST} tokens, one every 60 ms)");
    assert_eq!(report.accepted, produced as u64);
}

/// The binary protocol has no topic, push type or collapse id: a line that
/// sets one is skipped and listed, never sent with the run's values instead,
/// whether the reader was told the transport (the default options) or not.
#[test]
fn a_binary_run_skips_a_line_that_sets_an_http2_header() {
    let told = ReaderOptions::default();
    let not_told = ReaderOptions { line_headers: true, ..ReaderOptions::default() };
    for options in [told, not_told] {
        let gw = gateway(Config::default());
        let toks = tokens(50, 13);
        let mut text = list(&toks[..49]);
        text.push_str(&format!("{{\"token\":\"{}\",\"push_type\":\"voip\",\"payload\":{{\"aps\":{{}}}}}}\n", toks[49]));
        let (report, failures) = blast_with(config(&gw, 2), &text, options.clone());
        assert_eq!((report.accepted, report.skipped, report.unaccounted()), (49, 1, 0), "{report:#?}");
        let [skipped] = &failures[..] else { panic!("{failures:?}") };
        assert_eq!((skipped.line, skipped.state), (50, apnsblast::report::State::Skipped));
        assert_eq!(skipped.reason, "\"push_type\" needs --api http2: the binary protocol has no such field");
        assert_eq!(gw.deliveries().get(toks[49].as_bytes()), None, "{options:?}");
        assert_eq!(gw.stop().accepted, 49);
    }
}
