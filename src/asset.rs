//! The data that flows through every stage: an [`Asset`] found by the scan, its
//! [`AssetKind`], and the [`Reference`]s a transform finds inside it.
//!
//! Nothing here does I/O; these are plain values that stages pass along.

use std::ops::Range;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A file found in the source tree.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Path relative to the source root, `/`-separated, normalised (no `.`/`..`).
    pub path: String,
    /// Where the bytes live on disk.
    pub source: PathBuf,
    /// Classification by extension (never by sniffing content).
    pub kind: AssetKind,
    /// Size in bytes at scan time.
    pub size: u64,
    /// A bundler already put a content hash in its name (`index-CwOdOtxP.js`,
    /// `_next/static/…`): it keeps its name and is served immutable
    /// ([`crate::scan::fingerprint`]).
    pub fingerprinted: bool,
}

/// What a file is, decided from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    Html,
    Css,
    Js,
    Json,
    WebManifest,
    SourceMap,
    Svg,
    Png,
    Jpeg,
    Gif,
    Webp,
    Avif,
    Ico,
    Font,
    Xml,
    Text,
    Other,
}

impl AssetKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [AssetKind; 17] = [
        AssetKind::Html,
        AssetKind::Css,
        AssetKind::Js,
        AssetKind::Json,
        AssetKind::WebManifest,
        AssetKind::SourceMap,
        AssetKind::Svg,
        AssetKind::Png,
        AssetKind::Jpeg,
        AssetKind::Gif,
        AssetKind::Webp,
        AssetKind::Avif,
        AssetKind::Ico,
        AssetKind::Font,
        AssetKind::Xml,
        AssetKind::Text,
        AssetKind::Other,
    ];

    /// Classify a relative path by its extension.
    pub fn from_path(path: &str) -> AssetKind {
        let name = path.rsplit('/').next().unwrap_or(path);
        let ext = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
            _ => return AssetKind::Other,
        };
        match ext.as_str() {
            "html" | "htm" | "xhtml" => AssetKind::Html,
            "css" => AssetKind::Css,
            "js" | "mjs" | "cjs" => AssetKind::Js,
            "json" => AssetKind::Json,
            "webmanifest" => AssetKind::WebManifest,
            "map" => AssetKind::SourceMap,
            "svg" => AssetKind::Svg,
            "png" | "apng" => AssetKind::Png,
            "jpg" | "jpeg" | "jpe" | "jfif" => AssetKind::Jpeg,
            "gif" => AssetKind::Gif,
            "webp" => AssetKind::Webp,
            "avif" => AssetKind::Avif,
            "ico" | "cur" => AssetKind::Ico,
            "woff" | "woff2" | "ttf" | "otf" | "eot" => AssetKind::Font,
            "xml" | "rss" | "atom" | "xsl" => AssetKind::Xml,
            "txt" | "md" | "csv" => AssetKind::Text,
            _ => AssetKind::Other,
        }
    }

    /// The name used in reports and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            AssetKind::Html => "html",
            AssetKind::Css => "css",
            AssetKind::Js => "js",
            AssetKind::Json => "json",
            AssetKind::WebManifest => "webmanifest",
            AssetKind::SourceMap => "sourcemap",
            AssetKind::Svg => "svg",
            AssetKind::Png => "png",
            AssetKind::Jpeg => "jpeg",
            AssetKind::Gif => "gif",
            AssetKind::Webp => "webp",
            AssetKind::Avif => "avif",
            AssetKind::Ico => "ico",
            AssetKind::Font => "font",
            AssetKind::Xml => "xml",
            AssetKind::Text => "text",
            AssetKind::Other => "other",
        }
    }

    /// Whether the kind is text that kiln parses for references.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            AssetKind::Html
                | AssetKind::Css
                | AssetKind::Js
                | AssetKind::Json
                | AssetKind::WebManifest
                | AssetKind::SourceMap
                | AssetKind::Svg
                | AssetKind::Xml
                | AssetKind::Text
        )
    }
}

/// How a reference uses its target; this decides whether the target gets a
/// content-hashed name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefKind {
    /// A resource the page loads (image, stylesheet, script, font, icon): the
    /// target is hashed and the reference rewritten.
    Embed,
    /// A static or dynamic ES module import (only relative or root-relative
    /// specifiers; bare specifiers are left to import maps).
    Import,
    /// A `sourceMappingURL` comment.
    SourceMap,
    /// A link a person follows (`<a href>`, `<iframe src>`, canonical links):
    /// checked and rewritten if the target was renamed anyway, but it never makes
    /// its target hashed, so shared links keep working.
    Navigation,
    /// A file named in a bundler's manifest (`.vite/manifest.json`): the
    /// target gets an immutable name like an embed, but a value that matches
    /// no file is not reported (manifests also hold names and source paths).
    Manifest,
}

impl RefKind {
    /// Whether this reference makes its target a candidate for a hashed name.
    pub fn fingerprints_target(self) -> bool {
        !matches!(self, RefKind::Navigation)
    }
}

/// A URL found inside a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// Byte range of the URL as written, inside the transformed bytes.
    pub span: Range<usize>,
    /// The URL with the host language's escapes decoded (HTML entities, CSS or
    /// JS escapes); query and fragment included; percent-encoding kept.
    pub url: String,
    pub kind: RefKind,
    /// 1-based line and column in the source file, for diagnostics.
    pub line: u32,
    pub col: u32,
    /// The URL must keep working as written: it sits in a region a framework
    /// hydrates, where the client renders the same URL. Never rewritten, it
    /// never makes its target hashed, and a hashed target keeps a copy under
    /// its original name.
    #[serde(default)]
    pub pinned: bool,
}

/// An `<img>` element of an HTML document, located in its transformed bytes,
/// for what the link stage adds once the image is known: `<picture>` sources
/// for smaller variants, and the intrinsic `width` and `height`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImgTag {
    /// The start tag, from `<` to after `>`.
    pub tag: Range<usize>,
    /// Right after the tag name: where attributes can be added.
    pub attrs_at: usize,
    /// The value of `src`, as written (no quotes, no surrounding spaces).
    pub src: Option<Range<usize>>,
    /// The value of `srcset`, as written.
    pub srcset: Option<Range<usize>>,
    /// The value of `sizes`, as written.
    pub sizes: Option<Range<usize>>,
    /// It has a `width` or a `height` attribute.
    pub sized: bool,
    /// It is inside a `<picture>` already.
    pub in_picture: bool,
    /// Not an `<img>` but a `<source>` of an author's `<picture>`: `srcset`,
    /// `sizes` and `media` are its own, `source_type` its `type` (lowercase).
    pub source: bool,
    /// The value of `media` (a `<source>`), as written.
    pub media: Option<Range<usize>>,
    /// A `<source>`'s `type`, lowercased.
    pub source_type: Option<String>,
    /// A script swaps its image in (`data-src`, `data-srcset`…: lazy
    /// loaders): what it shows is not what `src` says.
    pub scripted: bool,
    /// Not an `<img>` but `<link rel=preload as=image>`: `src` is its `href`,
    /// `srcset` its `imagesrcset`. An image the page preloads is not offered
    /// in other formats (the preload would fetch one file, `<picture>` another).
    pub preload: bool,
}
