//! The field checks of weir's route model, exported so the controller checks Kubernetes
//! input exactly as weir-config (and so the proxy) will: DNS host names, HTTP tokens
//! (header and cookie names), nginx's size grammar, TLS certificate/key pairs, and the
//! content hash that labels a document without a version.

use std::fmt;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::wire::{ClientAddressDoc, DefaultsDoc, HostDoc, TableDoc, TableTlsDoc};

/// The longest DNS name (RFC 1035 §2.3.4).
const MAX_HOST_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// A host name as rules use it: lower-cased; `*.` only as a whole first label; labels of
/// letters, digits, `-` and `_`. The error says why, quoting `raw`.
pub fn host_name(raw: &str) -> Result<String, String> {
    let name = raw.to_ascii_lowercase();
    if name.is_empty() {
        return Err("must not be empty; omit `host` for the default server".into());
    }
    let labels = name.strip_prefix("*.").unwrap_or(&name);
    if labels.contains('*') {
        return Err(format!("{raw:?}: a wildcard must be the whole first label, as in *.example.com"));
    }
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL_LEN
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() > MAX_HOST_LEN || !labels.split('.').all(valid_label) {
        return Err(format!("{raw:?} is not a valid DNS name"));
    }
    Ok(name)
}

/// Whether `s` is an RFC 9110 token (`tchar`s, at least one): what a header name is, and
/// what RFC 6265 allows in a cookie name.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A size in nginx's grammar (`ngx_parse_size`, as `client_max_body_size` reads it): digits,
/// then optionally one of `k`, `m`, `g` (either case, powers of 1024). Whitespace around it
/// is ignored. `None` when it is not one, or does not fit in 64 bits.
pub fn size(s: &str) -> Option<u64> {
    let t = s.trim();
    let (digits, factor) = match t.as_bytes().last()?.to_ascii_lowercase() {
        b'k' => (&t[..t.len() - 1], 1u64 << 10),
        b'm' => (&t[..t.len() - 1], 1 << 20),
        b'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

/// Why a certificate/key pair cannot serve TLS. Messages name the problem, never the
/// content: key material is never echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateProblem {
    /// The certificate text holds no PEM CERTIFICATE block.
    NoCertificate,
    /// The certificate text is not a PEM chain (the parser's reason).
    BadCertificate(String),
    /// The key text is not a PEM private key.
    BadKey,
    /// The key parses, but cannot sign (not RSA, ECDSA or Ed25519).
    UnusableKey,
    /// The key's public half is not the certificate's.
    KeyMismatch,
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateProblem::NoCertificate => f.write_str("holds no PEM CERTIFICATE block"),
            CertificateProblem::BadCertificate(why) => write!(f, "is not a PEM certificate chain: {why}"),
            CertificateProblem::BadKey => f.write_str("is not a PEM private key (PKCS#8, PKCS#1 or SEC1)"),
            CertificateProblem::UnusableKey => {
                f.write_str("is not a usable private key (RSA, ECDSA or Ed25519)")
            }
            CertificateProblem::KeyMismatch => f.write_str("does not match the certificate"),
        }
    }
}

/// A PEM certificate chain, leaf first.
pub fn parse_certificate(pem: &str) -> Result<Vec<CertificateDer<'static>>, CertificateProblem> {
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertificateProblem::BadCertificate(e.to_string()))?;
    match chain.is_empty() {
        true => Err(CertificateProblem::NoCertificate),
        false => Ok(chain),
    }
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, CertificateProblem> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| CertificateProblem::BadKey)
}

/// The chain with its key, ready for handshakes: the key must sign (ring) and match the
/// leaf certificate. A key type that cannot tell whether it matches is accepted.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> Result<CertifiedKey, CertificateProblem> {
    let signing =
        rustls::crypto::ring::sign::any_supported_type(key).map_err(|_| CertificateProblem::UnusableKey)?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Err(rustls::Error::InconsistentKeys(_)) => Err(CertificateProblem::KeyMismatch),
        Ok(()) | Err(_) => Ok(certified),
    }
}

/// Every check a certificate/key pair must pass to serve TLS: what weir-config parses and
/// what the proxy loads.
pub fn certificate(certificate_pem: &str, key_pem: &str) -> Result<(), CertificateProblem> {
    let chain = parse_certificate(certificate_pem)?;
    let key = parse_key(key_pem)?;
    certified_key(chain, &key).map(drop)
}

/// FNV-1a 64 of a document's JSON, its `version` left out: stable across builds and
/// restarts (JSON of the wire form is deterministic: struct field order, list order), and
/// streamed, so no copy of the document (which carries every certificate) is made.
pub fn content_fnv1a64(doc: &TableDoc) -> u64 {
    let TableDoc { schema, version: _, defaults, tls, client_address, hosts } = doc;
    let mut h = Fnv1a64(FNV_OFFSET);
    // Writing into a hash cannot fail, and these types always serialize.
    let _ = serde_json::to_writer(&mut h, &Unversioned { schema, defaults, tls, client_address, hosts });
    h.0
}

/// The fields of a [`TableDoc`] by reference, serialized exactly as `TableDoc` with
/// `version: None` is (same order, same skips).
#[derive(serde::Serialize)]
struct Unversioned<'a> {
    schema: &'a String,
    #[serde(skip_serializing_if = "is_none")]
    defaults: &'a Option<DefaultsDoc>,
    #[serde(skip_serializing_if = "is_none")]
    tls: &'a Option<TableTlsDoc>,
    #[serde(skip_serializing_if = "is_none")]
    client_address: &'a Option<ClientAddressDoc>,
    hosts: &'a Vec<HostDoc>,
}

fn is_none<T>(o: &&Option<T>) -> bool {
    o.is_none()
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 as an `io::Write`.
struct Fnv1a64(u64);

impl std::io::Write for Fnv1a64 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for b in buf {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `upstreamHost`: a host name or address with an optional port, as a Host header carries it
/// (ingress-nginx's `upstream-vhost`).
pub fn upstream_host(value: &str) -> Result<http::HeaderValue, String> {
    let (host, port) = match value.rsplit_once(':') {
        // A bare IPv6 address (no brackets) is refused below.
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (value, None),
        Some((h, p)) => (h, Some(p)),
        None => (value, None),
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host_name(host).is_ok() && !host.starts_with("*."),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    (host_ok && port_ok)
        .then(|| http::HeaderValue::from_str(value).ok())
        .flatten()
        .ok_or_else(|| format!("{value:?} is not a host name or address with an optional :port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a 64 of `bytes`, byte by byte, as the reference.
    fn fnv(bytes: &[u8]) -> u64 {
        bytes.iter().fold(FNV_OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME))
    }

    #[test]
    fn the_content_hash_is_fnv1a64_of_the_json_without_the_version() {
        let doc = TableDoc {
            schema: "weir/v1".into(),
            hosts: vec![HostDoc { host: Some("a.example.com".into()), ..Default::default() }],
            ..Default::default()
        };
        let json = serde_json::to_vec(&doc).expect("a document serializes");
        assert_eq!(content_fnv1a64(&doc), fnv(&json));
        let versioned = TableDoc { version: Some("v7".into()), ..doc.clone() };
        assert_eq!(content_fnv1a64(&versioned), content_fnv1a64(&doc));
    }

    #[test]
    fn sizes_follow_nginx_grammar() {
        for (s, want) in
            [("1048576", 1048576), ("512k", 512 << 10), (" 8M ", 8 << 20), ("1g", 1 << 30), ("0", 0)]
        {
            assert_eq!(size(s), Some(want), "{s}");
        }
        for bad in ["", "k", "10b", "+5", "-1", "1.5m", "1mb", "10q", "17179869184g"] {
            assert_eq!(size(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_are_nonempty_tchars() {
        assert!(is_token("X-Canary") && is_token("canary_1") && is_token("a!#$%&'*+-.^_`|~"));
        for bad in ["", "a b", "a;b", "a=b", "ä", "(x)"] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
