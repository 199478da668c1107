//! The sender against the mock gateway: every token accounted for, for any
//! shard count and under every fault the mock can inject.

mod common;

use std::time::Duration;

use common::*;
use mock_gateway::Config;

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
    assert_eq!(stats.accepted, report.accepted);
    assert_eq!(stats.rejected_with(8), report.rejected[&8]);
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
fn lost_error_responses() {
    with_fault(Config { reset_after_error: true, ..Config::default() }, 30_000);
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
