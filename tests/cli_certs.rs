//! `apnsblast send`, the built binary: client certificates (PKCS#12 passwords,
//! PEM with its key, validity dates, one the gateway refuses) and `--insecure`.

mod cli_common;
mod common;

use std::time::{Duration, Instant, SystemTime};

use cli_common::*;
use common::{gateway, list, pki, run, tokens};
use mock_gateway::{Config, Pki};

#[test]
fn a_locked_p12_needs_its_password_from_the_environment() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 86400);
    let id = pki().issue_client(dir.path(), "locked", now - year, now + year, "s3cret").unwrap();
    let list = dir.file("tokens.txt", &list(&tokens(10, 11)));
    let p12 = path(&id.p12_path);

    let r = send_with_cert(&gw, &list, &["--cert", &p12, "--cert-password-env", "APNS_PW"], &[("APNS_PW", "wrong")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("locked.p12") && r.stderr.contains("wrong password"), "{}", r.stderr);

    let r = send_with_cert(&gw, &list, &["--cert", &p12], &[]);
    assert_eq!(r.code, 2, "no terminal, no password: {r:?}");
    assert!(r.stderr.contains("locked.p12") && r.stderr.contains("--cert-password-env"), "{}", r.stderr);

    let r = send_with_cert(&gw, &list, &["--cert", &p12, "--cert-password-env", "APNS_PW_UNSET"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("APNS_PW_UNSET is not set"), "{}", r.stderr);
    assert_eq!(gw.stats().accepted, 0);

    let r = send_with_cert(&gw, &list, &["--cert", &p12, "--cert-password-env", "APNS_PW"], &[("APNS_PW", "s3cret")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(gw.stop().accepted, 10);
}

#[test]
fn pem_certificate_needs_its_key() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 12)));
    let cert = path(pki().client_pem_path());
    let r = send_with_cert(&gw, &list, &["--cert", &cert], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("client.pem") && r.stderr.contains("no private key"), "{}", r.stderr);
    assert_eq!(gw.stats().connections, 0);
    let r = send_with_cert(&gw, &list, &["--cert", &cert, "--key", &path(pki().client_key_path())], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("readable by group or others"), "the generated key is 0600: {}", r.stderr);
    // The same key readable by everyone still works, with a warning.
    let exposed = dir.file("exposed.key", &std::fs::read_to_string(pki().client_key_path()).unwrap());
    std::fs::set_permissions(&exposed, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let r = send_with_cert(&gw, &list, &["--cert", &cert, "--key", &exposed], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("exposed.key") && r.stderr.contains("readable by group or others"), "{}", r.stderr);
    assert_eq!(gw.stop().accepted, 20);
}

#[test]
fn expired_and_not_yet_valid_certificates_exit_2_before_connecting() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let now = SystemTime::now();
    let day = Duration::from_secs(86400);
    let old = pki().issue_client(dir.path(), "old", now - 400 * day, now - 35 * day, "").unwrap();
    let new = pki().issue_client(dir.path(), "new", now + 30 * day, now + 400 * day, "").unwrap();
    let list = dir.file("tokens.txt", &list(&tokens(5, 13)));
    let r = send_with_cert(&gw, &list, &["--cert", &path(&old.p12_path)], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("old.p12") && r.stderr.contains("expired"), "{}", r.stderr);
    let r = send_with_cert(&gw, &list, &["--cert", &path(&new.p12_path)], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("new.p12") && r.stderr.contains("not valid before"), "{}", r.stderr);
    assert_untouched(gw);
}

#[test]
fn a_certificate_the_gateway_refuses_exits_2_quickly() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let rogue = Pki::rogue_client(dir.path(), "rogue", "").unwrap();
    let list = dir.file("tokens.txt", &list(&tokens(10, 15)));
    let started = Instant::now();
    let r = send_with_cert(&gw, &list, &["--cert", &path(&rogue.p12_path)], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not accept this certificate"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(gw.stop().accepted, 0);
}

#[test]
fn insecure_warns_every_run() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 16)));
    let p = pki();
    let mut a = args(&["-q", "send", "--tokens", &list, "--alert", "hi", "--insecure", "--cert"]);
    a.push(path(p.client_p12_path()));
    a.extend(args(&["--gateway", &format!("127.0.0.1:{}", gw.addr().port())]));
    let r = run(&a, None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("WARNING: --insecure"), "{}", r.stderr);
    assert_eq!(r.stdout, "", "-q prints no summary");
}
