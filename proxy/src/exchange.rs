//! weir's own HTTP/1.1 client exchange, for the request most traffic is: no request body,
//! to a plain-HTTP upstream.
//!
//! hyper's client runs each upstream connection as its own task and hands requests and
//! responses to it through channels. For a small request that is two extra task switches
//! and several copies of the request and response structs, a measured quarter of weir's
//! user-space instructions per request (loadtests/README.md). Here the request task writes
//! the head itself and reads the response on the same stream, and the response body is
//! read straight from the socket by whoever polls it (the client connection's task).
//! Everything else (request bodies, upgrades, TLS and HTTP/2 upstreams) stays with hyper.
//!
//! Response framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; chunked
//! when Transfer-Encoding ends with chunked; a length from a consistent Content-Length;
//! otherwise until the upstream closes. A connection is reused only when the response was
//! read exactly to its end and neither side asked to close.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::headers;

/// Largest response head accepted (nginx's `proxy_buffer_size` is 4–8 KiB; this is kinder).
const MAX_HEAD: usize = 64 << 10;
/// Most response header lines accepted.
const MAX_HEADERS: usize = 128;
/// Largest chunk-size line or trailer section of a chunked body.
const MAX_CHUNK_META: usize = 8 << 10;
/// The read buffer grows by this much when it runs low.
const READ_CHUNK: usize = 16 << 10;
/// Least room worth a read; below it the buffer grows first.
const MIN_READ: usize = 2 << 10;
/// Largest growth step for a long body: reads that fill the room double it up to this.
const MAX_READ: usize = 256 << 10;

/// A plain-HTTP upstream connection with its read buffer.
pub struct RawConn {
    io: TcpStream,
    buf: BytesMut,
    /// The request head being sent (kept for the next request's head).
    head: Vec<u8>,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The connection was closed before any byte of a response arrived: the request was
    /// probably never seen (an idle keep-alive connection the upstream had just closed).
    #[error("the upstream closed the connection before responding: {0}")]
    Closed(#[source] io::Error),
    #[error("upstream I/O failed: {0}")]
    Io(#[source] io::Error),
    #[error("the upstream response is malformed: {0}")]
    Malformed(&'static str),
}

impl RawConn {
    pub fn new(io: TcpStream) -> Self {
        RawConn { io, buf: BytesMut::new(), head: Vec::new() }
    }

    /// Whether an idle connection can take a request: the upstream has not closed it nor
    /// sent anything unasked. Costs no system call while the socket has shown no activity.
    pub fn is_reusable(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Send a bodyless request, its head written by `write_head`, and read the response
    /// head. `method` decides whether the response can have a body (HEAD never does).
    pub async fn exchange(
        mut self,
        write_head: &impl Fn(&mut Vec<u8>),
        method: &Method,
    ) -> Result<(Response<()>, RawBody), ExchangeError> {
        self.head.clear();
        write_head(&mut self.head);
        if let Err(e) = self.io.write_all(&self.head).await {
            return Err(ExchangeError::Closed(e));
        }
        let mut received_any = false;
        loop {
            if let Some(head) = parse_head(&mut self.buf)? {
                // 1xx (100 Continue, 103 Early Hints): informational, the answer follows.
                if head.resp.status().is_informational() {
                    if head.resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(ExchangeError::Malformed("101 to a request that did not ask to switch"));
                    }
                    continue;
                }
                let (framing, must_close) = framing(method, &head)?;
                let reusable = !head.close && !must_close;
                let mut resp = head.resp;
                if matches!(framing, Framing::Chunked(_)) {
                    // Chunked beside a Content-Length: the length is wrong, never pass it on.
                    resp.headers_mut().remove(header::CONTENT_LENGTH);
                }
                let mut body =
                    RawBody { conn: Some(self), framing, reusable, spare: None, read_size: READ_CHUNK };
                if body.is_end_stream() {
                    body.end();
                }
                return Ok((resp, body));
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(ExchangeError::Malformed("the response head is too large"));
            }
            make_room(&mut self.buf, READ_CHUNK);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) if received_any || !self.buf.is_empty() => {
                    return Err(ExchangeError::Io(io::ErrorKind::UnexpectedEof.into()))
                }
                Ok(0) => return Err(ExchangeError::Closed(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => received_any = true,
                Err(e) if !received_any && e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(ExchangeError::Closed(e))
                }
                Err(e) => return Err(ExchangeError::Io(e)),
            }
        }
    }
}

/// Room to read into. Responses are split off the front of one block and handed on as
/// shared slices, so the block is reused while it has room rather than grown for every read
/// (a block still shared by a response being written cannot be reclaimed, and a 16 KiB
/// allocation per request showed in the profile).
fn make_room(buf: &mut BytesMut, grow_by: usize) {
    if buf.capacity() - buf.len() < MIN_READ {
        buf.reserve(grow_by);
    }
}

/// A response head as the client will get it: hop-by-hop headers are taken out while the
/// map is built (the proxy would strip them anyway), keeping what framing needs of them.
struct Head {
    resp: Response<()>,
    /// The upstream asked to close (or answered HTTP/1.0 without keep-alive).
    close: bool,
    /// The last Transfer-Encoding line, which decides the framing.
    transfer_encoding: Option<HeaderValue>,
    /// The Content-Length, if every line that gave one agreed (else `Err`).
    content_length: Result<Option<HeaderValue>, ()>,
}

/// Parse one response head from the front of `buf`, if it is complete. Header values share
/// the head's bytes.
fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, ExchangeError> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Offsets into the head of each name and value: the parser borrows `buf`, and the
    // values are then sliced from the frozen head without copying.
    let mut spans = [(0u32, 0u32, 0u32, 0u32); MAX_HEADERS];
    let (len, status, version, count) = {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ExchangeError::Malformed("too many header lines"))
            }
            Err(_) => return Err(ExchangeError::Malformed("the response head does not parse")),
        };
        let base = buf.as_ptr() as usize;
        let offset = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
        for (span, h) in spans.iter_mut().zip(resp.headers.iter()) {
            *span = (offset(h.name.as_bytes()), h.name.len() as u32, offset(h.value), h.value.len() as u32);
        }
        let version = match resp.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        (len, resp.code.unwrap_or(0), version, resp.headers.len())
    };
    let head = buf.split_to(len).freeze();
    let status =
        StatusCode::from_u16(status).map_err(|_| ExchangeError::Malformed("the status code is invalid"))?;
    let mut map = HeaderMap::with_capacity(count);
    // HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told not to.
    let mut close = version == Version::HTTP_10;
    let mut transfer_encoding = None;
    let mut content_length = Ok(None);
    // Headers a Connection line names besides keep-alive and close: rare, removed at the end.
    let mut named = Vec::new();
    for &(name_at, name_len, value_at, value_len) in &spans[..count] {
        let name = header_name(&head[name_at as usize..(name_at + name_len) as usize])?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(value_at as usize..(value_at + value_len) as usize))
                .map_err(|_| ExchangeError::Malformed("a header value is invalid"))?;
        if !headers::is_hop_by_hop(&name) {
            if name == header::CONTENT_LENGTH {
                content_length = match content_length {
                    Ok(None) => Ok(Some(value.clone())),
                    Ok(Some(first)) if first == value => Ok(Some(first)),
                    _ => Err(()),
                };
            }
            map.append(name, value);
        } else if name == header::TRANSFER_ENCODING {
            transfer_encoding = Some(value);
        } else if name == header::CONNECTION {
            for token in value.as_bytes().split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == Version::HTTP_10 {
                    close = false;
                }
            }
            named.extend(headers::named_by_connection(value.as_bytes()));
        }
    }
    for name in named {
        map.remove(name);
    }
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    *resp.version_mut() = version;
    *resp.headers_mut() = map;
    Ok(Some(Head { resp, close, transfer_encoding, content_length }))
}

/// A response header's name. The names upstream servers send on nearly every response, in
/// the case they send them, are recognized by one comparison; `HeaderName::from_bytes`
/// lower-cases and classifies any other (it was a fifth of the head's parse).
fn header_name(name: &[u8]) -> Result<HeaderName, ExchangeError> {
    Ok(match name {
        b"Server" => header::SERVER,
        b"Date" => header::DATE,
        b"Content-Type" => header::CONTENT_TYPE,
        b"Content-Length" => header::CONTENT_LENGTH,
        b"Connection" => header::CONNECTION,
        b"Keep-Alive" => HeaderName::from_static("keep-alive"),
        b"Transfer-Encoding" => header::TRANSFER_ENCODING,
        b"Last-Modified" => header::LAST_MODIFIED,
        b"ETag" => header::ETAG,
        b"Accept-Ranges" => header::ACCEPT_RANGES,
        b"Cache-Control" => header::CACHE_CONTROL,
        b"Vary" => header::VARY,
        _ => {
            HeaderName::from_bytes(name).map_err(|_| ExchangeError::Malformed("a header name is invalid"))?
        }
    })
}

/// How the response body ends (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    /// This many bytes remain.
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

/// Where a chunked body's reader is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, with this many data bytes left.
    Data(u64),
    /// After a chunk's data, expecting its CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one (trailers are dropped, as
    /// nginx does).
    Trailers,
}

/// The body's framing, and whether the connection must close after it.
fn framing(method: &Method, head: &Head) -> Result<(Framing, bool), ExchangeError> {
    let status = head.resp.status();
    if method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok((Framing::Empty, false));
    }
    if let Some(te) = &head.transfer_encoding {
        let chunked_last = te
            .as_bytes()
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        // Transfer-Encoding overrides a Content-Length beside it, but such a message may be
        // an attempt at response splitting: the connection is not reused after it.
        let suspicious = !matches!(head.content_length, Ok(None));
        return Ok(match chunked_last {
            true => (Framing::Chunked(Chunk::Size), suspicious),
            false => (Framing::UntilClose, true),
        });
    }
    let first = match &head.content_length {
        Ok(Some(first)) => first,
        Ok(None) => return Ok((Framing::UntilClose, true)),
        Err(()) => return Err(ExchangeError::Malformed("several different Content-Length values")),
    };
    let n = std::str::from_utf8(first.as_bytes())
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ExchangeError::Malformed("the Content-Length is not a number"))?;
    Ok((if n == 0 { Framing::Empty } else { Framing::Length(n) }, false))
}

/// A response body read from its upstream connection by whoever polls it.
pub struct RawBody {
    /// `None` once the body ended (the connection then waits in `spare` if reusable) or
    /// broke.
    conn: Option<RawConn>,
    framing: Framing,
    /// Whether the connection may serve another request once this body has ended.
    reusable: bool,
    /// The connection, once the body has ended cleanly and it can serve another request.
    spare: Option<RawConn>,
    /// How much the read buffer grows by when low: doubles while reads fill it, so a long
    /// body is read in few large reads and a short one never costs more than the first.
    read_size: usize,
}

impl std::fmt::Debug for RawBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawBody").field("framing", &self.framing).field("reusable", &self.reusable).finish()
    }
}

impl RawBody {
    /// The connection, if the body has been read to its end and it can be reused.
    pub fn take_reusable(&mut self) -> Option<RawConn> {
        self.spare.take()
    }

    pub fn is_end_stream(&self) -> bool {
        matches!(self.framing, Framing::Empty | Framing::Done)
    }

    /// Bytes left, when known.
    pub fn exact_len(&self) -> Option<u64> {
        match self.framing {
            Framing::Empty | Framing::Done => Some(0),
            Framing::Length(n) => Some(n),
            Framing::Chunked(_) | Framing::UntilClose => None,
        }
    }

    /// The body is over: keep the connection aside if it can be reused (not when bytes
    /// came beyond the body: that upstream is not speaking HTTP/1.1 correctly).
    fn end(&mut self) {
        self.framing = Framing::Done;
        self.spare = self.conn.take().filter(|c| self.reusable && c.buf.is_empty());
    }

    /// The next piece of the body, `None` at its end.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
        loop {
            match self.framing {
                Framing::Empty | Framing::Done => {
                    if self.conn.is_some() {
                        self.end();
                    }
                    return Poll::Ready(None);
                }
                Framing::Length(left) => {
                    let Some(data) = ready!(self.take_data(cx, left))? else {
                        return self.broken("the upstream closed before the end of the body");
                    };
                    let left = left - data.len() as u64;
                    self.framing = Framing::Length(left);
                    if left == 0 {
                        self.end();
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Framing::UntilClose => match ready!(self.take_data(cx, u64::MAX))? {
                    Some(data) => return Poll::Ready(Some(Ok(data))),
                    None => {
                        self.end();
                        return Poll::Ready(None);
                    }
                },
                Framing::Chunked(Chunk::Data(left)) => {
                    let Some(data) = ready!(self.take_data(cx, left))? else {
                        return self.broken("the upstream closed inside a chunk");
                    };
                    let left = left - data.len() as u64;
                    self.framing =
                        Framing::Chunked(if left == 0 { Chunk::DataEnd } else { Chunk::Data(left) });
                    return Poll::Ready(Some(Ok(data)));
                }
                Framing::Chunked(state) => {
                    let step = match self.conn.as_mut() {
                        Some(conn) => chunk_step(&mut conn.buf, state),
                        None => return Poll::Ready(None),
                    };
                    match step {
                        Err(reason) => return self.broken(reason),
                        Ok(Some(Some(next))) => self.framing = Framing::Chunked(next),
                        Ok(Some(None)) => self.end(),
                        Ok(None) => {
                            let meta = self.conn.as_ref().map_or(0, |c| c.buf.len());
                            if meta > MAX_CHUNK_META {
                                return self.broken("a chunk-size line or the trailers are too long");
                            }
                            if ready!(self.fill(cx))? == 0 {
                                return self.broken("the upstream closed inside a chunked body");
                            }
                        }
                    }
                }
            }
        }
    }

    /// Up to `max` body bytes: buffered ones first, else one read. `None` at end of stream.
    fn take_data(&mut self, cx: &mut Context<'_>, max: u64) -> Poll<io::Result<Option<Bytes>>> {
        let Some(conn) = self.conn.as_mut() else { return Poll::Ready(Ok(None)) };
        if conn.buf.is_empty() && ready!(self.fill(cx))? == 0 {
            return Poll::Ready(Ok(None));
        }
        let Some(conn) = self.conn.as_mut() else { return Poll::Ready(Ok(None)) };
        let n = conn.buf.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        Poll::Ready(Ok(Some(conn.buf.split_to(n).freeze())))
    }

    /// Read more into the buffer; the number of bytes read (0 at end of stream).
    fn fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else { return Poll::Ready(Ok(0)) };
        make_room(&mut conn.buf, self.read_size);
        let room = conn.buf.capacity() - conn.buf.len();
        let n = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf))?;
        if n == room {
            self.read_size = (self.read_size * 2).min(MAX_READ);
        }
        Poll::Ready(Ok(n))
    }

    fn broken<T>(&mut self, reason: &'static str) -> Poll<Option<io::Result<T>>> {
        self.conn = None;
        self.framing = Framing::Done;
        Poll::Ready(Some(Err(io::Error::new(io::ErrorKind::InvalidData, reason))))
    }
}

/// Advance a chunked body's framing over buffered bytes: `Ok(None)` needs more bytes,
/// `Ok(Some(Some(state)))` moved on, `Ok(Some(None))` the body is over.
fn chunk_step(buf: &mut BytesMut, state: Chunk) -> Result<Option<Option<Chunk>>, &'static str> {
    match state {
        Chunk::Size => {
            let Some(line) = take_line(buf) else { return Ok(None) };
            let digits = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
            if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
                return Err("a chunk size is not a hexadecimal number");
            }
            let size =
                digits.iter().fold(0u64, |n, &d| n * 16 + (d as char).to_digit(16).unwrap_or(0) as u64);
            Ok(Some(Some(if size == 0 { Chunk::Trailers } else { Chunk::Data(size) })))
        }
        Chunk::DataEnd => match take_line(buf) {
            None => Ok(None),
            Some(line) if line.is_empty() => Ok(Some(Some(Chunk::Size))),
            Some(_) => Err("a chunk is longer than its size"),
        },
        Chunk::Trailers => match take_line(buf) {
            None => Ok(None),
            Some(line) if line.is_empty() => Ok(Some(None)),
            Some(_) => Ok(Some(Some(Chunk::Trailers))),
        },
        Chunk::Data(_) => Ok(Some(Some(state))),
    }
}

/// The next line of `buf` without its CRLF (or bare LF), if a whole line is buffered.
fn take_line(buf: &mut BytesMut) -> Option<Bytes> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let mut line = buf.split_to(end + 1);
    line.truncate(end);
    if line.last() == Some(&b'\r') {
        line.truncate(end - 1);
    }
    Some(line.freeze())
}

/// Decode a whole chunked body from `wire` with the reader's own steps (tests, fuzzing):
/// the data, or why the framing is broken. Bounded: at most 1,000 steps.
#[cfg(any(test, fuzzing))]
fn decode_chunked(mut wire: BytesMut) -> Result<Vec<u8>, &'static str> {
    let mut state = Chunk::Size;
    let mut out = Vec::new();
    for _ in 0..1000 {
        match state {
            Chunk::Data(left) => {
                if wire.is_empty() {
                    return Err("truncated");
                }
                let n = wire.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                out.extend_from_slice(&wire.split_to(n));
                state = if n as u64 == left { Chunk::DataEnd } else { Chunk::Data(left - n as u64) };
            }
            _ => match chunk_step(&mut wire, state)? {
                None => return Err("truncated"),
                Some(None) => return Ok(out),
                Some(Some(next)) => state = next,
            },
        }
    }
    Err("did not end")
}

/// The fuzz target's body: an upstream's response bytes through the head parser, the
/// framing rules and, when chunked, the chunk reader. Properties: no panic; a parsed head
/// never claims more bytes than it was given; decoded data is never longer than its wire.
#[cfg(fuzzing)]
pub(crate) fn fuzz_response(bytes: &[u8]) {
    let mut buf = BytesMut::from(bytes);
    let Ok(Some(head)) = parse_head(&mut buf) else { return };
    assert!(buf.len() <= bytes.len(), "the head took more bytes than it was given");
    for method in [Method::GET, Method::HEAD] {
        if let Ok((Framing::Chunked(Chunk::Size), _)) = framing(&method, &head) {
            if let Ok(data) = decode_chunked(buf.clone()) {
                assert!(data.len() <= buf.len(), "a chunked body decoded longer than its wire");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<Head>, ExchangeError> {
        parse_head(&mut BytesMut::from(bytes))
    }

    #[test]
    fn a_response_head_is_parsed_with_shared_values() {
        let head = parse(b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabc").unwrap().unwrap();
        assert_eq!(head.resp.status(), 201);
        assert_eq!(head.resp.headers()["x-a"], "b");
        assert!(!head.close);
        assert_eq!(framing(&Method::GET, &head).unwrap(), (Framing::Length(3), false));
        assert_eq!(framing(&Method::HEAD, &head).unwrap(), (Framing::Empty, false));
    }

    #[test]
    fn hop_by_hop_headers_are_left_out_and_framing_still_sees_them() {
        let wire = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
            Keep-Alive: timeout=5\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\
            Trailer: X-T\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nTE: trailers\r\nX-Kept: 2\r\n\r\n";
        let head = parse(wire).unwrap().unwrap();
        let names: Vec<&str> = head.resp.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
        assert!(!head.close);
        assert_eq!(framing(&Method::GET, &head).unwrap(), (Framing::Chunked(Chunk::Size), false));
    }

    #[test]
    fn common_names_are_the_names_from_bytes_makes() {
        for name in [
            &b"Server"[..],
            b"Date",
            b"Content-Type",
            b"Content-Length",
            b"Connection",
            b"Keep-Alive",
            b"Transfer-Encoding",
            b"Last-Modified",
            b"ETag",
            b"Accept-Ranges",
            b"Cache-Control",
            b"Vary",
            b"content-type",
            b"X-Custom",
        ] {
            assert_eq!(header_name(name).unwrap(), HeaderName::from_bytes(name).unwrap());
        }
        assert!(header_name(b"Bad Name").is_err());
    }

    #[test]
    fn partial_heads_wait_and_garbage_is_refused() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Len").unwrap().is_none());
        assert!(matches!(parse(b"HTTP/1.1 2x0 OK\r\n\r\n"), Err(ExchangeError::Malformed(_))));
        assert!(matches!(parse(b"SMTP ready\r\n\r\n"), Err(ExchangeError::Malformed(_))));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection() {
        let close = |wire: &[u8]| parse(wire).unwrap().unwrap().close;
        assert!(close(b"HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n"));
        assert!(close(b"HTTP/1.0 200 OK\r\n\r\n"));
        assert!(!close(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"));
        assert!(!close(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framed = |wire: &[u8]| framing(&Method::GET, &parse(wire).unwrap().unwrap()).map(|f| f.0);
        assert_eq!(framed(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n").unwrap(), Framing::Empty);
        assert_eq!(framed(b"HTTP/1.1 304 Not Modified\r\n\r\n").unwrap(), Framing::Empty);
        assert_eq!(
            framed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap(),
            Framing::Chunked(Chunk::Size)
        );
        assert_eq!(
            framed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").unwrap(),
            Framing::UntilClose
        );
        let both = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        let head = parse(both).unwrap().unwrap();
        assert_eq!(framing(&Method::GET, &head).unwrap(), (Framing::Chunked(Chunk::Size), true));
        assert_eq!(framed(b"HTTP/1.1 200 OK\r\n\r\n").unwrap(), Framing::UntilClose);
        assert_eq!(framed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap(), Framing::Empty);
        assert_eq!(
            framed(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n").unwrap(),
            Framing::Length(4)
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert!(
                matches!(framed(bad), Err(ExchangeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunked_bodies_decode_and_bad_ones_are_refused() {
        let ok = decode_chunked(BytesMut::from(
            &b"4\r\nwiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n"[..],
        ));
        assert_eq!(ok.unwrap(), b"wikipedia in\r\n\r\nchunks.");
        assert_eq!(decode_chunked(BytesMut::from(&b"3\nabc\n0\n\n"[..])).unwrap(), b"abc");
        assert!(decode_chunked(BytesMut::from(&b"zz\r\n"[..])).is_err());
        assert!(decode_chunked(BytesMut::from(&b"3\r\nabcd\r\n0\r\n\r\n"[..])).is_err());
        assert!(decode_chunked(BytesMut::from(&b"fffffffffffffffff\r\n"[..])).is_err());
        assert!(decode_chunked(BytesMut::from(&b"3\r\nab"[..])).is_err());
    }
}
