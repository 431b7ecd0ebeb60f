//! JavaScript references with swc's parser: static `import … from`, `export …
//! from`, `import("…")` with a literal, `new URL("…", import.meta.url)`, and the
//! `sourceMappingURL` comment.
//!
//! Only relative (`./`, `../`) and root-relative (`/`) module specifiers are
//! references; bare specifiers (`react`) belong to import maps and bundlers.

use std::ops::Range;

use swc_core::common::{BytePos, Span, Spanned};
use swc_core::ecma::ast::{
    CallExpr, Callee, ExportAll, Expr, ImportDecl, Lit, MemberProp, MetaPropKind, NamedExport,
    NewExpr, Str,
};
use swc_core::ecma::parser::{EsSyntax, Parser, StringInput, Syntax};
use swc_core::ecma::visit::{Visit, VisitWith};

use super::{Extracted, reference, source_mapping_url};
use crate::asset::RefKind;
use crate::diag::{Diagnostic, LineIndex};

/// References in a JavaScript file (module or classic script).
pub fn extract(text: &str) -> Extracted {
    extract_at(text, 0, &LineIndex::new(text.as_bytes()))
}

/// References in JavaScript that starts at `offset` of a larger document
/// (an inline `<script>`); `index` maps document offsets.
pub fn extract_at(text: &str, offset: usize, index: &LineIndex<'_>) -> Extracted {
    let mut found = Extracted::default();
    let Ok(len) = u32::try_from(text.len()) else {
        found.diagnostics.push(Diagnostic::warning(
            "",
            "file is larger than 4 GiB: references not extracted",
        ));
        return found;
    };
    // Position 0 is swc's dummy position, so the text starts at 1.
    let input = StringInput::new(text, BytePos(1), BytePos(1 + len));
    let syntax = Syntax::Es(EsSyntax {
        import_attributes: true,
        explicit_resource_management: true,
        ..EsSyntax::default()
    });
    let mut parser = Parser::new(syntax, input, None);
    match parser.parse_program() {
        Ok(program) => {
            let mut collector = Collector {
                text,
                offset,
                index,
                found: &mut found,
            };
            program.visit_with(&mut collector);
        }
        Err(e) => {
            let at = (e.span().lo.0 as usize).saturating_sub(1);
            let (line, col) = index.line_col(at + offset);
            found.diagnostics.push(
                Diagnostic::warning(
                    "",
                    format!(
                        "JavaScript syntax error: {} (references in this file not rewritten)",
                        e.kind().msg()
                    ),
                )
                .at(line, col),
            );
        }
    }
    if let Some(span) = source_mapping_url(text) {
        let url = text[span.clone()].to_owned();
        found.refs.push(reference(
            index,
            span.start + offset..span.end + offset,
            url,
            RefKind::SourceMap,
        ));
    }
    found
}

struct Collector<'a, 'i> {
    text: &'a str,
    offset: usize,
    index: &'a LineIndex<'i>,
    found: &'a mut Extracted,
}

impl Collector<'_, '_> {
    fn module_specifier(&mut self, s: &Str) {
        let Some(value) = s.value.as_str() else {
            return;
        };
        if value.starts_with("./") || value.starts_with("../") || value.starts_with('/') {
            self.string(s, RefKind::Import);
        }
    }

    fn string(&mut self, s: &Str, kind: RefKind) {
        let Some(value) = s.value.as_str() else {
            return;
        };
        let span = inner(s.span);
        let Some(raw) = self.text.get(span.clone()) else {
            return;
        };
        let doc_span = span.start + self.offset..span.end + self.offset;
        if raw != value {
            let (line, col) = self.index.line_col(doc_span.start);
            self.found.diagnostics.push(
                Diagnostic::warning(
                    "",
                    format!("URL `{value}` is written with escape sequences: left as written"),
                )
                .at(line, col),
            );
            return;
        }
        self.found
            .refs
            .push(reference(self.index, doc_span, value.to_owned(), kind));
    }
}

/// Byte range of a string literal's contents (without its quotes).
fn inner(span: Span) -> Range<usize> {
    let lo = span.lo.0 as usize; // 1-based; +1 for the quote
    let hi = span.hi.0 as usize;
    lo..hi.saturating_sub(2).max(lo)
}

impl Visit for Collector<'_, '_> {
    fn visit_import_decl(&mut self, n: &ImportDecl) {
        if !n.type_only {
            self.module_specifier(&n.src);
        }
    }

    fn visit_export_all(&mut self, n: &ExportAll) {
        self.module_specifier(&n.src);
    }

    fn visit_named_export(&mut self, n: &NamedExport) {
        if let Some(src) = &n.src {
            self.module_specifier(src);
        }
    }

    fn visit_call_expr(&mut self, n: &CallExpr) {
        if let Callee::Import(_) = n.callee
            && let Some(arg) = n.args.first()
            && let Expr::Lit(Lit::Str(s)) = &*arg.expr
        {
            self.module_specifier(s);
        }
        n.visit_children_with(self);
    }

    fn visit_new_expr(&mut self, n: &NewExpr) {
        if let Expr::Ident(callee) = &*n.callee
            && callee.sym == *"URL"
            && let Some(args) = &n.args
            && args.len() >= 2
            && let Expr::Lit(Lit::Str(s)) = &*args[0].expr
            && is_import_meta_url(&args[1].expr)
        {
            self.string(s, RefKind::Embed);
        }
        n.visit_children_with(self);
    }
}

fn is_import_meta_url(expr: &Expr) -> bool {
    let Expr::Member(member) = expr else {
        return false;
    };
    let Expr::MetaProp(meta) = &*member.obj else {
        return false;
    };
    meta.kind == MetaPropKind::ImportMeta
        && matches!(&member.prop, MemberProp::Ident(p) if p.sym == *"url")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(js: &str) -> Vec<(String, RefKind)> {
        extract(js)
            .refs
            .into_iter()
            .map(|r| {
                assert_eq!(&js[r.span.clone()], r.url);
                (r.url, r.kind)
            })
            .collect()
    }

    #[test]
    fn finds_module_references() {
        let js = r#"
import { a } from "./a.js";
import "../side-effect.js";
import React from "react";
export * from './star.js';
export { b } from "/abs/b.js";
const lazy = () => import("./lazy.js");
const dynamic = (n) => import(n);
const img = new URL("../img/é.png", import.meta.url);
const other = new URL("x.png", location.href);
//# sourceMappingURL=app.js.map
"#;
        let got = refs(js);
        let urls: Vec<&str> = got.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(
            urls,
            [
                "./a.js",
                "../side-effect.js",
                "./star.js",
                "/abs/b.js",
                "./lazy.js",
                "../img/é.png",
                "app.js.map"
            ]
        );
        assert_eq!(got[5].1, RefKind::Embed);
        assert_eq!(got[6].1, RefKind::SourceMap);
    }

    #[test]
    fn classic_scripts_parse_too() {
        let js = "with (obj) { x = 1 }\nvar u = new URL('./w.js', import.meta.url);";
        // `import.meta` is module-only, so this is a syntax error in a script;
        // what matters is a located diagnostic, not a panic.
        let found = extract(js);
        assert!(found.refs.is_empty() || found.diagnostics.is_empty());
        assert!(extract("with (obj) { x = 1 }").diagnostics.is_empty());
    }

    #[test]
    fn syntax_errors_are_located() {
        let found = extract("let a = 1;\nlet = = 2;\n");
        assert_eq!(found.diagnostics.len(), 1);
        assert_eq!(found.diagnostics[0].line, Some(2));
    }

    #[test]
    fn escaped_specifiers_are_left_alone_with_a_warning() {
        let found = extract("import './\\u0061.js';");
        assert!(found.refs.is_empty());
        assert_eq!(found.diagnostics.len(), 1);
    }
}
