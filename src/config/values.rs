//! Small typed values found in configuration: guest ids, addresses, MACs, GPU lists, secrets, and
//! the checks that keep values which reach a shell or a config file free of injection.

use serde::{Serialize, Serializer};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::decode::Node;

/// A Proxmox guest id. Containers and VMs share one id space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestId(pub u32);

/// The smallest and largest ids Proxmox accepts.
pub const MIN_GUEST_ID: u64 = 100;
pub const MAX_GUEST_ID: u64 = 999_999_999;

impl fmt::Display for GuestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for GuestId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for GuestId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let n: u64 = s.trim().parse().map_err(|_| {
            format!("{s:?} is not a guest id (a number between {MIN_GUEST_ID} and {MAX_GUEST_ID})")
        })?;
        if !(MIN_GUEST_ID..=MAX_GUEST_ID).contains(&n) {
            return Err(format!(
                "guest id {n} is out of range {MIN_GUEST_ID}..={MAX_GUEST_ID}"
            ));
        }
        Ok(GuestId(n as u32))
    }
}

impl Node<'_> {
    /// A guest id written as a number or a numeric string (upstream used both).
    pub fn guest_id(&self) -> Option<GuestId> {
        let text = match self.value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                self.error(
                    format!(
                        "expected a guest id, found {}",
                        super::decode::type_name(self.value)
                    ),
                    None,
                );
                return None;
            }
        };
        match text.parse() {
            Ok(id) => Some(id),
            Err(e) => {
                self.error(e, None);
                None
            }
        }
    }
}

/// An IPv4 address with a prefix length, e.g. `10.254.10.11/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not an address in CIDR form (e.g. 10.254.10.11/24)")
        })?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("prefix length {prefix:?} must be a number from 0 to 32"))?;
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Cidr {
    /// Whether `other` lies in this address's network.
    pub fn contains(&self, other: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        (u32::from(self.addr) & mask) == (u32::from(other) & mask)
    }
}

/// How a guest interface gets its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpConfig {
    Dhcp,
    Static(Cidr),
}

impl Serialize for IpConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IpConfig::Dhcp => s.serialize_str("dhcp"),
            IpConfig::Static(c) => c.serialize(s),
        }
    }
}

/// A unicast Ethernet address, stored upper-case as Proxmox prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || format!("{s:?} is not a MAC address (six hex pairs, e.g. 52:54:00:0A:FE:01)");
        if parts.len() != 6 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 {
                return Err(bad());
            }
            out[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if out[0] & 1 == 1 {
            return Err(format!(
                "{s:?} is a multicast MAC address; the first byte must be even"
            ));
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Mac {
    /// A stable MAC derived from a guest id: `02` marks it locally administered (it never collides
    /// with a vendor address), `50` is Phoenix's byte, the last four bytes are the id.
    pub fn for_guest(id: GuestId) -> Mac {
        let b = id.0.to_be_bytes();
        Mac([0x02, 0x50, b[0], b[1], b[2], b[3]])
    }
}

/// Parses `gpu_assignment`: `"none"`, `"0"`, `"0,1"`, `"0, 1"`.
pub fn parse_gpu_assignment(s: &str) -> Result<Vec<u32>, String> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in t.split(',') {
        let p = part.trim();
        let n: u32 = p.parse().ok().filter(|n| *n < 64).ok_or_else(|| {
            format!("{s:?} is not a GPU assignment (\"none\" or GPU indices like \"0\" or \"0,1\")")
        })?;
        if out.contains(&n) {
            return Err(format!("GPU {n} is listed twice in {s:?}"));
        }
        out.push(n);
    }
    Ok(out)
}

/// A value that must never reach logs, the state store, or command lines in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The clear text, for the one place that hands it to its consumer.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// What a value will be used as, which decides the characters it may hold.
#[derive(Debug, Clone, Copy)]
pub enum Token {
    /// Host name / guest name: letters, digits, `-`, `.`.
    Hostname,
    /// Proxmox storage id, bridge, interface, snapshot, feature or stack name: `[A-Za-z0-9_.-]`.
    Name,
    /// A file system path: no shell metacharacters, no whitespace, no `..` component.
    Path,
    /// A `key=value[,key=value]` option list (pct features, startup): `[A-Za-z0-9_.=,:/-]`.
    Options,
    /// A raw LXC config line: any printable text on one line.
    ConfigLine,
}

const SHELL_META: &[char] = &[
    ';', '|', '&', '$', '`', '<', '>', '(', ')', '{', '}', '*', '?', '!', '\'', '"', '\\', '[',
    ']', '#', '~',
];

/// Checks `s` for use as `kind`; the error says which character is not allowed.
pub fn check_token(s: &str, kind: Token) -> Result<(), String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {c:?}"));
    }
    if s.starts_with('-') && !matches!(kind, Token::ConfigLine) {
        return Err("starts with `-`, which a command would take for an option".into());
    }
    let bad = match kind {
        Token::Hostname => return check_hostname(s),
        Token::Name if s == "." || s == ".." => {
            return Err(
                "is a path component (`.` or `..`), which would escape its directory".into(),
            )
        }
        Token::Name => s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(*c))),
        Token::Options => s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.=,:/-".contains(*c))),
        Token::Path => {
            if s.split('/').any(|seg| seg == "..") {
                return Err("contains a `..` component".into());
            }
            s.chars()
                .find(|c| c.is_whitespace() || SHELL_META.contains(c))
        }
        Token::ConfigLine => None,
    };
    match bad {
        Some(c) => Err(format!("contains {c:?}, which is not allowed here")),
        None => Ok(()),
    }
}

/// A DNS name: labels of letters, digits and `-` (not at either end), 1 to 63 characters each,
/// 253 in all.
fn check_hostname(s: &str) -> Result<(), String> {
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!("contains {c:?}, which is not allowed here"));
    }
    if s.len() > 253 {
        return Err(format!(
            "is {} characters; a DNS name has at most 253",
            s.len()
        ));
    }
    for label in s.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "has the label {label:?}; each dot-separated label of a DNS name has 1 to 63 characters"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has the label {label:?}, which starts or ends with `-`"
            ));
        }
    }
    Ok(())
}

impl Node<'_> {
    /// A string checked with [`check_token`]; the error names the field's pointer.
    pub fn token(&self, kind: Token) -> Option<String> {
        let s = self.nonempty_str()?;
        match check_token(s, kind) {
            Ok(()) => Some(s.to_string()),
            Err(e) => {
                self.error(
                    format!("{s:?} {e}"),
                    Some(
                        "values reach commands and config files; use plain names and paths".into(),
                    ),
                );
                None
            }
        }
    }

    pub fn parsed<T: FromStr<Err = String>>(&self) -> Option<T> {
        let s = self.str()?;
        match s.trim().parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(e, None);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_rejects() {
        assert_eq!("10.0.0.5/24".parse::<Cidr>().unwrap().prefix, 24);
        for bad in [
            "10.0.0.5",
            "10.0.0.256/24",
            "10.0.0.5/33",
            "x/1",
            "10.0.0.5/",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let c: Cidr = "10.254.10.1/24".parse().unwrap();
        assert!(c.contains("10.254.10.200".parse().unwrap()));
        assert!(!c.contains("10.254.11.1".parse().unwrap()));
    }

    #[test]
    fn mac_parses_and_derives() {
        assert_eq!(
            "52:54:00:aa:bb:cc".parse::<Mac>().unwrap().to_string(),
            "52:54:00:AA:BB:CC"
        );
        assert!("01:00:00:00:00:00".parse::<Mac>().is_err());
        assert!("52:54:00:aa:bb".parse::<Mac>().is_err());
        assert!("52:54:00:aa:bb:zz".parse::<Mac>().is_err());
        assert_eq!(
            Mac::for_guest(GuestId(950)).to_string(),
            "02:50:00:00:03:B6"
        );
    }

    #[test]
    fn gpu_assignment_shapes() {
        assert_eq!(parse_gpu_assignment("none").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_gpu_assignment("0").unwrap(), vec![0]);
        assert_eq!(parse_gpu_assignment("0, 1").unwrap(), vec![0, 1]);
        assert!(parse_gpu_assignment("0,,1").is_err());
        assert!(parse_gpu_assignment("0,0").is_err());
        assert!(parse_gpu_assignment("gpu0").is_err());
    }

    #[test]
    fn tokens_reject_shell_text() {
        assert!(check_token("Copy-Cuda12.8", Token::Hostname).is_ok());
        assert!(check_token("a;b", Token::Hostname).is_err());
        assert!(check_token("/usr/local/bin/x.sh", Token::Path).is_ok());
        for bad in ["/x/$(id)", "/x/`id`", "/x y", "/x/../etc", "/x\n", "/x;rm"] {
            assert!(check_token(bad, Token::Path).is_err(), "{bad}");
        }
        assert!(check_token("nesting=1,keyctl=1", Token::Options).is_ok());
        assert!(check_token("lxc.cap.keep = a b", Token::ConfigLine).is_ok());
        assert!(check_token("lxc.x = 1\nlxc.y = 2", Token::ConfigLine).is_err());
    }

    #[test]
    fn tokens_reject_what_escapes_or_breaks() {
        for bad in ["--version", "-rf"] {
            for kind in [Token::Hostname, Token::Name, Token::Path, Token::Options] {
                assert!(check_token(bad, kind).is_err(), "{bad} as {kind:?}");
            }
        }
        assert!(check_token("..", Token::Name).is_err());
        assert!(check_token(".", Token::Name).is_err());
        assert!(check_token("data..old", Token::Name).is_ok());
        assert!(check_token(&"a".repeat(63), Token::Hostname).is_ok());
        for bad in [&"a".repeat(64), "a..b", "a-.b", ".a", "a."] {
            assert!(check_token(bad, Token::Hostname).is_err(), "{bad}");
        }
        assert!(check_token("granite-3.3-8b-fp8", Token::Hostname).is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
    }
}
