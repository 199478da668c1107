//! `pump --api http2`: the ceiling for `apnsblast send --api http2`.
//!
//! Pre-built requests (path and `apns-id` made before the clock starts, the
//! run's shared headers and one shared body) go through the sender's own
//! HTTP/2 client stack, [`apnsblast::http2::open`]: the same TLS setup with
//! ALPN `h2`, the same h2 settings (one stream until the gateway's SETTINGS
//! arrive, the same flow-control windows). One connection per thread, each
//! on a current-thread tokio runtime, keeps as many streams in flight as
//! the gateway allows and `--streams` caps, reading the gateway's limit
//! again after every answer and on every tick, as the sender does. Nothing
//! else: no list, no accounting, no retries; every answer must be 200.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use apnsblast::http2::jwt::ProviderToken;
use apnsblast::http2::request::{APNS_ID, Headers, apns_id_value, path};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{Method, Request};

/// The longest the pump waits without reading the gateway's stream limit,
/// the sender's tick.
const TICK: Duration = Duration::from_millis(50);

/// What every connection shares.
pub(crate) struct H2Job {
    pub(crate) gateway: String,
    pub(crate) domain: String,
    pub(crate) connector: tokio_native_tls::TlsConnector,
    pub(crate) authority: Authority,
    pub(crate) headers: Headers,
    /// Token authentication; `None` with a certificate.
    pub(crate) token: Option<ProviderToken>,
    pub(crate) streams: usize,
    pub(crate) timeout: Duration,
}

/// The per-notification parts of one connection's requests, made before the
/// clock starts.
pub(crate) struct Prebuilt {
    uris: Vec<Uri>,
    ids: Vec<HeaderValue>,
}

impl Prebuilt {
    /// Requests `0..n` of connection `conn`, to the tokens the binary pump uses.
    pub(crate) fn new(job: &H2Job, conn: u32, n: u64) -> Prebuilt {
        let mut buf = BytesMut::with_capacity(80);
        let mut id = [0u8; 36];
        let (uris, ids) = (0..n)
            .map(|i| {
                buf.clear();
                path(&crate::frames::token(conn, i), &mut buf);
                let mut parts = http::uri::Parts::default();
                parts.scheme = Some(Scheme::HTTPS);
                parts.authority = Some(job.authority.clone());
                parts.path_and_query = PathAndQuery::from_maybe_shared(Bytes::copy_from_slice(&buf)).ok();
                let uri = Uri::from_parts(parts).expect("a hex path makes a valid URI");
                let uuid = (u128::from(conn) << 64) | u128::from(i);
                let id = HeaderValue::from_str(apns_id_value(uuid, &mut id)).expect("a UUID is a header value");
                (uri, id)
            })
            .unzip();
        Prebuilt { uris, ids }
    }

    fn len(&self) -> usize {
        self.uris.len()
    }
}

/// What one connection did.
pub(crate) struct Done {
    pub(crate) at: Instant,
    pub(crate) max_streams_seen: usize,
}

/// Sends every request of `pre` over one connection; waits at `barrier`
/// (with the connection up) so that every connection starts together.
pub(crate) fn pump(job: &H2Job, pre: &Prebuilt, body: &Bytes, barrier: &Barrier) -> Result<Done, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an event loop: {e}"))?;
    runtime.block_on(async {
        let opened = apnsblast::http2::open(&job.gateway, &job.domain, &job.connector, job.timeout).await;
        // Every thread reaches the barrier, connected or not, so none waits forever.
        barrier.wait();
        let (mut sender, connection) = opened.map_err(|e| e.to_string())?;
        let task = tokio::spawn(connection);
        let result = send_all(job, pre, body, &mut sender).await;
        task.abort();
        result
    })
}

async fn send_all(
    job: &H2Job,
    pre: &Prebuilt,
    body: &Bytes,
    sender: &mut h2::client::SendRequest<Bytes>,
) -> Result<Done, String> {
    let auth = match &job.token {
        Some(t) => Some(
            HeaderValue::from_maybe_shared(Bytes::copy_from_slice(t.current().authorization()))
                .map_err(|e| format!("the provider token is not a header value: {e}"))?,
        ),
        None => None,
    };
    let json = HeaderValue::from_static("application/json");
    let mut answers = FuturesUnordered::new();
    let (mut next, mut max_streams_seen) = (0, 0);
    let mut last_answer = Instant::now();
    loop {
        let limit = sender.current_max_send_streams().min(job.streams);
        while next < pre.len() && answers.len() < limit {
            match std::future::poll_fn(|cx| sender.poll_ready(cx)).now_or_never() {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(format!("the connection ended: {e}")),
                None => break,
            }
            let mut request = Request::new(());
            *request.method_mut() = Method::POST;
            *request.uri_mut() = pre.uris[next].clone();
            let headers = request.headers_mut();
            job.headers.apply(headers);
            headers.insert(CONTENT_TYPE, json.clone());
            headers.insert(APNS_ID, pre.ids[next].clone());
            if let Some(auth) = &auth {
                headers.insert(AUTHORIZATION, auth.clone());
            }
            let (response, mut stream) =
                sender.send_request(request, false).map_err(|e| format!("request {next}: {e}"))?;
            stream.send_data(body.clone(), true).map_err(|e| format!("request {next}: {e}"))?;
            answers.push(response);
            next += 1;
        }
        max_streams_seen = max_streams_seen.max(answers.len());
        if answers.is_empty() {
            return Ok(Done { at: Instant::now(), max_streams_seen });
        }
        if last_answer.elapsed() >= job.timeout {
            return Err(format!("no answer for {:?} with {} streams open", job.timeout, answers.len()));
        }
        tokio::select! {
            Some(answer) = answers.next() => {
                last_answer = Instant::now();
                let response = answer.map_err(|e| format!("a stream failed: {e}"))?;
                if response.status() != 200 {
                    return Err(format!("the gateway answered {}: the pump expects 200 only", response.status()));
                }
            }
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
