//! The one place values are encoded: a 4-byte header (`PX`, format version as u16 LE) followed by
//! the value in bincode 2 (standard config). A value written by a newer format is refused.

use serde::{de::DeserializeOwned, Serialize};

/// The format this build writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: [u8; 2] = *b"PX";

/// Why a stored value could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error(
        "written by a newer version (format {found}; this build reads up to {FORMAT_VERSION})"
    )]
    TooNew { found: u16 },
    #[error("corrupted or truncated: {0}")]
    Corrupt(String),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    // Encoding plain data structures into a Vec cannot fail: no I/O, no size limit, and our types
    // contain only strings, integers, enums, vectors and maps.
    match bincode::serde::encode_into_std_write(value, &mut out, bincode::config::standard()) {
        Ok(_) => out,
        Err(e) => unreachable!("bincode cannot fail encoding plain data into a Vec: {e}"),
    }
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() < 4 || bytes[..2] != MAGIC {
        return Err(CodecError::Corrupt(format!(
            "bad header ({} bytes)",
            bytes.len()
        )));
    }
    let found = u16::from_le_bytes([bytes[2], bytes[3]]);
    if found > FORMAT_VERSION {
        return Err(CodecError::TooNew { found });
    }
    let (value, used) = bincode::serde::decode_from_slice(&bytes[4..], bincode::config::standard())
        .map_err(|e| CodecError::Corrupt(e.to_string()))?;
    if used != bytes.len() - 4 {
        return Err(CodecError::Corrupt(format!(
            "{} trailing bytes",
            bytes.len() - 4 - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let v = (String::from("lxc/950"), 7u32, vec![1u8, 2, 3]);
        let bytes = encode(&v);
        assert_eq!(decode::<(String, u32, Vec<u8>)>(&bytes).unwrap(), v);
        let mut newer = bytes.clone();
        newer[2..4].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert_eq!(
            decode::<(String, u32, Vec<u8>)>(&newer),
            Err(CodecError::TooNew {
                found: FORMAT_VERSION + 1
            })
        );
        assert!(matches!(
            decode::<(String, u32, Vec<u8>)>(&bytes[..bytes.len() - 2]),
            Err(CodecError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<(String, u32, Vec<u8>)>(b"XX\x01\x00abc"),
            Err(CodecError::Corrupt(_))
        ));
        assert!(matches!(
            decode::<(String, u32, Vec<u8>)>(b""),
            Err(CodecError::Corrupt(_))
        ));
    }
}
