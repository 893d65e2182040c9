//! The states every guest (container or VM) passes through.

state_machine::job_states! {
    /// A guest's states, in order: `defined → created → configured → running → customizing →
    /// completed`. Each step of a guest's table completes one of them.
    pub enum Lifecycle {
        Defined = "defined",
        Created = "created",
        Configured = "configured",
        Running = "running",
        Customizing = "customizing",
        Completed = "completed",
    }
}
