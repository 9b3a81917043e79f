//! What a client connection speaks, decided from its first bytes before hyper serves it:
//! the HTTP/2 connection preface, or an HTTP/1 request line, within what the TLS handshake
//! agreed (ALPN).
//!
//! - TLS with ALPN `h2`: only HTTP/2; anything but the preface closes the connection
//!   (RFC 9113 §3.4: an invalid preface is a connection error).
//! - TLS with `http/1.1` or no ALPN: only HTTP/1 (RFC 9113 §3.3: h2 over TLS is negotiated
//!   with ALPN); a preface closes the connection.
//! - Cleartext: HTTP/2 by prior knowledge (the preface) or HTTP/1.
//!
//! Bytes that are neither — no preface, and a first line that is not an HTTP request line
//! (h2spec 3.5/2 sends `INVALID CONNECTION PREFACE`) — close the connection without an
//! answer: an HTTP/1.1 400 means nothing to a client that speaks neither. A first line that
//! does end in an `HTTP/` version goes to hyper, which answers what is wrong with it (400,
//! 505, 431) as before. What was read is replayed to hyper (`Rewound`).

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::rewind::Rewound;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes asked of each read while deciding.
const READ_SIZE: usize = 1024;

/// The protocols a connection may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Cleartext: HTTP/1 or HTTP/2 by prior knowledge.
    Either,
    Http1,
    Http2,
}

impl Allowed {
    /// What a TLS connection may speak, given the protocol ALPN agreed on (if any).
    pub fn after_alpn(protocol: Option<&[u8]>) -> Allowed {
        match protocol {
            Some(b"h2") => Allowed::Http2,
            _ => Allowed::Http1,
        }
    }
}

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// What the first bytes decided.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Serve,
    Close,
    ReadMore,
}

/// Decide from `buf` (everything received so far); `limit` is the largest request head
/// weir accepts (past it, hyper answers 431 rather than weir waiting for more).
fn decide(buf: &[u8], allowed: Allowed, limit: usize) -> Decision {
    if buf.len() >= PREFACE.len() && buf.starts_with(PREFACE) {
        return match allowed {
            Allowed::Http1 => Decision::Close,
            Allowed::Either | Allowed::Http2 => Decision::Serve,
        };
    }
    if PREFACE.starts_with(buf) {
        return Decision::ReadMore;
    }
    if allowed == Allowed::Http2 {
        return Decision::Close;
    }
    // RFC 9112 §2.2: empty lines before the request line are ignored.
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(buf.len());
    let rest = &buf[start..];
    let Some(end) = rest.iter().position(|&b| b == b'\n') else {
        return match buf.len() >= limit {
            true => Decision::Serve,
            false => Decision::ReadMore,
        };
    };
    let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version.starts_with(b"HTTP/") && line.contains(&b' ') {
        true => Decision::Serve,
        false => Decision::Close,
    }
}

/// Read the first bytes of `io` and decide; `None` means close the connection (also when
/// the client closed or failed before deciding). Callers bound it in time.
pub async fn open<S: AsyncRead + Unpin>(
    mut io: S,
    allowed: Allowed,
    limit: usize,
) -> Option<(Protocol, Rewound<S>)> {
    let mut buf = Vec::with_capacity(READ_SIZE);
    loop {
        buf.reserve(READ_SIZE);
        match io.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        match decide(&buf, allowed, limit) {
            Decision::Serve => {
                let protocol = match buf.starts_with(PREFACE) {
                    true => Protocol::Http2,
                    false => Protocol::Http1,
                };
                return Some((protocol, Rewound::new(Bytes::from(buf), io)));
            }
            Decision::Close => return None,
            Decision::ReadMore => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_decide_within_what_alpn_allows() {
        use Allowed::*;
        use Decision::*;
        let cases: &[(&[u8], Allowed, Decision)] = &[
            (PREFACE, Either, Serve),
            (PREFACE, Http2, Serve),
            (PREFACE, Http1, Close),
            (b"PRI * HTTP/2", Either, ReadMore),
            (b"GET / HTTP/1.1\r\n", Either, Serve),
            (b"GET / HTTP/1.1\r\n", Http1, Serve),
            (b"GET / HTTP/1.1\r\n", Http2, Close),
            (b"\r\nGET / HTTP/1.0\n", Either, Serve),
            (b"GET / HTTP/1.1", Either, ReadMore),
            (b"GET / HTTP/9.9\r\n", Either, Serve), // hyper answers the bad version
            (b"INVALID CONNECTION PREFACE\r\n\r\n", Either, Close),
            (b"INVALID CONNECTION PREFACE\r\n\r\n", Http2, Close),
            (b"HTTP/1.1\r\n", Either, Close),
            (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", Either, Close), // TLS on the plain port
        ];
        for (bytes, allowed, want) in cases {
            assert_eq!(
                decide(bytes, *allowed, 64),
                *want,
                "{:?} {allowed:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(decide(&[b'G'; 64], Either, 64), Serve, "a head past the limit goes to hyper's 431");
    }
}
