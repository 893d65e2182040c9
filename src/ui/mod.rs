//! What the operator sees: progress while a run goes, tables after, JSON for machines.

pub mod human;
pub mod json;
pub mod metrics;
pub mod out;
pub mod state;
pub mod summary;
pub mod table;
