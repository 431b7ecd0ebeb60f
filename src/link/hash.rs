//! Naming policy: content hashes printed in a short lowercase alphabet, and
//! where they go in a file name (`name.<hash>.ext`).

/// RFC 4648 base32, lowercase: safe in URLs and on case-insensitive file systems.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The first `len` characters of `hash` in base32.
pub fn short_hash(hash: &blake3::Hash, len: usize) -> String {
    let bytes = hash.as_bytes();
    (0..len)
        .map(|i| {
            let bit = i * 5;
            let (byte, shift) = (bit / 8, bit % 8);
            let word =
                (u16::from(bytes[byte]) << 8) | u16::from(*bytes.get(byte + 1).unwrap_or(&0));
            ALPHABET[usize::from((word >> (11 - shift)) & 0x1f)] as char
        })
        .collect()
}

/// `dir/name.ext` with `hash` inserted before the extension: `dir/name.<hash>.ext`.
/// A name without an extension (or a dot-file) gets the hash appended.
pub fn hashed_path(path: &str, hash: &str) -> String {
    let (dir, name) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{dir}{}.{hash}{}", &name[..dot], &name[dot..]),
        _ => format!("{dir}{name}.{hash}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            hashed_path("css/site.css", "abcd2345"),
            "css/site.abcd2345.css"
        );
        assert_eq!(hashed_path("jquery.min.js", "h"), "jquery.min.h.js");
        assert_eq!(hashed_path("a/LICENSE", "h"), "a/LICENSE.h");
        assert_eq!(hashed_path(".htaccess", "h"), ".htaccess.h");
        assert_eq!(hashed_path("team photo.jpg", "h"), "team photo.h.jpg");
    }

    #[test]
    fn short_hashes_are_lowercase_base32() {
        let h = short_hash(&blake3::hash(b"kiln"), 8);
        assert_eq!(h.len(), 8);
        assert!(h.bytes().all(|b| ALPHABET.contains(&b)));
        // The first 5 bits of the digest pick the first character.
        let first = blake3::hash(b"kiln").as_bytes()[0] >> 3;
        assert_eq!(h.as_bytes()[0], ALPHABET[first as usize]);
        assert_eq!(short_hash(&blake3::hash(b"kiln"), 32).len(), 32);
    }
}
