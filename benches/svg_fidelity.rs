//! How often each step of the SVG rendering check keeps a file
//! (`transform::svg::Fidelity`), over the SVG files of the folders given:
//!
//!     cargo bench --bench svg_fidelity -- DIR [DIR...]
//!
//! `benches/svg.sh` assembles a corpus and runs this. Prints one Markdown row
//! per folder: files per outcome, bytes in and out, and the time spent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln::transform::svg::{Fidelity, minify_checked};
use rayon::prelude::*;

fn svg_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "svg") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// One file's outcome: the step, bytes in and out, the time it took.
fn check(path: &Path) -> (Option<Fidelity>, u64, u64, Duration) {
    let started = Instant::now();
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, 0, 0, started.elapsed());
    };
    let size = text.len() as u64;
    match minify_checked(&text) {
        Ok((out, fidelity)) => {
            let after = out.map_or(size, |o| o.len() as u64);
            (Some(fidelity), size, after, started.elapsed())
        }
        Err(_) => (None, size, size, started.elapsed()),
    }
}

fn main() {
    let dirs: Vec<PathBuf> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .collect();
    if dirs.is_empty() {
        eprintln!("usage: cargo bench --bench svg_fidelity -- DIR [DIR...]");
        std::process::exit(2);
    }
    let steps = [
        Fidelity::Rounded3,
        Fidelity::Rounded5,
        Fidelity::ExactNumbers,
        Fidelity::Original,
        Fidelity::NotSmaller,
    ];
    println!(
        "| corpus | files | 3 decimals | 5 decimals | exact numbers | original kept | not smaller | refused (diagnostic) | bytes in | bytes out | CPU s |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for dir in &dirs {
        let files = svg_files(dir);
        let results: Vec<_> = files.par_iter().map(|f| check(f)).collect();
        let mut counts: BTreeMap<Option<Fidelity>, usize> = BTreeMap::new();
        let (mut before, mut after, mut cpu) = (0u64, 0u64, Duration::ZERO);
        for (fidelity, b, a, t) in &results {
            *counts.entry(*fidelity).or_default() += 1;
            before += b;
            after += a;
            cpu += *t;
        }
        let cells: Vec<String> = steps
            .iter()
            .map(|s| counts.get(&Some(*s)).copied().unwrap_or(0).to_string())
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} |",
            dir.file_name().unwrap_or_default().to_string_lossy(),
            files.len(),
            cells.join(" | "),
            counts.get(&None).copied().unwrap_or(0),
            before,
            after,
            cpu.as_secs_f64()
        );
    }
}
