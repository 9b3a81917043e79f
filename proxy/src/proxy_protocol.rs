//! The PROXY protocol (v1 text or v2 binary, parsed by the `ppp` crate) that starts every
//! connection of a data listener when the table says `clientAddress: {from: proxyProtocol}`
//! (ingress-nginx's use-proxy-protocol). The header's source address becomes the
//! connection's client address: what IP rules judge, X-Forwarded-For appends, X-Real-IP
//! and the access log show.
//!
//! The header must arrive whole within a timeout; a connection that sends anything else
//! (a request without the header, a malformed or truncated header) is answered 400 on a
//! plain listener and closed. `LOCAL` (v2) and `UNKNOWN` (v1) headers, which load
//! balancers send for their own health checks, keep the TCP peer.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ppp::{v1, v2, HeaderResult, PartialResult};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest header accepted: a v1 header is at most 107 bytes; v2 headers carry TLVs,
/// which load balancers keep well under this.
const MAX_HEADER: usize = 4096;

/// The answer to a connection whose header is missing or malformed (plain listener only).
pub(crate) const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// Why a connection's PROXY header was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error("no complete PROXY protocol header within {0:?}")]
    Timeout(Duration),
    #[error("the connection does not start with a valid PROXY protocol header")]
    Malformed,
    #[error("the connection closed before its PROXY protocol header ended")]
    Closed,
    #[error("reading the PROXY protocol header failed: {0}")]
    Io(#[from] io::Error),
}

impl HeaderError {
    /// Whether the peer sent something that is not a header (worth a 400).
    pub(crate) fn is_malformed(&self) -> bool {
        matches!(self, HeaderError::Malformed)
    }
}

/// Read the PROXY header that starts `stream`. Returns the client address it names
/// (`None` for LOCAL/UNKNOWN: keep the peer) and the bytes read past the header, which the
/// connection replays first ([`Rewound`]).
pub(crate) async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<(Option<SocketAddr>, Bytes), HeaderError> {
    match tokio::time::timeout(timeout, read(stream)).await {
        Ok(result) => result,
        Err(_) => Err(HeaderError::Timeout(timeout)),
    }
}

async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(Option<SocketAddr>, Bytes), HeaderError> {
    let mut buf = BytesMut::with_capacity(536);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(HeaderError::Closed);
        }
        let parsed = HeaderResult::parse(&buf);
        // A v1 header is one line: once it has ended, "incomplete" (a missing field) is
        // malformed, not a reason to wait for more.
        let v1_line_ended = buf.starts_with(b"PROXY") && buf.contains(&b'\n');
        if parsed.is_incomplete() {
            if buf.len() >= MAX_HEADER || v1_line_ended {
                return Err(HeaderError::Malformed);
            }
            continue;
        }
        let (len, source) = match parsed {
            HeaderResult::V1(Ok(h)) => (h.header.len(), v1_source(&h.addresses)),
            HeaderResult::V2(Ok(h)) => (h.len(), v2_source(&h)),
            HeaderResult::V1(Err(_)) | HeaderResult::V2(Err(_)) => return Err(HeaderError::Malformed),
        };
        let mut rest = buf.freeze();
        rest.advance(len);
        return Ok((source, rest));
    }
}

fn v1_source(addresses: &v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v1::Addresses::Unknown => None,
    }
}

fn v2_source(header: &v2::Header<'_>) -> Option<SocketAddr> {
    if header.command == v2::Command::Local {
        return None;
    }
    match &header.addresses {
        v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<(Option<SocketAddr>, Bytes), HeaderError> {
        let mut input = bytes;
        read_header(&mut input, Duration::from_secs(1)).await
    }

    #[tokio::test]
    async fn v1_and_v2_name_the_client_and_keep_what_follows() {
        let (addr, rest) =
            parse(b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 80\r\nGET / HTTP/1.1\r\n").await.unwrap();
        assert_eq!(addr, Some("192.0.2.7:5555".parse().unwrap()));
        assert_eq!(&rest[..], b"GET / HTTP/1.1\r\n");
        let (addr, _) = parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 80\r\n").await.unwrap();
        assert_eq!(addr, Some("[2001:db8::7]:5555".parse().unwrap()));
        let (addr, _) = parse(b"PROXY UNKNOWN\r\n").await.unwrap();
        assert_eq!(addr, None);

        let source: SocketAddr = "198.51.100.9:4000".parse().unwrap();
        let dest: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let v2 = v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (source, dest),
        )
        .build()
        .unwrap();
        let mut bytes = v2.clone();
        bytes.extend_from_slice(b"tail");
        let (addr, rest) = parse(&bytes).await.unwrap();
        assert_eq!((addr, &rest[..]), (Some(source), &b"tail"[..]));
    }

    #[tokio::test]
    async fn anything_else_is_refused() {
        for bad in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"PROXY TCP4 nonsense\r\n",
            b"PROXY TCP9 1.2.3.4 1.2.3.4 1 2\r\n",
        ] {
            assert!(parse(bad).await.unwrap_err().is_malformed(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(parse(b"PROXY TCP4 1.2.3.4").await, Err(HeaderError::Closed)));
    }
}
