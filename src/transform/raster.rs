//! What the raster codecs share: the pixel limit checked before anything is
//! decoded, format sniffing and the diagnostics for a file left as it is, the
//! EXIF orientation in TIFF layout (JPEG's `APP1` and PNG's `eXIf` carry the
//! same), and the SSIMULACRA2 score that lossy JPEG and the WebP/AVIF
//! variants are checked with.

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

/// The side of the tiles an image is scored in.
pub const SCORE_TILE: usize = 768;

/// SSIMULACRA2 of two sRGB images (interleaved RGB, 8 bits).
///
/// An image larger than [`SCORE_TILE`] on a side is cut into equal tiles (at
/// least half a tile on a side) scored one by one; its score is the worst
/// tile's, so a damaged region is not averaged away and memory stays bounded.
pub(super) fn ssimulacra2(a: &[u8], b: &[u8], width: usize, height: usize) -> Option<f64> {
    if a.len() != width * height * 3 || b.len() != a.len() {
        return None;
    }
    let (cols, rows) = (width.div_ceil(SCORE_TILE), height.div_ceil(SCORE_TILE));
    if cols * rows <= 1 {
        return score(a, b, width, height);
    }
    let (tw, th) = (width.div_ceil(cols), height.div_ceil(rows));
    let mut worst = f64::INFINITY;
    for y0 in (0..height).step_by(th) {
        for x0 in (0..width).step_by(tw) {
            let (w, h) = (tw.min(width - x0), th.min(height - y0));
            let crop = |px: &[u8]| -> Vec<u8> {
                (y0..y0 + h)
                    .flat_map(|y| &px[(y * width + x0) * 3..(y * width + x0 + w) * 3])
                    .copied()
                    .collect()
            };
            worst = worst.min(score(&crop(a), &crop(b), w, h)?);
        }
    }
    Some(worst)
}

/// SSIMULACRA2 of two whole sRGB images (interleaved RGB, 8 bits).
fn score(a: &[u8], b: &[u8], width: usize, height: usize) -> Option<f64> {
    use ::ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic, compute_frame_ssimulacra2};
    let frame = |px: &[u8]| {
        let data = px
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]].map(|c| f32::from(c) / 255.0))
            .collect();
        Rgb::new(
            data,
            width,
            height,
            TransferCharacteristic::SRGB,
            ColorPrimaries::BT709,
        )
        .ok()
    };
    compute_frame_ssimulacra2(frame(a)?, frame(b)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large image is scored by tiles, and its score is the worst tile's:
    /// damage in one corner counts in full instead of being averaged away.
    #[test]
    fn large_images_are_scored_by_their_worst_tile() {
        let (w, h) = (1600usize, 900usize);
        let original: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| [(x / 7) as u8, (y / 4) as u8, ((x + y) / 10) as u8])
            })
            .collect();
        let mut damaged = original.clone();
        let mut seed = 1u32;
        for y in 0..200 {
            for x in 0..200 {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                damaged[(y * w + x) * 3] ^= (seed >> 27) as u8;
            }
        }
        assert_eq!(ssimulacra2(&original, &original, w, h), Some(100.0));
        let tiled = ssimulacra2(&original, &damaged, w, h).unwrap();
        let whole = score(&original, &damaged, w, h).unwrap();
        assert!(tiled < whole, "worst tile {tiled}, whole image {whole}");
        assert_eq!(ssimulacra2(&original, &damaged[3..], w, h), None);
    }
}
