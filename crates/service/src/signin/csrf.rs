//! What a state-changing request authenticated by the session cookie must
//! carry: the session's CSRF token in `X-CSRF-Token` (a page on another
//! site cannot read it), and, when the browser sends `Origin`, this
//! service's own origin. Requests with an API key are not concerned: no
//! browser attaches a key by itself.

use crate::callers::same_secret;

/// The header the token travels in.
pub const HEADER: &str = "x-csrf-token";

/// Why a cookie-authenticated write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrfRefusal {
    /// No `X-CSRF-Token`.
    #[error(
        "a request signed in with a session cookie that changes state needs the session's `X-CSRF-Token` header (GET /auth/session gives it)"
    )]
    MissingToken,
    /// A token that is not this session's.
    #[error("the `X-CSRF-Token` header does not match this session's token")]
    WrongToken,
    /// A page of another origin sent it.
    #[error(
        "`Origin: {0}` is not this service's origin; cross-site requests with the session cookie are refused"
    )]
    ForeignOrigin(String),
}

/// Whether `method` only reads (GET, HEAD, OPTIONS): no token needed.
pub fn is_safe(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
    )
}

/// Checks a cookie-authenticated request: `origin` and `token` as sent,
/// `own_origin` this service's (`None` when it cannot be told), `expected`
/// the session's token.
pub fn check(
    method: &http::Method,
    origin: Option<&str>,
    own_origin: Option<&str>,
    token: Option<&str>,
    expected: &str,
) -> Result<(), CsrfRefusal> {
    if is_safe(method) {
        return Ok(());
    }
    if let Some(origin) = origin
        && own_origin.is_none_or(|own| !origin.eq_ignore_ascii_case(own))
    {
        return Err(CsrfRefusal::ForeignOrigin(origin.to_owned()));
    }
    match token {
        None => Err(CsrfRefusal::MissingToken),
        Some(t) if same_secret(t, expected) => Ok(()),
        Some(_) => Err(CsrfRefusal::WrongToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn writes_need_the_token_and_the_own_origin_reads_do_not() {
        let own = Some("http://127.0.0.1:8080");
        assert_eq!(
            check(&Method::GET, Some("http://evil"), own, None, "t"),
            Ok(())
        );
        assert_eq!(check(&Method::POST, None, own, Some("t"), "t"), Ok(()));
        assert_eq!(check(&Method::POST, own, own, Some("t"), "t"), Ok(()));
        assert_eq!(
            check(&Method::POST, own, own, None, "t"),
            Err(CsrfRefusal::MissingToken)
        );
        assert_eq!(
            check(&Method::DELETE, None, own, Some("u"), "t"),
            Err(CsrfRefusal::WrongToken)
        );
        assert!(matches!(
            check(
                &Method::POST,
                Some("http://127.0.0.1:9999"),
                own,
                Some("t"),
                "t"
            ),
            Err(CsrfRefusal::ForeignOrigin(_))
        ));
    }
}
