//! The local canary guard (a rule's `canary.guard`): weir sees every answer the canary
//! gives, so it judges them itself. Over a sliding window it counts the canary's answers and
//! those that were backend faults (an upstream 5xx, or none: weir's 502/503/504); once at
//! least `minRequests` arrived and more than `errorPercent` percent were faults, the guard
//! trips, and from the next request on the rule's weight stage sends everything to stable
//! (`weir_config::pick_backend_guarded`). Header routes, canary-by-header and the cookie
//! still reach the canary, so testers can see what broke.
//!
//! A trip holds for as long as the guard does: a guard is its key (canary namespace, name,
//! revision) and policy, and lives across table swaps while some table in force has it, so a
//! pushed table that keeps the guard keeps the trip, and one with a new `revision` (the
//! canary's pod-template hash) starts afresh. Client faults (a 4xx, a client that went away)
//! and weir's own never count: a client cannot trip a canary by sending it broken requests.
//!
//! It says so: a warning in the log, `weir_canary_guard_tripped`, and `GET /guards` on the
//! admin listener, which the controller reads into its WeirRoute status and an Event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use weir_config::{Guard, RouteTable};

/// Slots of a guard's window: it slides in steps of a tenth of its length.
const SLOTS: usize = 10;

/// One guard's judgement, shared by every rule (and table) that has the guard.
#[derive(Debug)]
pub struct GuardState {
    pub policy: Guard,
    tripped: AtomicBool,
    trip: OnceLock<Trip>,
    window: Mutex<Window>,
}

/// What tripped a guard, and when.
#[derive(Debug, Clone, Copy)]
pub struct Trip {
    pub at: SystemTime,
    pub faults: u64,
    pub answers: u64,
}

/// Counts of the last [`SLOTS`] steps of the window.
#[derive(Debug)]
struct Window {
    origin: Instant,
    step: Duration,
    /// (step number, answers, faults), at index `step % SLOTS`.
    slots: [(u64, u64, u64); SLOTS],
}

impl Window {
    fn new(length: Duration) -> Self {
        Window { origin: Instant::now(), step: length / SLOTS as u32, slots: [(u64::MAX, 0, 0); SLOTS] }
    }

    /// Count one answer at `now` and return the window's (answers, faults).
    fn count(&mut self, now: Instant, fault: bool) -> (u64, u64) {
        let step =
            (now.saturating_duration_since(self.origin).as_nanos() / self.step.as_nanos().max(1)) as u64;
        let slot = &mut self.slots[(step % SLOTS as u64) as usize];
        if slot.0 != step {
            *slot = (step, 0, 0);
        }
        slot.1 += 1;
        slot.2 += u64::from(fault);
        self.totals(step)
    }

    fn totals(&self, step: u64) -> (u64, u64) {
        let oldest = step.saturating_sub(SLOTS as u64 - 1);
        self.slots
            .iter()
            .filter(|s| s.0 != u64::MAX && (oldest..=step).contains(&s.0))
            .fold((0, 0), |(a, f), s| (a + s.1, f + s.2))
    }

    fn now_totals(&self, now: Instant) -> (u64, u64) {
        let step =
            (now.saturating_duration_since(self.origin).as_nanos() / self.step.as_nanos().max(1)) as u64;
        self.totals(step)
    }
}

impl GuardState {
    fn new(policy: Guard) -> Self {
        let window = Mutex::new(Window::new(policy.window));
        GuardState { policy, tripped: AtomicBool::new(false), trip: OnceLock::new(), window }
    }

    /// Whether the guard has tripped: the one load the request path pays for a guarded rule.
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    pub fn trip(&self) -> Option<Trip> {
        self.trip.get().copied()
    }

    /// The canary answered a request; `fault` when the answer was a backend fault.
    pub fn observe(&self, fault: bool) {
        if self.is_tripped() {
            return;
        }
        let now = Instant::now();
        let (answers, faults) = self.window.lock().unwrap_or_else(|e| e.into_inner()).count(now, fault);
        if self.policy.trips(faults, answers) {
            let trip = Trip { at: SystemTime::now(), faults, answers };
            if self.trip.set(trip).is_ok() {
                self.tripped.store(true, Ordering::Relaxed);
                let k = &self.policy.key;
                tracing::warn!(
                    namespace = %k.namespace, guard = %k.name, revision = %k.revision, faults, answers,
                    window = ?self.policy.window,
                    "canary guard tripped: no more weighted traffic to the canary"
                );
            }
        }
    }

    /// The window's (answers, faults) now.
    pub fn window_counts(&self) -> (u64, u64) {
        self.window.lock().unwrap_or_else(|e| e.into_inner()).now_totals(Instant::now())
    }

    /// The guard's state for `GET /guards`.
    pub fn report(&self) -> serde_json::Value {
        let k = &self.policy.key;
        let (answers, faults) = self.window_counts();
        let mut v = serde_json::json!({
            "namespace": k.namespace,
            "name": k.name,
            "revision": k.revision,
            "errorPercent": self.policy.error_percent,
            "windowSeconds": self.policy.window.as_secs_f64(),
            "minRequests": self.policy.min_requests,
            "state": if self.is_tripped() { "Tripped" } else { "Armed" },
            "answers": answers,
            "faults": faults,
        });
        if let Some(t) = self.trip() {
            let at = t.at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            v["trippedAt"] = serde_json::json!(at.as_secs_f64());
            v["reason"] = serde_json::json!(format!(
                "backend faults {} of {} answers in {}s, over {}%",
                t.faults,
                t.answers,
                self.policy.window.as_secs(),
                self.policy.error_percent
            ));
        }
        v
    }
}

/// Every guard some table in force has, so a table swap finds the ones it keeps.
#[derive(Debug, Default)]
pub struct Guards {
    live: Mutex<HashMap<Guard, Weak<GuardState>>>,
}

impl Guards {
    /// Per route of `table`, its guard's state: the one already judging when a table in
    /// force has the same guard, else a fresh one.
    pub fn for_table(&self, table: &RouteTable) -> Vec<Option<Arc<GuardState>>> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|_, w| w.strong_count() > 0);
        table
            .routes()
            .iter()
            .map(|r| {
                let policy = r.canary.as_ref()?.guard.as_ref()?;
                if let Some(state) = live.get(policy).and_then(Weak::upgrade) {
                    return Some(state);
                }
                let state = Arc::new(GuardState::new(policy.clone()));
                live.insert(policy.clone(), Arc::downgrade(&state));
                Some(state)
            })
            .collect()
    }
}

/// The distinct guards of a snapshot's routes, in a stable order.
pub fn distinct(guards: &[Option<Arc<GuardState>>]) -> Vec<&Arc<GuardState>> {
    let mut out: Vec<&Arc<GuardState>> = guards.iter().flatten().collect();
    out.sort_by(|a, b| a.policy.key.cmp(&b.policy.key).then_with(|| Arc::as_ptr(a).cmp(&Arc::as_ptr(b))));
    out.dedup_by(|a, b| Arc::ptr_eq(a, b));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(text: &str) -> RouteTable {
        RouteTable::parse(&format!(
            "schema: weir/v1
hosts:
  - host: a.example
    rules:
      - path: /
        backend: {{ service: s, endpoints: [127.0.0.1:1] }}
        canary:
          backend: {{ namespace: shop, service: c, endpoints: [127.0.0.1:2] }}
          weight: 50
          guard: {text}
      - path: /other
        backend: {{ service: s, endpoints: [127.0.0.1:1] }}
        canary:
          backend: {{ namespace: shop, service: c, endpoints: [127.0.0.1:2] }}
          guard: {text}
      - path: /plain
        backend: {{ service: s, endpoints: [127.0.0.1:1] }}
"
        ))
        .expect("valid")
    }

    #[test]
    fn a_guard_trips_on_the_answer_that_crosses_its_share() {
        let t = guard("{ errorPercent: 20, window: 10s, minRequests: 10 }");
        let states = Guards::default().for_table(&t);
        let g = states[0].as_ref().unwrap();
        for _ in 0..7 {
            g.observe(false);
        }
        // 3 faults of 10: 30 % > 20 %, and the tenth answer is the minimum.
        g.observe(true);
        g.observe(true);
        assert!(!g.is_tripped(), "9 answers are too few to judge");
        g.observe(true);
        assert!(g.is_tripped());
        let trip = g.trip().unwrap();
        assert_eq!((trip.faults, trip.answers), (3, 10));
        assert_eq!(g.report()["state"], "Tripped");
        assert!(g.report()["reason"].as_str().unwrap().contains("3 of 10"), "{}", g.report());
    }

    #[test]
    fn a_healthy_canary_never_trips() {
        let t = guard("{ errorPercent: 20, window: 10s, minRequests: 10 }");
        let g = Guards::default().for_table(&t)[0].clone().unwrap();
        for i in 0..10_000 {
            g.observe(i % 10 == 0); // 10 %
        }
        assert!(!g.is_tripped());
        assert_eq!(g.window_counts(), (10_000, 1_000));
    }

    #[test]
    fn answers_older_than_the_window_are_forgotten() {
        let mut w = Window::new(Duration::from_secs(10));
        let t0 = w.origin;
        for _ in 0..5 {
            w.count(t0, true);
        }
        assert_eq!(w.count(t0 + Duration::from_secs(9), false), (6, 5));
        // 10.5 s on, the first second's slot has left the window.
        assert_eq!(w.count(t0 + Duration::from_millis(10_500), false), (2, 0));
        assert_eq!(w.now_totals(t0 + Duration::from_secs(60)), (0, 0));
    }

    #[test]
    fn a_trip_survives_a_swap_that_keeps_the_guard_and_not_a_new_revision() {
        let guards = Guards::default();
        let t = guard("{ errorPercent: 20, window: 10s, minRequests: 1, revision: a }");
        let first = guards.for_table(&t);
        // Two rules name one guard: one judgement.
        assert!(Arc::ptr_eq(first[0].as_ref().unwrap(), first[1].as_ref().unwrap()));
        assert!(first[2].is_none());
        first[1].as_ref().unwrap().observe(true);
        assert!(first[0].as_ref().unwrap().is_tripped());

        let again =
            guards.for_table(&guard("{ errorPercent: 20, window: 10s, minRequests: 1, revision: a }"));
        assert!(again[0].as_ref().unwrap().is_tripped(), "the same guard in the next table keeps its trip");
        let next = guards.for_table(&guard("{ errorPercent: 20, window: 10s, minRequests: 1, revision: b }"));
        assert!(!next[0].as_ref().unwrap().is_tripped(), "a new revision starts afresh");
        assert_eq!(distinct(&next).len(), 1);

        drop((first, again));
        let back = guards.for_table(&guard("{ errorPercent: 20, window: 10s, minRequests: 1, revision: a }"));
        assert!(!back[0].as_ref().unwrap().is_tripped(), "a guard no table held any more is gone");
    }
}
