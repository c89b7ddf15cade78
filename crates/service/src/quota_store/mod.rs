//! The quota store replicas share: each tenant's request rate, concurrency
//! slots and daily token budget counted once in Redis or Valkey
//! (`cluster.redis_url`), by server-side scripts that decide atomically on
//! the server's clock. Without a URL nothing here runs and each process
//! counts its own.

mod counters;
mod leases;

pub use counters::{Admission, BudgetCheck, CounterError, SharedCounters};
pub use leases::{Lease, STORE_ERRORS};
