//! A small HTTP/2 client for the mock's tests: h2 over tokio-openssl with
//! ALPN h2, a client certificate or an ES256 token signed here by hand.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, Request};
use mock_gateway::Pki;
use openssl::pkey::PKey;
use openssl::ssl::{Ssl, SslConnector, SslMethod};
use openssl::x509::X509;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

/// An answer: status, headers, body text.
pub type Answer = (u16, HeaderMap, String);

/// Connect over TLS with ALPN h2 (and the PKI's client certificate when
/// `cert`); the h2 connection runs in a task of the caller's runtime.
pub async fn connect(pki: &Pki, addr: SocketAddr, cert: bool) -> SendRequest<Bytes> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(X509::from_pem(pki.ca_pem()).unwrap()).unwrap();
    b.set_alpn_protos(b"\x02h2").unwrap();
    if cert {
        b.set_certificate(&X509::from_pem(&pki.client().cert_pem).unwrap()).unwrap();
        b.set_private_key(&PKey::private_key_from_pem(&pki.client().key_pem).unwrap()).unwrap();
    }
    let ssl = b.build().configure().unwrap().into_ssl("localhost").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut tls).connect().await.unwrap();
    assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
    let (send, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

/// TLS handshake only, offering `alpn` (wire form); the result of it.
pub async fn tls_only(pki: &Pki, addr: SocketAddr, alpn: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(X509::from_pem(pki.ca_pem()).unwrap()).unwrap();
    if let Some(a) = alpn {
        b.set_alpn_protos(a).unwrap();
    }
    let ssl: Ssl = b.build().configure().unwrap().into_ssl("localhost").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut tls).connect().await.map_err(|e| e.to_string())?;
    Ok(tls.ssl().selected_alpn_protocol().map(<[u8]>::to_vec))
}

/// UNIX seconds now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `bearer <JWT>` signed with the PKI's `.p8` key.
pub fn bearer(pki: &Pki, kid: &str, iss: &str, iat: i64) -> String {
    let key = SigningKey::from_pkcs8_pem(std::str::from_utf8(pki.auth_key_pem()).unwrap()).unwrap();
    let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#));
    let c = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{iss}","iat":{iat}}}"#));
    let input = format!("{h}.{c}");
    let sig: Signature = key.sign(input.as_bytes());
    format!("bearer {input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// A valid token for the PKI.
pub fn good_bearer(pki: &Pki) -> String {
    bearer(pki, pki.key_id(), pki.team_id(), now())
}

/// Hex of a test device token.
pub fn hex(token: &[u8; 32]) -> String {
    token.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /3/device/<hex>` with `headers` (name, value).
pub fn post(device: &[u8; 32], headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::post(format!("https://localhost/3/device/{}", hex(device)));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

/// Send `req` with `body` and start waiting for the answer (the request is
/// queued at once; the returned future only waits).
pub async fn start(
    send: &mut SendRequest<Bytes>,
    req: Request<()>,
    body: &[u8],
) -> impl Future<Output = Result<Answer, h2::Error>> + use<> {
    let mut ready = send.clone().ready().await.unwrap();
    let queued = ready.send_request(req, body.is_empty()).map(|(resp, mut stream)| {
        if !body.is_empty() {
            stream.send_data(Bytes::copy_from_slice(body), true).unwrap();
        }
        resp
    });
    async move {
        let resp = queued?.await?;
        let (parts, mut body) = resp.into_parts();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            text.extend_from_slice(&chunk);
        }
        Ok((parts.status.as_u16(), parts.headers, String::from_utf8(text).unwrap()))
    }
}

/// Send one request and wait for its answer.
pub async fn send(send_req: &mut SendRequest<Bytes>, req: Request<()>, body: &[u8]) -> Result<Answer, h2::Error> {
    start(send_req, req, body).await.await
}
