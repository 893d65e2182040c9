//! Problems found in configuration files, each located by file and JSON pointer.

use serde::Serialize;
use std::cell::RefCell;
use std::fmt;

/// How bad a problem is: errors stop `run`/`plan` and make `validate` exit 2; warnings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem: `FILE: /json/pointer: what is wrong (hint)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub pointer: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For a construct of an older file shape: how today's files write it (`validate --explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modern: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{}: {}: {}", self.file, pointer, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Collects diagnostics while files are decoded and checked; shared by reference.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: RefCell<Vec<Diagnostic>>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(
        &self,
        severity: Severity,
        file: &str,
        pointer: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.items.borrow_mut().push(Diagnostic {
            severity,
            file: file.to_string(),
            pointer: pointer.to_string(),
            message: message.into(),
            hint,
            modern: None,
        });
    }

    /// A construct of an older file shape: a warning, with how today's files write it.
    pub fn legacy(&self, file: &str, pointer: &str, message: impl Into<String>, modern: String) {
        self.items.borrow_mut().push(Diagnostic {
            severity: Severity::Warning,
            file: file.to_string(),
            pointer: pointer.to_string(),
            message: message.into(),
            hint: Some("`phoenix validate --explain` shows the modern form".into()),
            modern: Some(modern),
        });
    }

    pub fn error(
        &self,
        file: &str,
        pointer: &str,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.push(Severity::Error, file, pointer, message, hint.into());
    }

    pub fn warning(
        &self,
        file: &str,
        pointer: &str,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.push(Severity::Warning, file, pointer, message, hint.into());
    }

    pub fn has_errors(&self) -> bool {
        self.items
            .borrow()
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .borrow()
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// All diagnostics, errors first, then by file and pointer, without duplicates.
    pub fn into_sorted(self) -> Vec<Diagnostic> {
        let mut items = self.items.into_inner();
        items.sort_by(|a, b| {
            (b.severity, &a.file, &a.pointer, &a.message)
                .cmp(&(a.severity, &b.file, &b.pointer, &b.message))
        });
        items.dedup();
        items
    }
}

/// Escapes one reference token of a JSON pointer (RFC 6901).
pub fn pointer_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1").into()
    } else {
        token.into()
    }
}
