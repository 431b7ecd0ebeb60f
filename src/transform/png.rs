//! PNG: lossless recompression with oxipng. The decoded pixels never change:
//! oxipng only picks a smaller encoding (colour type, bit depth, palette,
//! filters, deflate). Metadata goes, except what affects how the image looks
//! (colour: `iCCP`, `sRGB`, `gAMA`, `cHRM`, `cICP`; size: `pHYs`) and
//! animation (APNG's `acTL`, `fcTL`, `fdAT`).
//!
//! Before any decoding, the header's dimensions are checked against
//! [`MAX_PIXELS`](super::raster::MAX_PIXELS), so a decompression bomb (a tiny file declaring 50 000 ×
//! 50 000 pixels) is passed through with a diagnostic instead of allocating
//! gigabytes. A file that is not a PNG, or a broken one, is passed through too.

use super::raster::{content_is, passed, within_pixel_limit};
use crate::diag::Diagnostic;

/// PNG options: `images.png_level` in kiln.toml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PngOptions {
    /// oxipng's preset level, 0 (fast) to 6 (slowest). Default: 2, oxipng's own default.
    pub level: u8,
}

impl Default for PngOptions {
    fn default() -> Self {
        PngOptions { level: 2 }
    }
}

/// Whether the chunk list starts with IHDR and holds no other IHDR (the walk
/// reads chunk headers only).
fn single_leading_ihdr(bytes: &[u8]) -> bool {
    let mut at = 8;
    let mut first = true;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let name = &bytes[at + 4..at + 8];
        if (name == b"IHDR") != first {
            return false;
        }
        first = false;
        at = at.saturating_add(12).saturating_add(len as usize);
    }
    !first
}

/// The EXIF orientation (2–8) in a PNG's `eXIf` chunk: browsers turn the
/// image by it, as they do a JPEG.
pub fn orientation(bytes: &[u8]) -> Option<u16> {
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let name = &bytes[at + 4..at + 8];
        if name == b"IDAT" {
            return None; // eXIf comes before the image data
        }
        if name == b"eXIf" {
            let data = bytes.get(at + 8..(at + 8).checked_add(len as usize)?)?;
            return super::raster::tiff_orientation(data);
        }
        at = at.saturating_add(12).saturating_add(len as usize);
    }
    None
}

/// `png` with an `eXIf` chunk holding only `value` (the rest of EXIF, camera
/// and position, stays out), right after IHDR.
fn with_orientation(png: &[u8], value: u16) -> Vec<u8> {
    const AFTER_IHDR: usize = 8 + 25;
    let tiff = &super::raster::orientation_block(value)[b"Exif\0\0".len()..];
    let mut chunk = (tiff.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"eXIf");
    chunk.extend_from_slice(tiff);
    chunk.extend_from_slice(&crc32fast::hash(&chunk[4..]).to_be_bytes());
    if png.len() < AFTER_IHDR {
        return png.to_vec();
    }
    [&png[..AFTER_IHDR], &chunk, &png[AFTER_IHDR..]].concat()
}

const KEEP: [&[u8; 4]; 9] = [
    b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"pHYs", b"acTL", b"fcTL", b"fdAT",
];

/// The smaller encoding of `bytes`, or `None` when oxipng finds nothing
/// smaller; a diagnostic when the file must pass through unchanged.
pub fn optimize(bytes: &[u8], options: &PngOptions) -> Result<Option<Vec<u8>>, Diagnostic> {
    content_is(bytes, imagesize::ImageType::Png, "PNG")?;
    // oxipng decodes with the last IHDR it meets; imagesize reads the first.
    // Only a file with exactly one, first, is measured and decoded.
    if !single_leading_ihdr(bytes) {
        return Err(passed(
            "malformed PNG (IHDR missing, misplaced or repeated)".into(),
        ));
    }
    let size = within_pixel_limit(bytes, "PNG")?;
    let pixels = size.width as u64 * size.height as u64;
    let mut opts = oxipng::Options::from_preset(options.level.min(6));
    opts.strip = oxipng::StripChunks::Keep(KEEP.iter().map(|c| **c).collect());
    // A bound on the IDAT stream from the checked header: 16-bit RGBA at
    // most, a filter byte per row, and room for Adam7's extra rows.
    opts.max_decompressed_size = Some((pixels * 8 + 2 * size.height as u64 + 64) as usize);
    // Browsers turn a PNG by its eXIf orientation: that alone is written back.
    let turned = orientation(bytes);
    match oxipng::optimize_from_memory(bytes, &opts).map(|out| match turned {
        Some(value) => with_orientation(&out, value),
        None => out,
    }) {
        Ok(out) if out.len() < bytes.len() => Ok(Some(out)),
        Ok(_) => Ok(None),
        Err(e) => Err(passed(format!("PNG not optimised ({e})"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(name: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(name);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]); // CRC: not checked by the walk
        out
    }

    fn ihdr(w: u32, h: u32) -> Vec<u8> {
        let mut data = w.to_be_bytes().to_vec();
        data.extend_from_slice(&h.to_be_bytes());
        data.extend_from_slice(&[1, 0, 0, 0, 0]);
        chunk(b"IHDR", &data)
    }

    #[test]
    fn a_second_ihdr_cannot_smuggle_a_bomb_past_the_limit() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(ihdr(1, 1));
        png.extend(ihdr(60_000, 50_000));
        png.extend(chunk(b"IEND", &[]));
        let err = optimize(&png, &PngOptions::default()).unwrap_err();
        assert!(err.message.contains("IHDR"), "{}", err.message);
        let mut ok = b"\x89PNG\r\n\x1a\n".to_vec();
        ok.extend(ihdr(1, 1));
        ok.extend(chunk(b"IEND", &[]));
        assert!(single_leading_ihdr(&ok));
    }

    /// A PNG turned by its eXIf chunk (orientation 6) keeps the orientation
    /// and nothing else of its EXIF, is measured turned, and gets no variant
    /// (which would not be turned).
    #[test]
    fn a_turned_png_keeps_its_orientation_alone() {
        // Two entries: Make ("SecretCam", at offset 38) and Orientation 6.
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x02".to_vec();
        tiff.extend_from_slice(b"\x01\x0f\0\x02\0\0\0\x0a\0\0\0\x26");
        tiff.extend_from_slice(b"\x01\x12\0\x03\0\0\0\x01\0\x06\0\0");
        tiff.extend_from_slice(b"\0\0\0\0SecretCam\0");
        let mut info = png::Info::with_size(48, 24);
        info.color_type = png::ColorType::Rgb;
        info.bit_depth = png::BitDepth::Eight;
        info.exif_metadata = Some(std::borrow::Cow::Owned(tiff));
        let mut file = Vec::new();
        let pixels: Vec<u8> = (0..24u32)
            .flat_map(|y| (0..48u32).flat_map(move |x| [(x * 5) as u8, (y * 10) as u8, 90]))
            .collect();
        let mut encoder = png::Encoder::with_info(&mut file, info).unwrap();
        encoder.set_compression(png::Compression::NoCompression);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels).unwrap();
        drop(writer);
        assert_eq!(orientation(&file), Some(6));
        let out = optimize(&file, &PngOptions::default())
            .unwrap()
            .expect("a stored PNG gets smaller");
        assert_eq!(orientation(&out), Some(6), "the orientation survives");
        assert!(!out.windows(9).any(|w| w == b"SecretCam"), "the rest goes");
        let decoded = png::Decoder::new(std::io::Cursor::new(&out))
            .read_info()
            .expect("a valid PNG, CRCs included");
        assert!(decoded.info().exif_metadata.is_some());
        assert_eq!(
            crate::transform::intrinsic_size(crate::asset::AssetKind::Png, &out),
            Some((24, 48))
        );
        let variants = crate::transform::variants::make(
            crate::asset::AssetKind::Png,
            &file,
            out.len(),
            &crate::transform::variants::VariantOptions::default(),
        );
        assert!(variants.is_empty());
    }
}
