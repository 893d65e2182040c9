//! Typed job states. The engine is generic over them; Phoenix guests use [`Lifecycle`].

use std::fmt::{Debug, Display};

/// An ordered set of states. Stored by [`JobState::name`], so renaming a variant's name is a
/// format change; adding one is not.
pub trait JobState: Copy + Eq + Ord + Debug + Display + Send + Sync + 'static {
    /// Every state, in order; the first is where a new job starts and has no steps.
    fn all() -> &'static [Self];
    fn name(self) -> &'static str;
    fn from_name(name: &str) -> Option<Self> {
        Self::all().iter().copied().find(|s| s.name() == name)
    }
    fn initial() -> Self {
        Self::all()[0]
    }
}

/// The states every Phoenix guest passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lifecycle {
    Defined,
    Created,
    Configured,
    Running,
    Customizing,
    Completed,
}

impl JobState for Lifecycle {
    fn all() -> &'static [Self] {
        &[
            Lifecycle::Defined,
            Lifecycle::Created,
            Lifecycle::Configured,
            Lifecycle::Running,
            Lifecycle::Customizing,
            Lifecycle::Completed,
        ]
    }
    fn name(self) -> &'static str {
        match self {
            Lifecycle::Defined => "defined",
            Lifecycle::Created => "created",
            Lifecycle::Configured => "configured",
            Lifecycle::Running => "running",
            Lifecycle::Customizing => "customizing",
            Lifecycle::Completed => "completed",
        }
    }
}

impl Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Lifecycle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::from_name(&s.to_ascii_lowercase()).ok_or_else(|| {
            format!(
                "{s:?} is not a state (one of: {})",
                Self::all()
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}
