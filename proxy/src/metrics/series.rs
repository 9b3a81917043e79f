//! The request families' series of one rule side (main or canary), and their lookup.
//!
//! The labels fixed by the rule (`namespace`, `ingress`, `service`, `path`, `canary`) are
//! escaped once when a table is installed. The labels that vary per request — `host`,
//! `method`, `status` — are interned to small integers, so finding a request's series is a
//! read lock and two hash lookups with a cheap hasher, without allocating. A series is
//! created (write lock) only the first time its label combination is seen.
//!
//! # Cardinality bounds
//! Exact-host rules only ever see their one host. Wildcard and default-server rules see
//! whatever `Host` clients send, so each rule side records at most [`MAX_HOSTS_PER_RULE`]
//! distinct hosts; requests for further hosts are recorded under the rule's configured host
//! (`*.example.com`, or `_` for the default server) instead of their own. The nine standard
//! methods are recorded as sent; at most [`MAX_EXTENSION_METHODS`] other method names per
//! rule side are, and further ones are recorded as `OTHER`. `status` is bounded by HTTP
//! itself (100–999), `fault` by [`Fault`]'s four values.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use http::Method;

use super::histogram::{Counter, Histogram};
use crate::fault::Fault;

/// Distinct `host` values per rule side before further hosts share the rule's host.
pub const MAX_HOSTS_PER_RULE: usize = 32;
/// Distinct non-standard methods per rule side before further ones become `OTHER`.
pub const MAX_EXTENSION_METHODS: usize = 8;

const STANDARD_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::CONNECT,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];
const OVERFLOW_HOST: u16 = u16::MAX;
const OTHER_METHOD: u8 = u8::MAX;

/// Every family's series for one label combination.
#[derive(Default)]
pub struct RequestSeries {
    pub requests: Counter,
    pub request_duration: Histogram,
    pub response_duration: Histogram,
    pub header_duration: Histogram,
    pub connect_duration: Histogram,
    pub request_size: Histogram,
    pub response_size: Histogram,
    pub bytes_sent: Histogram,
}

/// Interned (host, method, status), and who failed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct SeriesKey {
    host: u16,
    method: u8,
    status: u16,
    fault: Fault,
}

/// FxHash: a multiply-rotate hasher. Safe here because every map it backs is small and
/// bounded (hosts are capped), so collision flooding cannot grow work without bound.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i.into());
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

struct Inner {
    /// The `host` value past [`MAX_HOSTS_PER_RULE`]: the rule's configured host. A request
    /// whose host is literally this string shares that series (never a duplicate one).
    overflow_host: Box<str>,
    hosts: FxMap<Box<str>, u16>,
    host_names: Vec<Box<str>>,
    methods: Vec<Box<str>>,
    series: FxMap<SeriesKey, Box<RequestSeries>>,
}

impl Inner {
    /// The key if every part is already interned (or overflows).
    fn key(&self, host: &str, method: &Method, status: u16, fault: Fault) -> Option<SeriesKey> {
        let host = match self.hosts.get(host) {
            Some(&id) => id,
            None if *self.overflow_host == *host => OVERFLOW_HOST,
            None if self.host_names.len() >= MAX_HOSTS_PER_RULE => OVERFLOW_HOST,
            None => return None,
        };
        let method = match STANDARD_METHODS.iter().position(|m| m == method) {
            Some(i) => i as u8,
            None if method.as_str() == "OTHER" => OTHER_METHOD,
            None => match self.methods.iter().position(|m| **m == *method.as_str()) {
                Some(i) => (STANDARD_METHODS.len() + i) as u8,
                None if self.methods.len() >= MAX_EXTENSION_METHODS => OTHER_METHOD,
                None => return None,
            },
        };
        Some(SeriesKey { host, method, status, fault })
    }

    fn intern(&mut self, host: &str, method: &Method, status: u16, fault: Fault) -> SeriesKey {
        if !self.hosts.contains_key(host)
            && *self.overflow_host != *host
            && self.host_names.len() < MAX_HOSTS_PER_RULE
        {
            self.hosts.insert(host.into(), self.host_names.len() as u16);
            self.host_names.push(host.into());
        }
        let known = STANDARD_METHODS.contains(method)
            || method.as_str() == "OTHER"
            || self.methods.iter().any(|m| **m == *method.as_str());
        if !known && self.methods.len() < MAX_EXTENSION_METHODS {
            self.methods.push(method.as_str().into());
        }
        // Everything is interned or overflows now, so `key` cannot miss.
        self.key(host, method, status, fault).unwrap_or(SeriesKey {
            host: OVERFLOW_HOST,
            method: OTHER_METHOD,
            status,
            fault,
        })
    }

    fn method_name(&self, id: u8) -> &str {
        match id {
            OTHER_METHOD => "OTHER",
            i if (i as usize) < STANDARD_METHODS.len() => STANDARD_METHODS[i as usize].as_str(),
            i => self.methods.get(i as usize - STANDARD_METHODS.len()).map_or("OTHER", |m| m),
        }
    }
}

/// The series of one rule side, keyed by label identity so they outlive table swaps.
pub struct SideSeries {
    /// Escaped `namespace="…",ingress="…",service="…",path="…",canary="…"`.
    pub(crate) labels: Box<str>,
    inner: RwLock<Inner>,
}

impl SideSeries {
    pub fn new(labels: String, overflow_host: &str) -> Self {
        let inner = Inner {
            overflow_host: overflow_host.into(),
            hosts: FxMap::default(),
            host_names: Vec::new(),
            methods: Vec::new(),
            series: FxMap::default(),
        };
        SideSeries { labels: labels.into(), inner: RwLock::new(inner) }
    }

    /// Run `f` on the series of (`host`, `method`, `status`, `fault`), creating it on first
    /// use. `host` is already lower-case, portless, and `-` when absent.
    #[inline]
    pub fn with<R>(
        &self,
        host: &str,
        method: &Method,
        status: u16,
        fault: Fault,
        f: impl FnOnce(&RequestSeries) -> R,
    ) -> R {
        {
            let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = inner.key(host, method, status, fault).and_then(|k| inner.series.get(&k)) {
                return f(series);
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let key = inner.intern(host, method, status, fault);
        f(inner.series.entry(key).or_default())
    }

    /// Visit every series as (host, method, status, fault, series), in a stable order.
    pub fn for_each(&self, mut f: impl FnMut(&str, &str, u16, Fault, &RequestSeries)) {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<&SeriesKey> = inner.series.keys().collect();
        keys.sort_unstable();
        for key in keys {
            let host = match key.host {
                OVERFLOW_HOST => &*inner.overflow_host,
                id => inner.host_names.get(id as usize).map_or("-", |h| h),
            };
            if let Some(series) = inner.series.get(key) {
                f(host, inner.method_name(key.method), key.status, key.fault, series);
            }
        }
    }

    /// How many label combinations have been seen.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per-rule counters of weir's own, keyed like the request series.
pub struct RuleCounters {
    /// Escaped `namespace,ingress,host,path,path_type,canary` labels.
    pub(crate) labels: Box<str>,
    /// Weighted decisions that went to the other side for lack of endpoints (D3).
    pub fallbacks: Counter,
}

/// One rule's handles, resolved at install time; `Snapshot::metrics[i]` is route `i`'s.
pub struct RuleHandles {
    pub stable: Arc<SideSeries>,
    /// Series for requests the canary served; `None` when the rule has no canary.
    pub canary: Option<Arc<SideSeries>>,
    /// Series for requests each additional destination served, aligned with them.
    pub destinations: Vec<Arc<SideSeries>>,
    pub rule: Arc<RuleCounters>,
}
