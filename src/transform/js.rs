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

/// How JavaScript is minified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsOptions {
    /// The newest syntax the output may use. Default: ES2020.
    pub ecma: swc_core::ecma::ast::EsVersion,
}

impl Default for JsOptions {
    fn default() -> Self {
        JsOptions {
            ecma: swc_core::ecma::ast::EsVersion::Es2020,
        }
    }
}

/// How a script is loaded, which decides what the minifier may assume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// An ES module (`type="module"`, `.mjs`): strict, its own scope, top-level
    /// names may be mangled.
    Module,
    /// A classic script: top-level names are globals and stay.
    Classic,
    /// Decide from the syntax: a file with `import`/`export` is a module.
    Detect,
}

/// Names the source in maps and embeds its contents.
struct MapConfig<'a>(&'a str);

impl swc_core::common::source_map::SourceMapGenConfig for MapConfig<'_> {
    fn file_name_to_source(&self, _: &swc_core::common::FileName) -> String {
        self.0.to_owned()
    }

    fn inline_sources_content(&self, _: &swc_core::common::FileName) -> bool {
        true
    }
}

/// Minify a script or module with swc (compress and mangle). `inline` output
/// goes into an HTML `<script>` element, so `</script` is escaped. A file that
/// does not parse, or that the minifier cannot handle, is an error: the caller
/// keeps it as written.
pub fn minify(
    text: &str,
    kind: ScriptKind,
    inline: bool,
    options: &JsOptions,
    map: Option<MapRequest<'_>>,
) -> Result<MinifiedCode, Diagnostic> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let run = || {
        swc_core::common::GLOBALS.set(&Default::default(), || {
            minify_in_globals(text, kind, inline, options, map)
        })
    };
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| {
        Err(Diagnostic::warning(
            "",
            "the JavaScript minifier failed on this file: kept as written",
        ))
    })
}

fn minify_in_globals(
    text: &str,
    kind: ScriptKind,
    inline: bool,
    options: &JsOptions,
    map: Option<MapRequest<'_>>,
) -> Result<MinifiedCode, Diagnostic> {
    use swc_core::common::comments::SingleThreadedComments;
    use swc_core::common::sync::Lrc;
    use swc_core::common::{FileName, Mark, SourceMap};
    use swc_core::ecma::ast::Program;
    use swc_core::ecma::codegen::text_writer::{JsWriter, omit_trailing_semi};
    use swc_core::ecma::codegen::{Config, Emitter};
    use swc_core::ecma::minifier::optimize;
    use swc_core::ecma::minifier::option::{
        CompressOptions, ExtraOptions, MangleOptions, MinifyOptions,
    };
    use swc_core::ecma::transforms::base::fixer::{fixer, paren_remover};
    use swc_core::ecma::transforms::base::resolver;
    use swc_core::ecma::visit::VisitMutWith;

    let index = LineIndex::new(text.as_bytes());
    let cm: Lrc<SourceMap> = Default::default();
    let name = map.map_or(FileName::Anon, |m| FileName::Custom(m.file_name.to_owned()));
    let fm = cm.new_source_file(Lrc::new(name), text.to_owned());
    let comments = SingleThreadedComments::default();
    let syntax = Syntax::Es(EsSyntax {
        import_attributes: true,
        explicit_resource_management: true,
        ..EsSyntax::default()
    });
    let start = fm.start_pos.0 as usize;
    let error = |e: swc_core::ecma::parser::error::Error| {
        let at = (e.span().lo.0 as usize).saturating_sub(start);
        let (line, col) = index.line_col(at);
        Diagnostic::warning(
            "",
            format!(
                "JavaScript syntax error: {}: kept as written, not minified",
                e.kind().msg()
            ),
        )
        .at(line, col)
    };
    let mut parser = Parser::new(syntax, StringInput::from(&*fm), Some(&comments));
    let program = match kind {
        ScriptKind::Module => parser.parse_module().map(Program::Module),
        ScriptKind::Classic => parser.parse_script().map(Program::Script),
        ScriptKind::Detect => parser.parse_program(),
    }
    .map_err(error)?;
    if let Some(e) = parser.take_errors().into_iter().next() {
        return Err(error(e));
    }
    let is_module = program.is_module();
    let hazards = Hazards::of(&program);
    let licenses = license_comments(&comments);

    let mut marker = Marker {
        nonce: blake3::hash(text.as_bytes()).to_hex()[..12].to_owned(),
        start,
        index: &index,
        found: Vec::new(),
    };
    let mut program = program;
    program.visit_mut_with(&mut marker);

    let unresolved_mark = Mark::new();
    let top_level_mark = Mark::new();
    // Parentheses the parser kept as nodes must go first, as swc's own minify
    // does: its sequence merging has no case for them, and moved `b = x` into
    // the only use of `b` inside `(c ? b.y : z)`, in a branch that may not run
    // (React 19's `useThenable` in Next 16's client broke so;
    // fixtures/js-fidelity/scripts/parenthesised-use-in-a-branch.js). The
    // fixer puts back the parentheses that are needed.
    let program = program
        .apply(paren_remover(Some(&comments)))
        .apply(resolver(unresolved_mark, top_level_mark, false));
    let minify_options = MinifyOptions {
        compress: (!hazards.block_functions).then(|| CompressOptions {
            ecma: options.ecma,
            module: is_module,
            unused: !hazards.mutable_exports,
            collapse_vars: !hazards.var_shadows_function,
            // `{ Only: class {} }` hoisted to a variable loses its inferred name.
            hoist_props: false,
            ..CompressOptions::default()
        }),
        mangle: (!hazards.top_level_patterns).then(|| MangleOptions {
            top_level: Some(is_module),
            ..MangleOptions::default()
        }),
        ..MinifyOptions::default()
    };
    let extra = ExtraOptions {
        unresolved_mark,
        top_level_mark,
        mangle_name_cache: None,
    };
    let program =
        optimize(program, cm.clone(), None, None, &minify_options, &extra).apply(fixer(None));

    let mut buf = Vec::with_capacity(text.len() / 2);
    let mut mappings = Vec::new();
    {
        let mut emitter = Emitter {
            cfg: Config::default()
                .with_minify(true)
                .with_target(options.ecma),
            cm: cm.clone(),
            comments: None,
            wr: omit_trailing_semi(JsWriter::new(
                cm.clone(),
                "\n",
                &mut buf,
                map.is_some().then_some(&mut mappings),
            )),
        };
        emitter.emit_program(&program).map_err(|e| {
            Diagnostic::warning(
                "",
                format!("could not print minified JavaScript ({e}): kept as written"),
            )
        })?;
    }
    let mut code = String::from_utf8(buf).map_err(|_| {
        Diagnostic::warning("", "minified JavaScript is not UTF-8: kept as written")
    })?;
    if inline {
        code = escape_script_end(&code);
    }
    let mut head = String::new();
    for comment in &licenses {
        head.push_str(comment);
        head.push('\n');
    }
    let mut inserted = crate::transform::sourcemap::InsertedLines::default();
    if !head.is_empty() {
        let shebang = code.starts_with("#!");
        let at = if shebang {
            code.find('\n').map_or(code.len(), |i| i + 1)
        } else {
            0
        };
        code.insert_str(at, &head);
        inserted = crate::transform::sourcemap::InsertedLines {
            at: u32::from(shebang),
            count: head.matches('\n').count() as u32,
            byte_columns: false,
        };
    }
    let restores: Vec<Restore> = marker
        .found
        .iter()
        .map(|f| Restore {
            token: f.token.clone(),
            before: String::new(),
            url_text: js_string_contents(&f.url),
            after: String::new(),
        })
        .collect();
    let restored = restore(&code, &restores);
    let source_map = map.map(|m| {
        let input = m
            .input_map
            .and_then(|t| swc_sourcemap::SourceMap::from_slice(t.as_bytes()).ok());
        let printed = cm.build_source_map(&mappings, input, MapConfig(m.file_name));
        crate::transform::sourcemap::shift(&printed, &code, inserted, &restored.shifts)
    });
    let (mut code, spans) = (restored.text, restored.spans);
    let mut refs: Vec<crate::asset::Reference> = spans
        .into_iter()
        .map(|(span, i)| {
            let f = &marker.found[i];
            crate::asset::Reference {
                span,
                url: f.url.clone(),
                kind: f.kind,
                line: f.line,
                col: f.col,
                pinned: false,
            }
        })
        .collect();
    let map = source_map.map(|sm| {
        let name = format!("{}.map", map.map_or("", |m| m.file_name));
        crate::transform::sourcemap::append_comment(&mut code, &mut refs, false, name);
        crate::transform::sourcemap::to_json(&sm)
    });
    Ok(MinifiedCode { code, refs, map })
}

use super::MinifiedCode;
use super::placeholder::{Restore, js_string_contents, restore};
use super::sourcemap::MapRequest;

/// The names a binding pattern declares.
fn pat_names(pat: &swc_core::ecma::ast::Pat, out: &mut Vec<swc_core::atoms::Atom>) {
    use swc_core::ecma::ast::{ObjectPatProp, Pat};
    match pat {
        Pat::Ident(i) => out.push(i.id.sym.clone()),
        Pat::Array(a) => a.elems.iter().flatten().for_each(|p| pat_names(p, out)),
        Pat::Object(o) => {
            for prop in &o.props {
                match prop {
                    ObjectPatProp::KeyValue(kv) => pat_names(&kv.value, out),
                    ObjectPatProp::Assign(a) => out.push(a.key.sym.clone()),
                    ObjectPatProp::Rest(r) => pat_names(&r.arg, out),
                }
            }
        }
        Pat::Rest(r) => pat_names(&r.arg, out),
        Pat::Assign(a) => pat_names(&a.left, out),
        _ => {}
    }
}

/// Local names of the bindings a module exports.
fn exported_names(program: &swc_core::ecma::ast::Program) -> Vec<swc_core::atoms::Atom> {
    use swc_core::ecma::ast::{
        Decl, ExportSpecifier, ModuleDecl, ModuleExportName, ModuleItem, Program,
    };
    let Program::Module(module) = program else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in &module.body {
        match item {
            ModuleItem::ModuleDecl(ModuleDecl::ExportDecl(e)) => match &e.decl {
                Decl::Var(v) => v.decls.iter().for_each(|d| pat_names(&d.name, &mut out)),
                Decl::Fn(f) => out.push(f.ident.sym.clone()),
                Decl::Class(c) => out.push(c.ident.sym.clone()),
                _ => {}
            },
            ModuleItem::ModuleDecl(ModuleDecl::ExportNamed(n)) if n.src.is_none() => {
                for spec in &n.specifiers {
                    if let ExportSpecifier::Named(named) = spec
                        && let ModuleExportName::Ident(i) = &named.orig
                    {
                        out.push(i.sym.clone());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Constructs that swc's minifier is known to get wrong, found by the
/// programs in `fixtures/js-fidelity`; a file that has one is minified
/// without the pass that breaks it.
#[derive(Debug, Default)]
struct Hazards {
    /// A module exports a `let`/`var` binding: swc drops updates of it that the
    /// module itself never reads (`export let n = 0; n++`). Turns off `unused`.
    mutable_exports: bool,
    /// A `var` with the name of a function declaration: `collapse_vars` moves
    /// the assignment above reads of the function.
    var_shadows_function: bool,
    /// Function declarations in blocks of sloppy-mode code (Annex B
    /// semantics): compression gets their bindings wrong. Turns off compression.
    block_functions: bool,
    /// Destructuring at the top level of a classic script: the mangler renames
    /// those globals. Turns off mangling.
    top_level_patterns: bool,
}

impl Hazards {
    fn of(program: &swc_core::ecma::ast::Program) -> Hazards {
        use swc_core::ecma::ast::{Decl, ModuleItem, Pat, Program, Stmt, VarDeclKind};
        let mut scan = HazardScan::default();
        program.visit_with(&mut scan);
        let mut hazards = Hazards {
            var_shadows_function: scan.var_names.iter().any(|n| scan.fn_names.contains(n)),
            block_functions: scan.block_functions
                && !program.is_module()
                && !has_use_strict(program),
            ..Hazards::default()
        };
        match program {
            Program::Module(module) => {
                let exported = exported_names(program);
                hazards.mutable_exports = module.body.iter().any(|item| match item {
                    ModuleItem::Stmt(Stmt::Decl(Decl::Var(v)))
                    | ModuleItem::ModuleDecl(swc_core::ecma::ast::ModuleDecl::ExportDecl(
                        swc_core::ecma::ast::ExportDecl {
                            decl: Decl::Var(v), ..
                        },
                    )) => {
                        v.kind != VarDeclKind::Const
                            && v.decls.iter().any(|d| {
                                let mut names = Vec::new();
                                pat_names(&d.name, &mut names);
                                names.iter().any(|n| exported.contains(n))
                            })
                    }
                    _ => false,
                });
            }
            Program::Script(script) => {
                hazards.top_level_patterns = script.body.iter().any(|stmt| {
                    matches!(stmt, Stmt::Decl(Decl::Var(v)) if v.decls.iter().any(|d| !matches!(d.name, Pat::Ident(_))))
                });
            }
        }
        hazards
    }
}

fn has_use_strict(program: &swc_core::ecma::ast::Program) -> bool {
    let swc_core::ecma::ast::Program::Script(script) = program else {
        return true;
    };
    script.body.iter().map_while(|s| s.as_expr()).any(
        |e| matches!(&*e.expr, Expr::Lit(Lit::Str(s)) if s.value.as_str() == Some("use strict")),
    )
}

/// Names and shapes that [`Hazards`] looks for, anywhere in a program.
/// (Function bodies are `FunctionBody` nodes, so every `BlockStmt` here is a
/// block in the Annex B sense.)
#[derive(Default)]
struct HazardScan {
    fn_names: std::collections::HashSet<swc_core::atoms::Atom>,
    var_names: Vec<swc_core::atoms::Atom>,
    block_functions: bool,
}

fn declares_function(stmts: &[swc_core::ecma::ast::Stmt]) -> bool {
    use swc_core::ecma::ast::{Decl, Stmt};
    stmts.iter().any(|s| matches!(s, Stmt::Decl(Decl::Fn(_))))
}

impl Visit for HazardScan {
    fn visit_fn_decl(&mut self, n: &swc_core::ecma::ast::FnDecl) {
        self.fn_names.insert(n.ident.sym.clone());
        n.visit_children_with(self);
    }

    fn visit_var_decl(&mut self, n: &swc_core::ecma::ast::VarDecl) {
        if n.kind == swc_core::ecma::ast::VarDeclKind::Var {
            for d in &n.decls {
                pat_names(&d.name, &mut self.var_names);
            }
        }
        n.visit_children_with(self);
    }

    fn visit_block_stmt(&mut self, n: &swc_core::ecma::ast::BlockStmt) {
        self.block_functions |= declares_function(&n.stmts);
        n.visit_children_with(self);
    }

    fn visit_switch_case(&mut self, n: &swc_core::ecma::ast::SwitchCase) {
        self.block_functions |= declares_function(&n.cons);
        n.visit_children_with(self);
    }
}

/// `/*! … */`, `@license` and `@preserve` comments, in source order, as written.
fn license_comments(comments: &swc_core::common::comments::SingleThreadedComments) -> Vec<String> {
    use swc_core::common::comments::CommentKind;
    let (leading, trailing) = comments.borrow_all();
    let mut found: Vec<(u32, String)> = leading
        .values()
        .chain(trailing.values())
        .flatten()
        .filter(|c| {
            c.text.starts_with('!') || c.text.contains("@license") || c.text.contains("@preserve")
        })
        .map(|c| {
            let text = match c.kind {
                CommentKind::Block => format!("/*{}*/", c.text),
                CommentKind::Line => format!("//{}", c.text),
            };
            (c.span.lo.0, text)
        })
        .collect();
    found.sort();
    found.dedup();
    found.into_iter().map(|(_, t)| t).collect()
}

/// `</script` cannot appear inside an inline script; `<\/script` means the same
/// in every JavaScript context where it can occur (strings, templates, regexps).
fn escape_script_end(code: &str) -> String {
    let lower = code.to_ascii_lowercase();
    let mut out = String::with_capacity(code.len());
    let mut at = 0;
    for (i, _) in lower.match_indices("</script") {
        out.push_str(&code[at..i + 1]);
        out.push('\\');
        at = i + 1;
    }
    out.push_str(&code[at..]);
    out
}

struct Found {
    token: String,
    url: String,
    kind: RefKind,
    line: u32,
    col: u32,
}

/// Replaces each reference string with a unique placeholder before minifying.
struct Marker<'a, 'i> {
    nonce: String,
    start: usize,
    index: &'a LineIndex<'i>,
    found: Vec<Found>,
}

impl Marker<'_, '_> {
    fn mark(&mut self, s: &mut Str, kind: RefKind) {
        let Some(value) = s.value.as_str().map(str::to_owned) else {
            return;
        };
        if kind == RefKind::Import
            && !(value.starts_with("./") || value.starts_with("../") || value.starts_with('/'))
        {
            return;
        }
        let (line, col) = self
            .index
            .line_col((s.span.lo.0 as usize).saturating_sub(self.start));
        // The terminator keeps `…_1_` from being a prefix of `…_10_`.
        let token = format!("kiln{}_{}_", self.nonce, self.found.len());
        s.value = token.as_str().into();
        s.raw = None;
        self.found.push(Found {
            token,
            url: value,
            kind,
            line,
            col,
        });
    }
}

impl swc_core::ecma::visit::VisitMut for Marker<'_, '_> {
    fn visit_mut_import_decl(&mut self, n: &mut ImportDecl) {
        if !n.type_only {
            self.mark(&mut n.src, RefKind::Import);
        }
    }

    fn visit_mut_export_all(&mut self, n: &mut ExportAll) {
        self.mark(&mut n.src, RefKind::Import);
    }

    fn visit_mut_named_export(&mut self, n: &mut NamedExport) {
        if let Some(src) = &mut n.src {
            self.mark(src, RefKind::Import);
        }
    }

    fn visit_mut_call_expr(&mut self, n: &mut CallExpr) {
        use swc_core::ecma::visit::VisitMutWith;
        if let Callee::Import(_) = n.callee
            && let Some(arg) = n.args.first_mut()
            && let Expr::Lit(Lit::Str(s)) = &mut *arg.expr
        {
            self.mark(s, RefKind::Import);
        }
        n.visit_mut_children_with(self);
    }

    fn visit_mut_new_expr(&mut self, n: &mut NewExpr) {
        use swc_core::ecma::visit::VisitMutWith;
        if let Expr::Ident(callee) = &*n.callee
            && callee.sym == *"URL"
            && let Some(args) = &mut n.args
            && args.len() >= 2
            && is_import_meta_url(&args[1].expr)
            && let Expr::Lit(Lit::Str(s)) = &mut *args[0].expr
        {
            self.mark(s, RefKind::Embed);
        }
        n.visit_mut_children_with(self);
    }
}

#[cfg(test)]
mod minify_tests {
    use super::*;

    fn min(js: &str, kind: ScriptKind) -> MinifiedCode {
        let m = minify(js, kind, false, &JsOptions::default(), None).expect("minifies");
        for r in &m.refs {
            assert_eq!(&m.code[r.span.clone()], js_string_contents(&r.url));
        }
        m
    }

    #[test]
    fn module_references_survive_and_top_level_names_are_mangled() {
        let js = "import { helper } from './lib/helper.js';\nconst longName = helper(1);\nexport const x = longName + 1;\nconst lazy = () => import('./lazy.js');\nexport { lazy };\nconst u = new URL(\"../img/a b.png\", import.meta.url);\nexport { u };\n";
        let m = min(js, ScriptKind::Detect);
        let urls: Vec<&str> = m.refs.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, ["./lib/helper.js", "./lazy.js", "../img/a b.png"]);
        assert!(!m.code.contains("longName"), "{}", m.code);
        assert_eq!((m.refs[1].line, m.refs[1].col), (4, 27));
    }

    #[test]
    fn scripts_keep_their_globals() {
        let m = min(
            "function visibleToOtherScripts(a) { return a * 2 }\nvar alsoGlobal = 1;",
            ScriptKind::Detect,
        );
        assert!(
            m.code.contains("visibleToOtherScripts") && m.code.contains("alsoGlobal"),
            "{}",
            m.code
        );
    }

    #[test]
    fn license_comments_stay_and_others_go() {
        let m = min(
            "/*! keep me */\n// drop me\n/** @license MIT */\nconsole.log(1 + 1); /* drop */",
            ScriptKind::Classic,
        );
        assert!(
            m.code.starts_with("/*! keep me */\n/** @license MIT */\n"),
            "{}",
            m.code
        );
        assert!(!m.code.contains("drop"), "{}", m.code);
    }

    #[test]
    fn inline_scripts_cannot_close_their_element() {
        let m = minify(
            "document.write('</script>' + \"</SCRIPT>\")",
            ScriptKind::Classic,
            true,
            &JsOptions::default(),
            None,
        )
        .unwrap();
        assert!(
            !m.code.to_ascii_lowercase().contains("</script"),
            "{}",
            m.code
        );
    }

    #[test]
    fn syntax_errors_refuse_to_minify() {
        let e = minify(
            "let a = 1;\nlet = = 2;",
            ScriptKind::Detect,
            false,
            &JsOptions::default(),
            None,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn top_level_await_needs_module_kind() {
        let js = "const r = await Promise.resolve(1);\nconsole.log(r);";
        assert!(minify(js, ScriptKind::Module, false, &JsOptions::default(), None).is_ok());
        assert!(minify(js, ScriptKind::Classic, false, &JsOptions::default(), None).is_err());
    }
}

#[cfg(test)]
mod many_references_tests {
    use super::*;

    #[test]
    fn eleven_and_more_references_keep_their_own_urls() {
        let mut js = String::new();
        for i in 0..12 {
            js.push_str(&format!("import {{ v{i} }} from './m{i}.js';\n"));
        }
        js.push_str("console.log(v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11);\n");
        let m = minify(&js, ScriptKind::Detect, false, &JsOptions::default(), None).unwrap();
        let urls: Vec<&str> = m.refs.iter().map(|r| &m.code[r.span.clone()]).collect();
        let want: Vec<String> = (0..12).map(|i| format!("./m{i}.js")).collect();
        assert_eq!(urls, want, "{}", m.code);
    }
}
