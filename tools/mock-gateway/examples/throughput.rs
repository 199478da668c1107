//! Manual throughput check of the mock (not a test: timings are machine-dependent).
//!
//! `cargo run --release -p mock-gateway --example throughput -- [frames] [connections]`
//!
//! Each connection writes command-1 frames (145 B, 100-byte payload) in 64 KiB
//! batches over TLS, then one invalid frame; the error response marks the end.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use mock_gateway::{Config, Gateway, Pki};
use native_tls::{Certificate, Identity, TlsConnector};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let frames: u32 = args.next().map_or(Ok(2_000_000), |a| a.parse())?;
    let conns: u32 = args.next().map_or(Ok(1), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let pki = Pki::ensure(dir.path())?;
    let config = Config { track_deliveries: std::env::var_os("TRACK").is_some(), ..Config::default() };
    let gw = Gateway::start(config, &pki, "127.0.0.1:0".parse()?, None)?;
    let connector = TlsConnector::builder()
        .identity(Identity::from_pkcs8(&pki.client().cert_pem, &pki.client().key_pem)?)
        .add_root_certificate(Certificate::from_pem(pki.ca_pem())?)
        .disable_built_in_roots(true)
        .build()?;
    let payload = [b'x'; 100];
    let started = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            let (connector, addr) = (connector.clone(), gw.addr());
            std::thread::spawn(move || -> std::io::Result<()> {
                let tcp = TcpStream::connect(addr)?;
                tcp.set_nodelay(true)?;
                let mut s = connector.connect("localhost", tcp).map_err(std::io::Error::other)?;
                let mut batch = Vec::with_capacity(70_000);
                for i in 0..frames {
                    batch.push(1);
                    batch.extend_from_slice(&i.to_be_bytes());
                    batch.extend_from_slice(&[0, 0, 0, 0, 0, 32]);
                    batch.extend_from_slice(&[(c as u8); 28]);
                    batch.extend_from_slice(&i.to_be_bytes());
                    batch.extend_from_slice(&(payload.len() as u16).to_be_bytes());
                    batch.extend_from_slice(&payload);
                    if batch.len() >= 65_536 - 145 {
                        s.write_all(&batch)?;
                        batch.clear();
                    }
                }
                batch.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
                s.write_all(&batch)?;
                let mut resp = Vec::new();
                s.read_to_end(&mut resp)?;
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked")?;
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = gw.stop();
    println!(
        "{} frames on {conns} connection(s) in {secs:.2} s: {:.2} M frames/s, {:.0} MB/s",
        stats.accepted,
        stats.accepted as f64 / secs / 1e6,
        stats.bytes_read as f64 / secs / 1e6
    );
    Ok(())
}
