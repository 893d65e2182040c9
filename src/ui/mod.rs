//! What the operator sees: progress while a run goes, tables after, JSON for machines.

pub mod adopt;
pub mod explain;
pub mod health;
pub mod human;
pub mod json;
pub mod metrics;
pub mod out;
pub mod state;
pub mod summary;
pub mod table;
