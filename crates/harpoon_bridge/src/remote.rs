//! Which remotes a tenant may register, read the way git itself reads them.
//!
//! git decides between a local path and a network remote by shape, not by
//! what a URL "looks like" (`transport.c` `transport_get`, `connect.c`
//! `parse_connect_url`, `url_is_local_not_ssh`, `url.c` `is_url`):
//!
//! - `<name>::<address>` is a remote helper (`ext::` runs commands);
//! - `scheme://…` (a letter, then letters, digits, `+`, `-`, `.`) goes by its
//!   scheme, compared case-sensitively (`HTTPS://` is an unknown helper);
//! - otherwise a string with no `:`, or with a `/` before its first `:`, is a
//!   local path (`a/b@c:d` and `./x@y:z` included); on Windows `C:` too;
//! - everything else is the scp-like `[user@]host:path`, run over ssh, whose
//!   host ssh takes after the *last* `@`.
//!
//! Network hosts are then refused when they are, or resolve to, an address
//! of the server's own or a private network (unless
//! `bridge.allow_private_remotes`), failing closed when they do not resolve.

use crate::error::BridgeError;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// How long a host name may take to resolve before registration gives up.
const RESOLVE_LIMIT: Duration = Duration::from_secs(5);

/// The network transports git is allowed to use for tenant remotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ssh://`, `git+ssh://`, `ssh+git://` and scp-like `host:path`.
    Ssh,
    /// `git://`, unauthenticated.
    Git,
    /// `http://` and `https://`.
    Http,
}

/// What git would do with a remote URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// A path on the server's disk or a `file://` URL (git's `file` transport).
    Local,
    /// A remote reached over the network at `host`.
    Network {
        /// How git talks to it.
        transport: Transport,
        /// The host git (or ssh, or curl) connects to, without brackets.
        host: String,
    },
}

/// Classifies `url` as git does; `Err` names why git would not use it as a
/// plain remote at all (a helper, an unknown scheme, no host or path) or why
/// its host is written in a way git, ssh and curl might read differently.
pub fn classify(url: &str) -> Result<Remote, String> {
    if url.is_empty() || url.chars().any(char::is_control) {
        return Err("must not be empty or contain control characters".into());
    }
    // `transport_get`: a run of RFC 3986 unreserved characters, then `::`.
    let unreserved = url
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
        .unwrap_or(url.len());
    if url[unreserved..].starts_with("::") {
        return Err("remote helpers (`name::address`) are not accepted".into());
    }
    if let Some(scheme) = url_scheme(url) {
        let rest = &url[scheme.len() + 3..];
        let transport = match scheme {
            "file" => return Ok(Remote::Local),
            "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
            "git" => Transport::Git,
            "http" | "https" => Transport::Http,
            other => {
                return Err(format!(
                    "the scheme {other:?} is not accepted (use https, ssh or git, in lower case)"
                ));
            }
        };
        // git ends the authority at the first `/`, curl also at `?` and `#`;
        // `authority_host` refuses those two, so both read the same host.
        let Some(end) = rest.find('/').filter(|&e| rest[e..].len() > 1) else {
            return Err("names no repository path".into());
        };
        let host = authority_host(&rest[..end])?;
        return Ok(Remote::Network { transport, host });
    }
    if url.contains("://") {
        // `parse_connect_url` would die on the text before `://` as a protocol.
        return Err("is neither a URL with a known scheme nor a path".into());
    }
    if is_local_not_ssh(url) {
        return Ok(Remote::Local);
    }
    // scp-like: `connect.c` `host_end` skips a bracketed host (after `@[` or
    // at the start), then the path starts at the next `:`.
    let bracket = url.find("@[").map_or(0, |i| i + 1);
    let after_bracket = if url[bracket..].starts_with('[') {
        url[bracket..].find(']').map_or(0, |i| bracket + i)
    } else {
        0
    };
    let Some(colon) = url[after_bracket..].find(':').map(|i| after_bracket + i) else {
        return Err("names no repository path".into());
    };
    if url[colon + 1..].is_empty() {
        return Err("names no repository path".into());
    }
    let host = authority_host(&url[..colon])?;
    Ok(Remote::Network {
        transport: Transport::Ssh,
        host,
    })
}

/// `url.c` `is_url`: the scheme when `url` is `scheme://…`.
fn url_scheme(url: &str) -> Option<&str> {
    let colon = url.find(':')?;
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok && url[colon..].starts_with("://")).then_some(scheme)
}

/// `connect.c` `url_is_local_not_ssh`: no `:`, or a `/` before the first
/// `:` (and, on Windows only, a drive letter).
fn is_local_not_ssh(url: &str) -> bool {
    let Some(colon) = url.find(':') else {
        return true;
    };
    if url.find('/').is_some_and(|slash| slash < colon) {
        return true;
    }
    cfg!(windows) && colon == 1 && url.as_bytes()[0].is_ascii_alphabetic()
}

/// The host of `[user@]host[:port]` as ssh and curl read it: after the last
/// `@`, brackets removed. Refuses what the three parsers could disagree on.
fn authority_host(authority: &str) -> Result<String, String> {
    if authority
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '\\' | '?' | '#'))
    {
        return Err("the host part contains characters git, ssh and curl read differently".into());
    }
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let Some((inner, rest)) = inner.split_once(']') else {
            return Err("has an unclosed `[` in its host".into());
        };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err("brackets in the host hold no IPv6 address".into());
        }
        (inner, rest.strip_prefix(':').unwrap_or(rest))
    } else {
        hostport.split_once(':').unwrap_or((hostport, ""))
    };
    if !port.chars().all(|c| c.is_ascii_digit()) {
        return Err("has a port that is not a number".into());
    }
    if host.is_empty() {
        return Err("the remote names no host".into());
    }
    if host.starts_with('-') {
        return Err("a host must not start with `-`".into());
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !host.contains(':') && !host.chars().all(plain) {
        return Err("the host contains characters git, ssh and curl read differently".into());
    }
    Ok(host.to_owned())
}

/// The host of a network remote, when `url` is one.
pub fn remote_host(url: &str) -> Option<String> {
    match classify(url) {
        Ok(Remote::Network { host, .. }) => Some(host),
        _ => None,
    }
}

/// Whether an address belongs to the server's own or a private network,
/// including IPv4 addresses carried inside IPv6 ones (mapped, compatible,
/// NAT64, 6to4, Teredo).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return internal_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (s[0] & 0xff00) == 0xff00 // multicast ff00::/8
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 0x0001) // local NAT64 64:ff9b:1::/48
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
                || s[..4] == [0x0100, 0, 0, 0] // discard-only 100::/64
                || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking 2001:2::/48
                || (s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0020) // ORCHIDv2 2001:20::/28
                || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010) // ORCHID 2001:10::/28
                || (s[0] & 0xfff0) == 0x3ff0 // documentation 3fff::/20
                || s[0] == 0x5f00 // SRv6 SIDs 5f00::/16
        }
    }
}

/// The IPv4 address inside `v6`, for the forms that route to one.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = |a: u16, b: u16| Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(low(s[6], s[7])); // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765)
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(low(s[6], s[7])); // ::a.b.c.d (not :: or ::1)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7])); // NAT64 64:ff9b::/96
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2])); // 6to4 2002::/16
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some(low(!s[6], !s[7])); // Teredo 2001::/32, client address inverted
    }
    None
}

fn internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || a >= 240 // reserved 240.0.0.0/4
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (18..20).contains(&b)) // benchmarking 198.18.0.0/15
        || (a == 192 && b == 0 && c == 2) // documentation 192.0.2.0/24
        || (a == 198 && b == 51 && c == 100) // documentation 198.51.100.0/24
        || (a == 203 && b == 0 && c == 113) // documentation 203.0.113.0/24
}

/// The one refusal of a host that is internal, resolves to an internal
/// address, or does not resolve: told apart, the answers would let a tenant
/// probe which internal names exist. The address itself is never echoed.
fn internal(host: &str) -> BridgeError {
    BridgeError::invalid(
        "url",
        format!(
            "the host {host} is not accepted: a remote's host must resolve to a public address (an internal git server needs bridge.allow_private_remotes)"
        ),
    )
}

/// 422 on `url` when `host` is, or resolves to, an internal address, or
/// does not resolve within five seconds: a name git cannot be shown to
/// reach a public address is not handed to git.
pub async fn refuse_internal(host: &str) -> Result<(), BridgeError> {
    refuse_internal_with(host, RESOLVE_LIMIT, |h| async move {
        tokio::net::lookup_host((h.as_str(), 0))
            .await
            .map(|addrs| addrs.map(|a| a.ip()).collect())
    })
    .await
}

/// [`refuse_internal`] with its resolver and time limit given, for tests.
pub(crate) async fn refuse_internal_with<F, Fut>(
    host: &str,
    limit: Duration,
    resolve: F,
) -> Result<(), BridgeError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = std::io::Result<Vec<IpAddr>>>,
{
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_internal(ip) {
            Err(internal(host))
        } else {
            Ok(())
        };
    }
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Err(internal(host));
    }
    // getaddrinfo also reads numeric forms such as `0x7f.1` and `2130706433`,
    // exactly as ssh and curl will.
    let addrs = match tokio::time::timeout(limit, resolve(host.to_owned())).await {
        Ok(Ok(addrs)) if !addrs.is_empty() => addrs,
        _ => return Err(internal(host)),
    };
    if addrs.into_iter().any(is_internal) {
        return Err(internal(host));
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
            // ssh and curl take the host after the last `@`.
            ("a@b@127.0.0.1:x.git", "127.0.0.1"),
            ("git@x@localhost:x.git", "localhost"),
            ("ssh://a@b@127.0.0.1/x.git", "127.0.0.1"),
            ("https://u:p@w@example.com/x", "example.com"),
            ("git@[::1]:x.git", "::1"),
            ("host:path", "host"),
        ] {
            assert_eq!(remote_host(url).as_deref(), Some(host), "{url}");
        }
    }

    #[test]
    fn shapes_git_reads_as_paths_helpers_and_odd_hosts() {
        for url in [
            "a/b@c:d",
            "./x@y:z",
            "/srv/r.git",
            "file:///srv/r.git",
            "r.git",
            "~u/x:y",
        ] {
            assert_eq!(classify(url), Ok(Remote::Local), "{url}");
        }
        for url in [
            "ext::sh -c id",
            "fd::0",
            "HTTPS://example.com/x",
            "Ssh://example.com/x",
            "gopher://example.com/x",
            "./x://y",
            "https://evil.example\\@127.0.0.1/x",
            "http://a?b@127.0.0.1/x",
            "http://a#b@127.0.0.1/x",
            "-oProxyCommand=id:x",
            "host:",
            "https://example.com",
            "ssh://[nothex]/x",
            "https://exa%6dple.com/x",
        ] {
            assert!(classify(url).is_err(), "{url}: {:?}", classify(url));
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
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::8.8.8.8",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo, client 127.0.0.1
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "140.82.112.3",
            "8.8.8.8",
            "2606:4700::1111",
            "100.128.0.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn ipv4_translated_and_discard_only_addresses_are_internal() {
        // ::ffff:0:a.b.c.d (RFC 2765 IPv4-translated) is classed by its IPv4
        // part; 100::/64 is discard-only; the others route nowhere public.
        for ip in [
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:10.0.0.1",
            "100::1",
            "100::ffff:ffff:ffff:ffff",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "3fff::1",
            "5f00::1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["::ffff:0:8.8.8.8", "100:0:0:1::1", "2001:4860::8888"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn internal_and_unresolvable_hosts_get_one_and_the_same_answer() {
        let refusal = |r: Result<(), BridgeError>| match r {
            Err(BridgeError::Invalid { field, message }) => (field, message),
            other => panic!("{other:?}"),
        };
        let internal = refusal(
            refuse_internal_with("git.corp.example", Duration::from_secs(1), |_| async {
                Ok(vec!["10.0.0.1".parse().unwrap()])
            })
            .await,
        );
        let unresolved = refusal(
            refuse_internal_with("git.corp.example", Duration::from_secs(1), |_| async {
                Err(std::io::Error::other("NXDOMAIN"))
            })
            .await,
        );
        let literal = refusal(
            refuse_internal_with("::1", Duration::from_secs(1), |_| async { Ok(vec![]) }).await,
        );
        assert_eq!(
            internal, unresolved,
            "the answer tells whether the name exists"
        );
        assert_eq!(internal.0, "url");
        assert_eq!(literal.0, "url");
    }

    #[tokio::test]
    async fn resolution_that_fails_or_is_slow_fails_closed() {
        let failing = refuse_internal_with("example.com", Duration::from_secs(1), |_| async {
            Err(std::io::Error::other("no answer"))
        })
        .await;
        assert!(
            matches!(failing, Err(BridgeError::Invalid { .. })),
            "{failing:?}"
        );
        let slow = refuse_internal_with("example.com", Duration::from_millis(100), |_| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(vec!["140.82.112.3".parse().unwrap()])
        })
        .await;
        assert!(matches!(slow, Err(BridgeError::Invalid { .. })), "{slow:?}");
        let empty = refuse_internal_with("example.com", Duration::from_secs(1), |_| async {
            Ok(vec![])
        })
        .await;
        assert!(empty.is_err());
        let public = refuse_internal_with("example.com", Duration::from_secs(1), |_| async {
            Ok(vec!["140.82.112.3".parse().unwrap()])
        })
        .await;
        assert!(public.is_ok(), "{public:?}");
        let mixed = refuse_internal_with("example.com", Duration::from_secs(1), |_| async {
            Ok(vec![
                "140.82.112.3".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
            ])
        })
        .await;
        let Err(BridgeError::Invalid { message, .. }) = mixed else {
            panic!("{mixed:?}")
        };
        assert!(
            !message.contains("10.0.0.1"),
            "the address is not echoed: {message}"
        );
    }
}
