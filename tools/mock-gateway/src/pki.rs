//! Test PKI: a CA, a server certificate for `localhost`/`127.0.0.1`, an
//! Apple-style RSA-2048 client identity (subject and extensions as Apple
//! issues them, see `apple`), an Apple-style token-auth key
//! (`AuthKey_<KEYID>.p8`), plus extra identities for failure tests.
//!
//! rcgen (ring) builds and signs the certificates; openssl generates the RSA client
//! keys (ring cannot) and builds PKCS#12. Generation runs under an exclusive file
//! lock on `<dir>/.pki.lock`, so parallel tests sharing a certs dir never see a mix
//! of two generations.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::X509;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use crate::config::DEFAULT_TOPIC;

mod apple;
use apple::client_params;
pub use apple::{
    KEY_ID, OID_APNS_DEVELOPMENT, OID_APNS_PRODUCTION, OID_APNS_TOPICS, OID_UID, TEAM_ID, cert_bundle_id, client_cn,
    topics_der,
};

/// Common name of the generated client certificate for the default topic, in Apple's style.
pub const CLIENT_CN: &str = "Apple Push Services: com.example.app";
const CA_CN: &str = "apnsblast mock gateway CA";
const FILES: [&str; 7] = ["ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key", "client.p12"];

/// Why the PKI could not be generated, written or loaded.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file.
    Io(PathBuf, io::Error),
    /// OpenSSL (key generation, PEM/PKCS#12 encoding).
    Openssl(openssl::error::ErrorStack),
    /// rcgen (certificate building/signing).
    Rcgen(rcgen::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(p, e) => write!(f, "{}: {e}", p.display()),
            Error::Openssl(e) => write!(f, "openssl: {e}"),
            Error::Rcgen(e) => write!(f, "certificate generation: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<openssl::error::ErrorStack> for Error {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Error::Openssl(e)
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Error::Rcgen(e)
    }
}

/// The gateway's PKI, as files in `dir` and in memory.
#[derive(Debug, Clone)]
pub struct Pki {
    /// Directory holding `ca.pem`, `ca.key`, `server.pem`, `server.key`, `client.pem`,
    /// `client.key` (PKCS#8) and `client.p12` (empty password).
    pub dir: PathBuf,
    ca_pem: Vec<u8>,
    ca_key_pem: Vec<u8>,
    server_pem: Vec<u8>,
    server_key_pem: Vec<u8>,
    client: ClientIdentity,
    auth_key_pem: Vec<u8>,
    bundle_id: String,
}

/// A client identity written to disk: PEM certificate, PKCS#8 PEM key, PKCS#12.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// Path of the PEM certificate.
    pub cert_path: PathBuf,
    /// Path of the PKCS#8 PEM key (starts with `-----BEGIN PRIVATE KEY-----`, mode 0600).
    pub key_path: PathBuf,
    /// Path of the PKCS#12 file.
    pub p12_path: PathBuf,
    /// The PEM certificate.
    pub cert_pem: Vec<u8>,
    /// The PKCS#8 PEM key.
    pub key_pem: Vec<u8>,
    /// The PKCS#12 DER bytes.
    pub p12: Vec<u8>,
}

impl Pki {
    /// Load the PKI from `dir`, or generate all of it if any file is missing;
    /// the client certificate is for [`DEFAULT_TOPIC`].
    ///
    /// # Errors
    /// The directory cannot be created, read or written, or generation fails.
    pub fn ensure(dir: &Path) -> Result<Pki, Error> {
        Self::ensure_for(dir, DEFAULT_TOPIC)
    }

    /// Like [`Pki::ensure`], with a client certificate for `bundle_id`: when the
    /// one in `dir` is for another app, the client identity alone is issued
    /// again (same CA). The token-auth key is generated when missing.
    ///
    /// # Errors
    /// The directory cannot be created, read or written, or generation fails.
    pub fn ensure_for(dir: &Path, bundle_id: &str) -> Result<Pki, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::Io(dir.into(), e))?;
        let lock_path = dir.join(".pki.lock");
        let lock = File::create(&lock_path).map_err(|e| Error::Io(lock_path.clone(), e))?;
        lock.lock().map_err(|e| Error::Io(lock_path, e))?;
        let read = |name: &str| {
            let p = dir.join(name);
            fs::read(&p).map_err(|e| Error::Io(p, e))
        };
        if !FILES.iter().all(|f| dir.join(f).is_file()) {
            generate(dir, bundle_id)?;
        } else if cert_bundle_id(&*X509::from_pem(&read("client.pem")?)?).as_deref() != Some(bundle_id) {
            let ca_key = KeyPair::from_pem(&String::from_utf8_lossy(&read("ca.key")?))?;
            let issuer = Issuer::new(ca_params(CA_CN)?, ca_key);
            write_client(dir, "client", client_params(bundle_id)?, &issuer, "")?;
        }
        let auth_key = dir.join(apple::auth_key_file());
        if !auth_key.is_file() {
            write_file(&auth_key, &apple::generate_auth_key()?, true)?;
        }
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_pem: read("ca.pem")?,
            ca_key_pem: read("ca.key")?,
            server_pem: read("server.pem")?,
            server_key_pem: read("server.key")?,
            client: ClientIdentity {
                cert_path: dir.join("client.pem"),
                key_path: dir.join("client.key"),
                p12_path: dir.join("client.p12"),
                cert_pem: read("client.pem")?,
                key_pem: read("client.key")?,
                p12: read("client.p12")?,
            },
            auth_key_pem: read(&apple::auth_key_file())?,
            bundle_id: bundle_id.to_string(),
        })
    }

    /// Path of the token-auth key, `AuthKey_<KEYID>.p8` (P-256, PKCS#8 PEM).
    pub fn auth_key_path(&self) -> PathBuf {
        self.dir.join(apple::auth_key_file())
    }
    /// The token-auth key (PKCS#8 PEM), as Apple's `.p8` download.
    pub fn auth_key_pem(&self) -> &[u8] {
        &self.auth_key_pem
    }
    /// The token-auth key's id ([`KEY_ID`]), the JWT header's `kid`.
    pub fn key_id(&self) -> &'static str {
        KEY_ID
    }
    /// The team the key belongs to ([`TEAM_ID`]), the JWT's `iss`.
    pub fn team_id(&self) -> &'static str {
        TEAM_ID
    }
    /// The bundle id the client certificate is for (its `UID`).
    pub fn bundle_id(&self) -> &str {
        &self.bundle_id
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }
    /// Path of `ca.pem`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// The server certificate (PEM).
    pub fn server_pem(&self) -> &[u8] {
        &self.server_pem
    }
    /// The server key (PKCS#8 PEM).
    pub fn server_key_pem(&self) -> &[u8] {
        &self.server_key_pem
    }
    /// The generated client identity (CN [`CLIENT_CN`], RSA-2048, valid 1975–4096).
    pub fn client(&self) -> &ClientIdentity {
        &self.client
    }
    /// Path of `client.pem`.
    pub fn client_pem_path(&self) -> &Path {
        &self.client.cert_path
    }
    /// Path of `client.key` (PKCS#8 PEM).
    pub fn client_key_path(&self) -> &Path {
        &self.client.key_path
    }
    /// Path of `client.p12` (empty password).
    pub fn client_p12_path(&self) -> &Path {
        &self.client.p12_path
    }

    /// Issue another client identity from this PKI's CA, valid from `not_before` to
    /// `not_after` (use a past window for "expired", a future one for "not yet
    /// valid"). Writes `<dir>/<stem>.pem`, `.key`, `.p12` (`p12_password`).
    ///
    /// # Errors
    /// Generation or writing fails.
    pub fn issue_client(
        &self,
        dir: &Path,
        stem: &str,
        not_before: SystemTime,
        not_after: SystemTime,
        p12_password: &str,
    ) -> Result<ClientIdentity, Error> {
        let ca_key = KeyPair::from_pem(&String::from_utf8_lossy(&self.ca_key_pem))?;
        let issuer = Issuer::new(ca_params(CA_CN)?, ca_key);
        let mut params = client_params(DEFAULT_TOPIC)?;
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        write_client(dir, stem, params, &issuer, p12_password)
    }

    /// Issue a client identity (CN [`CLIENT_CN`]) from a fresh CA the gateway does not
    /// trust. Writes `<dir>/<stem>.pem`, `.key`, `.p12` (`p12_password`).
    ///
    /// # Errors
    /// Generation or writing fails.
    pub fn rogue_client(dir: &Path, stem: &str, p12_password: &str) -> Result<ClientIdentity, Error> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::new(ca_params("rogue CA")?, key);
        write_client(dir, stem, client_params(DEFAULT_TOPIC)?, &issuer, p12_password)
    }
}

fn ca_params(cn: &str) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    Ok(p)
}

/// Generate everything and write it to `dir` (caller holds the lock).
fn generate(dir: &Path, bundle_id: &str) -> Result<(), Error> {
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params(CA_CN)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut s = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    s.distinguished_name.push(DnType::CommonName, "localhost");
    s.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let s_key = KeyPair::generate()?;
    let s_cert = s.signed_by(&s_key, &issuer)?;

    write_file(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    write_file(&dir.join("ca.key"), ca_key_pem.as_bytes(), true)?;
    write_file(&dir.join("server.pem"), s_cert.pem().as_bytes(), false)?;
    write_file(&dir.join("server.key"), s_key.serialize_pem().as_bytes(), true)?;
    write_client(dir, "client", client_params(bundle_id)?, &issuer, "")?;
    Ok(())
}

/// RSA-2048 key (openssl), certificate signed by `issuer` (rcgen), PKCS#12 (openssl).
fn write_client(
    dir: &Path,
    stem: &str,
    params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    p12_password: &str,
) -> Result<ClientIdentity, Error> {
    let rsa = PKey::from_rsa(Rsa::generate(2048)?)?;
    let key_pem = rsa.private_key_to_pem_pkcs8()?;
    let key = KeyPair::from_pkcs8_pem_and_sign_algo(&String::from_utf8_lossy(&key_pem), &rcgen::PKCS_RSA_SHA256)?;
    let cert = params.signed_by(&key, issuer)?;
    let cert_pem = cert.pem().into_bytes();
    let x509 = X509::from_pem(&cert_pem)?;
    let p12 = Pkcs12::builder().name(CLIENT_CN).pkey(&rsa).cert(&x509).build2(p12_password)?.to_der()?;
    fs::create_dir_all(dir).map_err(|e| Error::Io(dir.into(), e))?;
    let id = ClientIdentity {
        cert_path: dir.join(format!("{stem}.pem")),
        key_path: dir.join(format!("{stem}.key")),
        p12_path: dir.join(format!("{stem}.p12")),
        cert_pem,
        key_pem,
        p12,
    };
    write_file(&id.cert_path, &id.cert_pem, false)?;
    write_file(&id.key_path, &id.key_pem, true)?;
    write_file(&id.p12_path, &id.p12, true)?;
    Ok(id)
}

/// Write via a temporary file and rename; secret files get mode 0600.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let io = |e| Error::Io(path.into(), e);
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.set_permissions(fs::Permissions::from_mode(mode)).map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ensure_generates_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pki::ensure(dir.path()).unwrap();
        assert!(a.client().key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
        let mode = fs::metadata(a.client_key_path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = Pki::ensure(dir.path()).unwrap();
        assert_eq!(a.ca_pem(), b.ca_pem());
        let p12 = Pkcs12::from_der(&b.client().p12).unwrap().parse2("").unwrap();
        let cert = p12.cert.unwrap();
        let cn = cert.subject_name().entries_by_nid(openssl::nid::Nid::COMMONNAME).next().unwrap();
        assert_eq!(cn.data().to_string().unwrap(), CLIENT_CN);
        assert_eq!(cert_bundle_id(&cert).as_deref(), Some(DEFAULT_TOPIC));
        // An extra identity verifies against the same CA.
        let now = SystemTime::now();
        let extra = a.issue_client(dir.path(), "old", now - Duration::from_secs(86_400 * 10), now, "pw").unwrap();
        let ca = X509::from_pem(a.ca_pem()).unwrap();
        let cert = X509::from_pem(&extra.cert_pem).unwrap();
        assert!(cert.verify(&ca.public_key().unwrap()).unwrap());
        assert_eq!(cert.issuer_name().to_der().unwrap(), ca.subject_name().to_der().unwrap());
        // Removing one file regenerates everything.
        fs::remove_file(dir.path().join("server.key")).unwrap();
        let c = Pki::ensure(dir.path()).unwrap();
        assert_ne!(a.ca_pem(), c.ca_pem());
    }

    #[test]
    fn another_bundle_id_reissues_the_client_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = Pki::ensure(dir.path()).unwrap();
        assert!(a.auth_key_pem().starts_with(b"-----BEGIN PRIVATE KEY-----"));
        assert!(a.auth_key_path().ends_with("AuthKey_ABC123DEFG.p8"));
        let b = Pki::ensure_for(dir.path(), "org.other.app").unwrap();
        assert_eq!((a.ca_pem(), a.auth_key_pem()), (b.ca_pem(), b.auth_key_pem()));
        let cert = X509::from_pem(&b.client().cert_pem).unwrap();
        assert_eq!(cert_bundle_id(&cert).as_deref(), Some("org.other.app"));
        assert!(cert.verify(&X509::from_pem(b.ca_pem()).unwrap().public_key().unwrap()).unwrap());
    }
}
