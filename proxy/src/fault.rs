//! Who failed a request: the [`Fault`] recorded with it and carried by metrics and the
//! access log.

/// Who failed a request, recorded beside the status the client got (which stays what it
/// was: a client's malformed body is its 400, an aborted one its 499). Metrics carry it as
/// the `fault` label so success rates can leave the client's faults out: a client cannot
/// make a backend, or a canary, look unhealthy by sending broken requests through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// No one: the upstream's answer was relayed (any status below 500), or weir answered
    /// as asked (a redirect).
    #[default]
    None,
    /// The client: a malformed request or body, one over a limit, or a client that went
    /// away mid-request. Always a 4xx (or 499).
    Client,
    /// The backend: an upstream 5xx relayed, or weir's 502/503/504 for an upstream that
    /// could not be reached, timed out or broke the exchange.
    Backend,
    /// weir itself, or the external auth service a rule makes it ask (500).
    Proxy,
}

impl Fault {
    /// The value of the `fault` label (and the access log's field).
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::None => "",
            Fault::Client => "client",
            Fault::Backend => "backend",
            Fault::Proxy => "weir",
        }
    }

    /// The fault of a relayed upstream answer with `status`.
    pub fn of_relayed(status: u16) -> Fault {
        if status >= 500 {
            Fault::Backend
        } else {
            Fault::None
        }
    }
}
