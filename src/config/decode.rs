//! A reader over parsed JSON that knows where it is (file and JSON pointer), records every problem
//! it meets in [`Diagnostics`] instead of stopping at the first, and reports keys nobody read.

use super::diagnostics::{pointer_token, Diagnostics};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// A JSON value at a known place.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    pub file: &'a str,
    pub diag: &'a Diagnostics,
    pointer: &'a str,
}

/// Owned pointer storage so that child nodes can borrow their pointer.
pub struct Located<'a> {
    pub value: &'a Value,
    pub file: &'a str,
    pub diag: &'a Diagnostics,
    pub pointer: String,
}

impl<'a> Located<'a> {
    pub fn node(&self) -> Node<'_> {
        Node {
            value: self.value,
            file: self.file,
            diag: self.diag,
            pointer: &self.pointer,
        }
    }
}

/// Root of a file.
pub fn root<'a>(value: &'a Value, file: &'a str, diag: &'a Diagnostics) -> Node<'a> {
    Node {
        value,
        file,
        diag,
        pointer: "",
    }
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Node<'a> {
    pub fn pointer(&self) -> &str {
        self.pointer
    }

    pub fn error(&self, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.diag.error(self.file, self.pointer, message, hint);
    }

    pub fn warning(&self, message: impl Into<String>, hint: impl Into<Option<String>>) {
        self.diag.warning(self.file, self.pointer, message, hint);
    }

    /// A construct of an older file shape, loaded; `modern` is how today's files write it.
    pub fn legacy(&self, message: impl Into<String>, modern: String) {
        self.diag.legacy(self.file, self.pointer, message, modern);
    }

    fn wrong_type(&self, expected: &str) {
        self.error(
            format!("expected {expected}, found {}", type_name(self.value)),
            None,
        );
    }

    /// A child at `token` (an object key or an array index), with its pointer.
    pub fn child(&self, token: &str, value: &'a Value) -> Located<'a> {
        let token = pointer_token(token);
        let mut pointer = String::with_capacity(self.pointer.len() + 1 + token.len());
        pointer.push_str(self.pointer);
        pointer.push('/');
        pointer.push_str(&token);
        Located {
            value,
            file: self.file,
            diag: self.diag,
            pointer,
        }
    }

    pub fn object(&self) -> Option<Obj<'a>> {
        match self.value {
            Value::Object(map) => Some(Obj {
                node: *self,
                map,
                used: RefCell::new(BTreeSet::new()),
            }),
            _ => {
                self.wrong_type("an object");
                None
            }
        }
    }

    pub fn str(&self) -> Option<&'a str> {
        match self.value {
            Value::String(s) => Some(s),
            _ => {
                self.wrong_type("a string");
                None
            }
        }
    }

    /// A string that must not be empty.
    pub fn nonempty_str(&self) -> Option<&'a str> {
        let s = self.str()?;
        if s.trim().is_empty() {
            self.error("must not be empty", None);
            return None;
        }
        Some(s)
    }

    pub fn bool(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type("a boolean (true or false)");
                None
            }
        }
    }

    /// An unsigned integer within `min..=max`. Numeric strings are accepted (upstream wrote some).
    pub fn uint(&self, min: u64, max: u64) -> Option<u64> {
        let n = match self.value {
            Value::Number(n) => match n.as_u64() {
                Some(n) => n,
                None => {
                    self.error(
                        format!("expected a whole number between {min} and {max}, found {n}"),
                        None,
                    );
                    return None;
                }
            },
            Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                match s.parse() {
                    Ok(n) => n,
                    Err(_) => {
                        self.error(format!("number {s:?} is too large (at most {max})"), None);
                        return None;
                    }
                }
            }
            _ => {
                self.wrong_type("a whole number");
                return None;
            }
        };
        if n < min || n > max {
            self.error(format!("{n} is out of range {min}..={max}"), None);
            return None;
        }
        Some(n)
    }

    /// A value that is a string or an array of strings (upstream changed several fields over time).
    pub fn str_or_list(&self) -> Option<Vec<String>> {
        match self.value {
            Value::String(s) => Some(
                s.split([',', ' '])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            Value::Array(_) => self.list(|n| n.str().map(String::from)),
            _ => {
                self.wrong_type("a string or an array of strings");
                None
            }
        }
    }

    /// An array whose items are decoded by `item`; items that fail are dropped (their errors kept).
    pub fn list<T>(&self, mut item: impl FnMut(Node<'_>) -> Option<T>) -> Option<Vec<T>> {
        match self.value {
            Value::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        let located = self.child(&i.to_string(), v);
                        item(located.node())
                    })
                    .collect(),
            ),
            _ => {
                self.wrong_type("an array");
                None
            }
        }
    }
}

/// An object being read: every key read is marked, the rest are reported by [`Obj::finish`].
pub struct Obj<'a> {
    pub node: Node<'a>,
    map: &'a Map<String, Value>,
    used: RefCell<BTreeSet<&'static str>>,
}

impl<'a> Obj<'a> {
    pub fn map(&self) -> &'a Map<String, Value> {
        self.map
    }

    /// The value at `key` if present and not null; marks it read.
    pub fn get(&self, key: &'static str) -> Option<Located<'a>> {
        let value = self.map.get(key)?;
        self.used.borrow_mut().insert(key);
        // Only keys present in the map are recorded, so `finish` can compare counts.
        if value.is_null() {
            return None;
        }
        Some(self.node.child(key, value))
    }

    /// The first of several spellings that is present; warns when a legacy alias is used.
    pub fn get_alias(&self, key: &'static str, aliases: &[&'static str]) -> Option<Located<'a>> {
        if let Some(v) = self.get(key) {
            for alias in aliases {
                if self.map.contains_key(*alias) {
                    self.node.child(alias, &Value::Null).node().warning(
                        format!("`{alias}` is ignored because `{key}` is also set"),
                        Some(format!("`{alias}` is the old name of `{key}`; remove it")),
                    );
                    self.mark(alias);
                }
            }
            return Some(v);
        }
        for alias in aliases {
            if let Some(v) = self.get(alias) {
                v.node().legacy(
                    format!("`{alias}` is the old name of `{key}`"),
                    format!("\"{key}\": {}", v.value),
                );
                return Some(v);
            }
        }
        None
    }

    /// A required value: records "missing required field" when absent.
    pub fn req(&self, key: &'static str, hint: &str) -> Option<Located<'a>> {
        let v = self.get(key);
        if v.is_none() {
            self.node.error(
                format!("missing required field `{key}`"),
                Some(hint.to_string()),
            );
        }
        v
    }

    /// Marks a key as known without decoding it (documented but unused upstream keys).
    pub fn mark(&self, key: &'static str) {
        if self.map.contains_key(key) {
            self.used.borrow_mut().insert(key);
        }
    }

    pub fn opt_str(&self, key: &'static str) -> Option<String> {
        self.get(key).and_then(|v| v.node().str().map(String::from))
    }

    pub fn opt_bool(&self, key: &'static str) -> Option<bool> {
        self.get(key).and_then(|v| v.node().bool())
    }

    pub fn opt_uint(&self, key: &'static str, min: u64, max: u64) -> Option<u64> {
        self.get(key).and_then(|v| v.node().uint(min, max))
    }

    pub fn str_list(&self, key: &'static str) -> Vec<String> {
        self.get(key)
            .and_then(|v| v.node().list(|n| n.str().map(String::from)))
            .unwrap_or_default()
    }

    /// Reports every key that was not read as a warning: real files carry dead keys. A
    /// `$comment` (JSON Schema's keyword for one) is a comment, anywhere.
    pub fn finish(self) {
        let used = self.used.into_inner();
        if used.len() == self.map.len() {
            return;
        }
        for key in self.map.keys() {
            if !used.contains(key.as_str()) && key != "$comment" {
                let located = self.node.child(key, &Value::Null);
                located.node().warning(
                    format!("unknown key `{key}` is ignored"),
                    Some("remove it, or check its spelling".to_string()),
                );
            }
        }
    }
}
