//! SVG: minified with OXVG (a Rust port of SVGO's default preset), with the
//! passes that can change what a page shows or can reach turned off:
//!
//! - `viewBox`, `width` and `height` stay (an `<img>`'s intrinsic size and
//!   scaling depend on them);
//! - IDs stay as written: another file can point into this one
//!   (`sprite.svg#icon`, `url(icons.svg#grad)`, a fragment in CSS), which a
//!   pass that shortens or drops "unused" IDs cannot see;
//! - `<title>` and `<desc>` stay (accessible names), and hidden elements stay;
//! - OXVG's precheck runs first: a document it cannot optimise safely is kept
//!   as written;
//! - a minified document is kept only when it renders pixel for pixel like
//!   the original (resvg, at its size and at 2×): numbers rounded to 3
//!   decimals, else 5, else left as written, else the original is kept
//!   ([`Fidelity`]).
//!
//! A DTD is accepted (editors write one, Illustrator with entities for its
//! namespaces), but an entity that refers to another entity (the "billion
//! laughs" shape) is refused before parsing, and nodes are capped, so entity
//! expansion cannot blow up memory. A file that does not parse, or is over
//! [`MAX_BYTES`], is passed through with a diagnostic.

use oxvg_ast::parse::roxmltree::{ParsingOptions, parse_with_options};
use oxvg_ast::serialize::Node as _;
use oxvg_ast::visitor::Info;
use oxvg_optimiser::Jobs;

use crate::diag::Diagnostic;

/// Most nodes a document may expand to (entities included).
const MAX_NODES: u32 = 500_000;

/// Largest SVG kiln minifies (the DOM costs tens of times the text).
pub const MAX_BYTES: usize = 16 << 20;

/// Whether entity expansion could make the document large: an entity
/// whose value refers to another entity (the "billion laughs" shape), or
/// values times references adding up to more than [`MAX_BYTES`].
fn entity_bomb(text: &str) -> bool {
    let mut expanded = text.len();
    for (at, _) in text.match_indices("<!ENTITY") {
        let decl = &text[at + "<!ENTITY".len()..];
        let mut words = decl.split_whitespace();
        let Some(name) = words.next() else { continue };
        // The quoted value, whichever quote it uses ('>' may occur inside).
        let Some(open) = decl.find(['"', '\'']) else {
            continue;
        };
        let quote = decl[open..].chars().next().unwrap_or('"');
        let value_len = decl[open + 1..]
            .find(quote)
            .unwrap_or(decl.len() - open - 1);
        let value = &decl[open + 1..open + 1 + value_len];
        // Character references (&#160;, &amp;) are not entity expansion.
        if value
            .match_indices('&')
            .any(|(i, _)| !value[i + 1..].starts_with('#') && !value[i + 1..].starts_with("amp;"))
        {
            return true;
        }
        let uses = text.matches(&format!("&{name};")).count();
        expanded = expanded.saturating_add(uses.saturating_mul(value_len));
    }
    expanded > MAX_BYTES
}

/// The passes kiln runs: SVGO's default preset without the unsafe ones,
/// numbers rounded to `digits` decimals (`None`: numbers and path data left
/// as written).
fn jobs(digits: Option<u8>) -> Jobs {
    let mut jobs = Jobs {
        precheck: Jobs::safe().precheck,
        ..Jobs::default()
    };
    jobs.remove_view_box = None;
    jobs.remove_dimensions = None;
    jobs.cleanup_ids = None;
    jobs.prefix_ids = None;
    jobs.remove_title = None;
    jobs.remove_desc = None;
    jobs.remove_hidden_elems = None;
    // Geometry rewrites: same shapes, but the rasteriser's anti-aliasing can
    // differ by a pixel along an edge (seen in Chromium screenshots).
    jobs.merge_paths = None;
    jobs.convert_shape_to_path = None;
    // OXVG 0.0.9 takes translate(1 1) for the identity and drops it.
    jobs.convert_transform = None;
    // Inlining a stylesheet rule drops the id or class it matched (a sprite's
    // `<symbol id>` with it), breaks :hover rules and lets the inline style
    // beat later rules; collapsing a group moves its id and class onto its
    // child, so selectors stop matching.
    jobs.inline_styles = None;
    jobs.collapse_groups = None;
    if let Some(paths) = jobs.convert_path_data.as_mut() {
        // Path data is rewritten in the shortest notation (relative or
        // absolute, implicit commands, trimmed numbers) but keeps its
        // segments: joining collinear ones and turning curves into lines or
        // arcs moved anti-aliased edge pixels.
        paths.join_nodes = false;
        paths.straight_curves = false;
        paths.arc_curves = false;
        paths.smart_arc_rounding = false;
    }
    match digits {
        Some(d) => {
            if let Some(paths) = jobs.convert_path_data.as_mut() {
                paths.tolerance.precision = i32::from(d);
            }
            if let Some(numbers) = jobs.cleanup_numeric_values.as_mut() {
                numbers.float_precision = d;
            }
            if let Some(lists) = jobs.cleanup_list_of_values.as_mut() {
                lists.float_precision = d;
            }
        }
        None => {
            jobs.convert_path_data = None;
            jobs.cleanup_numeric_values = None;
            jobs.cleanup_list_of_values = None;
        }
    }
    jobs
}

/// How a minified SVG came to be kept, or why the original was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fidelity {
    /// Numbers rounded to 3 decimals (SVGO's default) render the same.
    Rounded3,
    /// 3 decimals changed pixels; 5 did not.
    Rounded5,
    /// Rounding changed pixels, or the render shows nothing to compare
    /// (a sprite of `<symbol>`s): no rounding or path rewriting. OXVG still
    /// reads numbers into 32-bit floats, so one with more than 7 significant
    /// digits (`605.71429`) is written back shorter, and the check decides.
    ExactNumbers,
    /// Every minified form changed pixels, or the original cannot be
    /// rendered to check: the original is kept.
    Original,
    /// Minifying does not make it smaller.
    NotSmaller,
}

/// The rounding steps tried in turn: each is kept only if it renders like
/// the original.
const STEPS: &[(Option<u8>, Fidelity)] = &[
    (Some(3), Fidelity::Rounded3),
    (Some(5), Fidelity::Rounded5),
    (None, Fidelity::ExactNumbers),
];

/// The minified document, or `None` when it is kept as written (not smaller,
/// not safe to optimise, or no minified form renders like it); a diagnostic
/// when it does not parse.
pub fn minify(text: &str) -> Result<Option<String>, Diagnostic> {
    minify_checked(text).map(|(out, _)| out)
}

/// [`minify`], and which step of the rendering check kept it.
///
/// Each step's output is rasterised with resvg at the document's size and at
/// twice that, beside the original; the first step whose pixels all match is
/// kept. A render that shows nothing (a sprite) proves nothing: only the
/// exact-numbers step is tried then.
pub fn minify_checked(text: &str) -> Result<(Option<String>, Fidelity), Diagnostic> {
    let passed = |why: String| Diagnostic::warning("", format!("{why}: copied unchanged"));
    if text.len() > MAX_BYTES {
        return Err(passed(format!(
            "an SVG of {} MB is over the {} MB limit",
            text.len() >> 20,
            MAX_BYTES >> 20
        )));
    }
    if entity_bomb(text) {
        return Err(passed(
            "SVG whose entities would expand it past the size limit (an entity bomb?)".into(),
        ));
    }
    let mut reference: Option<Option<render::Renders>> = None;
    for &(digits, fidelity) in STEPS {
        let Some(out) = optimise(text, digits)? else {
            return Ok((None, Fidelity::NotSmaller));
        };
        let original = reference.get_or_insert_with(|| render::Renders::of(text));
        let Some(original) = original else {
            return Ok((None, Fidelity::Original));
        };
        if digits.is_some() && original.blank() {
            continue;
        }
        if render::Renders::of(&out).is_some_and(|r| r == *original) {
            return Ok((Some(out), fidelity));
        }
    }
    Ok((None, Fidelity::Original))
}

/// One optimisation pass: the smaller document, or `None` when it is not
/// smaller or not safe to optimise.
fn optimise(text: &str, digits: Option<u8>) -> Result<Option<String>, Diagnostic> {
    let passed = |why: String| Diagnostic::warning("", format!("{why}: copied unchanged"));
    // Whitespace inside text is rendered (between two tspans, in an XHTML
    // <pre> in a foreignObject): kept wherever there is text.
    let keep_space = text.contains("<text") || text.contains("foreignObject");
    let options = ParsingOptions {
        allow_dtd: true,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    let result = parse_with_options(text, options, |dom, allocator| {
        let info = Info::new(allocator);
        match jobs(digits).run(dom, &info) {
            // Refused by the precheck, or a pass failed: keep the file.
            Err(_) => None,
            Ok(()) => {
                let mut options = oxvg_ast::serialize::Options::default();
                if keep_space {
                    options.trim_whitespace = oxvg_ast::serialize::Space::Never;
                }
                dom.serialize_with_options(options).ok()
            }
        }
    });
    match result {
        // A document whose root is not <svg> (HTML in a .svg file) serialises
        // to nothing: kept as written.
        Ok(Some(out)) if !out.contains("<svg") => Err(passed("not an SVG document".into())),
        Ok(Some(out)) if out.len() < text.len() => Ok(Some(out)),
        Ok(_) => Ok(None),
        Err(e) => Err(passed(format!("SVG does not parse ({e})"))),
    }
}

/// The `width` and `height` of an SVG's root element, when both are whole
/// numbers of pixels (`24`, `24px`, `24.0`): what an `<img>` shows it at.
/// Percentages, other units and a missing attribute give `None` (the size
/// then depends on the page), as does anything that is not an `<svg>` root.
pub fn intrinsic_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(bytes.get(..bytes.len().min(64 * 1024))?)
        .or_else(|e| std::str::from_utf8(&bytes[..e.valid_up_to()]))
        .ok()?;
    // Skip the prolog: the XML declaration, comments, a DOCTYPE.
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>")? + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->")? + 3..];
        } else if rest.starts_with("<!") {
            rest = &rest[rest.find('>')? + 1..];
        } else {
            break;
        }
    }
    let tag = rest.strip_prefix("<svg")?;
    if !tag.starts_with(|c: char| c.is_ascii_whitespace() || c == '>') {
        return None;
    }
    let tag = &tag[..tag.find('>')?];
    let attribute = |name: &str| -> Option<u32> {
        let mut at = 0;
        while let Some(i) = tag[at..].find(name) {
            let start = at + i;
            at = start + name.len();
            let before = tag[..start].chars().next_back();
            if !before.is_some_and(|c| c.is_ascii_whitespace()) {
                continue;
            }
            let after = tag[at..].trim_start().strip_prefix('=')?.trim_start();
            let quote = after.chars().next()?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            let value = &after[1..];
            let value = value[..value.find(quote)?].trim();
            let number = value.strip_suffix("px").unwrap_or(value);
            let whole = number.strip_suffix(".0").unwrap_or(number);
            return whole.parse::<u32>().ok().filter(|&n| n > 0);
        }
        None
    };
    Some((attribute("width")?, attribute("height")?))
}

/// Rasterising with resvg, to prove that a minified SVG renders like its
/// original.
mod render {
    use std::sync::{Arc, OnceLock};

    use resvg::{tiny_skia, usvg};

    /// Most pixels one rendering may have: a large drawing is compared at a
    /// smaller scale rather than allocating hundreds of megabytes.
    const MAX_PIXELS: f32 = 4_000_000.0;

    /// A document rasterised at its own size and at twice that (premultiplied
    /// RGBA).
    #[derive(Debug, PartialEq, Eq)]
    pub struct Renders(Vec<Vec<u8>>);

    impl Renders {
        /// `None` when resvg cannot read the document.
        pub fn of(text: &str) -> Option<Renders> {
            let options = usvg::Options {
                fontdb: fonts(text),
                ..usvg::Options::default()
            };
            let tree = usvg::Tree::from_str(text, &options).ok()?;
            let (w, h) = (tree.size().width().max(1.0), tree.size().height().max(1.0));
            let fit = (MAX_PIXELS / (w * h)).sqrt();
            let mut renders = Vec::with_capacity(2);
            for scale in [1.0f32, 2.0] {
                let s = scale.min(fit);
                let width = ((w * s).ceil() as u32).max(1);
                let height = ((h * s).ceil() as u32).max(1);
                let mut pixmap = tiny_skia::Pixmap::new(width, height)?;
                resvg::render(
                    &tree,
                    tiny_skia::Transform::from_scale(s, s),
                    &mut pixmap.as_mut(),
                );
                renders.push(pixmap.take());
            }
            Some(Renders(renders))
        }

        /// The renderings, premultiplied RGBA.
        #[cfg(test)]
        pub fn pixels(&self) -> &[Vec<u8>] {
            &self.0
        }

        /// Nothing is drawn: the comparison proves nothing.
        pub fn blank(&self) -> bool {
            self.0.iter().all(|p| p.iter().all(|&b| b == 0))
        }
    }

    /// The system's fonts for a document with text (loaded once), else none.
    fn fonts(text: &str) -> Arc<usvg::fontdb::Database> {
        static SYSTEM: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
        static NONE: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
        if text.contains("<text") {
            Arc::clone(SYSTEM.get_or_init(|| {
                let mut db = usvg::fontdb::Database::new();
                db.load_system_fonts();
                Arc::new(db)
            }))
        } else {
            Arc::clone(NONE.get_or_init(|| Arc::new(usvg::fontdb::Database::new())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intrinsic_size_only_in_whole_pixels() {
        let size = |t: &str| intrinsic_size(t.as_bytes());
        assert_eq!(
            size(
                "<?xml version=\"1.0\"?>\n<!-- x --><!DOCTYPE svg>\n<svg xmlns=\"http://www.w3.org/2000/svg\" stroke-width=\"9\" width=\"24\" height='16px'>"
            ),
            Some((24, 16))
        );
        assert_eq!(size("<svg width=\"24.0\" height=\"24\"/>"), Some((24, 24)));
        for t in [
            "<svg viewBox=\"0 0 24 24\">",
            "<svg width=\"100%\" height=\"24\">",
            "<svg width=\"2em\" height=\"2em\">",
            "<svg width=\"24.5\" height=\"24\">",
            "<svg width=\"24\">",
            "<svgx width=\"24\" height=\"24\">",
            "<html><svg width=\"24\" height=\"24\">",
            "<svg width=\"0\" height=\"24\">",
        ] {
            assert_eq!(size(t), None, "{t}");
        }
        assert_eq!(
            crate::transform::intrinsic_size(
                crate::asset::AssetKind::Svg,
                b"<svg width=\"3\" height=\"2\"></svg>"
            ),
            Some((3, 2))
        );
    }

    #[test]
    fn keeps_what_rendering_and_references_need() {
        let svg = r##"<?xml version="1.0" encoding="UTF-8"?>
<!-- Generator: an editor -->
<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24" role="img" aria-labelledby="t">
  <title id="t">Settings</title>
  <desc>A cog wheel</desc>
  <metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></metadata>
  <defs>
    <linearGradient id="unused-here-but-maybe-elsewhere"><stop offset="0" stop-color="#ff0000"/></linearGradient>
  </defs>
  <g>
    <path id="icon" fill="#000000" d="M 12.000 2.000 L 22.000 12.000 L 12.000 22.000 L 2.000 12.000 Z"/>
  </g>
</svg>
"##;
        let out = minify(svg).unwrap().expect("smaller");
        assert!(out.len() < svg.len());
        for kept in [
            r#"viewBox="0 0 24 24""#,
            r#"width="24""#,
            "<title",
            "Settings",
            "<desc",
            r#"id="icon""#,
            "unused-here-but-maybe-elsewhere",
            r#"aria-labelledby="t""#,
        ] {
            assert!(out.contains(kept), "lost {kept}: {out}");
        }
        assert!(!out.contains("Generator"), "{out}");
        assert!(!out.contains("metadata"), "{out}");
    }

    #[test]
    fn transforms_ids_classes_and_text_spacing_survive() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">
  <style>#logo{fill:currentColor} .mark{fill:#00f} .mark:hover{fill:red} g.layer>rect{fill:orange}</style>
  <symbol id="logo" viewBox="0 0 10 10"><path d="M0 0h10v10H0z"/></symbol>
  <rect class="mark" width="10" height="10" transform="translate(1 1) scale(2)"/>
  <g class="layer"><rect width="5" height="5"/></g>
  <text x="10" y="50"><tspan>hello</tspan> <tspan>world</tspan></text>
</svg>
"##;
        let out = minify(svg).unwrap().unwrap_or_else(|| svg.to_owned());
        for kept in [
            r#"id="logo""#,
            r#"class="mark""#,
            "translate(1",
            r#"class="layer""#,
            "</tspan> <tspan>",
        ] {
            assert!(out.contains(kept), "lost {kept}: {out}");
        }
    }

    #[test]
    fn bad_input_is_a_diagnostic_and_entity_bombs_are_capped() {
        assert!(minify("<svg><g></svg>").is_err());
        let mut bomb =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE svg [\n<!ENTITY a \"aaaaaaaaaa\">\n");
        for i in 1..10 {
            bomb.push_str(&format!(
                "<!ENTITY {} \"{}\">\n",
                (b'a' + i) as char,
                format!("&{};", (b'a' + i - 1) as char).repeat(10)
            ));
        }
        bomb.push_str("]>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><text>&j;</text></svg>");
        let refused = minify(&bomb).unwrap_err();
        assert!(
            refused.message.contains("entity bomb"),
            "{}",
            refused.message
        );
        // Plain entities, as Illustrator writes them, are fine.
        let illustrator = "<?xml version=\"1.0\"?>\n<!DOCTYPE svg [\n<!ENTITY ns_svg \"http://www.w3.org/2000/svg\">\n]>\n<svg xmlns=\"&ns_svg;\" viewBox=\"0 0 10 10\">  <rect width=\"10\" height=\"10\" fill=\"#ff0000\"/>  </svg>\n";
        let out = minify(illustrator).unwrap().expect("smaller");
        assert!(out.contains("viewBox"), "{out}");
    }
}

#[cfg(test)]
mod fidelity_tests {
    use super::*;

    #[test]
    fn an_icon_keeps_svgos_rounding_when_the_pixels_agree() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24">
  <!-- drawn by hand -->
  <path fill="#000000" d="M 2.0000 2.0000 L 22.0000 2.0000 L 22.0000 22.0000 L 2.0000 22.0000 Z"/>
</svg>"##;
        let (out, fidelity) = minify_checked(svg).unwrap();
        assert_eq!(fidelity, Fidelity::Rounded3);
        assert!(out.expect("smaller").len() < svg.len());
    }

    #[test]
    fn rounding_that_moves_pixels_is_refused() {
        // A tiny coordinate system scaled up: 3 decimals move every edge.
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 0.064 0.064">
  <!-- a comment to strip -->
  <path fill="#000000" d="M 0.00731 0.00417 L 0.05693 0.01132 L 0.03119 0.06021 Z"/>
</svg>"##;
        let (out, fidelity) = minify_checked(svg).unwrap();
        assert!(
            matches!(fidelity, Fidelity::Rounded5 | Fidelity::ExactNumbers),
            "{fidelity:?}"
        );
        let out = out.expect("still smaller without the comment");
        assert!(out.contains("0.00731") || out.contains(".00731"), "{out}");
        assert_eq!(render::Renders::of(&out), render::Renders::of(svg));
    }

    #[test]
    fn a_sprite_draws_nothing_so_its_numbers_stay() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg">
  <!-- icons -->
  <symbol id="a" viewBox="0 0 24 24"><path d="M 1.23456 1.23456 L 20.98765 1.5 L 12.0001 22.5 Z"/></symbol>
</svg>"##;
        let (out, fidelity) = minify_checked(svg).unwrap();
        assert_eq!(fidelity, Fidelity::ExactNumbers);
        let out = out.expect("smaller");
        assert!(out.contains("1.23456") && out.contains("20.98765"), "{out}");
        assert!(out.contains(r#"id="a""#), "{out}");
    }

    #[test]
    fn a_huge_canvas_is_compared_at_a_smaller_scale() {
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><!-- x --><rect width="50000" height="50000"/></svg>"##;
        let renders = render::Renders::of(svg).expect("renders");
        assert!(
            renders
                .pixels()
                .iter()
                .all(|p| p.len() <= 4 * 4_000_000 + 4 * 1024)
        );
        assert!(minify(svg).unwrap().is_some());
    }
}
