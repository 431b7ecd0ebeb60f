//! What the raster codecs share: the pixel limit checked before anything is
//! decoded, the diagnostics for a file left as it is, and the EXIF
//! orientation in TIFF layout (JPEG's `APP1` and PNG's `eXIf` carry the same).

use crate::diag::Diagnostic;

/// Largest image kiln decodes: 50 megapixels. At 16 bits per RGBA channel,
/// oxipng's working set for such an image is about 400 MB per thread.
pub const MAX_PIXELS: u64 = 50_000_000;

/// A raster file kiln leaves as it is, and why.
pub(super) fn passed(why: String) -> Diagnostic {
    Diagnostic::warning("", format!("{why}: copied unchanged"))
}

/// The content is an image of type `expected` (`name` in messages), whatever
/// its extension says.
pub(super) fn content_is(
    bytes: &[u8],
    expected: imagesize::ImageType,
    name: &str,
) -> Result<(), Diagnostic> {
    match imagesize::image_type(bytes) {
        Ok(t) if t == expected => Ok(()),
        Ok(other) => Err(passed(format!("not a {name} (the content is {other:?})"))),
        Err(_) => Err(passed(format!(
            "not a {name} (unrecognised or truncated header)"
        ))),
    }
}

/// The header's dimensions, when within [`MAX_PIXELS`]: read before anything
/// is decoded, so a decompression bomb costs nothing.
pub(super) fn within_pixel_limit(
    bytes: &[u8],
    name: &str,
) -> Result<imagesize::ImageSize, Diagnostic> {
    let size = imagesize::blob_size(bytes)
        .map_err(|e| passed(format!("unreadable {name} header ({e})")))?;
    let pixels = size.width as u64 * size.height as u64;
    if pixels > MAX_PIXELS {
        return Err(passed(format!(
            "a {}×{} {name} ({} megapixels) is over the {} megapixel limit",
            size.width,
            size.height,
            pixels / 1_000_000,
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(size)
}

/// The orientation value (2–8) of EXIF data in TIFF layout, if any.
pub(super) fn tiff_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..4)? {
        b"MM\0\x2a" => true,
        b"II\x2a\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at + 2)?.try_into().ok()?;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    if ifd >= tiff.len() {
        return None; // and no offset below can overflow, on 32 bits either
    }
    let count = u16_at(ifd)? as usize;
    for i in 0..count {
        let entry = ifd.checked_add(2 + 12 * i)?;
        // Orientation: tag 0x0112, type SHORT (3), count 1.
        if u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3 && u32_at(entry + 4)? == 1 {
            let value = u16_at(entry + 8)?;
            return (2..=8).contains(&value).then_some(value);
        }
    }
    None
}

/// A minimal big-endian EXIF block holding only the orientation.
pub(super) fn orientation_block(value: u16) -> Vec<u8> {
    let mut out = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
    out.extend_from_slice(&0x0112u16.to_be_bytes());
    out.extend_from_slice(&3u16.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}
