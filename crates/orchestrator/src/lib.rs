//! The orchestrator decides which model tier serves a request and runs it there.
//!
//! It owns the complexity classifier (router), the model registry and tiers, the
//! generation types and the `Engine` trait with its engines (`mlx` behind the
//! `pymlx` feature, `openai`, `hosted_ai`), the hosted·ai client and pool manager,
//! and usage metering. It knows nothing about HTTP routes or axum.
//!

pub mod capability;
pub mod engine;
pub mod generation;
pub mod hosted_ai;
pub mod registry;
pub mod router;
pub mod secret;
pub mod selector;
pub mod tier;

pub use hosted_ai::settings::{
    AuthHeader, Fallback, HostedAiSettings, PoolSelection, VgpusPerTier,
};
pub use registry::settings::{EngineKind, InvalidSetting, ModelSettings, ModelsSettings};
pub use router::settings::{RouterSettings, RouterStrategy};
pub use secret::Secret;
pub use tier::Tier;

/// Target of the spans that exist for OpenTelemetry traces (engine calls,
/// streams, hosted·ai calls): the service's logs leave them out, and with
/// tracing off no layer wants them, so creating one costs a disabled
/// callsite's check.
pub const SPANS: &str = "harpoon_spans";
