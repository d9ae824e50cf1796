//! No import circle anywhere in `src/` (issue 17), checked on the text.
//!
//! The granularity: files. Every `.rs` file is a node (a `mod.rs` is its
//! directory's module, a `#[path]` test file is the module that declares
//! it); a reference from one file to an item another file defines is an
//! edge, and the edges must not form a cycle. This is the granularity of the
//! issue's examples (`outcome.rs` <-> `telephony/media_session.rs` <->
//! `telephony/leg.rs`, `asr/eval.rs` <-> `asr/sphinx.rs`): a top-level
//! module that is one file (`outcome`) is caught against any file of
//! another; two files of one module are caught against each other; a
//! `mod.rs` that calls its children while they use its items is a cycle.
//! Not checked: cycles between whole directories through different files
//! (`policy/cli.rs` -> `campaign`, `campaign/gate.rs` -> `policy`), the
//! layering of top-level modules; ARCHITECTURE.md tells why they exist.
//!
//! What counts as a reference: every `crate::`, `super::` and `self::` path
//! and every path that starts with a child module's name, in `use` items and
//! in code, test modules included. A `pub use` of a module's own descendant
//! (the facade a `mod.rs` shows) is not an edge, but a path through it
//! resolves to the file that defines the re-exported item. `mod x;`
//! declarations are not edges.
//!
//! Cycles found when the checker came are listed in `KNOWN` with why they
//! remain; that list may only shrink. The checker reads the text itself
//! (comments, strings and character literals stripped); it needs neither
//! the library nor a parser crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module path from the crate root: `["telephony", "leg"]`.
type ModPath = Vec<String>;

/// One reference from a file to a module path, with where it was written.
#[derive(Debug, Clone)]
struct Reference {
    /// The absolute path the text names, resolved as far as the module tree.
    target: ModPath,
    /// 1-based line in the referring file.
    line: usize,
    /// The path as written, for the report.
    written: String,
    /// A `pub use` (a re-export), not a use inside the module.
    reexport: bool,
}

/// A source file of the crate, parsed.
#[derive(Debug)]
struct SourceFile {
    /// Path relative to the source root, for reports.
    rel: String,
    /// The module the file is.
    module: ModPath,
    /// Every reference found in it.
    refs: Vec<Reference>,
    /// Names a `pub use` in this file re-exports, mapped to the absolute
    /// path they name.
    reexports: BTreeMap<String, ModPath>,
}

/// The crate: its files by module path.
struct Crate {
    files: BTreeMap<ModPath, SourceFile>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Colons,
    Punct(char),
}

/// Comments, string and character literals out; tokens with their line.
fn tokenize(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let n = c.len();
    while i < n {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && i + 1 < n && c[i + 1] == '/' {
            while i < n && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && i + 1 < n && c[i + 1] == '*' {
            let mut depth = 0;
            while i < n {
                if c[i] == '/' && i + 1 < n && c[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && i + 1 < n && c[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && i + 1 < n && c[i + 1] == '"') {
            i += if ch == '"' { 1 } else { 2 };
            while i < n && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if i < n && c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if let Some(len) = raw_string_open(&c, i) {
            // r#"..."# (or br / cr): the hashes after the quote close it.
            let hashes = len - 2 - usize::from(c[i] != 'r');
            i += len;
            loop {
                if i >= n {
                    break;
                }
                if c[i] == '"' && (0..hashes).all(|k| i + 1 + k < n && c[i + 1 + k] == '#') {
                    i += 1 + hashes;
                    break;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
        } else if ch == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if i + 1 < n && c[i + 1] == '\\' {
                i += 2;
                while i < n && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if i + 2 < n && c[i + 2] == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < n && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let mut word: String = c[start..i].iter().collect();
            if word == "r" && i < n && c[i] == '#' {
                // r#ident
                let s = i + 1;
                i = s;
                while i < n && (c[i].is_alphanumeric() || c[i] == '_') {
                    i += 1;
                }
                word = c[s..i].iter().collect();
            }
            out.push((Tok::Ident(word), line));
        } else if ch.is_ascii_digit() {
            while i < n && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                if c[i] == '.' && !(i + 1 < n && c[i + 1].is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
        } else if ch == ':' && i + 1 < n && c[i + 1] == ':' {
            out.push((Tok::Colons, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The length of a raw string's opening (`r#"`, `br##"`), if one starts at `i`.
fn raw_string_open(c: &[char], i: usize) -> Option<usize> {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return None;
    }
    let mut j = i;
    if c[j] == 'b' || c[j] == 'c' {
        j += 1;
    }
    if j >= c.len() || c[j] != 'r' {
        return None;
    }
    j += 1;
    while j < c.len() && c[j] == '#' {
        j += 1;
    }
    (j < c.len() && c[j] == '"').then_some(j + 1 - i)
}

/// A `use` tree expanded into its leaf paths, each with the name it binds.
fn expand_use(toks: &[Tok], prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    // Split the top level of `toks` at commas.
    let mut depth = 0;
    let mut start = 0;
    let mut parts = Vec::new();
    for (k, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                parts.push(&toks[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    parts.push(&toks[start..]);
    for part in parts {
        let mut path = prefix.to_vec();
        let mut k = 0;
        if part.first() == Some(&Tok::Colons) {
            k += 1; // `::extern_crate`
        }
        let mut bound = None;
        let mut done = false;
        while k < part.len() {
            match &part[k] {
                Tok::Ident(w) if w == "as" => {
                    if let Some(Tok::Ident(alias)) = part.get(k + 1) {
                        bound = Some(alias.clone());
                    }
                    break;
                }
                Tok::Ident(w) if w == "self" && !path.is_empty() && k > 0 => {
                    bound = path.last().cloned();
                    k += 1;
                }
                Tok::Ident(w) => {
                    path.push(w.clone());
                    bound = Some(w.clone());
                    k += 1;
                }
                Tok::Colons => k += 1,
                Tok::Punct('*') => {
                    bound = None;
                    k += 1;
                }
                Tok::Punct('{') => {
                    let inner = &part[k + 1..part.len() - 1];
                    expand_use(inner, &path, out);
                    done = true;
                    break;
                }
                _ => k += 1,
            }
        }
        if !done && !path.is_empty() {
            if bound.as_deref() == Some("_") {
                bound = None;
            }
            out.push((path, bound));
        }
    }
}

/// Where the file for a module path lives, if the module is a file.
fn module_files(root: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(root).expect("under root");
            let mut segs: Vec<String> = rel
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            let last = segs.pop().expect("a file name");
            let stem = last.trim_end_matches(".rs").to_string();
            if segs.is_empty() && stem == "main" {
                continue; // the binary: another crate
            }
            if !(stem == "mod" || (segs.is_empty() && stem == "lib")) {
                segs.push(stem);
            }
            out.insert(segs, p);
        }
    }
    out
}

/// `#[path = "x_tests.rs"] mod tests;` inside a file: that file is the
/// module `tests` of the declaring file, not a sibling.
fn path_attributes(files: &BTreeMap<ModPath, PathBuf>) -> BTreeMap<PathBuf, ModPath> {
    let mut out = BTreeMap::new();
    for (module, path) in files {
        let Ok(src) = fs::read_to_string(path) else {
            continue;
        };
        let toks: Vec<Tok> = tokenize(&src).into_iter().map(|(t, _)| t).collect();
        // The attribute's string is stripped by the tokenizer; read it from
        // the text instead.
        let mut names = Vec::new();
        for (k, w) in toks.windows(3).enumerate() {
            if w[0] == Tok::Punct('#')
                && w[1] == Tok::Punct('[')
                && w[2] == Tok::Ident("path".into())
            {
                // `mod NAME ;` follows the attribute.
                let rest = &toks[k..];
                if let Some(m) = rest.iter().position(|t| *t == Tok::Ident("mod".into())) {
                    if let Some(Tok::Ident(name)) = rest.get(m + 1) {
                        names.push(name.clone());
                    }
                }
            }
        }
        let mut targets = src
            .lines()
            .filter_map(|l| l.trim().strip_prefix("#[path = \""))
            .filter_map(|l| l.split('"').next());
        let dir = path.parent().expect("a directory");
        for name in names {
            if let Some(target) = targets.next() {
                let mut m = module.clone();
                m.push(name);
                out.insert(dir.join(target), m);
            }
        }
    }
    out
}

impl Crate {
    /// Reads and parses every `.rs` file under `root` (a crate's `src/`).
    fn read(root: &Path) -> Crate {
        let mut by_module = module_files(root);
        let renamed = path_attributes(&by_module);
        by_module.retain(|_, p| !renamed.contains_key(p));
        for (p, m) in &renamed {
            by_module.insert(m.clone(), p.clone());
        }
        let modules: BTreeSet<ModPath> = by_module.keys().cloned().collect();
        let mut files = BTreeMap::new();
        for (module, path) in &by_module {
            let src = fs::read_to_string(path).expect("readable source");
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            let (refs, reexports) = parse_file(&src, module, &modules);
            files.insert(
                module.clone(),
                SourceFile {
                    rel,
                    module: module.clone(),
                    refs,
                    reexports,
                },
            );
        }
        Crate { files }
    }

    /// The file module an absolute path lands in: the deepest file module
    /// on the path, followed through `pub use` re-exports.
    fn resolve(&self, path: &[String]) -> ModPath {
        let mut path = path.to_vec();
        for _ in 0..8 {
            let mut k = 0;
            while k < path.len() && self.files.contains_key(&path[..=k]) {
                k += 1;
            }
            let file = path[..k].to_vec();
            let Some(next) = path.get(k) else {
                return file;
            };
            match self.files.get(&file).and_then(|f| f.reexports.get(next)) {
                Some(real) if real.as_slice() != path.as_slice() => {
                    let mut p = real.clone();
                    p.extend_from_slice(&path[k + 1..]);
                    path = p;
                }
                _ => return file,
            }
        }
        path
    }

    /// Every edge between two different file modules: (from, to, where).
    fn edges(&self) -> Vec<(ModPath, ModPath, String)> {
        let mut out = Vec::new();
        for f in self.files.values() {
            for r in &f.refs {
                let to = self.resolve(&r.target);
                if to == f.module {
                    continue;
                }
                if r.reexport && to.starts_with(&f.module) {
                    continue; // a facade over the module's own descendants
                }
                out.push((
                    f.module.clone(),
                    to,
                    format!("{}:{} `{}`", f.rel, r.line, r.written),
                ));
            }
        }
        out
    }

    /// Every import cycle between files: the members of each strongly
    /// connected component (module paths joined with `::`, the crate root
    /// as `crate`) and the references that close it.
    fn cycles(&self) -> Vec<Cycle> {
        let name = |m: &ModPath| {
            if m.is_empty() {
                "crate".to_string()
            } else {
                m.join("::")
            }
        };
        let edges: Vec<(String, String, String)> = self
            .edges()
            .into_iter()
            .map(|(a, b, at)| (name(&a), name(&b), at))
            .collect();
        let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (a, b, _) in &edges {
            graph.entry(a).or_default().insert(b);
            graph.entry(b).or_default();
        }
        let mut out = Vec::new();
        for members in strongly_connected(&graph) {
            if members.len() < 2 {
                continue;
            }
            let mut closing: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
            for (a, b, at) in &edges {
                if members.contains(&a.as_str()) && members.contains(&b.as_str()) {
                    closing.entry((a, b)).or_default().push(at);
                }
            }
            let mut text = format!("cycle between {{{}}}:", members.join(", "));
            for ((a, b), at) in closing {
                text.push_str(&format!("\n  {a} -> {b}: {}", at[0]));
                if at.len() > 1 {
                    text.push_str(&format!(" (+{} more)", at.len() - 1));
                }
            }
            out.push(Cycle {
                members: members.join(", "),
                text,
            });
        }
        out.sort_by(|a, b| a.members.cmp(&b.members));
        out
    }
}

/// One import cycle between files.
#[derive(Debug)]
struct Cycle {
    /// The files' module paths, sorted, joined with ", ".
    members: String,
    /// The members and the references that close the cycle, for a report.
    text: String,
}

/// Tarjan's strongly connected components.
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, g: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &g[v] {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            comp.sort();
            s.out.push(comp);
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, graph, &mut s);
        }
    }
    s.out
}

/// The references and re-exports of one file that is module `file_mod`.
fn parse_file(
    src: &str,
    file_mod: &ModPath,
    modules: &BTreeSet<ModPath>,
) -> (Vec<Reference>, BTreeMap<String, ModPath>) {
    let toks = tokenize(src);
    let mut refs = Vec::new();
    let mut reexports = BTreeMap::new();
    // Inline modules: (name, brace depth at which they close).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let current = |inline: &[(String, usize)]| -> ModPath {
        let mut m = file_mod.clone();
        m.extend(inline.iter().map(|(n, _)| n.clone()));
        m
    };
    // An absolute path for `segs` written in module `cur`, if it names the
    // crate's own modules.
    let absolute = |segs: &[String], cur: &ModPath| -> Option<ModPath> {
        let first = segs.first()?;
        match first.as_str() {
            "crate" => Some(segs[1..].to_vec()),
            "self" => {
                let mut m = cur.clone();
                m.extend_from_slice(&segs[1..]);
                Some(m)
            }
            "super" => {
                let mut m = cur.clone();
                let mut k = 0;
                while segs.get(k).map(String::as_str) == Some("super") {
                    m.pop();
                    k += 1;
                }
                m.extend_from_slice(&segs[k..]);
                Some(m)
            }
            _ => {
                // A child module of the module the text is in (2018 paths);
                // only file modules are known, so inline children of the
                // file resolve to the file itself.
                let mut child = cur.clone();
                child.push(first.clone());
                if modules.contains(&child) {
                    let mut m = cur.clone();
                    m.extend_from_slice(segs);
                    Some(m)
                } else {
                    None
                }
            }
        }
    };
    let mut k = 0;
    while k < toks.len() {
        let (tok, line) = &toks[k];
        match tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(k + 1), toks.get(k + 2))
                {
                    inline.push((name.clone(), depth));
                    depth += 1;
                    k += 3;
                    continue;
                }
            }
            Tok::Ident(w) if w == "use" => {
                // Skip `use` inside a path like `x::use`? Not valid Rust; fine.
                let reexport = is_pub_before(&toks, k);
                let end = (k..toks.len())
                    .find(|&e| toks[e].0 == Tok::Punct(';'))
                    .unwrap_or(toks.len());
                let tree: Vec<Tok> = toks[k + 1..end].iter().map(|(t, _)| t.clone()).collect();
                let mut leaves = Vec::new();
                expand_use(&tree, &[], &mut leaves);
                let cur = current(&inline);
                for (path, bound) in leaves {
                    if let Some(abs) = absolute(&path, &cur) {
                        if reexport && cur == *file_mod {
                            if let Some(name) = bound {
                                reexports.insert(name, abs.clone());
                            }
                        }
                        refs.push(Reference {
                            target: abs,
                            line: *line,
                            written: path.join("::"),
                            reexport,
                        });
                    }
                }
                k = end + 1;
                continue;
            }
            Tok::Ident(first) => {
                let after_colons = k > 0 && toks[k - 1].0 == Tok::Colons;
                let dollar = k > 0 && toks[k - 1].0 == Tok::Punct('$');
                if !after_colons && toks.get(k + 1).map(|t| &t.0) == Some(&Tok::Colons) {
                    let mut segs = vec![first.clone()];
                    let mut e = k + 1;
                    while toks.get(e).map(|t| &t.0) == Some(&Tok::Colons) {
                        match toks.get(e + 1).map(|t| &t.0) {
                            Some(Tok::Ident(s)) => {
                                segs.push(s.clone());
                                e += 2;
                            }
                            _ => break,
                        }
                    }
                    let _ = dollar; // `$crate::` resolves like `crate::`
                    if let Some(abs) = absolute(&segs, &current(&inline)) {
                        refs.push(Reference {
                            target: abs,
                            line: *line,
                            written: segs.join("::"),
                            reexport: false,
                        });
                    }
                    k = e;
                    continue;
                }
            }
            _ => {}
        }
        k += 1;
    }
    (refs, reexports)
}

/// Whether the `use` at `k` is preceded by `pub` or `pub(...)`.
fn is_pub_before(toks: &[(Tok, usize)], k: usize) -> bool {
    if k == 0 {
        return false;
    }
    match &toks[k - 1].0 {
        Tok::Ident(w) => w == "pub",
        Tok::Punct(')') => {
            // pub(crate) / pub(super) / pub(in path)
            let open = (0..k - 1).rev().find(|&j| toks[j].0 == Tok::Punct('('));
            open.is_some_and(|j| j > 0 && toks[j - 1].0 == Tok::Ident("pub".into()))
        }
        _ => false,
    }
}

/// The cycles known when the checker came (issue 17, session 8), each
/// with why it is still there. The list may only shrink: a new cycle, a
/// known one that grew or changed its members, and a known one that is gone
/// (remove it here) all fail.
const KNOWN: &[(&str, &str)] = &[];

/// The members of `text` as `cycles()` writes them (whitespace folded).
fn members_of(text: &str) -> String {
    text.split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn no_import_cycle_between_files_in_src_beyond_the_known_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let krate = Crate::read(&root);
    assert!(krate.files.len() > 100, "read the crate's files");
    let found = krate.cycles();
    let known: BTreeSet<String> = KNOWN.iter().map(|(m, _)| members_of(m)).collect();
    let new: Vec<&str> = found
        .iter()
        .filter(|c| !known.contains(&c.members))
        .map(|c| c.text.as_str())
        .collect();
    let gone: Vec<&String> = known
        .iter()
        .filter(|k| !found.iter().any(|c| &c.members == *k))
        .collect();
    assert!(
        new.is_empty(),
        "{} import cycle(s) in src/ that are not known (a known one that grew or \
         shrank counts as new; fix it, or if it shrank, update KNOWN):\n{}",
        new.len(),
        new.join("\n")
    );
    assert!(
        gone.is_empty(),
        "known cycles gone, remove them from KNOWN: {gone:?}"
    );
}

/// A throwaway source tree under the system temp directory.
fn scratch_tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("import_cycles_{name}_{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for (rel, text) in files {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().expect("a parent")).expect("scratch dir");
        fs::write(&p, text).expect("scratch file");
    }
    dir
}

#[test]
fn a_cycle_between_top_level_modules_is_reported() {
    let dir = scratch_tree(
        "top",
        &[
            ("lib.rs", "pub mod outcome;\npub mod telephony;\n"),
            (
                "outcome.rs",
                "pub struct Report { pub p: crate::telephony::leg::Pacing }\n",
            ),
            ("telephony/mod.rs", "pub mod leg;\npub use leg::Pacing;\n"),
            (
                "telephony/leg.rs",
                "use crate::outcome::Report;\n// crate::ignored::In::Comment\npub struct Pacing;\n",
            ),
        ],
    );
    let cycles = Crate::read(&dir).cycles();
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].members, "outcome, telephony::leg");
    assert!(
        cycles[0]
            .text
            .starts_with("cycle between {outcome, telephony::leg}"),
        "{cycles:?}"
    );
    assert!(cycles[0].text.contains("telephony/leg.rs:1"), "{cycles:?}");
}

#[test]
fn a_cycle_between_files_of_one_module_is_reported_through_a_reexport() {
    let dir = scratch_tree(
        "files",
        &[
            ("lib.rs", "pub mod asr;\n"),
            ("asr/mod.rs", "mod eval;\nmod sphinx;\npub use sphinx::WIDE_BEAMS;\n"),
            ("asr/eval.rs", "fn f() -> u32 { super::WIDE_BEAMS }\npub const N: u32 = 1;\n"),
            (
                "asr/sphinx.rs",
                "pub const WIDE_BEAMS: u32 = 2;\nfn g() -> u32 { let s = \"super::x\"; super::eval::N }\n",
            ),
        ],
    );
    let cycles = Crate::read(&dir).cycles();
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0]
            .text
            .starts_with("cycle between {asr::eval, asr::sphinx}"),
        "{cycles:?}"
    );
}

#[test]
fn a_facade_and_tests_that_use_their_parent_are_not_cycles() {
    let dir = scratch_tree(
        "facade",
        &[
            ("lib.rs", "pub mod a;\npub mod b;\n"),
            ("a/mod.rs", "mod x;\npub use x::X;\npub struct Here;\n"),
            (
                "a/x.rs",
                "use super::Here;\npub struct X;\n#[cfg(test)]\nmod tests { use super::*; }\n",
            ),
            ("b.rs", "pub struct B;\nfn f(_: crate::a::X) {}\n"),
        ],
    );
    let cycles = Crate::read(&dir).cycles();
    let _ = fs::remove_dir_all(&dir);
    assert!(cycles.is_empty(), "{cycles:?}");
}
