//! The orchestrator decides which model tier serves a request and runs it there.
//!
//! It owns the complexity classifier (router), the model registry and tiers, the
//! generation types and the `Engine` trait with its engines (`mlx` behind the
//! `pymlx` feature, `openai`, `hosted_ai`), the hosted·ai client and pool manager,
//! and usage metering. It knows nothing about HTTP routes or axum.
//!

pub mod engine;
pub mod gateway;
pub mod generation;
pub mod hosted_ai;
pub mod registry;
pub mod router;
pub mod secret;
pub mod settings;
pub mod tier;

pub use secret::Secret;
pub use settings::{
    AuthHeader, EngineKind, Fallback, HostedAiSettings, InvalidSetting, ModelSettings,
    ModelsSettings, PoolSelection, RouterSettings, RouterStrategy, VgpusPerTier,
};
pub use tier::Tier;
