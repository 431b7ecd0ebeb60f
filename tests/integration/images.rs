//! Images: PNGs recompressed losslessly (decoded pixels identical, metadata
//! stripped except colour and animation), never enlarged; broken, mislabelled
//! and oversized files passed through unchanged with a diagnostic.

use std::path::Path;

use crate::util::{Site, build, fixture_path};

/// The decoded pixels, as 16-bit RGBA whatever the encoding.
fn pixels(bytes: &[u8]) -> (u32, u32, Vec<u16>) {
    let image =
        image::load_from_memory_with_format(bytes, image::ImageFormat::Png).expect("decodes");
    let rgba = image.to_rgba16();
    (rgba.width(), rgba.height(), rgba.into_raw())
}

/// The chunk types of a PNG, in order.
fn chunks(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        at += 12 + len;
    }
    out
}

fn png_dir() -> std::path::PathBuf {
    fixture_path("images").join("png")
}

#[test]
fn pngs_keep_their_pixels_and_lose_their_metadata() {
    let site = Site::new();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(png_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        site.write(&format!("img/{name}"), std::fs::read(entry.path()).unwrap());
        names.push(name);
    }
    // The fixture site's images too.
    for entry in std::fs::read_dir(fixture_path("site").join("img")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.ends_with(".png") {
            site.write(
                &format!("img/site-{name}"),
                std::fs::read(entry.path()).unwrap(),
            );
            names.push(format!("site-{name}"));
        }
    }
    assert!(names.len() >= 12, "{names:?}");
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    let mut smaller = 0;
    for name in &names {
        let source = format!("img/{name}");
        let before = std::fs::read(site.path().join(&source)).unwrap();
        let after = built.read(&m.files[&source].output);
        assert!(after.len() <= before.len(), "{name} grew");
        if after.len() < before.len() {
            smaller += 1;
        }
        assert_eq!(pixels(&before), pixels(&after), "{name}: pixels changed");
        let kept = chunks(&after);
        for gone in ["tEXt", "zTXt", "iTXt", "tIME"] {
            assert!(!kept.iter().any(|c| c == gone), "{name} kept {gone}");
        }
    }
    assert!(
        smaller * 2 > names.len(),
        "only {smaller} of {} shrank",
        names.len()
    );
    let out = |name: &str| built.read(&m.files[&format!("img/{name}")].output);
    // Colour and animation survive.
    assert!(chunks(&out("with-icc.png")).iter().any(|c| c == "iCCP"));
    let animated = out("animated.png");
    assert!(chunks(&animated).iter().any(|c| c == "acTL"));
    let decoder = image::codecs::png::PngDecoder::new(std::io::Cursor::new(&animated)).unwrap();
    use image::AnimationDecoder;
    let frames = decoder
        .apng()
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), 3);
    // Nothing to gain: the bytes stay as they were.
    assert_eq!(
        out("already-optimal.png"),
        std::fs::read(png_dir().join("already-optimal.png")).unwrap()
    );
}

#[test]
fn bad_pngs_pass_through_with_a_diagnostic() {
    let bad = fixture_path("images").join("bad");
    let site = Site::new().file("index.html", "<p>images</p>");
    let names = [
        "truncated.png",
        "corrupt-crc.png",
        "jpeg-named.png",
        "bomb.png",
        "empty.png",
    ];
    for name in names {
        site.write(name, std::fs::read(bad.join(name)).unwrap());
    }
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    for name in names {
        assert_eq!(
            built.read(&m.files[name].output),
            std::fs::read(bad.join(name)).unwrap(),
            "{name} changed"
        );
    }
    for (name, says) in [
        ("bomb.png", "megapixel limit"),
        ("jpeg-named.png", "not a PNG"),
        ("truncated.png", "copied unchanged"),
        ("corrupt-crc.png", "copied unchanged"),
    ] {
        let line = built
            .stderr
            .lines()
            .find(|l| l.contains(&format!("{name}: warning")))
            .unwrap_or_else(|| panic!("no diagnostic for {name}:\n{}", built.stderr));
        assert!(line.contains(says), "{line}");
        assert!(
            Path::new(line.split(':').next().unwrap()).ends_with(name),
            "{line}"
        );
    }
}

/// A JPEG's decoded pixels (the image crate's decoder, RGB whatever the
/// colour space, orientation not applied).
fn jpeg_pixels(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let image =
        image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).expect("decodes");
    let rgb = image.to_rgb8();
    (rgb.width(), rgb.height(), rgb.into_raw())
}

/// The markers of a JPEG up to the first scan: (code, payload).
fn jpeg_markers(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let code = bytes[at + 1];
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        out.push((code, bytes[at + 4..at + 2 + len].to_vec()));
        if code == 0xDA {
            break;
        }
        at += 2 + len;
    }
    out
}

fn jpeg_dir() -> std::path::PathBuf {
    fixture_path("images").join("jpeg")
}

#[test]
fn jpegs_are_optimised_losslessly_and_keep_only_colour_and_orientation() {
    let site = Site::new().file("index.html", "<p>photos</p>");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(jpeg_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        site.write(&name, std::fs::read(entry.path()).unwrap());
        names.push(name);
    }
    names.sort();
    assert!(names.len() >= 9, "{names:?}");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(!built.stderr.contains("warning"), "{}", built.stderr);
    let m = built.manifest();
    let mut smaller = 0;
    for name in &names {
        let before = std::fs::read(jpeg_dir().join(name)).unwrap();
        let after = built.read(&m.files[name].output);
        assert!(after.len() <= before.len(), "{name} grew");
        // Lossless: the same pixels out of the same decoder, CMYK included.
        assert!(
            jpeg_pixels(&before) == jpeg_pixels(&after),
            "{name}: pixels differ"
        );
        if after.len() < before.len() {
            smaller += 1;
            // Progressive (SOF2), Huffman tables optimised.
            assert!(
                jpeg_markers(&after).iter().any(|(c, _)| *c == 0xC2),
                "{name}"
            );
        }
    }
    assert_eq!(smaller, names.len(), "every fixture gets smaller");

    let before = jpeg_markers(&std::fs::read(jpeg_dir().join("with-metadata.jpg")).unwrap());
    let after = jpeg_markers(&built.read(&m.files["with-metadata.jpg"].output));
    let payloads = |markers: &[(u8, Vec<u8>)], code: u8| -> Vec<Vec<u8>> {
        markers
            .iter()
            .filter(|(c, _)| *c == code)
            .map(|(_, p)| p.clone())
            .collect()
    };
    // The ICC profile, byte for byte.
    let icc = |m: &[(u8, Vec<u8>)]| {
        payloads(m, 0xE2)
            .into_iter()
            .filter(|p| p.starts_with(b"ICC_PROFILE\0"))
            .collect::<Vec<_>>()
    };
    assert!(!icc(&before).is_empty());
    assert_eq!(icc(&before), icc(&after));
    // EXIF: only the orientation (6) is left; the camera make, the comment and XMP are gone.
    let exif = payloads(&after, 0xE1);
    assert_eq!(exif.len(), 1);
    assert!(
        exif[0].starts_with(b"Exif\0\0") && exif[0].len() == 32,
        "{exif:?}"
    );
    assert_eq!(&exif[0][6 + 8 + 2 + 8..6 + 8 + 2 + 10], &[0, 6]);
    let all: Vec<u8> = after.iter().flat_map(|(_, p)| p.clone()).collect();
    for gone in [&b"KilnCam"[..], b"fixture generator", b"adobe:ns:meta"] {
        assert!(!all.windows(gone.len()).any(|w| w == gone));
    }
    assert!(payloads(&after, 0xFE).is_empty(), "no comment");

    // `images.jpeg = false` leaves them alone.
    site.write("kiln.toml", "[images]\njpeg = false\n");
    let off = build(site.path(), &[]);
    let m = off.manifest();
    for name in &names {
        assert_eq!(
            off.read(&m.files[name].output),
            std::fs::read(jpeg_dir().join(name)).unwrap()
        );
    }
}

#[test]
fn bad_jpegs_pass_through_with_a_diagnostic() {
    let bad = fixture_path("images").join("bad");
    let site = Site::new().file("index.html", "<p>photos</p>");
    let cases = [
        ("truncated.jpg", "Premature end of JPEG file"),
        ("corrupt.jpg", "broken JPEG"),
        ("bomb.jpg", "megapixel limit"),
        ("png-named.jpg", "not a JPEG"),
        // libjpeg fails after its output buffer grew (a 20 kB ICC profile
        // written first): once a double free, now a diagnostic.
        ("dct-overflow-icc.jpg", "DCT coefficient out of range"),
    ];
    for (name, _) in cases {
        site.write(name, std::fs::read(bad.join(name)).unwrap());
    }
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    for (name, says) in cases {
        assert_eq!(
            built.read(&m.files[name].output),
            std::fs::read(bad.join(name)).unwrap(),
            "{name} changed"
        );
        let line = built
            .stderr
            .lines()
            .find(|l| l.contains(&format!("{name}: warning")))
            .unwrap_or_else(|| panic!("no diagnostic for {name}:\n{}", built.stderr));
        assert!(
            line.contains(says) && line.contains("copied unchanged"),
            "{line}"
        );
    }
}

/// `images.jpeg_quality`: a lossy re-encoding is kept only when its
/// SSIMULACRA2 score reaches `jpeg_min_score`; the test scores the output
/// itself, independently of kiln's decoder.
#[test]
fn lossy_jpeg_is_kept_only_above_the_perceptual_threshold() {
    fn score(a: &[u8], b: &[u8]) -> f64 {
        use ssimulacra2::{ColorPrimaries, Rgb, TransferCharacteristic, compute_frame_ssimulacra2};
        let frame = |bytes: &[u8]| {
            let img = image::load_from_memory(bytes).unwrap().to_rgb8();
            let (w, h) = img.dimensions();
            let data = img
                .pixels()
                .map(|p| p.0.map(|c| f32::from(c) / 255.0))
                .collect();
            Rgb::new(
                data,
                w as usize,
                h as usize,
                TransferCharacteristic::SRGB,
                ColorPrimaries::BT709,
            )
            .unwrap()
        };
        compute_frame_ssimulacra2(frame(a), frame(b)).unwrap()
    }
    let original = std::fs::read(jpeg_dir().join("photo.jpg")).unwrap();
    let site = Site::new().file("photo.jpg", &original);
    let lossless = build(site.path(), &[]);
    let lossless = lossless.read("photo.jpg");

    // A threshold a quality-60 encoding of this grainy image cannot reach: lossless.
    site.write("kiln.toml", "[images]\njpeg_quality = 60\n");
    let strict = build(site.path(), &[]);
    assert_eq!(strict.code, 0, "{}", strict.stderr);
    assert_eq!(strict.read("photo.jpg"), lossless);

    // A lenient one: the smaller lossy file, whose own score is at least the threshold.
    site.write(
        "kiln.toml",
        "[images]\njpeg_quality = 60\njpeg_min_score = 25\n",
    );
    let lenient = build(site.path(), &[]);
    let out = lenient.read("photo.jpg");
    assert!(
        out.len() < lossless.len() / 2,
        "{} vs {}",
        out.len(),
        lossless.len()
    );
    let s = score(&original, &out);
    // kiln scored its worst tile; the whole image scores at least that.
    assert!((25.0..90.0).contains(&s), "{s}");

    site.write("kiln.toml", "[images]\njpeg_quality = 0\n");
    let bad = build(site.path(), &[]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("jpeg_quality"), "{}", bad.stderr);
}

/// `images.variants = ["webp"]`: each PNG that can be shown the same way as
/// a WebP gets a lossless one beside it, when smaller; an independent decoder
/// (the `image` crate) must see the same picture. Pages offer the variants
/// through `<picture>`; the manifest records them; a source file of the same
/// name wins; a second build takes them from the cache.
#[test]
fn webp_variants_are_lossless_smaller_and_offered_by_pages() {
    let site = Site::new();
    let mut page = String::from("<!doctype html><title>v</title>\n");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(png_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        site.write(&format!("img/{name}"), std::fs::read(entry.path()).unwrap());
        page.push_str(&format!("<p><img src=\"img/{name}\" alt=\"{name}\"></p>\n"));
        names.push(name);
    }
    site.write("index.html", &page);
    site.write("kiln.toml", "[images]\nvariants = [\"webp\"]\n");
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = format!("--cache-dir={}", cache.path().display());
    let built = build(site.path(), &["--strict", &cache_arg]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    let rgba = |bytes: &[u8]| {
        image::load_from_memory(bytes)
            .unwrap()
            .to_rgba8()
            .into_raw()
    };
    let html = built.text("index.html");
    let mut made = Vec::new();
    for name in &names {
        let source = format!("img/{name}");
        let Some(entry) = m.files.get(&format!("{source}.webp")) else {
            let img = format!("src=\"{}\" alt=\"{name}\">", m.files[&source].output);
            assert!(html.contains(&img), "{name}: {html}");
            assert!(
                !html.contains(&format!("{img}</picture>")),
                "{name}: no variant, so no <picture>"
            );
            continue;
        };
        made.push(name.as_str());
        assert_eq!(entry.variant_of.as_deref(), Some(source.as_str()));
        assert_eq!(entry.content_type, "image/webp");
        assert!(entry.hashed, "{name}: named by its own hash");
        let png = built.read(&m.files[&source].output);
        let webp = built.read(&entry.output);
        assert!(webp.len() < png.len(), "{name}: the variant is smaller");
        assert!(
            kiln::transform::variants::visible_pixels_equal(&rgba(&png), &rgba(&webp)),
            "{name}: the WebP shows other pixels"
        );
        let file_name = entry.output.rsplit('/').next().unwrap();
        assert!(
            html.contains(&format!(
                "<picture style=\"display:contents\"><source style=\"display:none\" type=\"image/webp\" srcset=\"img/{file_name}\"><img"
            )),
            "{name}: {html}"
        );
    }
    made.sort_unstable();
    assert_eq!(
        made,
        [
            "already-optimal.png",
            "gray-alpha.png",
            "gray.png",
            "interlaced.png",
            "palette.png",
            "rgb.png",
            "rgba.png",
            "with-text.png"
        ],
        "colour-managed, 16-bit and animated PNGs get none"
    );

    // A second build reads the variants from the cache, byte for byte.
    let again = build(site.path(), &["--strict", &cache_arg]);
    assert!(again.stdout.contains(" 0 misses"), "{}", again.stdout);
    let site_files = |root: &Path| {
        let mut t = crate::util::tree(root);
        t.retain(|path, _| path.starts_with("img/") || path == "index.html");
        t
    };
    assert_eq!(site_files(&built.out), site_files(&again.out));

    // A source file of the variant's name wins.
    site.write("img/rgb.png.webp", b"the author's own WebP");
    let own = build(site.path(), &[]);
    assert_eq!(own.code, 0, "{}", own.stderr);
    let m = own.manifest();
    assert_eq!(m.files["img/rgb.png.webp"].variant_of, None);
    assert_eq!(
        own.read(&m.files["img/rgb.png.webp"].output),
        b"the author's own WebP"
    );
}

/// `images.dimensions = true` gives an `<img>` with neither `width` nor
/// `height` its image's size (turned by EXIF orientation); it is off by
/// default. `images.variants` names only formats kiln writes.
#[test]
fn dimensions_are_opt_in_and_variant_formats_are_checked() {
    let site = Site::new()
        .file("a.png", std::fs::read(png_dir().join("rgb.png")).unwrap())
        .file(
            "turned.jpg",
            std::fs::read(jpeg_dir().join("with-metadata.jpg")).unwrap(),
        )
        .file(
            "icon.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"24\" height=\"16\"><path d=\"M0 0h24v16H0z\"/></svg>",
        )
        .file(
            "index.html",
            "<img src=a.png alt=a><img src=a.png width=10 alt=b><img src=turned.jpg alt=c><img src=icon.svg alt=d>",
        );
    let plain = build(site.path(), &[]);
    assert!(!plain.text("index.html").contains("width=\"160\""));

    site.write("kiln.toml", "[images]\ndimensions = true\n");
    let sized = build(site.path(), &[]);
    assert_eq!(sized.code, 0, "{}", sized.stderr);
    let html = sized.text("index.html");
    assert!(
        html.contains("<img width=\"160\" height=\"120\" src="),
        "{html}"
    );
    assert!(html.contains("width=10 alt=b"), "{html}");
    assert!(
        html.contains("width=\"24\" height=\"16\" src=icon."),
        "an SVG's own size: {html}"
    );
    let (w, h) = {
        let img =
            image::load_from_memory(&std::fs::read(jpeg_dir().join("with-metadata.jpg")).unwrap())
                .unwrap();
        (img.width(), img.height())
    };
    // with-metadata.jpg carries orientation 6 (turned 90°): shown as h × w.
    assert!(
        html.contains(&format!("width=\"{h}\" height=\"{w}\" src=turned")),
        "{w}x{h}: {html}"
    );

    site.write("kiln.toml", "[images]\nvariants = [\"webp\", \"jxl\"]\n");
    let bad = build(site.path(), &[]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("kiln.toml:2:21") && bad.stderr.contains("`jxl` is not one"),
        "{}",
        bad.stderr
    );
}

/// `variants = ["avif", "webp"]`: an opaque photo saved as PNG gets an AVIF
/// (kept at the perceptual bar, and only because it beats the lossless
/// WebP), listed first in `<picture>`; an image with transparency gets the
/// WebP alone. Both are in the manifest with their media types.
#[test]
fn avif_variants_come_first_when_they_beat_the_webp() {
    let site = Site::new()
        .file(
            "photo.png",
            std::fs::read(png_dir().join("rgb.png")).unwrap(),
        )
        .file(
            "badge.png",
            std::fs::read(png_dir().join("rgba.png")).unwrap(),
        )
        .file(
            "index.html",
            "<img src=photo.png alt=photo><img src=badge.png alt=badge>",
        )
        .file("kiln.toml", "[images]\nvariants = [\"avif\", \"webp\"]\n");
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    let avif = &m.files["photo.png.avif"];
    let webp = &m.files["photo.png.webp"];
    assert_eq!(avif.content_type, "image/avif");
    assert_eq!(avif.variant_of.as_deref(), Some("photo.png"));
    assert!(avif.bytes_out < webp.bytes_out);
    assert!(webp.bytes_out < m.files["photo.png"].bytes_out);
    assert!(
        !m.files.contains_key("badge.png.avif"),
        "transparency: no AVIF"
    );
    assert!(m.files.contains_key("badge.png.webp"));
    let html = built.text("index.html");
    let name = |p: &str| m.files[p].output.clone();
    assert!(
        html.contains(&format!(
            "<source style=\"display:none\" type=\"image/avif\" srcset=\"{}\">\
             <source style=\"display:none\" type=\"image/webp\" srcset=\"{}\">",
            name("photo.png.avif"),
            name("photo.png.webp")
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<picture style=\"display:contents\"><source style=\"display:none\" type=\"image/webp\" srcset=\"{}\"><img",
            name("badge.png.webp")
        )),
        "{html}"
    );
}
