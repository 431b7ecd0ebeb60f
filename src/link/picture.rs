//! Image-aware HTML at link time, when the images are known: an `<img>`
//! whose images all have smaller variants (`images.variants`) is wrapped in
//! a `<picture>` that offers them, and an `<img>` without `width` or
//! `height` can get its image's intrinsic size (`images.dimensions`).
//!
//! ```html
//! <img src="a.png" alt="">
//! <!-- becomes -->
//! <picture style="display:contents"><source style="display:none" type="image/webp" srcset="a.png.1a2b3c4d.webp"><img src="a.4e5f6a7b.png" alt=""></picture>
//! ```
//!
//! The two styles keep the layout: the `<picture>` makes no box
//! (`display: contents`) and neither do the `<source>` elements (which the
//! UA stylesheet does not hide: in a flex row or a grid they would become
//! items of their own), so the `<img>` stays the flex item, grid item or
//! inline box it was. A Content-Security-Policy that forbids inline styles
//! (`style-src` without `'unsafe-inline'`) would block them: turn
//! `images.picture` off on such sites. What cannot be kept is the DOM:
//! selectors that need the `<img>` as a direct child or sibling
//! (`.gallery > img`, `img:first-child`, `img + img`) stop matching it, which
//! is why variants are opt-in.
//!
//! The `<source>` repeats the `<img>`'s candidates (`srcset`, or `src`) with
//! each file replaced by its variant, and its `sizes`. Nothing else in the
//! document changes. In an author's own `<picture>`, nothing is wrapped: each
//! `<source>` of PNG or JPEG files, and the `<img>`, get the variants'
//! sources right before them, with the same `media`. An `<img>` or `<source>`
//! with any candidate that has no variant in a format, or that is not a file
//! of the build, gets none in that format.

use crate::asset::ImgTag;
use crate::link::rewrite::{Edit, encode_file_name, file_name_range};
use crate::transform::html::srcset_urls;
use crate::transform::variants::Format;

/// What the link stage knows about the files an `<img>` can point at.
pub struct Known<'a> {
    /// For each file, its variants and their indices.
    pub variants: &'a [Vec<(Format, usize)>],
    /// For each file, its intrinsic size when it is a raster image.
    pub dimensions: &'a [Option<(u32, u32)>],
    /// Final names of the files linked so far.
    pub names: &'a [Option<String>],
    /// Wrap images that have variants in `<picture>`.
    pub picture: bool,
    /// Add `width` and `height` to images that have neither.
    pub dimensions_on: bool,
}

/// The insertions for the `<img>` elements of one document, in document
/// order. The reference at `spans[i]` resolves to `targets[i]`; spans are
/// into `bytes`.
pub fn edits(
    bytes: &[u8],
    images: &[ImgTag],
    spans: &[std::ops::Range<usize>],
    targets: &[Option<usize>],
    known: &Known<'_>,
) -> Vec<Edit> {
    // A page of thousands of images: look references up by span, not by scan.
    let by_span: std::collections::HashMap<(usize, usize), usize> = spans
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.start, r.end), i))
        .collect();
    let target_at = |span: &std::ops::Range<usize>| -> Option<usize> {
        targets[*by_span.get(&(span.start, span.end))?]
    };
    let text = |span: &std::ops::Range<usize>| std::str::from_utf8(bytes.get(span.clone())?).ok();
    // Images the page preloads: `<picture>` would fetch a variant beside the
    // preloaded file.
    let mut preloaded: Vec<usize> = Vec::new();
    for tag in images.iter().filter(|t| t.preload) {
        preloaded.extend(tag.src.as_ref().and_then(&target_at));
        if let Some(set) = &tag.srcset
            && let Some(value) = text(set)
        {
            preloaded.extend(
                srcset_urls(value)
                    .into_iter()
                    .filter_map(|url| target_at(&(set.start + url.start..set.start + url.end))),
            );
        }
    }
    let mut out = Vec::new();
    for img in images {
        if img.tag.end > bytes.len() || img.preload || img.scripted {
            continue;
        }
        if img.in_picture {
            // An author's `<picture>`: each of its `<source>`s of PNG or
            // JPEG files, and its `<img>`, get the variants' sources right
            // before them, with the same `media`, so the author's choice of
            // image stands and only the format changes.
            let plain_type = img
                .source_type
                .as_deref()
                .is_none_or(|t| matches!(t, "image/png" | "image/jpeg" | "image/jpg"));
            if known.picture
                && plain_type
                && let Some(sources) = sources(
                    img,
                    &img_src(img, &target_at),
                    &text,
                    &target_at,
                    known,
                    &preloaded,
                )
            {
                out.push(insert(img.tag.start, sources));
            }
            continue;
        }
        let src = img_src(img, &target_at);
        let mut closing = None;
        if known.picture
            && let Some(sources) = sources(img, &src, &text, &target_at, known, &preloaded)
        {
            out.push(insert(
                img.tag.start,
                format!("<picture style=\"display:contents\">{sources}"),
            ));
            closing = Some(insert(img.tag.end, "</picture>".to_owned()));
        }
        if known.dimensions_on
            && !img.sized
            && img.srcset.is_none()
            && let Some((_, t)) = &src
            && let Some((w, h)) = known.dimensions[*t]
        {
            out.push(insert(
                img.attrs_at,
                format!(" width=\"{w}\" height=\"{h}\""),
            ));
        }
        out.extend(closing);
    }
    out
}

/// An `<img>`'s `src` span and target, when it is a file of the build.
fn img_src(
    img: &ImgTag,
    target_at: &dyn Fn(&std::ops::Range<usize>) -> Option<usize>,
) -> Option<(std::ops::Range<usize>, usize)> {
    img.src
        .as_ref()
        .and_then(|s| Some((s.clone(), target_at(s)?)))
}

fn insert(at: usize, text: String) -> Edit {
    Edit {
        range: at..at,
        text,
    }
}

/// The `<source>` elements for one `<img>`, one per format in which every
/// candidate has a variant; `None` when there are none.
fn sources<'b>(
    img: &ImgTag,
    src: &Option<(std::ops::Range<usize>, usize)>,
    text: &dyn Fn(&std::ops::Range<usize>) -> Option<&'b str>,
    target_at: &dyn Fn(&std::ops::Range<usize>) -> Option<usize>,
    known: &Known<'_>,
    preloaded: &[usize],
) -> Option<String> {
    // Every candidate: its URL span in the document, its target, and its
    // descriptor as written.
    let mut candidates: Vec<(std::ops::Range<usize>, usize, String)> = Vec::new();
    let mut has_width = false;
    let mut has_1x = false;
    if let Some(set) = &img.srcset {
        let value = text(set)?;
        for url in srcset_urls(value) {
            let span = set.start + url.start..set.start + url.end;
            let target = target_at(&span)?;
            let descriptor = descriptor_after(value, url.end);
            has_width |= descriptor.ends_with(['w', 'W']);
            has_1x |= descriptor.is_empty() || descriptor.eq_ignore_ascii_case("1x");
            candidates.push((span, target, descriptor.to_owned()));
        }
        if candidates.is_empty() {
            return None;
        }
    }
    // As for the `<img>` itself, `src` counts as the 1x candidate unless
    // `srcset` has one or uses widths (a `<source>` has no `src`).
    if !img.source && !has_width && !has_1x {
        let (span, target) = src.clone()?;
        let descriptor = if candidates.is_empty() { "" } else { "1x" };
        candidates.push((span, target, descriptor.to_owned()));
    }
    if candidates.iter().any(|(_, t, _)| preloaded.contains(t)) {
        return None;
    }
    let sizes = match &img.sizes {
        Some(s) => Some(text(s)?),
        None => None,
    };
    let mut out = String::new();
    for format in Format::ALL {
        let mut set = Vec::with_capacity(candidates.len());
        for (span, target, descriptor) in &candidates {
            let Some(url) = variant_url(text(span)?, *target, format, known) else {
                set.clear();
                break;
            };
            set.push(if descriptor.is_empty() {
                url
            } else {
                format!("{url} {descriptor}")
            });
        }
        if set.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<source style=\"display:none\" type=\"{}\"",
            format.mime()
        ));
        out.push_str(&attribute("srcset", &set.join(", "))?);
        if let Some(sizes) = sizes {
            out.push_str(&attribute("sizes", sizes)?);
        }
        if let Some(media) = img.media.as_ref().filter(|_| img.source) {
            out.push_str(&attribute("media", text(media)?)?);
        }
        out.push('>');
    }
    (!out.is_empty()).then_some(out)
}

/// ` name="value"`, with the quote the value does not contain.
fn attribute(name: &str, value: &str) -> Option<String> {
    if !value.contains('"') {
        Some(format!(" {name}=\"{value}\""))
    } else if !value.contains('\'') {
        Some(format!(" {name}='{value}'"))
    } else {
        None
    }
}

/// The URL of `target`'s variant in `format`: the URL as written with its
/// file name replaced by the variant's final name (same directory, query
/// and fragment).
fn variant_url(raw: &str, target: usize, format: Format, known: &Known<'_>) -> Option<String> {
    let &(_, variant) = known.variants[target].iter().find(|(f, _)| *f == format)?;
    let name = known.names[variant].as_deref()?;
    let file_name = name.rsplit('/').next().unwrap_or(name);
    let range = file_name_range(raw);
    // Whitespace (or a character reference, which may stand for it) would
    // split a `srcset` candidate; a trailing comma would be taken off it.
    if range.is_empty()
        || raw.contains(|c: char| c.is_ascii_whitespace() || c == '&')
        || raw.ends_with(',')
    {
        return None;
    }
    Some(format!(
        "{}{}{}",
        &raw[..range.start],
        encode_file_name(file_name),
        &raw[range.end..]
    ))
}

/// The descriptor of the `srcset` candidate whose URL ends at `end`.
fn descriptor_after(value: &str, end: usize) -> &str {
    if value[..end].ends_with(',') {
        return "";
    }
    let rest = &value[end..];
    let mut depth = 0u32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return rest[..i].trim(),
            _ => {}
        }
    }
    rest.trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::rewrite::apply;

    /// A document with its `<img>` elements and references as the HTML
    /// transform records them; every reference resolves to the file of the
    /// same index in `files`.
    fn run(html: &str, files: &[&str], variants: &[(usize, usize)], dims: bool) -> String {
        let found = crate::transform::html::extract(html.as_bytes());
        let targets: Vec<Option<usize>> = found
            .refs
            .iter()
            .map(|r| files.iter().position(|f| *f == r.url))
            .collect();
        let mut variant_lists = vec![Vec::new(); files.len()];
        for &(origin, variant) in variants {
            variant_lists[origin].push((Format::Webp, variant));
        }
        let names: Vec<Option<String>> = files.iter().map(|f| Some(format!("out/{f}"))).collect();
        let dimensions: Vec<Option<(u32, u32)>> = vec![Some((640, 480)); files.len()];
        let known = Known {
            variants: &variant_lists,
            dimensions: &dimensions,
            names: &names,
            picture: true,
            dimensions_on: dims,
        };
        let spans: Vec<_> = found.refs.iter().map(|r| r.span.clone()).collect();
        let edits = edits(html.as_bytes(), &found.images, &spans, &targets, &known);
        String::from_utf8(apply(html.as_bytes(), &edits)).unwrap()
    }

    #[test]
    fn wraps_an_img_whose_image_has_a_variant() {
        let out = run(
            "<p><img src=\"img/a.png\" alt=\"A\"><img src=\"b.png\"></p>",
            &["img/a.png", "img/a.png.webp", "b.png"],
            &[(0, 1)],
            false,
        );
        assert_eq!(
            out,
            "<p><picture style=\"display:contents\"><source style=\"display:none\" type=\"image/webp\" srcset=\"img/a.png.webp\">\
             <img src=\"img/a.png\" alt=\"A\"></picture><img src=\"b.png\"></p>"
        );
    }

    #[test]
    fn srcset_and_sizes_are_repeated_and_src_joins_as_1x() {
        let out = run(
            "<img src=a.png srcset=\"b.png 2x\">",
            &["a.png", "a.png.webp", "b.png", "b.png.webp"],
            &[(0, 1), (2, 3)],
            false,
        );
        assert!(
            out.starts_with(
                "<picture style=\"display:contents\"><source style=\"display:none\" type=\"image/webp\" srcset=\"b.png.webp 2x, a.png.webp 1x\">"
            ),
            "{out}"
        );
        let out = run(
            "<img src=a.png srcset=\"a.png 400w, b.png 800w\" sizes=\"(max-width: 600px) 100vw, 50vw\">",
            &["a.png", "a.png.webp", "b.png", "b.png.webp"],
            &[(0, 1), (2, 3)],
            false,
        );
        assert!(
            out.starts_with(
                "<picture style=\"display:contents\"><source style=\"display:none\" type=\"image/webp\" srcset=\"a.png.webp 400w, b.png.webp 800w\" \
                 sizes=\"(max-width: 600px) 100vw, 50vw\">"
            ),
            "{out}"
        );
    }

    #[test]
    fn left_alone_when_a_candidate_has_no_variant_or_a_picture_exists() {
        let html = "<img src=a.png srcset=\"b.png 2x\">";
        let files = ["a.png", "a.png.webp", "b.png"];
        assert_eq!(run(html, &files, &[(0, 1)], false), html);
        // An author's `<picture>` keeps its sources; its `<img>` gets the
        // variant's source right before it.
        assert_eq!(
            run(
                "<picture><source srcset=x.avif type=image/avif><img src=a.png></picture>",
                &files,
                &[(0, 1)],
                false
            ),
            "<picture><source srcset=x.avif type=image/avif>\
             <source style=\"display:none\" type=\"image/webp\" srcset=\"a.png.webp\"><img src=a.png></picture>"
        );
        let html = "<img src=\"https://cdn.example/a.png\">";
        assert_eq!(run(html, &files, &[(0, 1)], false), html);
    }

    #[test]
    fn an_authors_png_sources_get_variants_before_them() {
        let files = ["a.png", "a.png.webp", "wide.png", "wide.png.webp"];
        let out = run(
            "<picture><source media=\"(min-width: 800px)\" srcset=\"wide.png\" type=image/png>\
             <img src=a.png alt=x></picture>",
            &files,
            &[(0, 1), (2, 3)],
            true,
        );
        assert_eq!(
            out,
            "<picture><source style=\"display:none\" type=\"image/webp\" srcset=\"wide.png.webp\" \
             media=\"(min-width: 800px)\"><source media=\"(min-width: 800px)\" srcset=\"wide.png\" \
             type=image/png><source style=\"display:none\" type=\"image/webp\" srcset=\"a.png.webp\">\
             <img src=a.png alt=x></picture>"
        );
    }

    #[test]
    fn scripted_preloaded_and_odd_urls_are_left_alone() {
        let files = ["a.png", "a.png.webp", "b c.png", "b c.png.webp"];
        let variants = [(0, 1), (2, 3)];
        for html in [
            "<img src=a.png data-src=real.png>",
            "<img class=lazyload src=a.png data-srcset=\"a.png 2x\">",
            "<img src=a.png data-lazy=real.png>",
            "<img src=a.png data-echo=real.png>",
            "<img class=\"b-lazy wide\" src=a.png>",
            "<link rel=preload as=image href=a.png><img src=a.png>",
            "<link rel=preload as=image imagesrcset=\"a.png 2x\"><img src=a.png>",
            "<img src=\"b c.png\">",
        ] {
            assert_eq!(run(html, &files, &variants, false), html);
        }
        // A lazy loader's placeholder does not get its size either.
        let html = "<img src=a.png data-src=real.png>";
        assert_eq!(run(html, &files, &variants, true), html);
        // The first of two `src` attributes is what browsers show.
        let out = run("<img src=a.png src=\"b c.png\">", &files, &variants, false);
        assert!(out.contains("srcset=\"a.png.webp\""), "{out}");
    }

    #[test]
    fn dimensions_only_where_neither_is_written() {
        let files = ["a.png"];
        assert_eq!(
            run("<img src=a.png alt=x>", &files, &[], true),
            "<img width=\"640\" height=\"480\" src=a.png alt=x>"
        );
        for html in [
            "<img src=a.png width=10>",
            "<img src=a.png HEIGHT=10>",
            "<img src=a.png srcset=\"a.png 2x\">",
            "<img src=missing.png>",
        ] {
            assert_eq!(run(html, &files, &[], true), html);
        }
        assert_eq!(
            run("<img src=a.png>", &files, &[], false),
            "<img src=a.png>"
        );
    }
}
