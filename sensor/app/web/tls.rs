//! TLS for the metrics listener: the web config's `cert_file` and `key_file` turned into a
//! rustls server configuration, or one error line naming the file and saying what is wrong.
//!
//! Contract: [`server_config`] reads both files (at most [`MAX_PEM_BYTES`] each) and accepts
//! PEM certificates (the first is the server's, the rest its chain) and one unencrypted private
//! key in any of the three PEM forms OpenSSL writes: PKCS#8 `PRIVATE KEY` (RFC 5958),
//! PKCS#1 `RSA PRIVATE KEY` (RFC 8017 appendix A.1.2) and SEC1 `EC PRIVATE KEY` (RFC 5915). Key
//! types are those of rustls's `ring` provider: RSA, ECDSA P-256/P-384, Ed25519. It refuses,
//! in words: a missing or unreadable file, a file with no PEM block of the right kind, an
//! encrypted key (PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy `Proc-Type: 4,ENCRYPTED`
//! header; the sensor starts unattended and has nobody to ask for a passphrase), two keys in
//! one file, a key type the provider cannot sign with, and a certificate whose public key is
//! not the key's. The same function runs when the web config is loaded (so a bad file stops
//! `ksensor live` before it opens an interface) and when the listener starts.
//!
//! TLS 1.2 and 1.3 only (rustls's safe defaults, as Prometheus's exporter toolkit's
//! `min_version` default of TLS 1.2).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::app::config::TlsServerConfig;

/// Largest certificate or key file read: a key is a few kilobytes and a chain a few dozen; a
/// megabyte is the wrong file.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// rustls with the `ring` provider: the same ring 0.17 the QUIC decryption uses, so the
/// binary carries one crypto library, and no C toolchain is needed (aws-lc-rs would).
///
/// rustls 0.23.48 marks this constructor deprecated because ring has no post-quantum key
/// exchange (ML-KEM hybrids guard long-lived secrets against traffic recorded today and
/// decrypted later). What crosses this listener is a metrics page and a scrape password that
/// can be rotated, on the operator's own network; one library and a pure-Rust build weigh more
/// here. The provider itself is maintained and its suites are rustls's safe defaults.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `path: what is wrong` for an I/O error, in words a user can act on.
pub fn io_problem(path: &Path, e: &std::io::Error) -> String {
    crate::fs_error::at(path, e)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| io_problem(path, &e))?;
    if meta.is_dir() {
        return Err(format!("{}: is a directory", path.display()));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(format!(
            "{}: larger than {MAX_PEM_BYTES} bytes; not a certificate or key file",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| io_problem(path, &e))
}

/// Every PEM section of `bytes`, or why the file is not PEM.
fn sections(path: &Path, bytes: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| format!("{}: not a valid PEM file ({e})", path.display()))
}

/// The certificate chain in `path`, server certificate first.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let certs: Vec<CertificateDer<'static>> = sections(path, &bytes)?
        .into_iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der))
        .collect();
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected a PEM \"BEGIN CERTIFICATE\" block)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The one private key in `path`.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    // Encrypted keys are PEM blocks rustls-pki-types does not know (PKCS#8's label, RFC 7468
    // §11) or legacy OpenSSL blocks with RFC 1421 headers; look for both before parsing, so
    // the error says "encrypted" rather than "no key".
    let encrypted = memchr::memmem::find(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        .is_some()
        || memchr::memmem::find(&bytes, b"Proc-Type: 4,ENCRYPTED").is_some();
    if encrypted {
        return Err(format!(
            "{}: the private key is encrypted; ksensor starts unattended and cannot ask for a \
             passphrase: write it unencrypted (openssl pkey -in KEY -out NEW.key) and make it \
             readable by the ksensor user only",
            path.display()
        ));
    }
    let mut keys: Vec<PrivateKeyDer<'static>> = Vec::new();
    for (kind, der) in sections(path, &bytes)? {
        match kind {
            SectionKind::PrivateKey => keys.push(PrivateKeyDer::Pkcs8(der.into())),
            SectionKind::RsaPrivateKey => keys.push(PrivateKeyDer::Pkcs1(der.into())),
            SectionKind::EcPrivateKey => keys.push(PrivateKeyDer::Sec1(der.into())),
            _ => {}
        }
    }
    if keys.len() > 1 {
        return Err(format!(
            "{}: {} private keys in one file; give the listener exactly one",
            path.display(),
            keys.len()
        ));
    }
    keys.pop().ok_or_else(|| {
        format!(
            "{}: no private key in it (expected a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA \
             PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)",
            path.display()
        )
    })
}

/// The listener's rustls configuration from the web config's files.
pub fn server_config(tls: &TlsServerConfig) -> Result<Arc<ServerConfig>, String> {
    let certs = load_certs(&tls.cert_file)?;
    let key = load_key(&tls.key_file)?;
    let provider = provider();
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| {
        format!(
            "{}: not a usable private key ({e}); supported: RSA, ECDSA P-256/P-384, Ed25519",
            tls.key_file.display()
        )
    })?;
    let certified = CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => format!(
            "{}: the certificate does not match the private key in {}",
            tls.cert_file.display(),
            tls.key_file.display()
        ),
        e => format!(
            "{}: not a usable certificate ({e})",
            tls.cert_file.display()
        ),
    })?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    Ok(Arc::new(config))
}
