//! A request budget per operator: one operator's tool in a loop slows down alone instead of
//! filling the node's concurrency limit and starving everyone else, service traffic included.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// A token bucket per caller: `per_second` requests a second on average, `burst` at once.
#[derive(Debug)]
pub struct RequestBudget {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Callers whose buckets are kept at most; past that, full buckets are forgotten (a forgotten
/// caller starts again with a full bucket, which it had anyway).
const CALLERS: usize = 10_000;

impl RequestBudget {
    /// `per_second` requests a second per caller, up to `burst` at once.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Takes one request from `caller`'s budget; `Err` with how long until one is free.
    pub fn spend(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("not poisoned");
        if buckets.len() >= CALLERS && !buckets.contains_key(caller) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| {
                let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
                bucket.tokens + elapsed * per_second < burst
            });
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_spends_its_own_budget_only() {
        let budget = RequestBudget::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(budget.spend("alice", start).is_ok());
        }
        let wait = budget.spend("alice", start).unwrap_err();
        assert!(wait <= Duration::from_millis(100));
        assert!(budget.spend("bob", start).is_ok(), "bob has his own bucket");
        assert!(
            budget
                .spend("alice", start + Duration::from_millis(100))
                .is_ok(),
            "refilled at 10 a second"
        );
    }
}
