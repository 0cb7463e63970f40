//! What makes `smtprobe web` safe to expose: where a check may connect, how often a
//! client may ask, and CSRF tokens.
//!
//! The server connects wherever a request says, so by default it refuses targets that
//! would turn it into a door into the network it runs in (SSRF): loopback, private,
//! shared (CGNAT), link-local (where 169.254.169.254, the cloud metadata service, lives),
//! multicast, unspecified, reserved and documentation ranges, in IPv4 and IPv6, and IPv6
//! forms that embed an IPv4 address (mapped, NAT64, 6to4). The check is made *after*
//! resolving, and the probe then connects to the vetted address (`Config::connect_to`),
//! so a DNS answer that changes between the check and the connect (rebinding) is never
//! used.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

/// Why an address is refused as a check target, or `None` when it is a public address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => refusal_v4(a),
        IpAddr::V6(a) => refusal_v6(a),
    }
}

fn refusal_v4(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    let why = if a.is_unspecified() || o[0] == 0 {
        "an unspecified (\"this network\") address"
    } else if a.is_loopback() {
        "a loopback address"
    } else if o == [169, 254, 169, 254] || o == [100, 100, 100, 200] {
        "a cloud metadata service address"
    } else if a.is_link_local() {
        "a link-local address"
    } else if a.is_private() {
        "a private address (RFC 1918)"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "a shared (carrier-grade NAT) address (RFC 6598)"
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        "an IETF protocol address (RFC 6890)"
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        "a benchmarking address (RFC 2544)"
    } else if a.is_documentation() {
        "a documentation address (RFC 5737)"
    } else if a.is_multicast() {
        "a multicast address"
    } else if a.is_broadcast() || o[0] >= 240 {
        "a reserved address"
    } else {
        return None;
    };
    Some(why)
}

fn refusal_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = a.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return refusal_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        if let Some(why) = refusal_v4(embedded(s[1], s[2])) {
            return Some(why);
        }
    }
    let why = if a.is_unspecified() {
        "an unspecified address"
    } else if a.is_loopback() {
        "a loopback address"
    } else if s[..6] == [0, 0, 0, 0, 0, 0] {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        return refusal_v4(embedded(s[6], s[7])).or(Some("a reserved address"));
    } else if s == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] {
        "a cloud metadata service address"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "a link-local address"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "a private (unique local) address"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "a site-local address"
    } else if (s[0] & 0xff00) == 0xff00 {
        "a multicast address"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "a documentation address (RFC 3849)"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "a discard-only address (RFC 6666)"
    } else {
        return None;
    };
    Some(why)
}

/// The rate limit's idea of one client: an IPv4 address, or an IPv6 /64 (one host
/// usually holds a whole /64 and could rotate through it).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Per-client token buckets: `per_minute` checks a minute, at most `per_minute` at once.
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Clients remembered at most; beyond it, idle (full) buckets are forgotten first.
const MAX_CLIENTS: usize = 10_000;

impl RateLimiter {
    /// `per_minute` 0 turns the limit off.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`; `Err(seconds)` says when the next one is due.
    pub fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let cap = f64::from(self.per_minute);
        let per_sec = cap / 60.0;
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_CLIENTS && !map.contains_key(&client) {
            map.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec < cap
            });
            if map.len() >= MAX_CLIENTS {
                return Err(60);
            }
        }
        let (tokens, at) = map.entry(client).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_sec).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

/// A fresh random token (32 bytes, hex) for the double-submit CSRF cookie.
pub fn new_token() -> Option<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two tokens without an early exit on the first differing byte.
pub fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && !a.is_empty()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refuses_every_internal_range_and_allows_public_ones() {
        for bad in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "192.0.0.170",
            "198.18.0.1",
            "192.0.2.1",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(refusal(ip).is_some(), "{bad} must be refused");
        }
        for good in [
            "142.250.102.108",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450:400c:c07::6c",
            "::ffff:142.250.102.108",
            "64:ff9b::8efa:666c",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert_eq!(refusal(ip), None, "{good} is public");
        }
        assert_eq!(
            refusal("169.254.169.254".parse().unwrap()),
            Some("a cloud metadata service address")
        );
    }

    #[test]
    fn rate_limit_refills_over_time_per_client() {
        let r = RateLimiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t = Instant::now();
        assert!(r.take(a, t).is_ok());
        assert!(r.take(a, t).is_ok());
        let wait = r.take(a, t).unwrap_err();
        assert_eq!(wait, 30, "one token every 30 s at 2 a minute");
        assert!(r.take(b, t).is_ok(), "another client has its own bucket");
        assert!(r.take(a, t + Duration::from_secs(31)).is_ok());
        assert!(RateLimiter::new(0).take(a, t).is_ok());
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(client_key(one), client_key(other), "one /64, one client");
        assert_eq!(client_key("::ffff:192.0.2.1".parse().unwrap()), a);
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token().unwrap());
        assert!(tokens_match(&t, &t.clone()));
        assert!(!tokens_match(&t, &t[..63]));
        assert!(!tokens_match("", ""));
    }
}
