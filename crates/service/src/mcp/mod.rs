//! The MCP face: the backend over the use cases, and its transports.

pub mod backend;
pub mod transport;
