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
