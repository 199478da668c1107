//! Full-size runs, too slow for the default test command. Run with
//! `cargo test --release --test scale -- --ignored --nocapture`.

mod common;

use common::*;
use mock_gateway::Config;

fn million(bad_rate: f64, shards: usize) {
    let gw = gateway(Config { bad_rate, seed: 3, track_deliveries: true, ..Config::default() });
    let tokens = tokens(1_000_000, 9);
    let mut c = config(&gw, shards);
    if let Ok(v) = std::env::var("SNDBUF") {
        c.send_buffer = Some(v.parse().unwrap());
    }
    if let Ok(v) = std::env::var("BATCH") {
        c.batch_bytes = v.parse().unwrap();
    }
    c.nodelay = std::env::var("NODELAY").is_ok();
    if let Ok(v) = std::env::var("SHARDS") {
        c.shards = v.parse().unwrap();
    }
    let (report, failures) = blast(c, &list(&tokens));
    println!(
        "bad_rate {bad_rate} shards {shards}: {:.0}/s in {:.2}s, resent {}, amplification {:.3}, reconnects {}, rejected {:?}",
        report.rate_per_s, report.elapsed_s, report.resent, report.amplification, report.reconnects, report.rejected
    );
    for s in &report.per_shard {
        println!(
            "  shard {}: connect {:.2}s of {:.2}s, {} connections",
            s.shard, s.connect_s, s.elapsed_s, s.connections
        );
    }
    assert_accounted(&report, &failures, &gw, &tokens);
}

#[test]
#[ignore = "full size: run by hand in release"]
fn a_clean_million_token_list_is_fully_accounted() {
    million(0.0, 2);
}

#[test]
#[ignore = "full size: run by hand in release"]
fn a_million_tokens_with_invalid_ones_are_fully_accounted() {
    million(0.001, 2);
}

#[test]
#[ignore = "measurement: run by hand in release"]
fn handshake_cost() {
    let gw = gateway(Config::default());
    let mut c = config(&gw, 1);
    c.nodelay = std::env::var("NODELAY").is_ok();
    let b = apnsblast::run::Blaster::new(c).unwrap();
    let t = std::time::Instant::now();
    for _ in 0..200 {
        b.check_gateway().unwrap();
    }
    println!("check_gateway: {:.2} ms each", t.elapsed().as_secs_f64() * 1000.0 / 200.0);
}
