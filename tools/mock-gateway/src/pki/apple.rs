//! What makes the generated identities look like Apple's: the client
//! certificate's subject and extensions, and the token-auth signing key.
//!
//! An Apple Push Services certificate names its app twice in the subject
//! (`UID=<bundle id>`, `CN=Apple Push Services: <bundle id>`) and carries
//! Apple's extensions: 1.2.840.113635.100.6.3.1 (development) and .2
//! (production) with an empty (NULL) value, and .6, the topics the
//! certificate may push to, as a SEQUENCE in which each topic (a UTF8String)
//! is followed by a SEQUENCE naming its kind.

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::X509Ref;
use rcgen::{CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose};

use super::Error;

/// Key id of the generated token-auth key (10 characters, A-Z0-9, like Apple's).
pub const KEY_ID: &str = "ABC123DEFG";
/// Team id the generated token-auth key belongs to (the JWT's `iss`).
pub const TEAM_ID: &str = "TEAM123456";

/// OID of the subject's `UID` attribute (userId, RFC 4519).
pub const OID_UID: &[u64] = &[0, 9, 2342, 19_200_300, 100, 1, 1];
/// Apple's "development environment" extension.
pub const OID_APNS_DEVELOPMENT: &[u64] = &[1, 2, 840, 113_635, 100, 6, 3, 1];
/// Apple's "production environment" extension.
pub const OID_APNS_PRODUCTION: &[u64] = &[1, 2, 840, 113_635, 100, 6, 3, 2];
/// Apple's topics extension.
pub const OID_APNS_TOPICS: &[u64] = &[1, 2, 840, 113_635, 100, 6, 3, 6];

/// The file name Apple gives a downloaded key: `AuthKey_<KEYID>.p8`.
pub(crate) fn auth_key_file() -> String {
    format!("AuthKey_{KEY_ID}.p8")
}

/// A fresh P-256 key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), like a `.p8`.
pub(crate) fn generate_auth_key() -> Result<Vec<u8>, Error> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    Ok(key.private_key_to_pem_pkcs8()?)
}

/// The CN Apple gives a push certificate for `bundle_id`.
pub fn client_cn(bundle_id: &str) -> String {
    format!("Apple Push Services: {bundle_id}")
}

/// Certificate parameters of an Apple-style push certificate for `bundle_id`.
pub(crate) fn client_params(bundle_id: &str) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CustomDnType(OID_UID.to_vec()), bundle_id);
    p.distinguished_name.push(DnType::CommonName, client_cn(bundle_id));
    p.distinguished_name.push(DnType::OrganizationalUnitName, TEAM_ID);
    p.distinguished_name.push(DnType::OrganizationName, "apnsblast mock");
    p.distinguished_name.push(DnType::CountryName, "US");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    const NULL: [u8; 2] = [0x05, 0x00];
    p.custom_extensions = vec![
        CustomExtension::from_oid_content(OID_APNS_DEVELOPMENT, NULL.to_vec()),
        CustomExtension::from_oid_content(OID_APNS_PRODUCTION, NULL.to_vec()),
        CustomExtension::from_oid_content(OID_APNS_TOPICS, topics_der(bundle_id)),
    ];
    Ok(p)
}

/// The topics extension's value: `SEQUENCE { id, SEQUENCE { "app" },
/// id.voip, SEQUENCE { "voip" }, id.complication, SEQUENCE { "complication" } }`.
pub fn topics_der(bundle_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (suffix, kind) in [("", "app"), (".voip", "voip"), (".complication", "complication")] {
        body.extend(tlv(0x0C, format!("{bundle_id}{suffix}").as_bytes()));
        body.extend(tlv(0x30, &tlv(0x0C, kind.as_bytes())));
    }
    tlv(0x30, &body)
}

/// One DER tag-length-value (definite length, short or long form).
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = value.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        v.push(0x80 | bytes.len() as u8);
        v.extend(bytes);
    }
    v.extend_from_slice(value);
    v
}

/// The bundle id a push certificate is for: its subject's `UID`.
pub fn cert_bundle_id(cert: &X509Ref) -> Option<String> {
    let uid = cert.subject_name().entries_by_nid(Nid::USERID).next()?;
    uid.data().to_string().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_short_and_long() {
        assert_eq!(tlv(0x0C, b"ab"), [0x0C, 2, b'a', b'b']);
        let long = tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(long.len(), 304);
        let t = topics_der("a.b");
        assert_eq!(t[0], 0x30);
        assert_eq!(t[1] as usize, t.len() - 2);
        assert_eq!(&t[2..7], &[0x0C, 3, b'a', b'.', b'b']);
    }
}
