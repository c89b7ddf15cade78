//! Resources: the MCP catalogue (resources, prompts and tools) and the MCP server
//! over Streamable HTTP and stdio. It holds no domain logic of its own; every tool
//! calls the same code paths as the REST API.
//!
//! Nothing is implemented here yet.
