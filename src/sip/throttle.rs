//! Throttling of password guessing: digest failures are counted per source address in a sliding
//! one-minute window; past the configured number, that address is refused for the rest of the
//! window without any digest being computed. Each refusal start is logged once, in a stable
//! one-line form that fail2ban-style tools can match.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use dashmap::DashMap;

const WINDOW: Duration = Duration::from_secs(60);

pub struct AuthThrottle {
    limit: u32,
    failures: DashMap<IpAddr, (Instant, u32)>,
}

impl AuthThrottle {
    pub fn new(limit: u32) -> AuthThrottle {
        AuthThrottle { limit, failures: DashMap::new() }
    }

    /// Seconds until `ip` may try again, when it is throttled now.
    pub fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let entry = self.failures.get(&ip)?;
        let (since, count) = *entry;
        let elapsed = since.elapsed();
        if count >= self.limit && elapsed < WINDOW {
            Some((WINDOW - elapsed).as_secs().max(1))
        } else {
            None
        }
    }

    /// Counts one failure from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let mut entry = self.failures.entry(ip).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        if entry.1 == self.limit {
            tracing::warn!(target: "deskline::auth", "sip auth throttled source {ip} after {} failures", self.limit);
        }
    }

    /// Forgets addresses whose window has passed (called from a periodic task).
    pub fn prune(&self) {
        self.failures.retain(|_, (since, _)| since.elapsed() < WINDOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit() {
        let t = AuthThrottle::new(3);
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        for _ in 0..2 {
            t.failed(ip);
        }
        assert!(t.blocked_for(ip).is_none());
        t.failed(ip);
        assert!(t.blocked_for(ip).is_some());
        assert!(t.blocked_for("127.0.0.10".parse().unwrap()).is_none());
    }
}
