//! criterion benches per pipeline stage, on the fixtures: scan, each
//! transform, link, compress, emit, and the whole build. `cargo bench --bench
//! stages`; `-- <filter>` for one group. Whole-command comparisons with other
//! tools are the shell scripts next to this file.

/// The binary's allocator, so that allocation-heavy stages (brotli's hash
/// tables) cost here what they cost in `kiln`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kiln::asset::AssetKind;
use kiln::config::Config;
use kiln::emit::compress::Effort;
use kiln::link::Processed;
use kiln::scan::{Walk, scan};
use kiln::spill::Spill;
use kiln::transform::{TransformOptions, transform};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn site() -> PathBuf {
    fixtures().join("site")
}

fn stage_scan(c: &mut Criterion) {
    let config = Config::new(site(), "unused");
    c.bench_function("scan/fixtures-site", |b| {
        b.iter(|| {
            let found = scan(
                &site(),
                &config.scan,
                &Walk {
                    skip_dirs: Vec::new(),
                    keep_names: Some(&config.link.keep_names),
                },
            );
            black_box(found.assets.len())
        })
    });
}

fn stage_transform(c: &mut Criterion) {
    let options = TransformOptions::minify();
    let mut group = c.benchmark_group("transform");
    for (name, path, kind) in [
        ("html", site().join("index.html"), AssetKind::Html),
        ("css", site().join("css/main.css"), AssetKind::Css),
        ("js", site().join("js/app.js"), AssetKind::Js),
        (
            "png",
            fixtures().join("images/png/rgba.png"),
            AssetKind::Png,
        ),
        (
            "jpeg",
            fixtures().join("images/jpeg/photo.jpg"),
            AssetKind::Jpeg,
        ),
    ] {
        let bytes = std::fs::read(&path).expect("fixture");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let rel = path.file_name().unwrap().to_string_lossy().into_owned();
        group.bench_function(name, |b| {
            b.iter_batched(
                || bytes.clone(),
                |bytes| black_box(transform(kind, &rel, bytes, None, &options).bytes.len()),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The fixture site's assets with their transform results, as link receives them.
fn transformed() -> (Vec<kiln::asset::Asset>, Vec<Processed>, Config) {
    let config = Config::new(site(), "unused");
    let assets = scan(
        &site(),
        &config.scan,
        &Walk {
            skip_dirs: Vec::new(),
            keep_names: Some(&config.link.keep_names),
        },
    )
    .assets;
    let tree = kiln::link::Tree::new(&assets);
    let processed = assets
        .iter()
        .map(|a| {
            let bytes = std::fs::read(&a.source).expect("fixture");
            let t = transform(a.kind, &a.path, bytes, None, &config.transform);
            let (refs, _) =
                kiln::link::resolve_refs(a, t.refs, t.base.as_deref(), &tree, &config.base);
            Processed {
                hash: blake3::hash(&t.bytes),
                bytes: Some(t.bytes.into()),
                refs,
                generated_map: false,
                images: t.images,
                dimensions: None,
                generated_variant: false,
            }
        })
        .collect();
    (assets, processed, config)
}

fn clone_processed(p: &[Processed]) -> Vec<Processed> {
    p.to_vec()
}

fn stage_link(c: &mut Criterion) {
    let (assets, processed, config) = transformed();
    c.bench_function("link/fixtures-site", |b| {
        b.iter_batched(
            || clone_processed(&processed),
            |p| black_box(kiln::link::link(&assets, p, &config.link, &Spill::memory()).len()),
            BatchSize::SmallInput,
        )
    });
}

fn stage_compress(c: &mut Criterion) {
    let page = transform(
        AssetKind::Html,
        "index.html",
        std::fs::read(site().join("index.html")).expect("fixture"),
        None,
        &TransformOptions::minify(),
    )
    .bytes;
    let mut group = c.benchmark_group("compress");
    group.throughput(Throughput::Bytes(page.len() as u64));
    for (name, effort) in [("best", Effort::Best), ("fast", Effort::Fast)] {
        group.bench_function(format!("gzip-{name}"), |b| {
            b.iter(|| black_box(kiln::emit::compress::gzip(&page, effort).len()))
        });
        group.bench_function(format!("brotli-{name}"), |b| {
            b.iter(|| black_box(kiln::emit::compress::brotli(&page, effort).len()))
        });
    }
    group.finish();
}

fn stage_emit(c: &mut Criterion) {
    let (assets, processed, config) = transformed();
    let spill = Spill::memory();
    let linked = kiln::link::link(&assets, processed, &config.link, &spill);
    let files: Vec<(String, Vec<u8>)> = linked
        .into_iter()
        .zip(&assets)
        .map(|(l, a)| {
            let bytes = match l.bytes.expect("in memory") {
                Some(b) => spill.take(b).expect("in memory").into_vec(),
                None => std::fs::read(&a.source).expect("fixture"),
            };
            (l.output, bytes)
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("emit");
    // Every file new: temporary file, write, rename.
    group.bench_function("write-new", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_dir_all(dir.path().join("new"));
                dir.path().join("new")
            },
            |root| {
                for (path, bytes) in &files {
                    kiln::emit::write_atomic(&root, path, bytes).expect("written");
                }
            },
            BatchSize::PerIteration,
        )
    });
    // A rebuild: every file already there with the same bytes (compared, not written).
    let same = dir.path().join("same");
    for (path, bytes) in &files {
        kiln::emit::write_atomic(&same, path, bytes).expect("written");
    }
    group.bench_function("unchanged", |b| {
        b.iter(|| {
            for (path, bytes) in &files {
                black_box(kiln::emit::write_atomic(&same, path, bytes).expect("compared"));
            }
        })
    });
    group.finish();
}

fn whole_build(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("fixtures-site-cold-fast", |b| {
        b.iter_batched(
            || {
                let out = dir.path().join("out");
                let _ = std::fs::remove_dir_all(&out);
                let mut config = Config::new(site(), out);
                config.cache_dir = None;
                config.compress.effort = Effort::Fast;
                config
            },
            |config| {
                black_box(kiln::pipeline::build(&config, &kiln::progress::Silent).expect("builds"))
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = stages;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(20);
    targets = stage_scan, stage_transform, stage_link, stage_compress, stage_emit, whole_build
}
criterion_main!(stages);
