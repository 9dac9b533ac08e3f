//! Tests of device proof: digest (both algorithms, replay, stale, forged, unknown MAC) and
//! client certificates (own MAC, another MAC, generic, Cisco-style subject).

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use super::*;

const URI: &str = "/805ec0a1b2c3.cfg";

fn mac() -> Mac {
    "805ec0a1b2c3".parse().unwrap()
}

fn both() -> DeviceAuthenticator {
    DeviceAuthenticator::new(&["client-cert".to_owned(), "digest".to_owned()])
}

/// The nonce of a challenge header.
pub(crate) fn nonce_of(www_authenticate: &str) -> String {
    let params = parse_digest(www_authenticate).unwrap();
    params.into_iter().find(|(k, _)| k == "nonce").unwrap().1
}

/// An `Authorization: Digest ...` value as a phone would compute it.
pub(crate) fn digest_header(
    nonce: &str,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    algorithm: &str,
    nc: u32,
) -> String {
    let alg = if algorithm == "MD5" { Algorithm::Md5 } else { Algorithm::Sha256 };
    let cnonce = "0a4f113b";
    let nc = format!("{nc:08x}");
    let ha1 = alg.hash(&format!("{username}:{REALM}:{password}"));
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    let response = alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Digest username=\"{username}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={algorithm}, \
         qop=auth, nc={nc}, cnonce=\"{cnonce}\", response=\"{response}\""
    )
}

fn creds<'a>(authorization: Option<&'a str>, cert: Option<&'a [u8]>) -> Credentials<'a> {
    Credentials { peer_certificate: cert, authorization, method: "GET", uri: URI }
}

fn known(_: &Mac) -> Option<String> {
    Some("pw".to_owned())
}

#[test]
fn digest_with_either_algorithm_proves_the_mac_once_per_nonce_count() {
    let auth = both();
    for algorithm in ["SHA-256", "MD5"] {
        let nonce = nonce_of(&auth.challenge(false)[0]);
        for username in ["805ec0a1b2c3", "80:5E:C0:A1:B2:C3", "dev-805ec0a1b2c3"] {
            let nonce = if username == "805ec0a1b2c3" { nonce.clone() } else { nonce_of(&auth.challenge(false)[1]) };
            let header = digest_header(&nonce, username, "pw", "GET", URI, algorithm, 1);
            assert_eq!(
                auth.verify(&mac(), &creds(Some(&header), None), known),
                AuthOutcome::Proven(Proof::Digest),
                "{algorithm} {username}"
            );
        }
        let replay = digest_header(&nonce, "805ec0a1b2c3", "pw", "GET", URI, algorithm, 1);
        assert_eq!(auth.verify(&mac(), &creds(Some(&replay), None), known), AuthOutcome::Failed("replayed digest"));
        let next = digest_header(&nonce, "805ec0a1b2c3", "pw", "GET", URI, algorithm, 2);
        assert_eq!(auth.verify(&mac(), &creds(Some(&next), None), known), AuthOutcome::Proven(Proof::Digest));
    }
}

#[test]
fn wrong_or_misdirected_digests_fail() {
    let auth = both();
    let nonce = nonce_of(&auth.challenge(false)[0]);
    let failed = |header: String, secret: Option<&str>| {
        let secret = secret.map(str::to_owned);
        matches!(auth.verify(&mac(), &creds(Some(&header), None), move |_| secret), AuthOutcome::Failed(_))
    };
    assert!(failed(digest_header(&nonce, "805ec0a1b2c3", "wrong", "GET", URI, "MD5", 1), Some("pw")));
    assert!(failed(digest_header(&nonce, "805ec0a1b2c3", "pw", "GET", URI, "MD5", 1), None), "unknown MAC");
    assert!(failed(digest_header(&nonce, "805ec0a1b2c4", "pw", "GET", URI, "MD5", 1), Some("pw")), "another MAC");
    assert!(
        failed(digest_header(&nonce, "805ec0a1b2c3", "pw", "GET", "/other.cfg", "MD5", 1), Some("pw")),
        "another uri"
    );
    assert!(failed(digest_header(&nonce, "805ec0a1b2c3", "pw", "PUT", URI, "MD5", 1), Some("pw")), "another method");
    let flipped = if nonce.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}", &nonce[..nonce.len() - 1]);
    assert!(failed(digest_header(&forged, "805ec0a1b2c3", "pw", "GET", URI, "MD5", 1), Some("pw")), "forged nonce");
    let other_realm = digest_header(&nonce, "805ec0a1b2c3", "pw", "GET", URI, "MD5", 1).replace(REALM, "x");
    assert!(failed(other_realm, Some("pw")));
    let no_qop = format!(
        "Digest username=\"805ec0a1b2c3\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{URI}\", response=\"00\""
    );
    assert!(failed(no_qop, Some("pw")));
    assert!(failed("Digest username=\"x".to_owned(), Some("pw")), "malformed");
}

#[test]
fn an_expired_nonce_with_a_right_digest_is_stale() {
    let auth = both();
    let mut body = [0u8; 16];
    let old = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - NONCE_LIFETIME.as_secs() - 10;
    body[..8].copy_from_slice(&old.to_be_bytes());
    let nonce = format!("{}{}", hex::encode(body), hex::encode(&auth.tag(&body)[..16]));
    let header = digest_header(&nonce, "805ec0a1b2c3", "pw", "GET", URI, "SHA-256", 1);
    assert_eq!(auth.verify(&mac(), &creds(Some(&header), None), known), AuthOutcome::Stale);
    let wrong = digest_header(&nonce, "805ec0a1b2c3", "nope", "GET", URI, "SHA-256", 1);
    assert!(matches!(auth.verify(&mac(), &creds(Some(&wrong), None), known), AuthOutcome::Failed(_)));
    assert!(auth.challenge(true)[0].ends_with(", stale=true"));
}

#[test]
fn no_credentials_or_another_scheme_is_a_plain_challenge() {
    let auth = both();
    assert_eq!(auth.verify(&mac(), &creds(None, None), known), AuthOutcome::Missing);
    assert_eq!(auth.verify(&mac(), &creds(Some("Basic YTpi"), None), known), AuthOutcome::Missing);
    let [sha, md5] = auth.challenge(false);
    assert!(
        sha.starts_with("Digest realm=\"deskline-provisioning\", qop=\"auth\", algorithm=SHA-256, nonce=\""),
        "{sha}"
    );
    assert!(md5.contains("algorithm=MD5"));
    assert_eq!(nonce_of(&sha), nonce_of(&md5));
    let cert_only = DeviceAuthenticator::new(&["client-cert".to_owned()]);
    let header = digest_header(&nonce_of(&sha), "805ec0a1b2c3", "pw", "GET", URI, "MD5", 1);
    assert_eq!(cert_only.verify(&mac(), &creds(Some(&header), None), known), AuthOutcome::Missing);
}

fn certificate(entries: &[(DnType, &str)]) -> Vec<u8> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for (kind, value) in entries {
        dn.push(kind.clone(), *value);
    }
    params.distinguished_name = dn;
    params.self_signed(&KeyPair::generate().unwrap()).unwrap().der().to_vec()
}

#[test]
fn client_certificates_prove_only_their_own_mac() {
    let auth = both();
    let own = certificate(&[(DnType::CommonName, "805ec0a1b2c3"), (DnType::OrganizationalUnitName, "deskline device")]);
    assert_eq!(auth.verify(&mac(), &creds(None, Some(&own)), known), AuthOutcome::Proven(Proof::ClientCertificate));
    let other = certificate(&[(DnType::CommonName, "80:5e:c0:a1:b2:c4")]);
    assert!(matches!(auth.verify(&mac(), &creds(None, Some(&other)), known), AuthOutcome::Failed(_)));
    // A vendor's generic certificate names no MAC: no proof, but digest still works with it.
    let generic = certificate(&[(DnType::CommonName, "Yealink Equipment Generic")]);
    assert_eq!(auth.verify(&mac(), &creds(None, Some(&generic)), known), AuthOutcome::Missing);
    let header = digest_header(&nonce_of(&auth.challenge(false)[0]), "805ec0a1b2c3", "pw", "GET", URI, "MD5", 1);
    assert_eq!(auth.verify(&mac(), &creds(Some(&header), Some(&generic)), known), AuthOutcome::Proven(Proof::Digest));
    let digest_only = DeviceAuthenticator::new(&["digest".to_owned()]);
    assert_eq!(digest_only.verify(&mac(), &creds(None, Some(&own)), known), AuthOutcome::Missing);
}

#[test]
fn mac_from_certificate_subjects() {
    // Cisco: OU=CP-8841-3PCC, L=<serial>, S=<mac>; the serial may look like a MAC and is ignored.
    let cisco = certificate(&[
        (DnType::OrganizationalUnitName, "CP-8841-3PCC"),
        (DnType::LocalityName, "88012BA01234"),
        (DnType::StateOrProvinceName, "00562b043615"),
    ]);
    assert_eq!(certificate_mac(&cisco), Some("00562b043615".parse().unwrap()));
    let poly = certificate(&[(DnType::CommonName, "0004F2A1B2C3")]);
    assert_eq!(certificate_mac(&poly), Some("0004f2a1b2c3".parse().unwrap()));
    let two = certificate(&[(DnType::CommonName, "0004f2a1b2c3"), (DnType::StateOrProvinceName, "0004f2a1b2c4")]);
    assert_eq!(certificate_mac(&two), None);
    assert_eq!(certificate_mac(b"not a certificate"), None);
}

#[test]
fn digest_header_parsing() {
    let params = parse_digest(r#"Digest username="a\"b", realm="r, s",nc=00000001 , qop=auth"#).unwrap();
    assert_eq!(params[0], ("username".to_owned(), "a\"b".to_owned()));
    assert_eq!(params[1].1, "r, s");
    assert_eq!(params[2].1, "00000001");
    assert_eq!(params[3].1, "auth");
    assert_eq!(parse_digest("Digest a=1, A=2"), None, "duplicates");
    assert_eq!(parse_digest("Basic abc"), None);
    assert_eq!(parse_digest("Digest a=\"open"), None);
}
