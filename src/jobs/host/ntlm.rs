//! The NT hash Samba keeps of a password (`pdbedit -w`), so that `phoenix setup` can tell whether
//! a user's Samba password is the configured one without logging in or showing either.

/// The NT hash Samba keeps of a password: MD4 of its UTF-16LE form, in upper-case hex.
pub fn nt_hash(password: &str) -> String {
    let bytes: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    md4(&bytes).iter().map(|b| format!("{b:02X}")).collect()
}

/// MD4 (RFC 1320), for [`nt_hash`] only.
fn md4(input: &[u8]) -> [u8; 16] {
    let mut msg = input.to_vec();
    let bits = (input.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_le_bytes());
    let mut h: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let f = |x: u32, y: u32, z: u32| (x & y) | (!x & z);
    let g = |x: u32, y: u32, z: u32| (x & y) | (x & z) | (y & z);
    let hh = |x: u32, y: u32, z: u32| x ^ y ^ z;
    for chunk in msg.chunks(64) {
        let x: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for &i in &[0, 4, 8, 12] {
            a = (a.wrapping_add(f(b, c, d)).wrapping_add(x[i])).rotate_left(3);
            d = (d.wrapping_add(f(a, b, c)).wrapping_add(x[i + 1])).rotate_left(7);
            c = (c.wrapping_add(f(d, a, b)).wrapping_add(x[i + 2])).rotate_left(11);
            b = (b.wrapping_add(f(c, d, a)).wrapping_add(x[i + 3])).rotate_left(19);
        }
        for &i in &[0, 1, 2, 3] {
            let k = 0x5a82_7999u32;
            a = (a
                .wrapping_add(g(b, c, d))
                .wrapping_add(x[i])
                .wrapping_add(k))
            .rotate_left(3);
            d = (d
                .wrapping_add(g(a, b, c))
                .wrapping_add(x[i + 4])
                .wrapping_add(k))
            .rotate_left(5);
            c = (c
                .wrapping_add(g(d, a, b))
                .wrapping_add(x[i + 8])
                .wrapping_add(k))
            .rotate_left(9);
            b = (b
                .wrapping_add(g(c, d, a))
                .wrapping_add(x[i + 12])
                .wrapping_add(k))
            .rotate_left(13);
        }
        for &i in &[0, 2, 1, 3] {
            let k = 0x6ed9_eba1u32;
            a = (a
                .wrapping_add(hh(b, c, d))
                .wrapping_add(x[i])
                .wrapping_add(k))
            .rotate_left(3);
            d = (d
                .wrapping_add(hh(a, b, c))
                .wrapping_add(x[i + 8])
                .wrapping_add(k))
            .rotate_left(9);
            c = (c
                .wrapping_add(hh(d, a, b))
                .wrapping_add(x[i + 4])
                .wrapping_add(k))
            .rotate_left(11);
            b = (b
                .wrapping_add(hh(c, d, a))
                .wrapping_add(x[i + 12])
                .wrapping_add(k))
            .rotate_left(15);
        }
        h = [
            h[0].wrapping_add(a),
            h[1].wrapping_add(b),
            h[2].wrapping_add(c),
            h[3].wrapping_add(d),
        ];
    }
    let mut out = [0u8; 16];
    for (i, w) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md4_and_the_nt_hash_match_their_references() {
        // RFC 1320's test suite, and the NT hash of "password" as Samba stores it.
        let hex = |b: [u8; 16]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(md4(b"")), "31d6cfe0d16ae931b73c59d7e0c089c0");
        assert_eq!(hex(md4(b"abc")), "a448017aaf21d8525fc10ae87aa6729d");
        assert_eq!(
            hex(md4(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "e33b4ddc9c38f2199c3e7b164fcc0536"
        );
        assert_eq!(nt_hash("password"), "8846F7EAEE8FB117AD06BDD830B7586C");
    }
}
