//! PNG: lossless recompression with oxipng. The decoded pixels never change:
//! oxipng only picks a smaller encoding (colour type, bit depth, palette,
//! filters, deflate). Metadata goes, except what affects how the image looks
//! (colour: `iCCP`, `sRGB`, `gAMA`, `cHRM`, `cICP`; size: `pHYs`) and
//! animation (APNG's `acTL`, `fcTL`, `fdAT`).
//!
//! Before any decoding, the header's dimensions are checked against
//! [`MAX_PIXELS`], so a decompression bomb (a tiny file declaring 50 000 ×
//! 50 000 pixels) is passed through with a diagnostic instead of allocating
//! gigabytes. A file that is not a PNG, or a broken one, is passed through too.

use crate::diag::Diagnostic;

/// Largest image kiln decodes: 50 megapixels. At 16 bits per RGBA channel,
/// oxipng's working set for such an image is about 400 MB per thread.
pub const MAX_PIXELS: u64 = 50_000_000;

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

const KEEP: [&[u8; 4]; 9] = [
    b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"cICP", b"pHYs", b"acTL", b"fcTL", b"fdAT",
];

/// The smaller encoding of `bytes`, or `None` when oxipng finds nothing
/// smaller; a diagnostic when the file must pass through unchanged.
pub fn optimize(bytes: &[u8], options: &PngOptions) -> Result<Option<Vec<u8>>, Diagnostic> {
    let passed = |why: String| Diagnostic::warning("", format!("{why}: copied unchanged"));
    match imagesize::image_type(bytes) {
        Ok(imagesize::ImageType::Png) => {}
        Ok(other) => return Err(passed(format!("not a PNG (the content is {other:?})"))),
        Err(_) => {
            return Err(passed(
                "not a PNG (unrecognised or truncated header)".into(),
            ));
        }
    }
    let size =
        imagesize::blob_size(bytes).map_err(|e| passed(format!("unreadable PNG header ({e})")))?;
    let pixels = size.width as u64 * size.height as u64;
    if pixels > MAX_PIXELS {
        return Err(passed(format!(
            "a {}×{} PNG ({} megapixels) is over the {} megapixel limit",
            size.width,
            size.height,
            pixels / 1_000_000,
            MAX_PIXELS / 1_000_000
        )));
    }
    let mut opts = oxipng::Options::from_preset(options.level.min(6));
    opts.strip = oxipng::StripChunks::Keep(KEEP.iter().map(|c| **c).collect());
    // A bound on the IDAT stream too: 16-bit RGBA plus a filter byte per row.
    opts.max_decompressed_size = Some((MAX_PIXELS * 8 + size.height as u64) as usize);
    match oxipng::optimize_from_memory(bytes, &opts) {
        Ok(out) if out.len() < bytes.len() => Ok(Some(out)),
        Ok(_) => Ok(None),
        Err(e) => Err(passed(format!("PNG not optimised ({e})"))),
    }
}
