//! Which network remotes a tenant may register: none on the server's own
//! internal network (loopback, private, link-local, carrier-grade NAT, unique
//! local), unless `bridge.allow_private_remotes` says the deployment has an
//! internal git server. Checked on the literal address and on every address
//! the host name resolves to at registration.

use crate::error::BridgeError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// How long a host name may take to resolve before registration gives up.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// The host of a git remote: `scheme://[user@]host[:port]/…` or the scp-like
/// `user@host:path`.
pub fn remote_host(url: &str) -> Option<String> {
    if url.contains("://") {
        let parsed = url::Url::parse(url).ok()?;
        return match parsed.host()? {
            url::Host::Domain(d) => Some(d.to_owned()),
            url::Host::Ipv4(ip) => Some(ip.to_string()),
            url::Host::Ipv6(ip) => Some(ip.to_string()),
        };
    }
    let (_, rest) = url.split_once('@')?;
    let host = rest.split(':').next()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| host.to_owned())
}

/// Whether an address belongs to the server's own or a private network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        }
    }
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
}

/// 422 on `url` when its host is, or resolves to, an internal address. A
/// host that does not resolve is left to `git ls-remote` to report.
pub async fn refuse_internal(url: &str) -> Result<(), BridgeError> {
    let Some(host) = remote_host(url) else {
        return Err(BridgeError::invalid("url", "the remote names no host"));
    };
    let refuse = |ip: IpAddr| {
        BridgeError::invalid(
            "url",
            format!(
                "{host} is an internal address ({ip}); set bridge.allow_private_remotes to register repositories on this network"
            ),
        )
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_internal(ip) {
            Err(refuse(ip))
        } else {
            Ok(())
        };
    }
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return Err(refuse(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }
    let Ok(Ok(addrs)) =
        tokio::time::timeout(RESOLVE_LIMIT, tokio::net::lookup_host((host.as_str(), 0))).await
    else {
        return Ok(());
    };
    for addr in addrs {
        if is_internal(addr.ip()) {
            return Err(refuse(addr.ip()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_every_remote_form() {
        for (url, host) in [
            ("https://github.com/org/app.git", "github.com"),
            ("http://user:pw@10.0.0.5:8080/x.git", "10.0.0.5"),
            ("ssh://git@[::1]:22/x.git", "::1"),
            ("git://169.254.169.254/x", "169.254.169.254"),
            ("git@gitlab.example.com:org/app.git", "gitlab.example.com"),
        ] {
            assert_eq!(remote_host(url).as_deref(), Some(host), "{url}");
        }
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.3", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }
}
