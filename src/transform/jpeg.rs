//! JPEG: lossless optimisation, as `jpegtran -copy none -optimize -progressive`
//! does it, with mozjpeg's scan optimisation. The DCT coefficients are copied
//! as they are, so every decoder produces the same pixels as from the
//! original; only the entropy coding changes (optimised Huffman tables,
//! progressive scans chosen for size).
//!
//! Metadata goes, except what changes how the image looks: the ICC profile
//! (`APP2 ICC_PROFILE`, every chunk, in order) and the EXIF orientation,
//! rewritten as a minimal EXIF block holding only that tag. Camera data,
//! GPS positions, thumbnails, XMP and comments are dropped. A CMYK image
//! keeps or lacks its Adobe marker as the original did (browsers read its
//! presence as "inverted CMYK").
//!
//! With `images.jpeg_quality` set, the image is also re-encoded lossily at
//! that quality (mozjpeg: trellis quantisation, progressive), and the result
//! is decoded and scored against the original with SSIMULACRA2. It is kept
//! only when the score reaches `images.jpeg_min_score` (default 90: "very
//! high quality", not told apart at a normal viewing distance) and the file
//! is smaller than the lossless result. Images over [`MAX_LOSSY_PIXELS`] and
//! other than 3-component YCbCr (grayscale, CMYK) stay lossless.
//!
//! Before libjpeg sees the file, the header's dimensions are checked against
//! [`MAX_PIXELS`]. libjpeg reports errors by calling
//! back; kiln's callback unwinds to [`optimize`], which passes the file
//! through with the message. A warning (corrupt or truncated data, which
//! libjpeg would patch over) also passes the file through: a lossless
//! transcode of damaged data would bake the damage in.

use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use mozjpeg_sys as sys;

use super::raster::{
    MAX_PIXELS, content_is, orientation_block, passed, ssimulacra2, tiff_orientation,
    within_pixel_limit,
};
use crate::diag::Diagnostic;

/// What libjpeg's error callback unwinds with.
struct Failed(String);

/// The message for the error or warning libjpeg last raised.
unsafe fn message(cinfo: &mut sys::jpeg_common_struct) -> String {
    let mut buffer = [0u8; 80];
    // SAFETY: `err` was set by `jpeg_std_error` and lives as long as `cinfo`;
    // format_message writes a NUL-terminated message of at most 80 bytes.
    // The binding declares the buffer `&[u8; 80]` though libjpeg writes it:
    // called through the same signature with `&mut`, as the mozjpeg crate does.
    unsafe {
        if let Some(format) = (*cinfo.err).format_message {
            let format: unsafe extern "C-unwind" fn(&mut sys::jpeg_common_struct, &mut [u8; 80]) =
                std::mem::transmute(format);
            format(cinfo, &mut buffer);
        }
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// libjpeg's fatal-error callback: unwind to [`optimize`] (the `unwinding`
/// feature makes every libjpeg entry point `C-unwind`).
unsafe extern "C-unwind" fn error_exit(cinfo: &mut sys::jpeg_common_struct) {
    let text = unsafe { message(cinfo) };
    resume_unwind(Box::new(Failed(text)));
}

thread_local! {
    /// The first warning of the transcode running on this thread.
    static WARNING: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// libjpeg's message callback: keep the first warning (level -1), count
/// them, print nothing (the default prints the first one on stderr); trace
/// messages (level ≥ 0) are ignored.
unsafe extern "C-unwind" fn emit_message(cinfo: &mut sys::jpeg_common_struct, level: c_int) {
    if level < 0 {
        let text = unsafe { message(cinfo) };
        WARNING.with(|w| {
            w.borrow_mut().get_or_insert(text);
        });
        // SAFETY: as in `message`.
        unsafe { (*cinfo.err).num_warnings += 1 };
    }
}

/// The first warning recorded on this thread, cleared.
fn take_warning() -> String {
    WARNING
        .with(|w| w.borrow_mut().take())
        .unwrap_or_else(|| "corrupt data".into())
}

/// The orientation value (2–8) of an EXIF block (`Exif\0\0` + TIFF), if any.
fn exif_orientation(data: &[u8]) -> Option<u16> {
    tiff_orientation(data.strip_prefix(b"Exif\0\0")?)
}

/// The EXIF orientation (2–8) of a JPEG file, read from its first `APP1
/// Exif` segment before the image data.
pub fn orientation(bytes: &[u8]) -> Option<u16> {
    let mut at = 2;
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None; // image data: no metadata after this point
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let data = bytes.get(at + 4..at + 2 + length.max(2))?;
        if marker == APP1
            && let Some(value) = exif_orientation(data)
        {
            return Some(value);
        }
        at += 2 + length;
    }
    None
}

/// Lossy re-encoding (`images.jpeg_quality`, `images.jpeg_min_score`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lossy {
    /// mozjpeg quality, 1–100.
    pub quality: u8,
    /// Lowest SSIMULACRA2 score (0–100) a re-encoded image may have.
    pub min_score: u8,
}

/// Largest image re-encoded lossily: 16 megapixels. The two RGB images
/// (source and re-encoding) take 6 bytes per pixel, the encoder a few more;
/// the score works on tiles of at most [`SCORE_TILE`](super::raster::SCORE_TILE)² pixels, whose working
/// set is about 185 bytes per pixel (measured: 457 MB for 2.46 MP at once),
/// so about 110 MB. About 300 MB per thread in all (estimated, not measured).
pub const MAX_LOSSY_PIXELS: u64 = 16_000_000;

const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;

/// The smaller lossless encoding of `bytes`, or `None` when it is not
/// smaller; a diagnostic when the file must pass through unchanged.
pub fn optimize(bytes: &[u8], lossy: Option<Lossy>) -> Result<Option<Vec<u8>>, Diagnostic> {
    let lossless = optimize_lossless(bytes)?;
    let Some(lossy) = lossy else {
        return Ok(lossless);
    };
    let best = lossless.as_deref().unwrap_or(bytes);
    match reencode(bytes, lossy) {
        Some(r) if r.score >= f64::from(lossy.min_score) && r.bytes.len() < best.len() => {
            Ok(Some(r.bytes))
        }
        _ => Ok(lossless),
    }
}

/// A lossy re-encoding and its score against the original.
pub struct Reencoded {
    pub bytes: Vec<u8>,
    pub score: f64,
}

/// A JPEG decoded to 8-bit RGB, with what decides how it is shown.
pub struct DecodedJpeg {
    /// Interleaved RGB.
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    /// The EXIF orientation (2–8), if the image is rotated or flipped.
    pub orientation: Option<u16>,
    /// The `APP2 ICC_PROFILE` chunks, in order.
    pub icc: Vec<Vec<u8>>,
}

/// Decode a 3-component YCbCr JPEG of at most [`MAX_LOSSY_PIXELS`]; `None`
/// for anything else or anything that fails.
pub fn decode_rgb(bytes: &[u8]) -> Option<DecodedJpeg> {
    let size = imagesize::blob_size(bytes).ok()?;
    if size.width as u64 * size.height as u64 > MAX_LOSSY_PIXELS {
        return None;
    }
    // The mozjpeg crate reports libjpeg errors by unwinding.
    catch_unwind(AssertUnwindSafe(|| -> Option<DecodedJpeg> {
        use mozjpeg::{ColorSpace, Decompress, Marker};
        let source = Decompress::with_markers(&[Marker::APP(1), Marker::APP(2)])
            .from_mem(bytes)
            .ok()?;
        // The decoder's own dimensions: a header crafted to fool a quick
        // reader must not get a 50 MP image through.
        if source.color_space() != ColorSpace::JCS_YCbCr
            || source.width() as u64 * source.height() as u64 > MAX_LOSSY_PIXELS
        {
            return None;
        }
        let mut orientation = None;
        let mut icc = Vec::new();
        for m in source.markers() {
            match m.marker {
                Marker::APP(1) if orientation.is_none() => orientation = exif_orientation(m.data),
                Marker::APP(2) if m.data.starts_with(b"ICC_PROFILE\0") => icc.push(m.data.to_vec()),
                _ => {}
            }
        }
        let mut decoded = source.rgb().ok()?;
        let (width, height) = (decoded.width(), decoded.height());
        let pixels = decoded.read_scanlines::<u8>().ok()?;
        decoded.finish().ok()?;
        Some(DecodedJpeg {
            pixels,
            width,
            height,
            orientation,
            icc,
        })
    }))
    .ok()
    .flatten()
}

/// Decode, re-encode at `lossy.quality`, decode again and score; `None` when
/// the image is not eligible or anything fails (the lossless result stands).
pub fn reencode(bytes: &[u8], lossy: Lossy) -> Option<Reencoded> {
    let original = decode_rgb(bytes)?;
    catch_unwind(AssertUnwindSafe(|| -> Option<Reencoded> {
        use mozjpeg::{ColorSpace, Compress, Decompress, Marker};
        let (width, height) = (original.width, original.height);
        let mut encoder = Compress::new(ColorSpace::JCS_RGB);
        encoder.set_size(width, height);
        encoder.set_quality(f32::from(lossy.quality));
        encoder.set_progressive_mode();
        encoder.set_optimize_coding(true);
        encoder.set_optimize_scans(true);
        let mut started = encoder.start_compress(Vec::new()).ok()?;
        if let Some(value) = original.orientation {
            started.write_marker(Marker::APP(1), &orientation_block(value));
        }
        for chunk in &original.icc {
            started.write_marker(Marker::APP(2), chunk);
        }
        started.write_scanlines(&original.pixels).ok()?;
        let out = started.finish().ok()?;

        let mut again = Decompress::new_mem(&out).ok()?.rgb().ok()?;
        let distorted = again.read_scanlines::<u8>().ok()?;
        again.finish().ok()?;
        let score = ssimulacra2(&original.pixels, &distorted, width, height)?;
        Some(Reencoded { bytes: out, score })
    }))
    .ok()
    .flatten()
}

fn optimize_lossless(bytes: &[u8]) -> Result<Option<Vec<u8>>, Diagnostic> {
    content_is(bytes, imagesize::ImageType::Jpeg, "JPEG")?;
    within_pixel_limit(bytes, "JPEG")?;
    let out = transcode(bytes).map_err(|e| passed(format!("broken JPEG ({e})")))?;
    Ok((out.len() < bytes.len()).then_some(out))
}

/// The libjpeg state of one transcode; destroyed on every path.
struct Codec {
    src: Box<sys::jpeg_decompress_struct>,
    src_err: Box<sys::jpeg_error_mgr>,
    dst: Box<sys::jpeg_compress_struct>,
    dst_err: Box<sys::jpeg_error_mgr>,
    buffer: *mut u8,
    length: std::ffi::c_ulong,
    /// `jpeg_finish_compress` returned: `buffer` is the final one. Before
    /// that, libjpeg may have replaced (and freed) it while growing it.
    finished: bool,
}

impl Drop for Codec {
    fn drop(&mut self) {
        // SAFETY: both structs were created by jpeg_create_*; destroying
        // frees every libjpeg allocation, after an error too. The memory
        // destination buffer is malloc'd by libjpeg and ours to free.
        unsafe {
            sys::jpeg_destroy_compress(&mut self.dst);
            sys::jpeg_destroy_decompress(&mut self.src);
            // After an error the buffer libjpeg holds is unknown to us: it
            // leaks (only for broken files) rather than risk a double free.
            if self.finished && !self.buffer.is_null() {
                libc::free(self.buffer.cast());
            }
        }
    }
}

fn transcode(bytes: &[u8]) -> Result<Vec<u8>, String> {
    // SAFETY: zeroed structs are what libjpeg's create functions expect;
    // each is boxed so the pointers libjpeg keeps stay valid.
    let mut codec = unsafe {
        Codec {
            src: Box::new(std::mem::zeroed()),
            src_err: Box::new(std::mem::zeroed()),
            dst: Box::new(std::mem::zeroed()),
            dst_err: Box::new(std::mem::zeroed()),
            buffer: std::ptr::null_mut(),
            length: 0,
            finished: false,
        }
    };
    WARNING.with(|w| w.borrow_mut().take());
    let c = &mut codec;
    let result = catch_unwind(AssertUnwindSafe(|| unsafe {
        // SAFETY: the standard libjpeg transcoding sequence (jpegtran.c):
        // every call gets the structs created here, in the documented order;
        // errors unwind out of `error_exit` to the catch_unwind.
        c.src.common.err = sys::jpeg_std_error(&mut c.src_err);
        c.src_err.error_exit = Some(error_exit);
        c.src_err.emit_message = Some(emit_message);
        c.dst.common.err = sys::jpeg_std_error(&mut c.dst_err);
        c.dst_err.error_exit = Some(error_exit);
        c.dst_err.emit_message = Some(emit_message);
        sys::jpeg_create_decompress(&mut *c.src);
        sys::jpeg_create_compress(&mut *c.dst);

        sys::jpeg_mem_src(&mut c.src, bytes.as_ptr(), bytes.len() as _);
        for marker in [APP1, APP2, APP14] {
            sys::jpeg_save_markers(&mut c.src, marker as c_int, 0xFFFF);
        }
        sys::jpeg_read_header(&mut c.src, 1);
        let (w, h) = (c.src.image_width as u64, c.src.image_height as u64);
        if w * h > MAX_PIXELS {
            return Err(format!("{w}×{h} is over the pixel limit"));
        }
        let coefficients = sys::jpeg_read_coefficients(&mut c.src);
        if c.src_err.num_warnings > 0 {
            return Err(take_warning());
        }

        // What of the metadata stays.
        let mut orientation = None;
        let mut icc = Vec::new();
        let mut adobe = false;
        let mut marker = c.src.marker_list;
        while !marker.is_null() {
            let m = &*marker;
            let data = std::slice::from_raw_parts(m.data, m.data_length as usize);
            match m.marker {
                APP1 if orientation.is_none() => orientation = exif_orientation(data),
                APP2 if data.starts_with(b"ICC_PROFILE\0") => icc.push(data),
                APP14 if data.starts_with(b"Adobe") => adobe = true,
                _ => {}
            }
            marker = m.next;
        }

        sys::jpeg_copy_critical_parameters(&c.src, &mut c.dst);
        c.dst.optimize_coding = 1;
        sys::jpeg_simple_progression(&mut c.dst);
        if c.src.num_components == 4 {
            // Adobe's marker on a CMYK image means "inverted": keep it as it was.
            c.dst.write_Adobe_marker = adobe as sys::boolean;
        }
        sys::jpeg_mem_dest(&mut c.dst, &mut c.buffer, &mut c.length);
        sys::jpeg_write_coefficients(&mut c.dst, coefficients);
        if let Some(value) = orientation {
            let block = orientation_block(value);
            sys::jpeg_write_marker(&mut c.dst, APP1 as c_int, block.as_ptr(), block.len() as _);
        }
        for chunk in icc {
            sys::jpeg_write_marker(&mut c.dst, APP2 as c_int, chunk.as_ptr(), chunk.len() as _);
        }
        sys::jpeg_finish_compress(&mut c.dst);
        c.finished = true;
        sys::jpeg_finish_decompress(&mut c.src);
        if c.src_err.num_warnings > 0 {
            return Err(take_warning());
        }
        Ok(std::slice::from_raw_parts(c.buffer, c.length as usize).to_vec())
    }));
    match result {
        Ok(r) => r,
        Err(payload) => Err(match payload.downcast::<Failed>() {
            Ok(failed) => failed.0,
            Err(_) => "libjpeg failed".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/images/jpeg/photo.jpg"
        ))
        .unwrap()
    }

    #[test]
    fn lossy_only_when_the_score_allows_it() {
        let bytes = photo();
        let lossless = optimize(&bytes, None).unwrap().expect("smaller");
        let r = reencode(
            &bytes,
            Lossy {
                quality: 70,
                min_score: 0,
            },
        )
        .expect("eligible");
        assert!(r.score > 0.0 && r.score < 100.0, "{}", r.score);
        assert!(r.bytes.len() < lossless.len());
        // A threshold the re-encoding reaches: lossy; one it cannot: lossless.
        let reached = r.score.floor() as u8;
        let chosen = optimize(
            &bytes,
            Some(Lossy {
                quality: 70,
                min_score: reached,
            }),
        )
        .unwrap();
        assert_eq!(chosen.as_deref(), Some(&r.bytes[..]));
        let refused = optimize(
            &bytes,
            Some(Lossy {
                quality: 70,
                min_score: 100,
            }),
        )
        .unwrap();
        assert_eq!(refused.as_deref(), Some(&lossless[..]));
    }

    #[test]
    fn orientation_survives_alone() {
        let block = orientation_block(6);
        assert_eq!(exif_orientation(&block), Some(6));
        assert_eq!(block.len(), 32);
        // Little-endian, with another tag first.
        let mut le = b"Exif\0\0II\x2a\0\x08\0\0\0\x02\0".to_vec();
        le.extend_from_slice(&[0x0F, 0x01, 2, 0, 4, 0, 0, 0, b'a', b'b', b'c', 0]);
        le.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0]);
        le.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(exif_orientation(&le), Some(8));
        // The default orientation (1) needs no block; junk is ignored.
        assert_eq!(exif_orientation(&orientation_block(1)), None);
        assert_eq!(exif_orientation(b"Exif\0\0MM\0\x2a\xff\xff\xff\xff"), None);
        assert_eq!(exif_orientation(b"http://ns.adobe.com/xap/1.0/\0"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut bytes = b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03".to_vec();
        bytes.extend_from_slice(&[0u8; 40]);
        assert!(optimize(&bytes, None).is_err());
        assert!(transcode(b"\xff\xd8\xff\xd9").is_err());
    }
}
