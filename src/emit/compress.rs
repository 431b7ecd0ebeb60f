//! Precompression: `.gz`, `.br` and (when asked) `.zst` siblings of
//! compressible files, kept only when they pay. The bytes are reproducible:
//! the gzip header carries no timestamp and no file name, and the encoders
//! are deterministic (zstd single-threaded). Brotli at
//! quality 10–11 uses floating point: the same kiln binary always gives the
//! same bytes, but a build for another CPU may differ by a few bytes.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use brotlic::{BrotliEncoderOptions, CompressorWriter, Quality, WindowSize};
use flate2::{Compression, GzBuilder};

use serde::Deserialize;

/// The precompressed variants kept for one file.
#[derive(Debug, Default)]
pub struct Variants {
    pub gzip: Option<Vec<u8>>,
    pub brotli: Option<Vec<u8>>,
    pub zstd: Option<Vec<u8>>,
}

impl Variants {
    /// Each variant there is, with its file-name suffix.
    pub fn each(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        [
            (".gz", &self.gzip),
            (".br", &self.brotli),
            (".zst", &self.zstd),
        ]
        .into_iter()
        .filter_map(|(suffix, v)| v.as_deref().map(|b| (suffix, b)))
    }
}

/// Time spent in each encoder: the wall time of each call, summed over the
/// threads (so it counts time a thread waited for a core). A build reports
/// it (`--json`: `work_ms`): at brotli 11 it is most of the work.
#[derive(Debug, Default)]
pub struct EncodeTime {
    gzip_ns: AtomicU64,
    brotli_ns: AtomicU64,
    zstd_ns: AtomicU64,
}

impl EncodeTime {
    pub fn gzip(&self) -> Duration {
        Duration::from_nanos(self.gzip_ns.load(Ordering::Relaxed))
    }

    pub fn brotli(&self) -> Duration {
        Duration::from_nanos(self.brotli_ns.load(Ordering::Relaxed))
    }

    pub fn zstd(&self) -> Duration {
        Duration::from_nanos(self.zstd_ns.load(Ordering::Relaxed))
    }
}

/// Run `f`, adding the time it took to `counter`.
fn timed<T>(counter: &AtomicU64, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let result = f();
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    counter.fetch_add(ns, Ordering::Relaxed);
    result
}

/// Whether a content type is worth compressing (text, JS, JSON, XML, SVG,
/// wasm, uncompressed fonts, icons).
pub fn is_compressible(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim();
    mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/wasm"
                | "application/x-javascript"
                | "application/vnd.ms-fontobject"
                | "font/ttf"
                | "font/otf"
                | "font/collection"
                | "image/x-icon"
                | "image/vnd.microsoft.icon"
                | "image/bmp"
        )
}

/// Compress `bytes` with each enabled encoder; keep a variant only when the
/// file is at least `min_size` bytes and the variant saves `min_saving`.
/// The encoders' time is added to `time`.
pub fn precompress(bytes: &[u8], options: &CompressOptions, time: &EncodeTime) -> Variants {
    if (bytes.len() as u64) < options.min_size {
        return Variants::default();
    }
    let pays = |v: Vec<u8>| {
        let limit = bytes.len() as f64 * (1.0 - options.min_saving);
        ((v.len() as f64) <= limit).then_some(v)
    };
    Variants {
        gzip: options
            .gzip
            .then(|| timed(&time.gzip_ns, || gzip(bytes, options.effort)))
            .and_then(pays),
        brotli: options
            .brotli
            .then(|| timed(&time.brotli_ns, || brotli(bytes, options.effort)))
            .and_then(pays),
        zstd: options
            .zstd
            .then(|| timed(&time.zstd_ns, || zstd(bytes, options.effort)))
            .and_then(pays),
    }
}

/// zstd at level 19 (`best`) or 3 (`fast`), single-threaded, with the content
/// size in the frame and no checksum. Level 19's window (8 MiB at most) is
/// within what browsers accept for `Content-Encoding: zstd` (RFC 8878 §3.1.1.1.2).
pub fn zstd(bytes: &[u8], effort: Effort) -> Vec<u8> {
    let level = match effort {
        Effort::Best => 19,
        Effort::Fast => 3,
    };
    zstd::bulk::compress(bytes, level).expect("compressing in memory cannot fail")
}

/// gzip at level 9 (`best`) or 6 (`fast`), with an empty header (no name, mtime 0).
pub fn gzip(bytes: &[u8], effort: Effort) -> Vec<u8> {
    let level = match effort {
        Effort::Best => Compression::best(),
        Effort::Fast => Compression::default(),
    };
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::with_capacity(bytes.len() / 3 + 64), level);
    encoder
        .write_all(bytes)
        .expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// brotli at quality 11 (`best`) or 5 (`fast`), with a window sized to the input.
///
/// The encoder is Google's C library (through `brotlic`), the one the `brotli`
/// command runs: over the Python docs' 1061 compressible files it took 21%
/// less CPU than the Rust port at quality 11, and 57% less at 5, for the same
/// bytes (docs/performance.md).
pub fn brotli(bytes: &[u8], effort: Effort) -> Vec<u8> {
    let quality = match effort {
        Effort::Best => 11,
        Effort::Fast => 5,
    };
    let encoder = BrotliEncoderOptions::new()
        .quality(Quality::new(quality).expect("a quality in 0..=11"))
        .window_size(WindowSize::new(window_bits(bytes.len())).expect("a window in 10..=24"))
        .size_hint(u32::try_from(bytes.len()).unwrap_or(u32::MAX))
        .build()
        .expect("valid encoder parameters");
    let out = Vec::with_capacity(bytes.len() / 4 + 64);
    let mut writer = CompressorWriter::with_encoder(encoder, out);
    writer
        .write_all(bytes)
        .expect("writing to memory cannot fail");
    writer.into_inner().expect("writing to memory cannot fail")
}

/// The smallest window (10..=24 bits) that covers the input: the same ratio
/// with less memory for small files.
fn window_bits(len: usize) -> u8 {
    let bits = usize::BITS - len.max(1).leading_zeros();
    bits.clamp(10, 24) as u8
}

/// Precompression settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct CompressOptions {
    /// Write `.gz` siblings. Default: true.
    pub gzip: bool,
    /// Write `.br` siblings. Default: true.
    pub brotli: bool,
    /// Write `.zst` siblings. Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zstd: bool,
    /// Files smaller than this many bytes are not precompressed. Default: 256.
    pub min_size: u64,
    /// A variant is kept only when it saves at least this fraction of the bytes. Default: 0.05.
    pub min_saving: f64,
    /// How hard the encoders work. Default: best (`kiln watch`: fast).
    #[serde(default)]
    pub effort: Effort,
}

/// Compression effort: `best` (gzip 9, brotli 11) for what ships, `fast`
/// (gzip 6, brotli 5) where a rebuild must be quick, as in `kiln watch`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Effort {
    #[default]
    Best,
    Fast,
}

impl CompressOptions {
    /// Whether any sibling is made.
    pub fn any(&self) -> bool {
        self.gzip || self.brotli || self.zstd
    }
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            gzip: true,
            brotli: true,
            zstd: false,
            min_size: 256,
            min_saving: 0.05,
            effort: Effort::Best,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn variants_decode_to_the_input_and_are_reproducible() {
        let text = "body { color: red; }\n".repeat(200);
        let v = precompress(
            text.as_bytes(),
            &CompressOptions::default(),
            &EncodeTime::default(),
        );
        let gz = v.gzip.unwrap();
        let br = v.brotli.unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        let mut out = Vec::new();
        brotlic::DecompressorReader::new(&br[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, text.as_bytes());
        // mtime is zero and no name is stored: bytes 4..8 are the mtime, byte 3 the flags.
        assert_eq!(&gz[3..8], &[0, 0, 0, 0, 0]);
        assert_eq!(gzip(text.as_bytes(), Effort::Best), gz);
        assert_eq!(brotli(text.as_bytes(), Effort::Best), br);
    }

    #[test]
    fn zstd_is_opt_in_decodes_and_is_reproducible() {
        let text = "body { color: red; }\n".repeat(200);
        let off = precompress(
            text.as_bytes(),
            &CompressOptions::default(),
            &EncodeTime::default(),
        );
        assert!(off.zstd.is_none());
        let time = EncodeTime::default();
        let on = CompressOptions {
            zstd: true,
            ..CompressOptions::default()
        };
        let zst = precompress(text.as_bytes(), &on, &time).zstd.unwrap();
        assert!(time.zstd() > Duration::ZERO);
        assert_eq!(
            zstd::bulk::decompress(&zst, text.len()).unwrap(),
            text.as_bytes()
        );
        assert_eq!(zstd(text.as_bytes(), Effort::Best), zst);
        let fast = zstd(text.as_bytes(), Effort::Fast);
        assert_eq!(
            zstd::bulk::decompress(&fast, text.len()).unwrap(),
            text.as_bytes()
        );
        // The frame says its size, and carries no checksum (frame header descriptor).
        assert_eq!(zst[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(zst[4] & 0b100, 0);
    }

    #[test]
    fn brotli_decodes_at_window_sizes_10_to_17_bits() {
        let text: Vec<u8> = (0..70_000u32)
            .map(|i| b"<p>kiln, </p>"[(i % 13) as usize] ^ u8::from(i % 97 == 0))
            .collect();
        for len in [0, 1, 1023, 1024, 1025, 65_535, 65_536, 70_000] {
            for effort in [Effort::Best, Effort::Fast] {
                let br = brotli(&text[..len], effort);
                let mut out = Vec::new();
                brotlic::DecompressorReader::new(&br[..])
                    .read_to_end(&mut out)
                    .unwrap();
                assert!(out == text[..len], "{len} bytes, {effort:?}");
                assert_eq!(brotli(&text[..len], effort), br);
            }
        }
    }

    #[test]
    fn encoder_time_is_counted_only_for_files_compressed() {
        let time = EncodeTime::default();
        precompress(b"tiny", &CompressOptions::default(), &time);
        assert_eq!(
            (time.gzip(), time.brotli()),
            (Duration::ZERO, Duration::ZERO)
        );
        let text = "p { margin: 0 }\n".repeat(500);
        precompress(text.as_bytes(), &CompressOptions::default(), &time);
        assert!(time.gzip() > Duration::ZERO && time.brotli() > Duration::ZERO);
        let brotli_only = CompressOptions {
            gzip: false,
            ..CompressOptions::default()
        };
        let gzip_before = time.gzip();
        precompress(text.as_bytes(), &brotli_only, &time);
        assert_eq!(time.gzip(), gzip_before);
    }

    #[test]
    fn small_or_incompressible_files_get_no_variants() {
        let small = precompress(b"tiny", &CompressOptions::default(), &EncodeTime::default());
        assert!(small.gzip.is_none() && small.brotli.is_none());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let v = precompress(&noise, &CompressOptions::default(), &EncodeTime::default());
        assert!(v.gzip.is_none() && v.brotli.is_none());
    }

    #[test]
    fn fast_effort_is_deterministic_and_decodes() {
        let text = "body { color: red; margin: 0 auto; }\n".repeat(200);
        let fast = CompressOptions {
            effort: Effort::Fast,
            ..CompressOptions::default()
        };
        let v = precompress(text.as_bytes(), &fast, &EncodeTime::default());
        let br = v.brotli.unwrap();
        assert_eq!(br, brotli(text.as_bytes(), Effort::Fast));
        assert_ne!(br, brotli(text.as_bytes(), Effort::Best));
        let mut out = Vec::new();
        brotlic::DecompressorReader::new(&br[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, text.as_bytes());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&v.gzip.unwrap()[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn compressible_types() {
        assert!(is_compressible("text/css; charset=utf-8"));
        assert!(is_compressible("image/svg+xml"));
        assert!(is_compressible("application/manifest+json"));
        assert!(!is_compressible("image/png"));
        assert!(!is_compressible("font/woff2"));
    }
}
