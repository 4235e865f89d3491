//! Rate limits: how many requests a client may make per window, per class of route, and how
//! many failed sign-ins an address or an account may make, after which sign-ins are refused
//! without looking at the password (so guessing gets nowhere and costs us nothing). Fixed
//! windows, counted in memory; the keys remembered are bounded, and when the table is full of
//! live keys a new key is let through uncounted rather than locking everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use wharf_core::{Error, Result};

/// Keys remembered per limiter.
const MAX_KEYS: usize = 200_000;

/// The classes of routes the Hub limits separately (its `RateLimit-Policy` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateClass {
    /// `/api/…` calls.
    Api,
    /// File downloads and transfers: resolve, git, LFS, Xet.
    Resolvers,
    /// Web pages and forms.
    Pages,
}

impl RateClass {
    pub fn name(self) -> &'static str {
        match self {
            RateClass::Api => "api",
            RateClass::Resolvers => "resolvers",
            RateClass::Pages => "pages",
        }
    }
}

/// The limits, per window (`0` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub window: Duration,
    pub api: u32,
    pub resolvers: u32,
    pub pages: u32,
    /// Failed sign-ins per address, and per account, per window.
    pub auth_failures: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            window: Duration::from_secs(300),
            api: 3_000,
            resolvers: 30_000,
            pages: 3_000,
            auth_failures: 10,
        }
    }
}

impl RateLimits {
    /// No limits at all (`--rate-limits off`).
    pub fn off() -> RateLimits {
        RateLimits {
            api: 0,
            resolvers: 0,
            pages: 0,
            auth_failures: 0,
            ..RateLimits::default()
        }
    }

    /// Parses `off`, or `api=N,resolvers=N,pages=N,auth=N,window=SECS` (any subset; the rest
    /// keeps its default).
    pub fn parse(spec: &str) -> std::result::Result<RateLimits, String> {
        let spec = spec.trim();
        if spec.eq_ignore_ascii_case("off") {
            return Ok(RateLimits::off());
        }
        let mut limits = RateLimits::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got '{part}'"))?;
            let n: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("not a number in '{part}'"))?;
            match key.trim() {
                "api" => limits.api = n,
                "resolvers" => limits.resolvers = n,
                "pages" => limits.pages = n,
                "auth" => limits.auth_failures = n,
                "window" if n > 0 => limits.window = Duration::from_secs(u64::from(n)),
                other => return Err(format!("unknown rate limit '{other}'")),
            }
        }
        Ok(limits)
    }

    pub fn of(&self, class: RateClass) -> u32 {
        match class {
            RateClass::Api => self.api,
            RateClass::Resolvers => self.resolvers,
            RateClass::Pages => self.pages,
        }
    }
}

/// Where a client stands in the current window, for the `RateLimit` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateStatus {
    pub class: RateClass,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window turns.
    pub reset: u32,
    pub window: u32,
}

/// Fixed-window counters keyed by string.
#[derive(Default)]
struct Counters {
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Counters {
    /// Adds one to `key`'s count unless it is already at `limit`; returns the count after
    /// this call (`limit + 1` when refused) and the seconds left in the window.
    fn hit(&self, key: &str, limit: u32, window: Duration, now: Instant) -> (u32, u32) {
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !map.contains_key(key) && map.len() >= MAX_KEYS {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
            if map.len() >= MAX_KEYS {
                return (1, window.as_secs() as u32);
            }
        }
        let slot = map.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(slot.0) >= window {
            *slot = (now, 0);
        }
        let left = window.saturating_sub(now.duration_since(slot.0)).as_secs() as u32;
        if slot.1 >= limit {
            return (limit.saturating_add(1), left.max(1));
        }
        slot.1 += 1;
        (slot.1, left.max(1))
    }

    /// The count of `key` in its live window, and the seconds left in it.
    fn peek(&self, key: &str, window: Duration, now: Instant) -> (u32, u32) {
        let map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match map.get(key) {
            Some((start, n)) if now.duration_since(*start) < window => {
                let left = window.saturating_sub(now.duration_since(*start)).as_secs();
                (*n, (left as u32).max(1))
            }
            _ => (0, 0),
        }
    }
}

/// The request limiter and the sign-in failure limiter of one server.
pub struct RateLimiter {
    limits: Mutex<RateLimits>,
    requests: Counters,
    failures: Counters,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            limits: Mutex::new(RateLimits::default()),
            requests: Counters::default(),
            failures: Counters::default(),
        }
    }
}

impl RateLimiter {
    pub fn configure(&self, limits: RateLimits) {
        match self.limits.lock() {
            Ok(mut l) => *l = limits,
            Err(poisoned) => *poisoned.into_inner() = limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> RateLimits {
        match self.limits.lock() {
            Ok(l) => *l,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Counts one request of `client` in `class`. `Ok(None)` when the class is unlimited;
    /// `Err(TooManyRequests)` once the window's limit is used up.
    pub fn request(&self, class: RateClass, client: &str) -> Result<Option<RateStatus>> {
        self.request_at(class, client, Instant::now())
    }

    fn request_at(
        &self,
        class: RateClass,
        client: &str,
        now: Instant,
    ) -> Result<Option<RateStatus>> {
        let limits = self.limits();
        let limit = limits.of(class);
        if limit == 0 {
            return Ok(None);
        }
        let key = format!("{}\n{client}", class.name());
        let (count, reset) = self.requests.hit(&key, limit, limits.window, now);
        let status = RateStatus {
            class,
            limit,
            remaining: limit.saturating_sub(count),
            reset,
            window: limits.window.as_secs() as u32,
        };
        if count > limit {
            return Err(Error::too_many_requests(
                reset,
                format!(
                    "You have exceeded the rate limit for {} requests ({limit} per {} seconds); \
                     try again in {reset} seconds",
                    class.name(),
                    status.window
                ),
            ));
        }
        Ok(Some(status))
    }

    /// Refuses a sign-in attempt from `origin` (an address) for `account` when either has used
    /// up its failures in this window. Checked before any password is looked at.
    pub(crate) fn check_sign_in(&self, origin: &str, account: Option<&str>) -> Result<()> {
        self.check_sign_in_at(origin, account, Instant::now())
    }

    fn check_sign_in_at(&self, origin: &str, account: Option<&str>, now: Instant) -> Result<()> {
        let limits = self.limits();
        if limits.auth_failures == 0 {
            return Ok(());
        }
        for (key, allowed) in sign_in_keys(origin, account, limits.auth_failures)
            .into_iter()
            .flatten()
        {
            let (failures, reset) = self.failures.peek(&key, limits.window, now);
            if failures >= allowed {
                return Err(Error::too_many_requests(
                    reset,
                    format!("Too many failed sign-in attempts; try again in {reset} seconds"),
                ));
            }
        }
        Ok(())
    }

    /// Records a failed sign-in from `origin` for `account`.
    pub(crate) fn sign_in_failed(&self, origin: &str, account: Option<&str>) {
        self.sign_in_failed_at(origin, account, Instant::now())
    }

    fn sign_in_failed_at(&self, origin: &str, account: Option<&str>, now: Instant) {
        let limits = self.limits();
        if limits.auth_failures == 0 {
            return;
        }
        for (key, _) in sign_in_keys(origin, account, limits.auth_failures)
            .into_iter()
            .flatten()
        {
            self.failures.hit(&key, u32::MAX, limits.window, now);
        }
    }
}

/// An address may fail this many times more than one account: several people (or one client
/// with a stale token) can share an address.
const ADDRESS_FACTOR: u32 = 5;

/// The failure keys of a sign-in with the failures each allows: the address, and the account
/// (case-insensitively).
fn sign_in_keys(origin: &str, account: Option<&str>, limit: u32) -> [Option<(String, u32)>; 2] {
    [
        Some((
            format!("addr\n{origin}"),
            limit.saturating_mul(ADDRESS_FACTOR),
        )),
        account.map(|a| (format!("account\n{}", a.to_ascii_lowercase()), limit)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(spec: &str) -> RateLimiter {
        let l = RateLimiter::default();
        l.configure(RateLimits::parse(spec).expect("spec"));
        l
    }

    #[test]
    fn requests_are_limited_per_client_and_window() {
        let l = limiter("api=3,window=60");
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            let s = l
                .request_at(RateClass::Api, "a", t0)
                .expect("ok")
                .expect("limited");
            assert_eq!((s.limit, s.remaining, s.window), (3, left, 60));
        }
        let e = l.request_at(RateClass::Api, "a", t0).expect_err("over");
        assert_eq!(
            e.kind,
            wharf_core::ErrorKind::TooManyRequests { retry_after: 60 }
        );
        assert!(
            l.request_at(RateClass::Api, "b", t0).is_ok(),
            "another client"
        );
        assert!(
            l.request_at(RateClass::Resolvers, "a", t0).is_ok(),
            "another class"
        );
        let later = t0 + Duration::from_secs(60);
        assert!(
            l.request_at(RateClass::Api, "a", later).is_ok(),
            "next window"
        );
    }

    #[test]
    fn sign_in_failures_lock_the_address_and_the_account() {
        let l = limiter("auth=3,window=60");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_sign_in_at("1.2.3.4", Some("alice"), t0).is_ok());
            l.sign_in_failed_at("1.2.3.4", Some("alice"), t0);
        }
        assert!(
            l.check_sign_in_at("5.6.7.8", Some("ALICE"), t0).is_err(),
            "same account"
        );
        assert!(
            l.check_sign_in_at("1.2.3.4", Some("bob"), t0).is_ok(),
            "address not yet"
        );
        for i in 0..12 {
            l.sign_in_failed_at("1.2.3.4", Some(&format!("u{i}")), t0);
        }
        assert!(
            l.check_sign_in_at("1.2.3.4", Some("bob"), t0).is_err(),
            "address at 5x"
        );
        assert!(
            l.check_sign_in_at("1.2.3.4", None, t0).is_err(),
            "tokens too"
        );
        assert!(l.check_sign_in_at("5.6.7.8", Some("bob"), t0).is_ok());
        let later = t0 + Duration::from_secs(61);
        assert!(l.check_sign_in_at("1.2.3.4", Some("alice"), later).is_ok());
    }

    #[test]
    fn specs_parse() {
        assert_eq!(RateLimits::parse("off"), Ok(RateLimits::off()));
        let l = RateLimits::parse("api=10, auth=0,window=30").expect("spec");
        assert_eq!((l.api, l.auth_failures, l.window.as_secs()), (10, 0, 30));
        assert_eq!(l.resolvers, RateLimits::default().resolvers);
        assert!(RateLimits::parse("api").is_err());
        assert!(RateLimits::parse("speed=3").is_err());
        assert!(RateLimits::parse("api=lots").is_err());
    }

    #[test]
    fn unlimited_classes_are_not_counted() {
        let l = limiter("off");
        assert_eq!(l.request(RateClass::Api, "a").expect("ok"), None);
    }
}
