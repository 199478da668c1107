//! End to end over loopback: a 100,000-token in-memory list through
//! `Blaster::run` (gateway check, TLS 1.3 with a client certificate, shards,
//! confirmation, report) into the in-process mock gateway, for 1, 4 and 16
//! shards. One iteration is one whole run; throughput is notifications.
//!
//! `cargo bench --bench send` (about a minute). The mock runs in the same
//! process and shares the two cores, as it does in `tools/bench`.

use std::time::Duration;

use apnsblast::input::{ReaderOptions, TokenReader};
use apnsblast::run::{Blaster, SendConfig};
use apnsblast::tls::{ClientIdentity, TlsConfig};
use apnsblast::token::DeviceToken;
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use mock_gateway::{Config, Gateway, Pki};

/// Tokens per run.
const TOKENS: usize = 100_000;

/// 100 bytes of JSON: 161-byte command-2 frames, as in tools/bench.
fn payload() -> Vec<u8> {
    let p = format!(r#"{{"aps":{{"alert":"{}","sound":"default"}}}}"#, "x".repeat(62));
    assert_eq!(p.len(), 100);
    p.into_bytes()
}

/// The list as a file would hold it: distinct random-looking hex tokens.
fn list() -> String {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut s = String::with_capacity(TOKENS * 65);
    for i in 0..TOKENS as u64 {
        let mut t = [0u8; 32];
        for chunk in t.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        t[..8].copy_from_slice(&i.to_be_bytes());
        s.push_str(&DeviceToken(t).to_string());
        s.push('\n');
    }
    s
}

fn bench_send(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::ensure(dir.path()).expect("test certificates");
    let config = Config { track_deliveries: false, ..Config::default() };
    let gw = Gateway::start(config, &pki, "127.0.0.1:0".parse().unwrap(), None).expect("mock gateway starts");
    let tls = TlsConfig {
        identity: Some(ClientIdentity::load(pki.client_p12_path(), None, Some("")).expect("client identity")),
        extra_roots: vec![pki.ca_path()],
        danger_accept_invalid_certs: false,
    };
    let list = list();
    let payload = payload();

    let mut g = c.benchmark_group("send/loopback");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(TOKENS as u64));
    for shards in [1usize, 4, 16] {
        let mut cfg = SendConfig::new(format!("localhost:{}", gw.addr().port()), tls.clone(), payload.clone());
        cfg.shards = shards;
        let blaster = Blaster::new(cfg).expect("config");
        g.bench_with_input(BenchmarkId::new("100k tokens, shards", shards), &shards, |b, _| {
            b.iter(|| {
                let reader = TokenReader::new(list.as_bytes(), ReaderOptions::default());
                let report = blaster.run(reader, &mut ()).expect("run");
                assert_eq!(report.accepted, TOKENS as u64, "every token accepted: {report:?}");
                report
            })
        });
    }
    g.finish();
    gw.stop();
}

criterion_group!(benches, bench_send);
criterion_main!(benches);
