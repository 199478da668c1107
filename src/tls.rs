//! Loading the provider's certificate and building the TLS client every shard uses.
//!
//! Providers ship their certificate as PKCS#12 (`.p12`, often from a Keychain
//! export, sometimes with legacy RC2/3DES encryption) or as PEM certificate and
//! key (PKCS#8, PKCS#1, possibly encrypted). Everything is normalised through
//! OpenSSL into the PKCS#8 PEM that native-tls wants, and checked before any
//! connection is made: a wrong password, a key that does not match, or an
//! expired certificate is a clear error naming the file, not a failed handshake.

use std::fs;
use std::path::{Path, PathBuf};

use native_tls::{Certificate, Identity, TlsConnector};
use openssl::asn1::Asn1Time;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// What is wrong with a certificate, key or trust root.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PKCS#12 file or an encrypted key did not open with the password given.
    #[error("{path}: wrong password, or not a PKCS#12 file ({detail})")]
    BadPassword {
        /// The file.
        path: PathBuf,
        /// OpenSSL's words.
        detail: String,
    },
    /// The file is not what it should be.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The certificate file holds no private key and no key file was given.
    #[error("{path} holds no private key: give the key file with --key")]
    NoKey {
        /// The certificate file.
        path: PathBuf,
    },
    /// The certificate's validity period has ended.
    #[error("{path}: the certificate expired on {not_after}")]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// When it expired.
        not_after: String,
    },
    /// The certificate's validity period has not begun.
    #[error("{path}: the certificate is not valid before {not_before}")]
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// When it becomes valid.
        not_before: String,
    },
    /// The key does not belong to the certificate.
    #[error("{key}: this key does not match the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// native-tls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Build(#[from] native_tls::Error),
}

/// The provider's client certificate and key, loaded and checked.
#[derive(Clone)]
pub struct ClientIdentity {
    identity: Identity,
    subject: String,
    not_after: String,
    topic: Option<String>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ClientIdentity")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid { path: path.to_owned(), what: what.to_string() }
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Warns when a private key is readable by others: the key is the sender's identity.
pub(crate) fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            log::warn!(
                "{} holds a private key and is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
}

impl ClientIdentity {
    /// Loads a PKCS#12 file, or a PEM file holding the certificate (and the
    /// key, unless `key` names a separate file). `password` opens a PKCS#12
    /// file or an encrypted PEM key.
    ///
    /// # Errors
    /// A [`TlsError`] naming the file: unreadable, wrong password, no key, key
    /// not matching, expired or not yet valid.
    pub fn load(cert: &Path, key: Option<&Path>, password: Option<&str>) -> Result<ClientIdentity, TlsError> {
        let cert_bytes = read(cert)?;
        let (leaf, chain, pkey) = if is_pem(&cert_bytes) {
            let certs =
                X509::stack_from_pem(&cert_bytes).map_err(|e| invalid(cert, format!("not a PEM certificate: {e}")))?;
            let mut certs = certs.into_iter();
            let leaf = certs.next().ok_or_else(|| invalid(cert, "no certificate in this PEM file"))?;
            let key_path = key.unwrap_or(cert);
            let key_bytes = if key.is_some() { read(key_path)? } else { cert_bytes.clone() };
            if !key_bytes.windows(11).any(|w| w == b"PRIVATE KEY") {
                return Err(TlsError::NoKey { path: key_path.to_owned() });
            }
            warn_if_exposed(key_path);
            let pkey = match password {
                Some(pw) => PKey::private_key_from_pem_passphrase(&key_bytes, pw.as_bytes()),
                None => PKey::private_key_from_pem(&key_bytes),
            }
            .map_err(|e| {
                if key_bytes.windows(9).any(|w| w == b"ENCRYPTED") {
                    TlsError::BadPassword { path: key_path.to_owned(), detail: e.to_string() }
                } else {
                    invalid(key_path, format!("not a private key: {e}"))
                }
            })?;
            if !leaf.public_key().is_ok_and(|pk| pk.public_eq(&pkey)) {
                return Err(TlsError::KeyMismatch { cert: cert.to_owned(), key: key_path.to_owned() });
            }
            (leaf, certs.collect::<Vec<_>>(), pkey)
        } else {
            warn_if_exposed(cert);
            open_pkcs12(cert, &cert_bytes, password.unwrap_or(""))?
        };
        check_validity(cert, &leaf)?;
        let mut chain_pem = leaf.to_pem().map_err(|e| invalid(cert, e))?;
        for c in &chain {
            chain_pem.extend(c.to_pem().map_err(|e| invalid(cert, e))?);
        }
        let key_pem = pkey.private_key_to_pem_pkcs8().map_err(|e| invalid(cert, e))?;
        let identity = Identity::from_pkcs8(&chain_pem, &key_pem)?;
        let subject =
            leaf.subject_name().entries().filter_map(|e| e.data().to_string().ok()).collect::<Vec<_>>().join(", ");
        // Apple's provider certificates name their app's bundle id as the
        // subject's UID (OID 0.9.2342.19200300.100.1.1).
        let topic =
            leaf.subject_name().entries_by_nid(openssl::nid::Nid::USERID).find_map(|e| e.data().to_string().ok());
        Ok(ClientIdentity { identity, subject, not_after: leaf.not_after().to_string(), topic })
    }

    /// The certificate's subject, for logs.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The app the certificate is for: its subject's UID, which an HTTP/2
    /// run without `apns-topic` sends to (`None` when it has none).
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }

    /// When the certificate expires, for logs.
    pub fn not_after(&self) -> &str {
        &self.not_after
    }
}

type Parsed = (X509, Vec<X509>, PKey<Private>);

fn open_pkcs12(path: &Path, der: &[u8], password: &str) -> Result<Parsed, TlsError> {
    let p12 = Pkcs12::from_der(der).map_err(|e| invalid(path, format!("neither PEM nor PKCS#12: {e}")))?;
    let parsed = match p12.parse2(password) {
        Ok(p) => p,
        Err(e) if e.to_string().contains("unsupported") => {
            // Older Keychain and OpenSSL 1.x exports use RC2/3DES, which OpenSSL 3
            // keeps in its legacy provider. Loaded once and kept for the process.
            static LEGACY: std::sync::OnceLock<Option<openssl::provider::Provider>> = std::sync::OnceLock::new();
            LEGACY.get_or_init(|| openssl::provider::Provider::try_load(None, "legacy", true).ok());
            p12.parse2(password).map_err(|e| TlsError::BadPassword { path: path.to_owned(), detail: e.to_string() })?
        }
        Err(e) => return Err(TlsError::BadPassword { path: path.to_owned(), detail: e.to_string() }),
    };
    let leaf = parsed.cert.ok_or_else(|| invalid(path, "no certificate in this PKCS#12 file"))?;
    let pkey = parsed.pkey.ok_or_else(|| TlsError::NoKey { path: path.to_owned() })?;
    let chain = parsed.ca.map(|s| s.into_iter().collect()).unwrap_or_default();
    Ok((leaf, chain, pkey))
}

fn check_validity(path: &Path, cert: &X509) -> Result<(), TlsError> {
    let now = Asn1Time::days_from_now(0).map_err(|e| invalid(path, e))?;
    if cert.not_after() < now {
        return Err(TlsError::Expired { path: path.to_owned(), not_after: cert.not_after().to_string() });
    }
    if cert.not_before() > now {
        return Err(TlsError::NotYetValid { path: path.to_owned(), not_before: cert.not_before().to_string() });
    }
    Ok(())
}

/// The host part of `host:port` (brackets of an IPv6 literal removed): the
/// name the server's certificate must carry, and the SNI sent.
pub fn server_name(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Everything a shard needs to open TLS to the gateway.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// The provider certificate; `None` connects without one (the gateway will refuse).
    pub identity: Option<ClientIdentity>,
    /// PEM files of extra trust roots (e.g. the mock gateway's CA), beside the system's.
    pub extra_roots: Vec<PathBuf>,
    /// Skip server verification. Dangerous: anyone on the path can read the
    /// notifications and the gateway cannot be trusted to have received them.
    pub danger_accept_invalid_certs: bool,
}

impl TlsConfig {
    /// Builds the connector shared by all shards.
    ///
    /// # Errors
    /// An unreadable or invalid root file, or native-tls refusing the setup.
    pub fn connector(&self) -> Result<TlsConnector, TlsError> {
        Ok(self.builder()?.build()?)
    }

    /// Builds the connector for HTTP/2: TLS 1.2 or later, offering ALPN `h2`
    /// (Apple's provider API requires both).
    ///
    /// # Errors
    /// As [`TlsConfig::connector`].
    pub fn h2_connector(&self) -> Result<TlsConnector, TlsError> {
        let mut b = self.builder()?;
        b.request_alpns(&["h2"]).min_protocol_version(Some(native_tls::Protocol::Tlsv12));
        Ok(b.build()?)
    }

    fn builder(&self) -> Result<native_tls::TlsConnectorBuilder, TlsError> {
        let mut b = TlsConnector::builder();
        if let Some(id) = &self.identity {
            b.identity(id.identity.clone());
        }
        for path in &self.extra_roots {
            let pem = read(path)?;
            let certs = X509::stack_from_pem(&pem).map_err(|e| invalid(path, format!("not a PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(invalid(path, "no certificate in this PEM file"));
            }
            for c in certs {
                let der = c.to_der().map_err(|e| invalid(path, e))?;
                b.add_root_certificate(Certificate::from_der(&der)?);
            }
        }
        if self.danger_accept_invalid_certs {
            b.danger_accept_invalid_certs(true);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_name_strips_port_and_brackets() {
        assert_eq!(super::server_name("feedback.push.apple.com:2196"), "feedback.push.apple.com");
        assert_eq!(super::server_name("[::1]:2196"), "::1");
        assert_eq!(super::server_name("localhost"), "localhost");
    }
}
