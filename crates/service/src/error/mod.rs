//! The one error type of the service, for REST and MCP alike: a code from the
//! closed set in [`ErrorCode`], a message, the request field it is about,
//! optional details. The HTTP rendering (OpenAI's error object
//! `{"error":{"message","type","param","code"}}`, the SSE error
//! event, panics and plain-text errors of layers) is in [`response`].

mod api_error;
mod code;
pub mod response;

pub use api_error::ApiError;
pub(crate) use api_error::field_path_prefix;
pub use code::ErrorCode;
pub use response::{ErrorBody, ErrorDetail, ensure_json_errors};
