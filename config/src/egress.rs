//! Where the platform may connect on a tenant's behalf.
//!
//! A bank URL is a place the worker sends credentials to, from inside the platform's network.
//! Left to a tenant, it could name the cloud's metadata service (169.254.169.254), a database
//! on the private network, or the worker's own loopback. So bank addresses come from the
//! platform's custodian registry, and every address a bank's host name resolves to must be a
//! public one unless the platform allows private ones (`egress.allow_private_addresses`: tests
//! and the demo, whose simulator listens on loopback). The check runs where a URL is accepted
//! (the API) and again on every connection the worker opens (its resolver), so a name that
//! resolves differently later (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

/// Why a URL may not be connected to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    #[error("'{0}' is not an https:// URL with a host")]
    NotHttps(String),
    #[error("'{0}' is not an http:// or https:// URL with a host and without user info")]
    NotHttp(String),
    #[error(
        "{host} resolves to {addr}, a loopback, private, link-local or reserved address; bank addresses must be public (egress.allow_private_addresses)"
    )]
    PrivateAddress { host: String, addr: IpAddr },
    #[error("{host} does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("{host} is not among the hosts the custodian registry allows for {custodian}")]
    HostNotAllowed { host: String, custodian: String },
}

impl EgressError {
    /// True when the failure may heal by itself (a name that does not resolve now).
    pub fn is_transient(&self) -> bool {
        matches!(self, EgressError::Unresolvable { .. })
    }
}

/// The platform's rule for outbound bank connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    pub allow_private_addresses: bool,
}

impl EgressPolicy {
    pub fn from_settings(settings: &crate::EgressSettings) -> Self {
        EgressPolicy {
            allow_private_addresses: settings.allow_private_addresses,
        }
    }

    /// Refuses an address the policy does not allow.
    pub fn check_ip(&self, host: &str, addr: IpAddr) -> Result<(), EgressError> {
        if self.allow_private_addresses || is_public(addr) {
            Ok(())
        } else {
            Err(EgressError::PrivateAddress {
                host: host.to_owned(),
                addr,
            })
        }
    }

    /// Resolves a host (an IP literal stands for itself) and checks every address it has: one
    /// refused address refuses the name, so no address of it is ever used.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| EgressError::Unresolvable {
                    host: bare.to_owned(),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(EgressError::Unresolvable {
                host: bare.to_owned(),
                reason: "no address".into(),
            });
        }
        for addr in &addrs {
            self.check_ip(bare, addr.ip())?;
        }
        Ok(addrs)
    }

    /// Checks an https URL: its scheme, and every address of its host.
    pub async fn check_url(&self, url: &str) -> Result<Url, EgressError> {
        self.check_parsed(parse_https(url)?).await
    }

    /// Checks a webhook URL: http or https with a host and no user info, and every address of
    /// its host public (unless the policy allows private ones).
    pub async fn check_webhook_url(&self, url: &str) -> Result<Url, EgressError> {
        let parsed = parse_with(url, &["http", "https"])
            .ok_or_else(|| EgressError::NotHttp(url.to_owned()))?;
        self.check_parsed(parsed).await
    }

    /// Resolves a parsed URL's host on its port and checks every address.
    async fn check_parsed(&self, parsed: Url) -> Result<Url, EgressError> {
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        self.resolve(&host, port).await?;
        Ok(parsed)
    }
}

/// Parses an https URL with a host, no user info (credentials in a URL would be sent along).
pub fn parse_https(url: &str) -> Result<Url, EgressError> {
    parse_with(url, &["https"]).ok_or_else(|| EgressError::NotHttps(url.to_owned()))
}

/// A URL of one of `schemes` with a host and no user info, or `None`.
fn parse_with(url: &str, schemes: &[&str]) -> Option<Url> {
    let parsed = Url::parse(url).ok()?;
    (schemes.contains(&parsed.scheme())
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none())
    .then_some(parsed)
}

/// The host of a URL, lower case, as the registry's allowed hosts are written.
pub fn host_of(url: &str) -> Option<String> {
    Url::parse(url).ok()?.host_str().map(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    })
}

/// Whether `host` is one of `allowed`: an exact name, or `*.example.com` for any name under
/// `example.com` (not `example.com` itself).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    allowed.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => host == pattern,
        }
    })
}

/// True for addresses on the public internet; false for loopback, private, link-local,
/// shared (CGNAT), multicast, documentation, benchmarking and other reserved ranges, and for
/// IPv6 forms that embed such an IPv4 address.
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network"
        || a == 10                            // private
        || a == 127                           // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254)             // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)     // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)     // documentation
        || (a == 192 && b == 88 && c == 99)   // 6to4 relay anycast
        || (a == 192 && b == 168)             // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100)  // documentation
        || (a == 203 && b == 0 && c == 113)   // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return false;
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) embed an IPv4 address.
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return is_public_v4(v4);
    }
    !((s[0] & 0xfe00) == 0xfc00                // unique local
        || (s[0] & 0xffc0) == 0xfe80          // link-local
        || (s[0] & 0xffc0) == 0xfec0          // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00          // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2002)                   // 6to4 (embeds any IPv4)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_link_local_and_reserved_addresses_are_not_public() {
        for addr in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            assert!(!is_public(ip(addr)), "{addr} must not count as public");
        }
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "193.0.0.1",
            "2a00:1450:4001:82a::200e",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip(addr)), "{addr} is public");
        }
    }

    #[tokio::test]
    async fn a_url_is_refused_when_any_address_of_its_host_is_private() {
        let strict = EgressPolicy::default();
        for url in [
            "https://127.0.0.1:8443",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.1",
            "https://[::1]:8443",
            "https://localhost:8443",
        ] {
            let err = strict.check_url(url).await.unwrap_err();
            assert!(
                matches!(err, EgressError::PrivateAddress { .. }),
                "{url}: {err}"
            );
        }
        let err = strict.check_url("https://10.0.0.1").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "10.0.0.1 resolves to 10.0.0.1, a loopback, private, link-local or reserved address; bank addresses must be public (egress.allow_private_addresses)"
        );
        let open = EgressPolicy {
            allow_private_addresses: true,
        };
        assert!(open.check_url("https://127.0.0.1:8443").await.is_ok());
        for url in [
            "http://8.8.8.8",
            "https://user:pw@8.8.8.8",
            "ftp://x",
            "https://",
        ] {
            assert_eq!(
                open.check_url(url).await.unwrap_err(),
                EgressError::NotHttps(url.into())
            );
        }
    }

    #[test]
    fn allowed_hosts_are_exact_names_or_wildcard_subdomains() {
        let allowed = vec![
            "api.bank.example".to_owned(),
            "*.tenants.bank.example".to_owned(),
        ];
        assert!(host_allowed("api.bank.example", &allowed));
        assert!(host_allowed("API.Bank.Example", &allowed));
        assert!(host_allowed("firm1.tenants.bank.example", &allowed));
        assert!(!host_allowed("tenants.bank.example", &allowed));
        assert!(!host_allowed("eviltenants.bank.example", &allowed));
        assert!(!host_allowed("api.bank.example.evil.com", &allowed));
        assert!(!host_allowed("bank.example", &allowed));
    }
}
