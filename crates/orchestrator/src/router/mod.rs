//! The router: decides per prompt whether the small tier can serve it or the
//! large tier is needed.
//!
//! A linear model over [`features`] (hashed n-grams plus structural signals)
//! gives a logit; Platt scaling turns it into a calibrated probability of
//! "complex" ([`Classification::complexity`]); a threshold picks the tier.
//! The model is trained by `train-router` and embedded at compile time.
//! A chat is scored as a [`Conversation`]: its last user turn, with the
//! earlier user turns as context.

pub mod classifier;
pub mod conversation;
pub mod features;
pub mod model;
pub mod settings;
pub mod sticky;
pub mod train;

pub use classifier::{Category, Classification, Classifier, RouterError};
pub use conversation::Conversation;
pub use model::{ArtefactError, Contribution, RouterModel};
pub use sticky::StickyConversations;
