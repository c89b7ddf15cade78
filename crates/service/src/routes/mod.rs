//! HTTP handlers, one module per API area; each stays thin and calls into the
//! domain crates.

pub mod admin;
pub mod chat;
pub mod classify;
pub mod covenants;
pub mod dashboard;
pub mod deployments;
pub mod fragments;
pub mod health;
pub mod inference;
pub mod metrics;
pub mod models;
pub mod openapi;
pub mod passthrough;
pub mod pools;
pub mod process;
pub mod responses;
pub mod run;
pub mod signin;
pub mod usage;
