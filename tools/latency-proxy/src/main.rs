//! `latency-proxy`: a long link on loopback, to measure what round trips cost
//! `apnsblast send` (this machine's kernel has no netem).
//!
//! Every byte, and every close, that enters the proxy on one side leaves on
//! the other `--delay-ms` later, at `--mbit` megabits a second at most. What
//! one direction holds in transit is bounded by the link's bandwidth-delay
//! product (at least 64 KiB), and the proxy's own socket buffers are small, so
//! a sender that outruns the link blocks as it would on a real one: what it
//! has written and the gateway has not read is then about its send buffer
//! plus the link's bandwidth-delay product.
//!
//! Not emulated: TCP's own handshake (a connect completes at once; the TLS
//! handshake's round trips are delayed), loss, and slow start.
//!
//! Prints `{"listen":"127.0.0.1:PORT"}` on start and runs until killed.
//!
//! ```text
//! latency-proxy --upstream 127.0.0.1:GATEWAY_PORT --delay-ms 25 --mbit 100
//! ```

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use socket2::{Domain, SockRef, Socket, Type};

/// Bytes read at a time.
const CHUNK: usize = 16 << 10;
/// Receive and send buffers of the proxy's sockets: small, so that the
/// kernel does not hold much beyond what the emulated link does.
const SOCKET_BUFFER: usize = 32 << 10;
/// The least a direction holds in transit.
const MIN_IN_TRANSIT: usize = 64 << 10;
/// What a direction holds in transit without a bandwidth limit.
const UNLIMITED_IN_TRANSIT: usize = 4 << 20;

/// A TCP proxy that delays and paces both directions.
#[derive(Debug, Parser)]
#[command(name = "latency-proxy", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to forward each connection (HOST:PORT, e.g. the mock gateway).
    #[arg(long, value_name = "HOST:PORT")]
    upstream: String,
    /// One-way delay in milliseconds (the round trip is twice this).
    #[arg(long, value_name = "MS", default_value_t = 50)]
    delay_ms: u64,
    /// Bandwidth of each direction of each connection, in megabits a second
    /// (default: unlimited, with 4 MiB in transit at most).
    #[arg(long, value_name = "MBIT")]
    mbit: Option<f64>,
}

/// How one direction of the link behaves.
#[derive(Debug, Clone, Copy)]
struct Link {
    delay: Duration,
    /// Bytes a second; `None`: unlimited.
    rate: Option<f64>,
    /// Bytes in transit at most.
    capacity: usize,
}

impl Link {
    fn new(delay: Duration, mbit: Option<f64>) -> Link {
        let rate = mbit.map(|m| m * 1e6 / 8.0);
        let capacity = rate.map_or(UNLIMITED_IN_TRANSIT, |r| ((r * delay.as_secs_f64()) as usize).max(MIN_IN_TRANSIT));
        Link { delay, rate, capacity }
    }
}

/// What travels on a direction.
enum Chunk {
    Data(Vec<u8>),
    /// The sending side closed (`reset`: with an RST or an error).
    End {
        reset: bool,
    },
}

/// One direction's bytes in transit, oldest first, with their arrival times.
#[derive(Default)]
struct Transit {
    queue: VecDeque<(Instant, Chunk)>,
    bytes: usize,
    /// The receiving side failed: stop reading.
    broken: bool,
}

#[derive(Default)]
struct Wire {
    transit: Mutex<Transit>,
    changed: Condvar,
}

impl Wire {
    fn lock(&self) -> std::sync::MutexGuard<'_, Transit> {
        self.transit.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reads from `from` into the wire while the link has room.
fn read_side(mut from: TcpStream, wire: &Wire, link: Link) {
    let mut buf = vec![0; CHUNK];
    loop {
        {
            let mut t = wire.lock();
            while t.bytes >= link.capacity && !t.broken {
                t = wire.changed.wait(t).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if t.broken {
                return;
            }
        }
        let chunk = match from.read(&mut buf) {
            Ok(0) => Chunk::End { reset: false },
            Ok(n) => Chunk::Data(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => Chunk::End { reset: true },
        };
        let end = matches!(chunk, Chunk::End { .. });
        let mut t = wire.lock();
        if let Chunk::Data(d) = &chunk {
            t.bytes += d.len();
        }
        t.queue.push_back((Instant::now(), chunk));
        wire.changed.notify_all();
        drop(t);
        if end {
            return;
        }
    }
}

/// Writes what the wire carries to `to`, each chunk `link.delay` after it
/// arrived and no faster than `link.rate`. A failure to write breaks the
/// connection on both sides.
fn write_side(mut to: TcpStream, from: &TcpStream, wire: &Wire, link: Link) {
    let mut free_at = Instant::now();
    loop {
        let chunk = {
            let mut t = wire.lock();
            loop {
                if let Some((arrived, chunk)) = t.queue.front() {
                    let len = if let Chunk::Data(d) = chunk { d.len() } else { 0 };
                    let due = (*arrived + link.delay).max(free_at);
                    let now = Instant::now();
                    if now >= due {
                        if let Some(rate) = link.rate {
                            free_at = due + Duration::from_secs_f64(len as f64 / rate);
                        }
                        break;
                    }
                    // The emulated link's delay: nothing to synchronise with.
                    t = wire.changed.wait_timeout(t, due - now).unwrap_or_else(std::sync::PoisonError::into_inner).0;
                } else {
                    t = wire.changed.wait(t).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
            let (_, chunk) = t.queue.pop_front().expect("looked at above");
            if let Chunk::Data(d) = &chunk {
                t.bytes -= d.len();
            }
            wire.changed.notify_all();
            chunk
        };
        match chunk {
            Chunk::Data(d) => {
                if to.write_all(&d).is_err() {
                    wire.lock().broken = true;
                    wire.changed.notify_all();
                    reset(from);
                    return;
                }
            }
            Chunk::End { reset: false } => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Chunk::End { reset: true } => {
                reset(&to);
                return;
            }
        }
    }
}

/// Ends a connection with an RST once its last handle closes.
fn reset(s: &TcpStream) {
    let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
    let _ = s.shutdown(Shutdown::Both);
}

/// Carries `from` to `to` over the emulated link until either side ends.
fn carry(from: TcpStream, to: TcpStream, link: Link) -> io::Result<()> {
    let wire = Arc::new(Wire::default());
    let reader = {
        let (from, wire) = (from.try_clone()?, Arc::clone(&wire));
        thread::Builder::new().name("proxy-read".into()).spawn(move || read_side(from, &wire, link))?
    };
    write_side(to, &from, &wire, link);
    let _ = reader.join();
    Ok(())
}

fn serve(client: TcpStream, upstream: SocketAddr, link: Link) -> io::Result<()> {
    let server = Socket::new(Domain::for_address(upstream), Type::STREAM, None)?;
    server.set_send_buffer_size(SOCKET_BUFFER)?;
    server.connect(&upstream.into())?;
    let server: TcpStream = server.into();
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (c2, s2) = (client.try_clone()?, server.try_clone()?);
    let up = thread::Builder::new().name("proxy-up".into()).spawn(move || carry(c2, s2, link))?;
    let down = carry(server, client, link);
    let _ = up.join();
    down
}

fn run(args: Args) -> Result<(), String> {
    let upstream = args
        .upstream
        .to_socket_addrs()
        .map_err(|e| format!("--upstream {}: {e}", args.upstream))?
        .next()
        .ok_or_else(|| format!("--upstream {}: no address", args.upstream))?;
    if args.mbit.is_some_and(|m| !(m > 0.0 && m.is_finite())) {
        return Err("--mbit: must be a positive number".into());
    }
    let link = Link::new(Duration::from_millis(args.delay_ms), args.mbit);
    let socket = Socket::new(Domain::for_address(args.listen), Type::STREAM, None).map_err(|e| e.to_string())?;
    // Set before listening, so accepted sockets start with it (and a window to match).
    let setup = socket
        .set_reuse_address(true)
        .and_then(|()| socket.set_recv_buffer_size(SOCKET_BUFFER))
        .and_then(|()| socket.bind(&args.listen.into()))
        .and_then(|()| socket.listen(1024));
    setup.map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let listener: TcpListener = socket.into();
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("{{\"listen\":\"{local}\"}}");
    io::stdout().flush().map_err(|e| e.to_string())?;
    proxy(&listener, upstream, link);
    Ok(())
}

/// Serves every connection `listener` accepts, each on threads of its own.
fn proxy(listener: &TcpListener, upstream: SocketAddr, link: Link) {
    for client in listener.incoming() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("latency-proxy: accept: {e}");
                continue;
            }
        };
        let spawned = thread::Builder::new().name("proxy-conn".into()).spawn(move || {
            if let Err(e) = serve(client, upstream, link) {
                eprintln!("latency-proxy: {e}");
            }
        });
        if let Err(e) = spawned {
            eprintln!("latency-proxy: cannot start a thread: {e}");
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latency-proxy: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that echoes each connection's bytes until it closes.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                thread::spawn(move || {
                    let mut back = conn.try_clone().unwrap();
                    let _ = io::copy(&mut conn, &mut back);
                    let _ = back.shutdown(Shutdown::Write);
                });
            }
        });
        addr
    }

    fn start(upstream: SocketAddr, link: Link) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || proxy(&listener, upstream, link));
        addr
    }

    #[test]
    fn bytes_and_the_close_arrive_intact_a_round_trip_later() {
        let delay = Duration::from_millis(40);
        let proxy = start(echo_server(), Link::new(delay, None));
        let mut client = TcpStream::connect(proxy).unwrap();
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        let writer = {
            let (mut c, sent) = (client.try_clone().unwrap(), sent.clone());
            thread::spawn(move || {
                c.write_all(&sent).unwrap();
                c.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut first = [0u8; 1];
        client.read_exact(&mut first).unwrap();
        let round_trip = started.elapsed();
        let mut back = first.to_vec();
        client.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(back, sent, "every byte, in order, and then the close");
        assert!(round_trip >= 2 * delay, "the first byte came back after {round_trip:?}, less than a round trip");
    }

    #[test]
    fn a_bandwidth_limit_paces_the_bytes() {
        // 8 Mbit/s is 1 MB/s: 200 KB take at least 0.2 s however short the delay.
        let proxy = start(echo_server(), Link::new(Duration::from_millis(1), Some(8.0)));
        let mut client = TcpStream::connect(proxy).unwrap();
        let started = Instant::now();
        let mut c = client.try_clone().unwrap();
        let writer = thread::spawn(move || {
            c.write_all(&[7u8; 200_000]).unwrap();
            c.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert_eq!(back.len(), 200_000);
        assert!(started.elapsed() >= Duration::from_millis(200), "200 KB at 1 MB/s took {:?}", started.elapsed());
    }

    #[test]
    fn the_link_holds_its_bandwidth_delay_product() {
        let link = Link::new(Duration::from_millis(50), Some(100.0));
        assert_eq!(link.capacity, 625_000, "12.5 MB/s for 50 ms");
        assert_eq!(Link::new(Duration::from_millis(1), Some(1.0)).capacity, MIN_IN_TRANSIT);
        assert_eq!(Link::new(Duration::from_millis(50), None).capacity, UNLIMITED_IN_TRANSIT);
    }
}
