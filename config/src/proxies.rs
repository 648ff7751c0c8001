//! The proxies (load balancers) in front of the API whose `X-Forwarded-For` is believed.

use std::net::IpAddr;

/// The proxies (load balancers) in front of the API whose `X-Forwarded-For` is believed: IP
/// addresses and CIDR ranges. A request from one of them is from the rightmost address of its
/// `X-Forwarded-For` that is not one of them (the client as the first trusted proxy saw it);
/// from anyone else, the header is ignored (a client cannot name its own address).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// From `10.0.0.0/8`, `192.0.2.10`, `2001:db8::/32`; the first that does not parse is the
    /// error.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> std::result::Result<Self, String> {
        let mut ranges = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let (addr, prefix) = entry.split_once('/').unwrap_or((entry, ""));
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("'{entry}' is not an IP address or CIDR range"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = if prefix.is_empty() {
                max
            } else {
                prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("'{entry}' has no valid prefix length"))?
            };
            ranges.push((addr, prefix));
        }
        Ok(TrustedProxies(ranges))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
                IpAddr::V6(v6) => (u128::from(v6), 128),
            }
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|(net, prefix)| {
            let ((a, width), (b, other)) = (bits(*net), bits(ip));
            // Both left-aligned in 128 bits: the top `prefix` bits decide.
            let shift = 128 - u32::from(*prefix);
            width == other && (*prefix == 0 || (a >> shift) == (b >> shift))
        })
    }

    /// The client's address: the peer, or for a trusted peer what `X-Forwarded-For` says.
    pub fn client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let Some(chain) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in chain.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                // Not an address: nothing to its left can be believed.
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.10", "2001:db8::/32"]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // From the balancer: the rightmost untrusted hop (a client's own claim to its left is
        // not believed).
        assert_eq!(
            proxies.client(ip("10.1.2.3"), Some("198.51.100.1, 203.0.113.9, 10.9.9.9")),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client(ip("192.0.2.10"), Some("203.0.113.9")),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client(ip("2001:db8::1"), Some("2001:db9::7")),
            ip("2001:db9::7")
        );
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), Some("203.0.113.9")),
            ip("203.0.113.9")
        );
        // From anyone else, or without the header, or garbage: the peer.
        assert_eq!(
            proxies.client(ip("203.0.113.50"), Some("1.2.3.4")),
            ip("203.0.113.50")
        );
        assert_eq!(proxies.client(ip("10.1.2.3"), None), ip("10.1.2.3"));
        assert_eq!(
            proxies.client(ip("10.1.2.3"), Some("not-an-ip")),
            ip("10.1.2.3")
        );
        assert_eq!(
            proxies.client(ip("192.0.2.11"), Some("1.2.3.4")),
            ip("192.0.2.11")
        );
        assert_eq!(
            TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err(),
            "'10.0.0.0/33' has no valid prefix length"
        );
        assert!(TrustedProxies::parse(&["balancer"]).is_err());
    }
}
