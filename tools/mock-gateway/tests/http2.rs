//! The HTTP/2 gateway against a hand-made h2 client: Apple's answers, token
//! and certificate auth, and the connection faults, with exact counts.

mod common;
mod h2util;

use std::net::SocketAddr;
use std::time::Duration;

use common::{WAIT, pki, token};
use h2util::*;
use mock_gateway::{Config, Http2Config, Http2Gateway, Http2Handle, Stats};

const TOPIC: (&str, &str) = ("apns-topic", "com.example.app");
const BODY: &[u8] = br#"{"aps":{"alert":"hi"}}"#;

fn start_h2(http2: Http2Config) -> Http2Handle {
    start_with(Config { http2, ..Config::default() })
}

fn start_with(config: Config) -> Http2Handle {
    Http2Gateway::start(&config, pki(), "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn reasons(stats: &Stats) -> Vec<(&str, u64)> {
    stats.rejected_by_reason.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

async fn token_client(addr: SocketAddr) -> (h2::client::SendRequest<bytes::Bytes>, String) {
    (connect(pki(), addr, false).await, good_bearer(pki()))
}

#[tokio::test]
async fn valid_request_gets_200_and_its_apns_id_back() {
    let gw = start_h2(Http2Config::default());
    let (mut c, auth) = token_client(gw.addr()).await;
    let id = "1E7C3B6A-0D2F-4C8E-9A1B-3F5D7E9C1A2B";
    let headers = [("authorization", auth.as_str()), TOPIC, ("apns-id", id), ("apns-push-type", "alert")];
    let (status, h, body) = send(&mut c, post(&token(1), &headers), BODY).await.unwrap();
    assert_eq!((status, h["apns-id"].to_str().unwrap(), body.as_str()), (200, id, ""));
    // Without an apns-id the mock makes one up; the same delivery again is a duplicate.
    let (status, h, _) = send(&mut c, post(&token(1), &headers[..2]), BODY).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(h["apns-id"].len(), 36);
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.distinct_tokens, stats.duplicates), (2, 1, 1));
    assert_eq!((stats.connections, stats.requests_received, stats.jwt_renewals), (1, 2, 0));
    assert!(stats.rejected_by_reason.is_empty());
}

#[tokio::test]
async fn rejections_carry_apples_status_and_reason() {
    let mut config = Config::default();
    config.bad_tokens.insert(token(66));
    let gw = start_with(config);
    let (mut c, auth) = token_client(gw.addr()).await;
    let h = [("authorization", auth.as_str()), TOPIC];
    let bad = send(&mut c, post(&token(66), &h), BODY).await.unwrap();
    assert_eq!((bad.0, bad.2.as_str()), (400, r#"{"reason":"BadDeviceToken"}"#));
    let voip_topic = [("authorization", auth.as_str()), ("apns-topic", "com.example.app.voip")];
    let topic = send(&mut c, post(&token(2), &voip_topic), BODY).await.unwrap();
    assert_eq!((topic.0, topic.2.as_str()), (400, r#"{"reason":"BadTopic"}"#));
    let big = format!(r#"{{"aps":{{}},"x":"{}"}}"#, "y".repeat(4097 - 17));
    assert_eq!(big.len(), 4097);
    let large = send(&mut c, post(&token(3), &h), big.as_bytes()).await.unwrap();
    assert_eq!((large.0, large.2.as_str()), (413, r#"{"reason":"PayloadTooLarge"}"#));
    let voip = [("authorization", auth.as_str()), ("apns-topic", "com.example.app.voip"), ("apns-push-type", "voip")];
    assert_eq!(send(&mut c, post(&token(3), &voip), big.as_bytes()).await.unwrap().0, 200);
    let empty = send(&mut c, post(&token(4), &h), b"").await.unwrap();
    assert_eq!((empty.0, empty.2.as_str()), (400, r#"{"reason":"PayloadEmpty"}"#));
    let stats = gw.stop();
    assert_eq!(reasons(&stats), [("BadDeviceToken", 1), ("BadTopic", 1), ("PayloadEmpty", 1), ("PayloadTooLarge", 1)]);
    assert_eq!((stats.accepted, stats.requests_received), (1, 5));
}

#[tokio::test]
async fn gone_tokens_get_410_with_a_timestamp() {
    let gw = start_h2(Http2Config { gone_rate: 1.0, ..Http2Config::default() });
    let (mut c, auth) = token_client(gw.addr()).await;
    let (status, _, body) = send(&mut c, post(&token(5), &[("authorization", &auth), TOPIC]), BODY).await.unwrap();
    assert_eq!(status, 410);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reason"], "Unregistered");
    let ms = v["timestamp"].as_i64().unwrap();
    assert!((ms / 1000 - now()).abs() < 60, "{ms}");
    assert_eq!(reasons(&gw.stop()), [("Unregistered", 1)]);
}

#[tokio::test]
async fn provider_token_faults_get_403() {
    let gw = start_h2(Http2Config::default());
    let mut c = connect(pki(), gw.addr(), false).await;
    let p = pki();
    let missing = send(&mut c, post(&token(1), &[TOPIC]), BODY).await.unwrap();
    assert_eq!((missing.0, missing.2.as_str()), (403, r#"{"reason":"MissingProviderToken"}"#));
    for (auth, reason) in [
        (bearer(p, "WRONGKEY01", p.team_id(), now()), "InvalidProviderToken"),
        (bearer(p, p.key_id(), "WRONGTEAM1", now()), "InvalidProviderToken"),
        (bearer(p, p.key_id(), p.team_id(), now() - 3700), "ExpiredProviderToken"),
    ] {
        let (status, _, body) = send(&mut c, post(&token(1), &[("authorization", &auth), TOPIC]), BODY).await.unwrap();
        assert_eq!((status, body), (403, format!(r#"{{"reason":"{reason}"}}"#)));
    }
    // Two valid tokens: the second is a renewal.
    for iat in [now() - 10, now()] {
        let auth = bearer(p, p.key_id(), p.team_id(), iat);
        assert_eq!(send(&mut c, post(&token(2), &[("authorization", &auth), TOPIC]), BODY).await.unwrap().0, 200);
    }
    let stats = gw.stop();
    assert_eq!(
        reasons(&stats),
        [("ExpiredProviderToken", 1), ("InvalidProviderToken", 2), ("MissingProviderToken", 1)]
    );
    assert_eq!((stats.accepted, stats.jwt_renewals, stats.provider_tokens), (2, 1, 2));
}

#[tokio::test]
async fn a_client_certificate_authenticates_for_its_topics() {
    let gw = start_h2(Http2Config::default());
    let mut c = connect(pki(), gw.addr(), true).await;
    assert_eq!(send(&mut c, post(&token(1), &[]), BODY).await.unwrap().0, 200);
    let voip = [("apns-topic", "com.example.app.voip"), ("apns-push-type", "voip")];
    assert_eq!(send(&mut c, post(&token(2), &voip), BODY).await.unwrap().0, 200);
    let other = send(&mut c, post(&token(3), &[("apns-topic", "org.other.app")]), BODY).await.unwrap();
    assert_eq!((other.0, other.2.as_str()), (400, r#"{"reason":"TopicDisallowed"}"#));
    // Apple takes Live Activity updates over token authentication only.
    let live = [("apns-topic", "com.example.app.push-type.liveactivity"), ("apns-push-type", "liveactivity")];
    let live = send(&mut c, post(&token(4), &live), BODY).await.unwrap();
    assert_eq!((live.0, live.2.as_str()), (400, r#"{"reason":"TopicDisallowed"}"#));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.rejected_for("TopicDisallowed")), (2, 2));
}

#[tokio::test]
async fn only_alpn_h2_is_served() {
    let gw = start_h2(Http2Config::default());
    assert!(tls_only(pki(), gw.addr(), Some(b"\x08http/1.1")).await.is_err());
    assert_eq!(tls_only(pki(), gw.addr(), Some(b"\x08http/1.1\x02h2")).await, Ok(Some(b"h2".to_vec())));
    let none = tls_only(pki(), gw.addr(), None).await.unwrap();
    assert_eq!(none, None);
    let stats = gw.wait_until(WAIT, |s| s.handshakes_failed == 2).unwrap();
    assert_eq!(stats.connections, 1);
}

#[tokio::test]
async fn goaway_after_answers_the_first_n_and_turns_the_rest_away() {
    let gw = start_h2(Http2Config { goaway_after: Some(3), ..Http2Config::default() });
    let (mut c, auth) = token_client(gw.addr()).await;
    let mut pending = Vec::new();
    for i in 0..5 {
        pending.push(start(&mut c, post(&token(i), &[("authorization", &auth), TOPIC]), BODY).await);
    }
    let answers = futures_util::future::join_all(pending).await;
    for a in &answers[..3] {
        assert_eq!(a.as_ref().unwrap().0, 200);
    }
    for a in &answers[3..] {
        let e = a.as_ref().unwrap_err();
        assert!(e.is_go_away() && e.is_remote(), "{e:?}");
    }
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.requests_received, stats.goaways, stats.requests_dropped), (3, 3, 1, 0));
}

#[tokio::test]
async fn drop_after_closes_the_socket_with_requests_open() {
    let gw = start_h2(Http2Config { drop_after: Some(2), ..Http2Config::default() });
    let (mut c, auth) = token_client(gw.addr()).await;
    let mut pending = Vec::new();
    for i in 0..5 {
        pending.push(start(&mut c, post(&token(i), &[("authorization", &auth), TOPIC]), BODY).await);
    }
    let answers = futures_util::future::join_all(pending).await;
    assert!(answers[..2].iter().all(|a| a.as_ref().unwrap().0 == 200));
    for a in &answers[2..] {
        let e = a.as_ref().unwrap_err();
        assert!(e.is_io() && !e.is_go_away(), "{e:?}");
    }
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.requests_received, stats.requests_dropped, stats.goaways), (2, 5, 3, 0));
}

#[tokio::test]
async fn the_stream_limit_holds_and_is_counted() {
    let delay = Duration::from_millis(300);
    let gw = start_h2(Http2Config { max_streams: 3, delay, ..Http2Config::default() });
    let (mut c, auth) = token_client(gw.addr()).await;
    // One answer first, so the client has the server's SETTINGS.
    assert_eq!(send(&mut c, post(&token(0), &[("authorization", &auth), TOPIC]), BODY).await.unwrap().0, 200);
    let mut pending = Vec::new();
    for i in 1..=7 {
        pending.push(start(&mut c, post(&token(i), &[("authorization", &auth), TOPIC]), BODY).await);
    }
    let answers = futures_util::future::join_all(pending).await;
    assert!(answers.iter().all(|a| a.as_ref().unwrap().0 == 200));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.max_concurrent_streams_seen), (8, 3));
}

#[tokio::test]
async fn one_stream_start_refuses_a_second_stream_before_the_first_answer() {
    let delay = Duration::from_millis(300);
    let gw = start_h2(Http2Config { one_stream_start: true, delay, ..Http2Config::default() });
    let (mut c, auth) = token_client(gw.addr()).await;
    let first = start(&mut c, post(&token(1), &[("authorization", &auth), TOPIC]), BODY).await;
    let second = start(&mut c, post(&token(2), &[("authorization", &auth), TOPIC]), BODY).await;
    let (first, second) = futures_util::future::join(first, second).await;
    assert_eq!(first.unwrap().0, 200);
    let e = second.unwrap_err();
    assert_eq!((e.reason(), e.is_remote()), (Some(h2::Reason::REFUSED_STREAM), true), "{e:?}");
    // After that answer the limit is lifted.
    let a = start(&mut c, post(&token(3), &[("authorization", &auth), TOPIC]), BODY).await;
    let b = start(&mut c, post(&token(4), &[("authorization", &auth), TOPIC]), BODY).await;
    let (a, b) = futures_util::future::join(a, b).await;
    assert_eq!((a.unwrap().0, b.unwrap().0), (200, 200));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.streams_refused, stats.requests_received), (3, 1, 3));
}

#[test]
fn the_client_certificate_reads_like_apples() {
    use openssl::nid::Nid;
    use openssl::x509::{X509, X509ExtendedKeyUsage};
    let cert = X509::from_pem(&pki().client().cert_pem).unwrap();
    let entry = |nid| cert.subject_name().entries_by_nid(nid).next().unwrap().data().to_string().unwrap();
    assert_eq!(entry(Nid::USERID), "com.example.app");
    assert_eq!(entry(Nid::COMMONNAME), "Apple Push Services: com.example.app");
    assert!(cert.extended_key_usage().unwrap().contains(X509ExtendedKeyUsage::SSL_CLIENT));
    // Apple's extensions, DER-encoded as OID then OCTET STRING value.
    let der = cert.to_der().unwrap();
    let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    let apple = [0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x63, 0x64, 0x06, 0x03];
    assert!(has(&[&apple[..], &[0x01, 0x04, 0x02, 0x05, 0x00]].concat()), "development");
    assert!(has(&[&apple[..], &[0x02, 0x04, 0x02, 0x05, 0x00]].concat()), "production");
    let topics = mock_gateway::pki::topics_der("com.example.app");
    assert!(has(&[&apple[..], &[0x06, 0x04, topics.len() as u8], &topics[..]].concat()), "topics");
    for t in ["com.example.app.voip", "com.example.app.complication"] {
        assert!(has(t.as_bytes()), "{t}");
    }
}

#[tokio::test]
async fn the_binary_serves_http2_alone_and_reports_it() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-gateway"))
        .args(["--http2-listen", "127.0.0.1:0", "--topic", "org.example.h2", "--gone-rate", "1", "--certs-dir"])
        .arg(&certs)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let hello: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!((hello["listen"].is_null(), &hello["topic"]), (true, &serde_json::json!("org.example.h2")));
    assert_eq!((hello["key_id"].as_str(), hello["team_id"].as_str()), (Some("ABC123DEFG"), Some("TEAM123456")));
    let pki = mock_gateway::Pki::ensure_for(&certs, "org.example.h2").unwrap();
    assert_eq!(hello["auth_key"].as_str().unwrap(), pki.auth_key_path().to_str().unwrap());
    let addr = hello["http2_listen"].as_str().unwrap().parse().unwrap();
    let mut c = connect(&pki, addr, true).await;
    assert_eq!(send(&mut c, post(&token(1), &[]), BODY).await.unwrap().0, 410);
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    line.clear();
    out.read_line(&mut line).unwrap();
    let stats: serde_json::Value = serde_json::from_str(&line).unwrap();
    let h2: Stats = serde_json::from_value(stats["http2"].clone()).unwrap();
    assert_eq!((h2.connections, h2.rejected_for("Unregistered"), stats["connections"].as_u64()), (1, 1, Some(0)));
    assert!(child.wait().unwrap().success());
}
