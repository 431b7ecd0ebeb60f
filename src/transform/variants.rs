//! Image variants (`images.variants = ["avif", "webp"]`): the same picture
//! in formats that browsers may prefer, written beside the original and
//! offered to them through `<picture>` (see `link::picture`). A variant
//! exists only when it is smaller than the original's final bytes and looks
//! the same:
//!
//! - from a PNG, a **lossless** WebP: the same pixels (libwebp may change the
//!   colour of fully transparent pixels, which nobody sees). The encoding is
//!   decoded again and compared before it is kept;
//! - from a JPEG, a **lossy** WebP at `images.webp_quality`, scored against
//!   the JPEG's pixels with SSIMULACRA2 and kept only at
//!   `images.jpeg_min_score` or above (a second try at a higher quality when
//!   the first falls short);
//! - from an opaque PNG or a JPEG, a **lossy** AVIF (ravif, 4:4:4) at
//!   `images.avif_quality`, decoded again with rav1d and scored the same way;
//!   kept only when it is also smaller than the WebP.
//!
//! Not made, because the variant could look different or the work is
//! unbounded: images with an ICC profile or (PNG) other colour chunks than
//! sRGB, JPEGs rotated by EXIF orientation, CMYK, 16-bit and animated PNGs,
//! images over [`MAX_VARIANT_PIXELS`] (lossless) or
//! [`MAX_LOSSY_PIXELS`](super::jpeg::MAX_LOSSY_PIXELS) (lossy: the score's
//! working set), AVIFs of images with transparency or over
//! [`MAX_AVIF_PIXELS`], and anything that does not decode.

use std::borrow::Cow;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::asset::AssetKind;

/// Largest PNG given a lossless variant: 16 megapixels, 64 MB of RGBA and
/// about five times that inside libwebp, and under WebP's 16 383 pixels a
/// side.
pub const MAX_VARIANT_PIXELS: u64 = 16_000_000;
const MAX_SIDE: u32 = 16_383;

/// Largest image given an AVIF: 4 megapixels. kiln's AV1 encoder runs
/// without assembly: in a release build on the benchmark machine, one try on
/// a 1.1 MP photo takes about 1.5 s, so two tries on a 16 MP wallpaper would
/// hold a core for about 40 s.
pub const MAX_AVIF_PIXELS: u64 = 4_000_000;

/// A format kiln can write variants in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Avif,
    Webp,
}

impl Format {
    /// Every format, in the order `<source>` elements list them (the most
    /// efficient first).
    pub const ALL: [Format; 2] = [Format::Avif, Format::Webp];

    /// The file name extension, also the name in kiln.toml.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Avif => "avif",
            Format::Webp => "webp",
        }
    }

    /// The kind of a file in this format.
    pub fn kind(self) -> AssetKind {
        match self {
            Format::Avif => AssetKind::Avif,
            Format::Webp => AssetKind::Webp,
        }
    }

    /// The media type written in `<source type>`.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Avif => "image/avif",
            Format::Webp => "image/webp",
        }
    }

    /// The format of a name in `images.variants`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == name)
    }

    /// The format a variant path (`<original>.<ext>`) is written in.
    pub fn of_path(path: &str) -> Option<Format> {
        let (_, ext) = path.rsplit_once('.')?;
        Format::from_name(ext)
    }
}

/// What `images.variants` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantOptions {
    /// Make WebP variants.
    pub webp: bool,
    /// libwebp's quality (1–100) for the lossy WebP of a JPEG. Default: 85.
    pub webp_quality: u8,
    /// Make AVIF variants.
    pub avif: bool,
    /// ravif's quality (1–100) for AVIF variants. Default: 90.
    pub avif_quality: u8,
    /// Lowest SSIMULACRA2 score a lossy variant may have. Default: 90.
    pub min_score: u8,
}

impl Default for VariantOptions {
    fn default() -> Self {
        VariantOptions {
            webp: true,
            webp_quality: 85,
            avif: false,
            avif_quality: 90,
            min_score: 90,
        }
    }
}

/// One variant of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub format: Format,
    pub bytes: Vec<u8>,
}

/// The variants of the image `source` (as written in the source tree), each
/// smaller than `limit` (the size of kiln's output for it), and an AVIF only
/// when it is also smaller than the WebP (a browser takes the first format
/// it knows, and AVIF comes first). Never fails: an image that cannot be
/// given one gets none.
pub fn make(
    kind: AssetKind,
    source: &[u8],
    limit: usize,
    options: &VariantOptions,
) -> Vec<Variant> {
    if !options.webp && !options.avif {
        return Vec::new();
    }
    let pixels = match kind {
        AssetKind::Png => png_rgba(source).map(|(px, w, h)| Pixels::Rgba(px, w, h)),
        AssetKind::Jpeg => jpeg_rgb(source).map(|(px, w, h)| Pixels::Rgb(px, w, h)),
        _ => None,
    };
    let Some(pixels) = pixels else {
        return Vec::new();
    };
    let webp = options
        .webp
        .then(|| match &pixels {
            Pixels::Rgba(px, w, h) => webp_lossless(px, *w, *h),
            Pixels::Rgb(px, w, h) => webp_lossy(px, *w, *h, limit, options),
        })
        .flatten()
        .filter(|w| w.len() < limit);
    let avif = options
        .avif
        .then(|| pixels.opaque_rgb())
        .flatten()
        .and_then(|(rgb, w, h)| avif_lossy(&rgb, w, h, limit, options))
        .filter(|a| webp.as_ref().is_none_or(|w| a.len() < w.len()));
    let mut out = Vec::new();
    if let Some(bytes) = avif {
        out.push(Variant {
            format: Format::Avif,
            bytes,
        });
    }
    if let Some(bytes) = webp {
        out.push(Variant {
            format: Format::Webp,
            bytes,
        });
    }
    out
}

/// An image's pixels: a PNG's as RGBA, a JPEG's as RGB.
enum Pixels {
    Rgba(Vec<u8>, u32, u32),
    Rgb(Vec<u8>, u32, u32),
}

impl Pixels {
    /// RGB pixels, when the image is opaque and small enough for an AVIF.
    fn opaque_rgb(&self) -> Option<(Cow<'_, [u8]>, u32, u32)> {
        let (w, h) = match self {
            Pixels::Rgba(_, w, h) | Pixels::Rgb(_, w, h) => (*w, *h),
        };
        if !within(w as u64, h as u64, MAX_AVIF_PIXELS) {
            return None;
        }
        match self {
            Pixels::Rgb(px, ..) => Some((Cow::Borrowed(px), w, h)),
            Pixels::Rgba(px, ..) => px.chunks_exact(4).all(|p| p[3] == 255).then(|| {
                let rgb = px.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]);
                (Cow::Owned(rgb.collect()), w, h)
            }),
        }
    }
}

/// The pixels of a JPEG that a variant can show as it is: no ICC profile,
/// no EXIF rotation, small enough to score.
fn jpeg_rgb(bytes: &[u8]) -> Option<(Vec<u8>, u32, u32)> {
    let decoded = super::jpeg::decode_rgb(bytes)?;
    if decoded.orientation.is_some() || !decoded.icc.is_empty() {
        return None;
    }
    let (w, h) = (decoded.width as u32, decoded.height as u32);
    within(w as u64, h as u64, super::jpeg::MAX_LOSSY_PIXELS).then_some((decoded.pixels, w, h))
}

/// The qualities to try, lowest first: the configured one, then halfway to 100.
fn qualities(first: u8) -> Vec<u8> {
    let second = first + (100 - first) / 2;
    if second > first {
        vec![first, second]
    } else {
        vec![first]
    }
}

/// Whether `decoded` (RGB) scores at least `options.min_score` against `rgb`.
fn passes(rgb: &[u8], decoded: &[u8], w: u32, h: u32, options: &VariantOptions) -> bool {
    super::raster::ssimulacra2(rgb, decoded, w as usize, h as usize)
        .is_some_and(|score| score >= f64::from(options.min_score))
}

/// A lossy AVIF (ravif: 4:4:4, 8 bits, BT.601 full range) of opaque RGB
/// pixels that scores at least `options.min_score`, decoded again with rav1d.
fn avif_lossy(
    rgb: &[u8],
    width: u32,
    height: u32,
    limit: usize,
    options: &VariantOptions,
) -> Option<Vec<u8>> {
    use rgb::FromSlice;
    for quality in qualities(options.avif_quality) {
        let img = ravif::Img::new(rgb.as_rgb(), width as usize, height as usize);
        let encoded = ravif::Encoder::new()
            .with_quality(f32::from(quality))
            .with_speed(6)
            .with_bit_depth(ravif::BitDepth::Eight)
            .with_num_threads(Some(1))
            .encode_rgb(img)
            .ok()?
            .avif_file;
        if encoded.len() >= limit {
            return None; // a higher quality would only be larger
        }
        let decoded = avif_rgb(&encoded, width, height)?;
        if passes(rgb, &decoded, width, height, options) {
            return Some(encoded);
        }
    }
    None
}

/// Decode an AVIF that [`avif_lossy`] wrote back to RGB.
fn avif_rgb(avif: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
    use re_rav1d::dav1d::{Decoder, PixelLayout, PlanarImageComponent, Settings};
    let data = avif_parse::read_avif(&mut Cursor::new(avif)).ok()?;
    // One thread, no frame delay: the build already runs a file per core.
    let mut settings = Settings::new();
    settings.set_n_threads(1);
    settings.set_max_frame_delay(1);
    let mut decoder = Decoder::with_settings(&settings).ok()?;
    match decoder.send_data(data.primary_item.to_vec(), None, None, None) {
        Err(e) if !e.is_again() => return None,
        _ => {}
    }
    // The decoder may ask for another call (or for the rest of the data)
    // before the one picture is ready.
    let mut tries = 0;
    let picture = loop {
        match decoder.get_picture() {
            Ok(p) => break p,
            Err(e) if e.is_again() && tries < 16 => {
                tries += 1;
                match decoder.send_pending_data() {
                    Err(e) if !e.is_again() => return None,
                    _ => {}
                }
            }
            Err(_) => return None,
        }
    };
    if picture.pixel_layout() != PixelLayout::I444
        || picture.bit_depth() != 8
        || picture.width() != width
        || picture.height() != height
    {
        return None;
    }
    let plane = |c| (picture.plane(c), picture.stride(c) as usize);
    let (y, ys) = plane(PlanarImageComponent::Y);
    let (u, us) = plane(PlanarImageComponent::U);
    let (v, vs) = plane(PlanarImageComponent::V);
    let (w, h) = (width as usize, height as usize);
    let mut out = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for col in 0..w {
            let luma = f32::from(*y.get(row * ys + col)?);
            let cb = f32::from(*u.get(row * us + col)?) - 128.0;
            let cr = f32::from(*v.get(row * vs + col)?) - 128.0;
            // The inverse of ravif's BT.601 full-range conversion.
            let r = luma + 1.402 * cr;
            let b = luma + 1.772 * cb;
            let g = (luma - 0.299 * r - 0.114 * b) / 0.587;
            out.extend([r, g, b].map(|c| c.round().clamp(0.0, 255.0) as u8));
        }
    }
    Some(out)
}

/// The pixels of an 8-bit, still, sRGB PNG as RGBA.
fn png_rgba(bytes: &[u8]) -> Option<(Vec<u8>, u32, u32)> {
    let size = imagesize::blob_size(bytes).ok()?;
    if !within(size.width as u64, size.height as u64, MAX_VARIANT_PIXELS) {
        return None;
    }
    let limits = png::Limits {
        bytes: (MAX_VARIANT_PIXELS * 8) as usize,
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().ok()?;
    let info = reader.info();
    let srgb = info.srgb.is_some();
    let plain_gamma = info.gama_chunk.is_none_or(|g| g.into_scaled() == 45455);
    let turned = info
        .exif_metadata
        .as_deref()
        .is_some_and(|e| super::raster::tiff_orientation(e).is_some());
    if info.animation_control.is_some()
        || turned
        || info.icc_profile.is_some()
        || info.coding_independent_code_points.is_some()
        || info.bit_depth == png::BitDepth::Sixteen
        || (!srgb && (info.chrm_chunk.is_some() || !plain_gamma))
        || !within(info.width as u64, info.height as u64, MAX_VARIANT_PIXELS)
    {
        return None;
    }
    let mut buffer = vec![0; reader.output_buffer_size()?];
    let frame = reader.next_frame(&mut buffer).ok()?;
    if frame.bit_depth != png::BitDepth::Eight {
        return None;
    }
    let pixels = &buffer[..frame.buffer_size()];
    let rgba: Vec<u8> = match frame.color_type {
        png::ColorType::Rgba => pixels.to_vec(),
        png::ColorType::Rgb => pixels
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => pixels
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => pixels.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => return None,
    };
    Some((rgba, frame.width, frame.height))
}

fn within(width: u64, height: u64, max_pixels: u64) -> bool {
    width > 0
        && height > 0
        && width * height <= max_pixels
        && width <= MAX_SIDE as u64
        && height <= MAX_SIDE as u64
}

/// A lossless WebP of RGBA pixels, checked by decoding it again.
fn webp_lossless(rgba: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
    let mut config = webp::WebPConfig::new().ok()?;
    config.lossless = 1;
    config.quality = 75.0;
    config.method = 4;
    config.exact = 0;
    let encoded = webp::Encoder::from_rgba(rgba, width, height)
        .encode_advanced(&config)
        .ok()?;
    let decoded = webp::Decoder::new(&encoded).decode()?;
    if decoded.width() != width || decoded.height() != height {
        return None;
    }
    let same = if decoded.is_alpha() {
        visible_pixels_equal(rgba, &decoded)
    } else {
        rgba.chunks_exact(4)
            .zip(decoded.chunks_exact(3))
            .all(|(a, b)| a[3] == 255 && a[..3] == *b)
    };
    same.then(|| encoded.to_vec())
}

/// Whether two RGBA buffers show the same picture: equal alpha everywhere,
/// equal colour wherever a pixel is not fully transparent.
pub fn visible_pixels_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.chunks_exact(4)
            .zip(b.chunks_exact(4))
            .all(|(a, b)| a[3] == b[3] && (a[3] == 0 || a[..3] == b[..3]))
}

/// A lossy WebP of a JPEG's RGB pixels that scores at least
/// `options.min_score`.
fn webp_lossy(
    rgb: &[u8],
    width: u32,
    height: u32,
    limit: usize,
    options: &VariantOptions,
) -> Option<Vec<u8>> {
    for quality in qualities(options.webp_quality) {
        let mut config = webp::WebPConfig::new().ok()?;
        config.lossless = 0;
        config.quality = f32::from(quality);
        config.method = 4;
        // RGB to YUV conversion that keeps sharp colour edges: measured
        // SSIMULACRA2 +3 to +48 on the fixtures at equal quality.
        config.use_sharp_yuv = 1;
        let encoded = webp::Encoder::from_rgb(rgb, width, height)
            .encode_advanced(&config)
            .ok()?;
        if encoded.len() >= limit {
            return None; // a higher quality would only be larger
        }
        let again = webp::Decoder::new(&encoded).decode()?;
        if again.is_alpha() || again.width() != width || again.height() != height {
            return None;
        }
        if passes(rgb, &again, width, height, options) {
            return Some(encoded.to_vec());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = png::Encoder::new(&mut out, width, height);
        e.set_color(color);
        e.set_depth(png::BitDepth::Eight);
        e.write_header().unwrap().write_image_data(data).unwrap();
        out
    }

    /// A noisy gradient with a transparent corner, like a photo with a
    /// cut-out: worth a lossless WebP.
    pub(super) fn gradient() -> (Vec<u8>, Vec<u8>) {
        let (w, h) = (64u32, 48u32);
        let mut rgba = Vec::new();
        let mut seed = 0x2545_f491u32;
        for y in 0..h {
            for x in 0..w {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 28) as u8;
                let a = if x < 8 && y < 8 { 0 } else { 255 };
                rgba.extend_from_slice(&[
                    (x * 3) as u8 + noise,
                    (y * 4) as u8 + noise / 2,
                    ((x + y) * 2) as u8,
                    a,
                ]);
            }
        }
        (png(w, h, png::ColorType::Rgba, &rgba), rgba)
    }

    #[test]
    fn a_png_gets_a_lossless_webp_with_the_same_pixels() {
        let (file, rgba) = gradient();
        let (px, w, h) = png_rgba(&file).expect("decodes");
        assert_eq!((px.len(), w, h), (rgba.len(), 64, 48));
        let lossless = webp_lossless(&px, w, h).expect("encodes");
        assert!(
            lossless.len() < file.len(),
            "{} vs {}",
            lossless.len(),
            file.len()
        );
        let variants = make(
            AssetKind::Png,
            &file,
            file.len(),
            &VariantOptions::default(),
        );
        assert_eq!(variants.len(), 1);
        let webp = &variants[0].bytes;
        assert!(webp.len() < file.len(), "{} vs {}", webp.len(), file.len());
        let decoded = webp::Decoder::new(webp).decode().unwrap();
        assert!(visible_pixels_equal(&rgba, &decoded));
    }

    #[test]
    fn no_variant_for_colour_managed_animated_or_deep_pngs() {
        let (_, rgba) = gradient();
        let encode = |setup: &dyn Fn(&mut png::Encoder<'_, &mut Vec<u8>>)| {
            let mut out = Vec::new();
            let mut e = png::Encoder::new(&mut out, 64, 48);
            e.set_color(png::ColorType::Rgba);
            e.set_depth(png::BitDepth::Eight);
            setup(&mut e);
            let mut w = e.write_header().unwrap();
            w.write_image_data(&rgba).unwrap();
            if let Ok(()) = w.write_image_data(&rgba) {} // a second frame when animated
            drop(w);
            out
        };
        let plain = encode(&|_| {});
        assert!(png_rgba(&plain).is_some());
        let srgb = encode(&|e| e.set_source_srgb(png::SrgbRenderingIntent::Perceptual));
        assert!(png_rgba(&srgb).is_some(), "sRGB is what WebP shows");
        let gamma = encode(&|e| e.set_source_gamma(png::ScaledFloat::from_scaled(100_000)));
        assert!(png_rgba(&gamma).is_none(), "a gamma of 1.0 is shown darker");
        let animated = encode(&|e| e.set_animated(2, 0).unwrap());
        assert!(png_rgba(&animated).is_none());

        let deep = {
            let mut out = Vec::new();
            let mut e = png::Encoder::new(&mut out, 2, 2);
            e.set_color(png::ColorType::Rgb);
            e.set_depth(png::BitDepth::Sixteen);
            e.write_header()
                .unwrap()
                .write_image_data(&[7; 24])
                .unwrap();
            out
        };
        assert!(
            make(
                AssetKind::Png,
                &deep,
                deep.len(),
                &VariantOptions::default()
            )
            .is_empty()
        );
        assert!(make(AssetKind::Png, b"not a png", 9, &VariantOptions::default()).is_empty());
        let off = VariantOptions {
            webp: false,
            ..VariantOptions::default()
        };
        assert!(make(AssetKind::Png, &plain, plain.len(), &off).is_empty());
    }

    #[test]
    fn a_tiny_png_keeps_no_larger_variant() {
        let file = png(1, 1, png::ColorType::Grayscale, &[9]);
        let variants = make(
            AssetKind::Png,
            &file,
            file.len(),
            &VariantOptions::default(),
        );
        assert!(variants.iter().all(|v| v.bytes.len() < file.len()));
    }

    #[test]
    fn formats_by_name_and_path() {
        assert_eq!(Format::from_name("webp"), Some(Format::Webp));
        assert_eq!(Format::from_name("avif"), Some(Format::Avif));
        assert_eq!(Format::from_name("jxl"), None);
        assert_eq!(Format::of_path("img/a.png.webp"), Some(Format::Webp));
        assert_eq!(Format::Webp.mime(), "image/webp");
    }
}

#[cfg(test)]
mod jpeg_tests {
    use super::*;

    fn progressive() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/images/jpeg/progressive.jpg"
        ))
        .expect("fixture")
    }

    #[test]
    fn a_jpeg_gets_a_webp_only_when_the_score_allows_it() {
        let jpeg = progressive();
        let lenient = VariantOptions {
            min_score: 70,
            ..VariantOptions::default()
        };
        let made = make(AssetKind::Jpeg, &jpeg, jpeg.len(), &lenient);
        assert_eq!(made.len(), 1);
        let webp = &made[0].bytes;
        assert!(webp.len() < jpeg.len());
        // Scored again here, from the decoded files.
        let original = crate::transform::jpeg::decode_rgb(&jpeg).unwrap();
        let decoded = webp::Decoder::new(webp).decode().unwrap();
        let score = crate::transform::raster::ssimulacra2(
            &original.pixels,
            &decoded,
            original.width,
            original.height,
        )
        .unwrap();
        assert!(score >= 70.0, "{score}");

        let strict = VariantOptions {
            min_score: 95,
            ..VariantOptions::default()
        };
        assert!(make(AssetKind::Jpeg, &jpeg, jpeg.len(), &strict).is_empty());
    }
}

#[cfg(test)]
mod avif_tests {
    use super::*;

    /// A photo saved as PNG: an AVIF at the score's bar is far smaller than
    /// the lossless WebP, decodes to the image's size, and scores as asked.
    #[test]
    fn an_opaque_png_gets_an_avif_when_it_beats_the_webp() {
        let png = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/images/png/rgb.png"
        ))
        .expect("fixture");
        let options = VariantOptions {
            avif: true,
            ..VariantOptions::default()
        };
        let made = make(AssetKind::Png, &png, png.len(), &options);
        let formats: Vec<Format> = made.iter().map(|v| v.format).collect();
        assert_eq!(formats, [Format::Avif, Format::Webp]);
        let (avif, webp) = (&made[0].bytes, &made[1].bytes);
        assert!(avif.len() < webp.len(), "{} vs {}", avif.len(), webp.len());
        assert!(avif.starts_with(&[0, 0, 0]) && &avif[4..12] == b"ftypavif");
        let (rgba, w, h) = png_rgba(&png).unwrap();
        let rgb: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let decoded = avif_rgb(avif, w, h).expect("decodes");
        let score = crate::transform::raster::ssimulacra2(&rgb, &decoded, w as usize, h as usize);
        assert!(score.unwrap() >= 90.0, "{score:?}");

        // With transparency, no AVIF (kiln's AVIFs carry no alpha).
        let (badge, _) = super::tests::gradient();
        let made = make(AssetKind::Png, &badge, badge.len(), &options);
        assert!(made.iter().all(|v| v.format == Format::Webp), "{made:?}");
    }
}
