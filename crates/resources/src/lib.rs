//! Resources: the MCP catalogue (resources, prompts and tools) and the MCP server
//! over Streamable HTTP and stdio, built on the official Rust SDK (`rmcp`).
//!
//! The crate holds no domain logic of its own: every resource read, prompt and
//! tool goes through [`HarpoonBackend`], which the service implements with the
//! same functions its REST handlers call. The service authenticates HTTP
//! requests and puts its caller type into the request's extensions; the
//! server reads it back from the `http::request::Parts` that `rmcp` hands to
//! every request, so MCP sees exactly the tenant REST would.

pub mod backend;
pub mod catalogue;
mod conformance;
pub mod prompts;
pub mod server;
pub mod settings;
pub mod tools;

pub use backend::{BackendError, HarpoonBackend};
pub use server::{HarpoonMcp, HttpOptions, McpHttpService, StdioError, http_service, serve_stdio};
pub use settings::{McpSettings, SessionMode};
