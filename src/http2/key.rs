//! Apple's `.p8` auth key: a P-256 private key in PKCS#8 PEM, read as
//! downloaded, with errors that say what the file holds instead.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::{ObjectIdentifier, PrivateKeyInfo};

/// What [`AuthKey::from_pem`]'s errors name instead of a file.
const PEM_TEXT: &str = "the PEM text given";
/// The form the errors ask for.
const EXPECTED: &str = "expected Apple's .p8 auth key, a P-256 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)";

/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1, alias prime256v1 or P-256 (RFC 5480).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// rsaEncryption (RFC 8017).
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-Ed25519 (RFC 8410).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// What is wrong with an auth key file; every message names the file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AuthKeyError {
    /// The file could not be read.
    // `why` is in the message and so not also the error's source, which
    // would print it twice in a chain.
    #[error("cannot read {path}: {why}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        why: std::io::Error,
    },
    /// The file is empty, or holds only white space.
    #[error("{path} is empty: {EXPECTED}")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no PEM block (no `-----BEGIN` line, or not text at all).
    #[error("{path} is not PEM (no -----BEGIN line): {EXPECTED}")]
    NotPem {
        /// The file.
        path: PathBuf,
    },
    /// The file is PEM but holds something else than a PKCS#8 P-256 key.
    #[error("{path} holds {found}: {EXPECTED}")]
    NotAuthKey {
        /// The file.
        path: PathBuf,
        /// What it holds instead ("an RSA key", "a certificate", ...).
        found: String,
    },
}

/// Apple's auth key (the `.p8` file): a P-256 private key, loaded and checked.
///
/// Its `Debug` shows that it is a key, never the key.
#[derive(Clone)]
pub struct AuthKey {
    pub(super) signing: SigningKey,
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(P-256 private key)")
    }
}

impl AuthKey {
    /// Loads Apple's `.p8` file as downloaded: a PKCS#8 PEM P-256 key.
    ///
    /// # Errors
    /// An [`AuthKeyError`] naming the file: unreadable, empty, not PEM, or
    /// PEM holding something else (an RSA key, a certificate, ...).
    pub fn load(path: &Path) -> Result<AuthKey, AuthKeyError> {
        let bytes = Zeroizing::new(fs::read(path).map_err(|why| AuthKeyError::Read { path: path.to_owned(), why })?);
        // Not text at all: DER, or some other binary file.
        let text = std::str::from_utf8(&bytes).map_err(|_| AuthKeyError::NotPem { path: path.to_owned() })?;
        let key = parse(text, path)?;
        // The key signs for every app of the team.
        crate::tls::warn_if_exposed(path);
        Ok(key)
    }

    /// Reads the key from the text of a `.p8` file.
    ///
    /// # Errors
    /// As [`AuthKey::load`], naming "the PEM text given" instead of a file.
    pub fn from_pem(pem: &str) -> Result<AuthKey, AuthKeyError> {
        parse(pem, Path::new(PEM_TEXT))
    }
}

fn parse(text: &str, origin: &Path) -> Result<AuthKey, AuthKeyError> {
    let not = |found: &str| AuthKeyError::NotAuthKey { path: origin.to_owned(), found: found.to_owned() };
    if text.trim().is_empty() {
        return Err(AuthKeyError::Empty { path: origin.to_owned() });
    }
    // The first PEM block, so that text around it (a note, openssl's "Bag
    // Attributes") does not matter.
    let Some(begin) = text.find("-----BEGIN ") else {
        return Err(AuthKeyError::NotPem { path: origin.to_owned() });
    };
    let block = &text[begin..];
    let label = block["-----BEGIN ".len()..].split("-----").next().unwrap_or_default();
    let end_line = format!("-----END {label}-----");
    let Some(end) = block.find(&end_line) else {
        return Err(not(&format!("a \"{label}\" PEM block with no END line")));
    };
    let block = &block[..end + end_line.len()];
    match label {
        "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => return Err(not("an encrypted key (Apple's .p8 is not encrypted)")),
        "EC PRIVATE KEY" => {
            return Err(not("an EC key in SEC1 form, not PKCS#8 (`openssl pkcs8 -topk8 -nocrypt` converts it)"));
        }
        "RSA PRIVATE KEY" => return Err(not("an RSA key")),
        "CERTIFICATE" | "TRUSTED CERTIFICATE" => {
            return Err(not("a certificate (certificate authentication takes it, not token authentication)"));
        }
        "PUBLIC KEY" => return Err(not("a public key")),
        other => return Err(not(&format!("a \"{other}\" PEM block"))),
    }
    let der = match p256::pkcs8::der::pem::decode_vec(block.as_bytes()) {
        Ok((_, der)) => Zeroizing::new(der),
        Err(_) => return Err(not("a damaged PEM block (its base64 does not decode)")),
    };
    let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(|_| not("a PKCS#8 block that does not decode"))?;
    match info.algorithm.oid {
        EC_PUBLIC_KEY => match info.algorithm.parameters_oid() {
            Ok(P256) => {}
            Ok(curve) => return Err(not(&format!("an EC key on another curve than P-256 (OID {curve})"))),
            Err(_) => return Err(not("an EC key naming no curve")),
        },
        RSA => return Err(not("an RSA key")),
        ED25519 => return Err(not("an Ed25519 key")),
        other => return Err(not(&format!("a key of another algorithm (OID {other})"))),
    }
    let signing = SigningKey::try_from(info).map_err(|_| not("a P-256 key that does not decode"))?;
    Ok(AuthKey { signing })
}
