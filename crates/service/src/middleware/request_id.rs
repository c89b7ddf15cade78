//! The request id: a client's usable `x-request-id` is kept, anything else is
//! replaced by a fresh UUID; the id is echoed in the answer and written into
//! every log line of the request.

use axum::http::HeaderName;

/// Header carrying the request id, generated when the client sends none.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest `x-request-id` kept from a client; trace ids (W3C's 55, UUIDs'
/// 36, AWS's 40-odd) fit with room to spare.
const REQUEST_ID_MAX: usize = 128;

/// Removes a client's `x-request-id` that is too long or holds characters
/// trace ids do not use, so a fresh one is made: the id is echoed in the
/// answer and written into every log line of the request.
pub async fn drop_unusable_request_id(
    mut request: axum::extract::Request,
) -> axum::extract::Request {
    let usable = |id: &[u8]| {
        !id.is_empty()
            && id.len() <= REQUEST_ID_MAX
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
    };
    if let Some(id) = request.headers().get(&REQUEST_ID)
        && !usable(id.as_bytes())
    {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}
