//! Typed job states. The engine is generic over them: each kind of job declares its own ordered
//! set (with [`job_states!`](crate::job_states)), and one store holds jobs of different kinds.

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
    /// Parses a state name (any case); the error lists the states there are.
    fn parse(text: &str) -> Result<Self, String> {
        Self::from_name(&text.to_ascii_lowercase()).ok_or_else(|| {
            let names: Vec<&str> = Self::all().iter().map(|s| s.name()).collect();
            format!("{text:?} is not a state (one of: {})", names.join(", "))
        })
    }
}

/// Declares an ordered state enum and its [`JobState`], `Display` and `FromStr` impls:
///
/// ```
/// state_machine::job_states! {
///     /// The states of a build.
///     pub enum Build { Queued = "queued", Compiled = "compiled", Tested = "tested" }
/// }
/// use state_machine::JobState;
/// assert_eq!(Build::initial(), Build::Queued);
/// assert_eq!("TESTED".parse::<Build>(), Ok(Build::Tested));
/// ```
#[macro_export]
macro_rules! job_states {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name { $($variant),+ }

        impl $crate::JobState for $name {
            fn all() -> &'static [Self] {
                &[$($name::$variant),+]
            }
            fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::JobState::name(*self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                <$name as $crate::JobState>::parse(s)
            }
        }
    };
}
