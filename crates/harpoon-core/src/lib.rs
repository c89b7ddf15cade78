//! Fusion: scores the hygiene of code fragments, anchors them by content hash and
//! assembles them into envelopes through bounded refinement cycles.
//!
//! Pure and synchronous (parallel with rayon); it knows nothing about HTTP, tokio
//! or models. Today it holds the validated fusion settings; the scoring engine
//! that uses them arrives with later work.

pub mod settings;

pub use settings::{FusionSettings, InvalidSetting};
