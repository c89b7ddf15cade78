//! The Harpoon service: configuration, routes, OpenAPI, metrics, logging and
//! shutdown. Handlers stay thin; domain logic lives in `orchestrator`,
//! `harpoon-core`, `harpoon_bridge` and `resources`.

pub mod admin_cli;
pub mod app;
pub mod bootstrap;
pub mod bridge_gate;
pub mod callers;
pub mod cluster;
pub mod connections;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod fusion_refiner;
pub mod mcp;
pub mod middleware;
pub mod models_cli;
pub mod ops;
pub mod otel;
pub mod quota;
pub mod quota_store;
pub mod redact;
pub mod routes;
pub mod server;
pub mod settings;
pub mod signin;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod workers;
