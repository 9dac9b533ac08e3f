//! Per-source throttling of failed device proofs: a leaky bucket per source address (IPv6 by /64,
//! since one host owns a whole /64) that fills by one per failure and drains at `limit` per
//! minute. A source whose bucket is full gets 429 with `Retry-After` until it drains below the
//! limit, whatever it asks for. Unchallenged requests do not count: a phone's first try is always
//! without credentials.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use dashmap::DashMap;

/// Above this many tracked sources, drained buckets are dropped.
const MAX_TRACKED: usize = 100_000;

pub struct FailureLimiter {
    /// Failures per minute a source may make.
    limit: f64,
    buckets: DashMap<IpAddr, (f64, Instant)>,
}

impl FailureLimiter {
    pub fn new(failures_per_minute: u32) -> FailureLimiter {
        FailureLimiter { limit: f64::from(failures_per_minute.max(1)), buckets: DashMap::new() }
    }

    fn rate_per_second(&self) -> f64 {
        self.limit / 60.0
    }

    fn drained(&self, level: f64, since: Instant, now: Instant) -> f64 {
        (level - now.saturating_duration_since(since).as_secs_f64() * self.rate_per_second()).max(0.0)
    }

    /// `Err(retry_after)` while `ip` is throttled.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.buckets.get(&source_key(ip)) else {
            return Ok(());
        };
        // Throttled while there is no room for one more failure within the limit.
        let level = self.drained(bucket.0, bucket.1, now);
        let threshold = self.limit - 1.0;
        if level <= threshold {
            return Ok(());
        }
        let wait = (level - threshold) / self.rate_per_second();
        Err(Duration::from_secs_f64(wait.ceil().max(1.0)))
    }

    /// Counts one failure from `ip`.
    pub fn record_failure(&self, ip: IpAddr, now: Instant) {
        if self.buckets.len() > MAX_TRACKED {
            self.buckets.retain(|_, (level, since)| self.drained(*level, *since, now) > 0.0);
        }
        let mut bucket = self.buckets.entry(source_key(ip)).or_insert((0.0, now));
        let level = self.drained(bucket.0, bucket.1, now);
        // Capped a little above the limit, so a source that keeps trying is not locked out forever.
        *bucket = ((level + 1.0).min(self.limit * 2.0), now);
    }
}

/// IPv4 as is (also when IPv4-mapped), IPv6 by its /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_the_limit_and_recovers() {
        let limiter = FailureLimiter::new(3);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(ip, t0).is_ok());
            limiter.record_failure(ip, t0);
        }
        let wait = limiter.check(ip, t0).unwrap_err();
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check(other, t0).is_ok());
        assert!(limiter.check(ip, t0 + Duration::from_secs(21)).is_ok());
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        let limiter = FailureLimiter::new(1);
        let t0 = Instant::now();
        limiter.record_failure("2001:db8:1:2::1".parse().unwrap(), t0);
        assert!(limiter.check("2001:db8:1:2::ffff".parse().unwrap(), t0).is_err());
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap(), t0).is_ok());
        limiter.record_failure("::ffff:192.0.2.1".parse().unwrap(), t0);
        assert!(limiter.check("192.0.2.1".parse().unwrap(), t0).is_err());
    }
}
