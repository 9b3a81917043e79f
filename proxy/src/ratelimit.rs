//! Rate limits (`weir_config::ratelimit`): per zone, per client address, nginx's
//! `limit_req` (a leaky bucket with a burst, `nodelay`) and `limit_conn` (requests in
//! progress). A zone's clients live in 64 shards, each behind its own lock held for a few
//! arithmetic steps: no lock is shared by all requests. Zones survive table swaps while a
//! table keeps them (same name and limits), so a reload does not reset anyone's count.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use weir_config::ratelimit::{Rate, RateLimit};
use weir_config::RouteTable;

const SHARDS: usize = 64;
/// Clients kept per shard before idle ones are forgotten (about 260,000 per zone).
const SHARD_CLIENTS: usize = 4096;

/// Which limit refused a request (the metric's `limit` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    PerSecond,
    PerMinute,
    Connections,
}

impl Limited {
    pub fn as_str(self) -> &'static str {
        match self {
            Limited::PerSecond => "rps",
            Limited::PerMinute => "rpm",
            Limited::Connections => "connections",
        }
    }
}

/// What a zone is keyed by: its name and limits.
type ZoneKey = (String, Option<Rate>, Option<Rate>, Option<u32>);

/// One zone's clients.
pub struct Zone {
    key: ZoneKey,
    shards: Vec<Mutex<HashMap<IpAddr, Client>>>,
    hasher: std::collections::hash_map::RandomState,
    /// Limited requests by limit: rps, rpm, connections.
    limited: [AtomicU64; 3],
}

#[derive(Default)]
struct Client {
    second: Bucket,
    minute: Bucket,
    in_progress: u32,
}

/// nginx's `limit_req` state: the excess over the rate, in requests, at `at`.
#[derive(Default)]
struct Bucket {
    excess: f64,
    at: Option<Instant>,
}

impl Bucket {
    /// The excess after one more request now, or `None` when that is over the burst.
    fn next(&self, rate: &Rate, now: Instant) -> Option<f64> {
        let Some(at) = self.at else { return Some(0.0) };
        let per_sec = f64::from(rate.requests) / f64::from(rate.per_secs);
        let drained = (self.excess - per_sec * now.saturating_duration_since(at).as_secs_f64()).max(0.0);
        let excess = drained + 1.0;
        (excess <= f64::from(rate.burst)).then_some(excess)
    }

    fn idle(&self, rate: Option<&Rate>, now: Instant) -> bool {
        match (rate, self.at) {
            (Some(r), Some(at)) => {
                let per_sec = f64::from(r.requests) / f64::from(r.per_secs);
                self.excess - per_sec * now.saturating_duration_since(at).as_secs_f64() <= 0.0
            }
            _ => true,
        }
    }
}

/// A request in progress counted against `limit-connections`: released when dropped (the
/// record holds it until the answer's body ends).
pub struct Slot {
    zone: Arc<Zone>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut shard = self.zone.shard(self.client);
        if let Some(c) = shard.get_mut(&self.client) {
            c.in_progress = c.in_progress.saturating_sub(1);
        }
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").field("zone", &self.zone.key.0).field("client", &self.client).finish()
    }
}

impl Zone {
    fn new(key: ZoneKey) -> Zone {
        Zone {
            key,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            limited: Default::default(),
        }
    }

    fn shard(&self, client: IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        let i = (self.hasher.hash_one(client) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit one request of `client` under `limit`, or say which limit refuses it (and
    /// count it). A refused request leaves the client's counts as they were.
    pub fn admit(self: &Arc<Self>, limit: &RateLimit, client: IpAddr) -> Result<Option<Slot>, Limited> {
        let now = Instant::now();
        let mut shard = self.shard(client);
        if shard.len() >= SHARD_CLIENTS && !shard.contains_key(&client) {
            forget_idle(&mut shard, limit, now);
        }
        let c = shard.entry(client).or_default();
        let refuse = |which: Limited| {
            self.limited[which as usize].fetch_add(1, Ordering::Relaxed);
            Err(which)
        };
        let second = match &limit.per_second {
            Some(r) => match c.second.next(r, now) {
                Some(e) => Some(e),
                None => return refuse(Limited::PerSecond),
            },
            None => None,
        };
        let minute = match &limit.per_minute {
            Some(r) => match c.minute.next(r, now) {
                Some(e) => Some(e),
                None => return refuse(Limited::PerMinute),
            },
            None => None,
        };
        if limit.connections.is_some_and(|max| c.in_progress >= max) {
            return refuse(Limited::Connections);
        }
        if let Some(e) = second {
            c.second = Bucket { excess: e, at: Some(now) };
        }
        if let Some(e) = minute {
            c.minute = Bucket { excess: e, at: Some(now) };
        }
        if limit.connections.is_none() {
            return Ok(None);
        }
        c.in_progress += 1;
        drop(shard);
        Ok(Some(Slot { zone: self.clone(), client }))
    }
}

/// Make room in a full shard: forget clients with nothing in progress whose buckets have
/// drained (they would start afresh anyway); if none has, forget some with nothing in
/// progress, as nginx's zone forgets its least recent clients when full.
fn forget_idle(shard: &mut HashMap<IpAddr, Client>, limit: &RateLimit, now: Instant) {
    shard.retain(|_, c| {
        c.in_progress > 0
            || !(c.second.idle(limit.per_second.as_ref(), now)
                && c.minute.idle(limit.per_minute.as_ref(), now))
    });
    if shard.len() >= SHARD_CLIENTS {
        let drop: Vec<IpAddr> = shard
            .iter()
            .filter(|(_, c)| c.in_progress == 0)
            .map(|(ip, _)| *ip)
            .take(SHARD_CLIENTS / 8)
            .collect();
        for ip in drop {
            shard.remove(&ip);
        }
    }
}

/// The zones tables in force have, so that a swap keeps those the new table keeps.
#[derive(Default)]
pub struct RateLimits {
    zones: Mutex<HashMap<ZoneKey, Weak<Zone>>>,
}

impl RateLimits {
    /// Each route's zone (by route index), the same `Arc` for routes of one zone, an
    /// existing zone for a key the previous table had.
    pub fn for_table(&self, table: &RouteTable) -> Vec<Option<Arc<Zone>>> {
        let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        zones.retain(|_, z| z.strong_count() > 0);
        table
            .routes()
            .iter()
            .map(|r| {
                let limit = r.rate_limit.as_ref()?;
                let key = (limit.zone.clone(), limit.per_second, limit.per_minute, limit.connections);
                if let Some(z) = zones.get(&key).and_then(Weak::upgrade) {
                    return Some(z);
                }
                let z = Arc::new(Zone::new(key.clone()));
                zones.insert(key, Arc::downgrade(&z));
                Some(z)
            })
            .collect()
    }
}

/// The distinct zones of a snapshot, for the metrics.
pub fn distinct(zones: &[Option<Arc<Zone>>]) -> Vec<&Arc<Zone>> {
    let mut out: Vec<&Arc<Zone>> = zones.iter().flatten().collect();
    out.sort_by(|a, b| a.key.0.cmp(&b.key.0).then_with(|| Arc::as_ptr(a).cmp(&Arc::as_ptr(b))));
    out.dedup_by(|a, b| Arc::ptr_eq(a, b));
    out
}

impl Zone {
    /// The zone's name.
    pub fn name(&self) -> &str {
        &self.key.0
    }

    /// Requests this zone refused under `which`.
    pub fn limited(&self, which: Limited) -> u64 {
        self.limited[which as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_allows_the_burst_plus_one_then_the_rate() {
        let rate = Rate { requests: 10, per_secs: 1, burst: 5 };
        let t0 = Instant::now();
        let mut b = Bucket::default();
        let mut allowed = 0;
        for _ in 0..20 {
            if let Some(e) = b.next(&rate, t0) {
                b = Bucket { excess: e, at: Some(t0) };
                allowed += 1;
            }
        }
        assert_eq!(allowed, 6, "nginx: the first request, then burst more at once");
        // 100 ms later one more has drained.
        let t1 = t0 + Duration::from_millis(100);
        assert!(b.next(&rate, t1).is_some());
        assert!(b.next(&rate, t0 + Duration::from_millis(50)).is_none());
    }
}
