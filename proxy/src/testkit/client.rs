//! Clients for tests: HTTP/1.1 keep-alive ([`H1`]), h2c ([`h2c`]), generic senders over
//! any stream ([`h1_over`], [`h2_over`]), and raw bytes ([`raw`]). Every wait is bounded by
//! [`WAIT`].

use std::net::SocketAddr;

use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::wait::{within, WAIT};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ReqBody = BoxBody<Bytes, BoxError>;

/// A whole response, body read to its end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The `x-upstream` name, or `-` when weir answered itself.
    pub fn upstream(&self) -> &str {
        self.headers.get("x-upstream").and_then(|v| v.to_str().ok()).unwrap_or("-")
    }

    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)),
        }
    }

    /// The values of header `name` as the upstream received it (from the echo).
    pub fn echoed(&self, name: &str) -> Vec<String> {
        match &self.json()["headers"][name] {
            serde_json::Value::Array(list) => {
                list.iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn body(data: impl Into<Bytes>) -> ReqBody {
    Full::new(data.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> ReqBody {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

/// A GET for `host` + `path` (origin-form URI, explicit Host header).
pub fn request(host: &str, path: &str, headers: &[(&str, &str)]) -> Request<ReqBody> {
    let mut b = Request::get(path).header(header::HOST, host);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(empty()).expect("test request")
}

/// Read a response body to its end.
pub async fn read<B>(resp: Response<B>) -> Result<Reply, BoxError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(Into::into)?.to_bytes();
    Ok(Reply { status: parts.status, version: parts.version, headers: parts.headers, body })
}

/// An HTTP/1.1 keep-alive connection.
pub struct H1 {
    sender: http1::SendRequest<ReqBody>,
}

impl H1 {
    pub async fn connect(addr: SocketAddr) -> H1 {
        match within("connect", H1::try_connect(addr)).await {
            Ok(c) => c,
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    }

    pub async fn try_connect(addr: SocketAddr) -> Result<H1, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(H1 { sender })
    }

    /// Send and read the whole response, bounded by [`WAIT`].
    pub async fn send(&mut self, req: Request<ReqBody>) -> Result<Reply, BoxError> {
        tokio::time::timeout(WAIT, async {
            self.sender.ready().await?;
            read(self.sender.send_request(req).await?).await
        })
        .await
        .map_err(|_| BoxError::from("request timed out"))?
    }

    /// Send and return the response head; the body is left to the caller.
    pub async fn send_streaming(&mut self, req: Request<ReqBody>) -> Result<Response<Incoming>, BoxError> {
        tokio::time::timeout(WAIT, async {
            self.sender.ready().await?;
            Ok(self.sender.send_request(req).await?)
        })
        .await
        .map_err(|_| BoxError::from("request timed out"))?
    }

    pub async fn get(&mut self, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        match self.send(request(host, path, headers)).await {
            Ok(r) => r,
            Err(e) => panic!("GET {host}{path} failed: {e}"),
        }
    }
}

/// One GET on a new HTTP/1.1 connection.
pub async fn get(addr: SocketAddr, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    H1::connect(addr).await.get(host, path, headers).await
}

/// An HTTP/2 prior-knowledge (h2c) connection.
pub async fn h2c(addr: SocketAddr) -> http2::SendRequest<ReqBody> {
    let stream = within("connect", TcpStream::connect(addr)).await.expect("connect for h2c");
    h2_over(stream).await
}

/// An HTTP/1.1 sender over any stream (a TLS one, say).
pub async fn h1_over<S>(stream: S) -> http1::SendRequest<Full<Bytes>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) =
        within("h1 handshake", http1::handshake(TokioIo::new(stream))).await.expect("h1 handshake");
    tokio::spawn(conn);
    sender
}

/// An HTTP/2 sender over any stream.
pub async fn h2_over<S, B>(stream: S) -> http2::SendRequest<B>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: http_body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (sender, conn) = within("h2 handshake", http2::handshake(TokioExecutor::new(), TokioIo::new(stream)))
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// GET `path` for `host` on `sender` and return (status, body).
pub async fn send_get(sender: &mut http1::SendRequest<Full<Bytes>>, host: &str, path: &str) -> (u16, String) {
    let req = Request::get(path).header("host", host).body(Full::new(Bytes::new())).expect("request");
    within("connection ready", sender.ready()).await.expect("connection usable");
    let resp = within("response", sender.send_request(req)).await.expect("response");
    let status = resp.status().as_u16();
    let body = within("body", resp.into_body().collect()).await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Write `bytes` on a new raw TCP connection and read the answer's head: until a blank line
/// ends it, or the server closes. Panics if neither happens within [`WAIT`] (a hung
/// connection). Returns what was read.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = within("connect", TcpStream::connect(addr)).await.expect("connect");
    stream.write_all(bytes).await.expect("write raw request");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => {
                panic!("no answer and no close within {WAIT:?} after {:?}", String::from_utf8_lossy(bytes))
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
