//! Failed-authentication throttling, shared by every surface of a process.
//!
//! Per source address (an IPv4 address, or an IPv6 /64, which one holder
//! usually has whole), failures fill a leaky bucket: `burst` failures in a
//! row are allowed, `per_minute` are forgiven each minute, and an address
//! whose bucket is full is refused before any credential it sends is read
//! (HTTP 429, SQLSTATE 28000 over PostgreSQL wire, RESOURCE_EXHAUSTED over
//! Flight), until its bucket drains below full. Other addresses are not
//! affected.
//!
//! Per key id, failures only slow the next check of that key down (up to
//! [`MAX_KEY_DELAY`]): an attacker guessing one key's secret from many
//! addresses gains little, and the key's holder, with the right secret, is
//! never refused.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The longest a key's check is delayed.
pub const MAX_KEY_DELAY: Duration = Duration::from_secs(1);
/// Each recent failure against a key delays its next check this much more.
const KEY_DELAY_STEP: Duration = Duration::from_millis(50);
/// Addresses and keys followed at most; past it, drained entries are
/// dropped, and if that is not enough, all (the throttle forgets rather than
/// grows without bound).
const MAX_TRACKED: usize = 100_000;

/// `[throttle]`: failed authentications allowed per source address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failures an address may make in a row before it is refused; 0 turns
    /// throttling off.
    pub burst: u32,
    /// Failures forgiven per minute (the rate at which a refused address
    /// may try again).
    pub per_minute: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            burst: 20,
            per_minute: 30,
        }
    }
}

/// An address refused for now, and when it may try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl Throttled {
    /// Whole seconds, at least one (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

impl std::fmt::Display for Throttled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "too many failed attempts from this address: try again in {} s",
            self.retry_after_secs()
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    /// The level now, after draining `per_second` since it was last seen.
    fn drained(&self, per_second: f64, now: Instant) -> f64 {
        (self.level - per_second * now.duration_since(self.at).as_secs_f64()).max(0.0)
    }
}

/// The throttle of one process.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    addresses: Mutex<HashMap<IpAddr, Bucket>>,
    keys: Mutex<HashMap<String, Bucket>>,
    failures: AtomicU64,
    refusals: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(ThrottleConfig::default())
    }
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            addresses: Mutex::default(),
            keys: Mutex::default(),
            failures: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.config.per_minute) / 60.0
    }

    /// Before a credential from `peer` is read: refused while its bucket is full.
    pub fn admit(&self, peer: IpAddr) -> Result<(), Throttled> {
        if self.config.burst == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let addresses = self.addresses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(bucket) = addresses.get(&source(peer)) else {
            return Ok(());
        };
        // Admitted while one more failure would still fit in the bucket.
        let over = bucket.drained(self.per_second(), now) + 1.0 - f64::from(self.config.burst);
        if over <= 0.0 {
            return Ok(());
        }
        self.refusals.fetch_add(1, Ordering::Relaxed);
        let per_second = self.per_second();
        let retry_after = if per_second > 0.0 {
            Duration::from_secs_f64(over / per_second)
        } else {
            Duration::from_secs(3600)
        };
        Err(Throttled { retry_after })
    }

    /// A credential from `peer` (for key `key_id`, if it named one) failed.
    pub fn failed(&self, peer: Option<IpAddr>, key_id: Option<&str>) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if self.config.burst == 0 {
            return;
        }
        let now = Instant::now();
        let per_second = self.per_second();
        if let Some(peer) = peer {
            let mut addresses = self.addresses.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            fill(&mut addresses, source(peer), per_second, now);
        }
        if let Some(key_id) = key_id {
            let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            fill(&mut keys, key_id.to_string(), per_second, now);
        }
    }

    /// How long to wait before checking a secret for `key_id`: longer the
    /// more it failed lately, never a refusal.
    pub fn key_delay(&self, key_id: &str) -> Duration {
        if self.config.burst == 0 {
            return Duration::ZERO;
        }
        let keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let level = keys
            .get(key_id)
            .map_or(0.0, |b| b.drained(self.per_second(), Instant::now()));
        KEY_DELAY_STEP.mul_f64(level).min(MAX_KEY_DELAY)
    }

    /// Failed authentications so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Attempts refused for too many failures so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }
}

fn fill<K: std::hash::Hash + Eq>(buckets: &mut HashMap<K, Bucket>, key: K, per_second: f64, now: Instant) {
    if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&key) {
        buckets.retain(|_, b| b.drained(per_second, now) > 0.0);
        if buckets.len() >= MAX_TRACKED {
            buckets.clear();
        }
    }
    let bucket = buckets.entry(key).or_insert(Bucket { level: 0.0, at: now });
    bucket.level = bucket.drained(per_second, now) + 1.0;
    bucket.at = now;
}

/// What one holder has: an IPv4 address, an IPv6 /64 (IPv4-mapped IPv6 is IPv4).
fn source(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn an_address_is_refused_after_its_burst_and_others_are_not() {
        let throttle = Throttle::new(ThrottleConfig {
            burst: 3,
            per_minute: 60,
        });
        let attacker = ip("127.0.0.1");
        for _ in 0..3 {
            throttle.admit(attacker).expect("within the burst");
            throttle.failed(Some(attacker), None);
        }
        let refused = throttle.admit(attacker).expect_err("over the burst");
        assert!(refused.retry_after <= Duration::from_secs(1), "{refused:?}");
        assert!(refused.to_string().contains("too many failed attempts"));
        throttle.admit(ip("127.0.0.2")).expect("another address");
        assert_eq!((throttle.failures(), throttle.refusals()), (3, 1));
        // It drains: a second later one more attempt is allowed.
        std::thread::sleep(Duration::from_millis(1100));
        throttle.admit(attacker).expect("drained by one");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let throttle = Throttle::new(ThrottleConfig {
            burst: 2,
            per_minute: 0,
        });
        throttle.failed(Some(ip("2001:db8:1:2::1")), None);
        throttle.failed(Some(ip("2001:db8:1:2::ffff")), None);
        assert!(throttle.admit(ip("2001:db8:1:2:abcd::9")).is_err(), "the same /64");
        throttle.admit(ip("2001:db8:1:3::1")).expect("another /64");
        throttle.failed(Some(ip("::ffff:10.0.0.1")), None);
        throttle.failed(Some(ip("10.0.0.1")), None);
        assert!(throttle.admit(ip("10.0.0.1")).is_err(), "mapped IPv4 is IPv4");
    }

    #[test]
    fn a_key_is_delayed_never_refused() {
        let throttle = Throttle::default();
        assert_eq!(throttle.key_delay("k1"), Duration::ZERO);
        for _ in 0..1000 {
            throttle.failed(None, Some("k1"));
        }
        assert_eq!(throttle.key_delay("k1"), MAX_KEY_DELAY);
        assert_eq!(throttle.key_delay("k2"), Duration::ZERO);
    }

    #[test]
    fn zero_burst_turns_it_off() {
        let throttle = Throttle::new(ThrottleConfig {
            burst: 0,
            per_minute: 0,
        });
        for _ in 0..100 {
            throttle.failed(Some(ip("127.0.0.1")), Some("k"));
        }
        throttle.admit(ip("127.0.0.1")).expect("off");
        assert_eq!(throttle.key_delay("k"), Duration::ZERO);
    }
}
