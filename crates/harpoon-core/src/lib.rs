//! Fusion: scores the hygiene of code fragments, anchors them by content hash and
//! assembles them into envelopes through bounded refinement cycles.
//!
//! Pure and synchronous (parallel with rayon on the engine's own pool); it knows
//! nothing about HTTP, tokio or models. See docs/fusion.md for the signals and
//! their weights.

pub mod engine;
pub mod envelope;
pub mod fragment;
pub mod hygiene;
pub mod language;
#[cfg(feature = "python")]
mod python;
pub mod refine;
pub mod secrets;
pub mod settings;
pub mod syntax;

pub use engine::HarpoonEngine;
pub use envelope::{ChainError, Envelope, Event, EventKind, PendingReason};
pub use fragment::{Fragment, FragmentRef, fragment_hash};
pub use hygiene::{Hygiene, Signal, WEIGHTS};
pub use language::Language;
pub use refine::{MechanicalRefiner, RefineError, Refiner};
pub use settings::{FusionSettings, InvalidSetting, RefinerKind};
