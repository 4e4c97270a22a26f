//! The structure check: the folder tree is the architecture, so imports must
//! follow it. Every `crate::`/`super::`/`self::` path in `src/` (outside unit
//! tests) is resolved to the file that defines it, and two rules are checked:
//!
//! 1. no file imports a layer above its own (`LAYERS`, lowest first; a layer
//!    may use any layer below it, and nothing beside it);
//! 2. no import cycles among files (strongly connected components of the
//!    file graph have one member).
//!
//! Known violations in files other work owns are listed in `EXCEPTIONS` with
//! the reason; an exception that no longer occurs fails the test, so the
//! list can only shrink. No root, no daemon: it reads the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first. A module may import modules of
/// strictly lower layers (and itself).
const LAYERS: &[&[&str]] = &[
    &["types", "util"],
    &["netdev", "config", "daemon"],
    &["datapath", "openflow"],
    &["ofproto"],
    &["messages"],
    &["actors"],
    &["control"],
];

/// `(file, imported module path prefix, why it is allowed for now)`.
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file with its module path (`src/a/b.rs` and `src/a/b/mod.rs`
/// are `a::b`; `lib.rs` is the root). Unit-test files and the binary's
/// `main.rs` are left out: tests may reach anywhere.
fn modules() -> BTreeMap<Vec<String>, String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read src").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = src_dir();
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f
            .strip_prefix(&root)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        let mut parts: Vec<String> = rel
            .trim_end_matches(".rs")
            .split('/')
            .map(str::to_string)
            .collect();
        if parts.last().map(String::as_str) == Some("mod") {
            parts.pop();
        }
        if parts == ["lib"] {
            parts.clear();
        }
        if parts == ["main"] || parts.last().map(String::as_str) == Some("tests") {
            continue;
        }
        out.insert(parts, rel);
    }
    out
}

/// The source without comments, string and char literals (their contents
/// can look like paths).
fn strip(src: &str) -> String {
    let b: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !ident(b.get(i.wrapping_sub(1)))
        {
            // Raw string r"..." / r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// Removes `#[cfg(test)] mod NAME { ... }` blocks (unit tests may reach
/// anywhere).
fn drop_test_modules(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + "#[cfg(test)]".len()..];
        let t = after.trim_start();
        if t.starts_with("mod ") {
            if let Some(open) = t.find(['{', ';']) {
                if t.as_bytes()[open] == b';' {
                    rest = &t[open + 1..];
                    continue;
                }
                let mut depth = 0usize;
                let mut end = t.len();
                for (k, ch) in t[open..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                rest = &t[end..];
                continue;
            }
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Every path a file names: `crate::a::b`, `super::x`, `self::y`, and the
/// members of `use ...::{a, b::c}` groups, as absolute module paths.
fn paths(module: &[String], is_mod_rs: bool, src: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let start_ok = i == 0 || !(ident(chars.get(i - 1)) || chars[i - 1] == ':');
        let word: String = chars[i..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        if word.is_empty() {
            i += 1;
            continue;
        }
        let len = word.chars().count();
        if !start_ok || !matches!(word.as_str(), "crate" | "super" | "self") {
            i += len;
            continue;
        }
        // Collect the path segments after the keyword.
        let mut segs: Vec<String> = vec![word.clone()];
        let mut j = i + len;
        let mut group = None;
        while chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
            j += 2;
            if chars.get(j) == Some(&'{') {
                let mut depth = 0;
                let mut k = j;
                while k < chars.len() {
                    match chars[k] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                group = Some(chars[j + 1..k.min(chars.len())].iter().collect::<String>());
                j = k + 1;
                break;
            }
            let seg: String = chars[j..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect();
            if seg.is_empty() {
                break;
            }
            j += seg.chars().count();
            segs.push(seg);
        }
        i = j;
        // Resolve the keyword prefix.
        let mut base: Vec<String> = match segs[0].as_str() {
            "crate" => Vec::new(),
            _ => module.to_vec(),
        };
        let mut rest = &segs[1..];
        if segs[0] == "super" {
            // `super` from `a/b.rs` (module a::b) is `a`; from `a/b/mod.rs`
            // (also a::b) it is `a` too.
            let _ = is_mod_rs;
            base.pop();
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        let mut full = base.clone();
        full.extend(rest.iter().cloned());
        match group {
            None => out.push(full),
            Some(g) => {
                out.push(full.clone());
                for item in g.split(',') {
                    let item = item.trim();
                    let first: Vec<String> = item
                        .split("::")
                        .map(|s| s.trim().trim_matches(|c| c == '{' || c == '}').to_string())
                        .filter(|s| !s.is_empty() && s != "self" && s != "*")
                        .collect();
                    if !first.is_empty() {
                        let mut p = full.clone();
                        p.extend(first);
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

/// The defining file (longest module prefix that is a file).
fn resolve(mods: &BTreeMap<Vec<String>, String>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| mods.contains_key(p))
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

struct Graph {
    mods: BTreeMap<Vec<String>, String>,
    /// file → files it imports, with the import path as written (for messages).
    edges: BTreeMap<Vec<String>, BTreeMap<Vec<String>, Vec<String>>>,
}

fn graph() -> Graph {
    let mods = modules();
    let root = src_dir();
    let mut edges = BTreeMap::new();
    for (m, rel) in &mods {
        let text = std::fs::read_to_string(root.join(rel)).expect("read source");
        let body = drop_test_modules(&strip(&text));
        let mut deps: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for p in paths(m, rel.ends_with("mod.rs"), &body) {
            if let Some(t) = resolve(&mods, &p) {
                if &t != m {
                    deps.entry(t).or_insert(p);
                }
            }
        }
        edges.insert(m.clone(), deps);
    }
    Graph { mods, edges }
}

fn is_exception(file: &str, target: &[String]) -> bool {
    let t = target.join("::");
    EXCEPTIONS
        .iter()
        .any(|(f, prefix, _)| *f == file && (t == *prefix || t.starts_with(&format!("{prefix}::"))))
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let g = graph();
    let mut bad = Vec::new();
    let mut used = BTreeSet::new();
    for (m, deps) in &g.edges {
        let Some(top) = m.first() else { continue };
        let Some(mine) = layer_of(top) else {
            bad.push(format!(
                "{}: module {top} has no layer in LAYERS",
                g.mods[m]
            ));
            continue;
        };
        for (t, written) in deps {
            let Some(ttop) = t.first() else { continue };
            if ttop == top {
                continue;
            }
            let ok = layer_of(ttop).is_some_and(|l| l < mine);
            if ok {
                continue;
            }
            let file = &g.mods[m];
            if is_exception(file, t) {
                used.insert(file.clone() + " -> " + &t.join("::"));
                continue;
            }
            bad.push(format!(
                "{file} ({top}) imports {} ({ttop}, a layer not below it)",
                written.join("::")
            ));
        }
    }
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
    for (f, prefix, why) in EXCEPTIONS {
        assert!(
            used.iter()
                .any(|u| u.starts_with(&format!("{f} -> {prefix}"))),
            "exception {f} -> {prefix} ({why}) no longer occurs: remove it"
        );
    }
}

#[test]
fn no_import_cycles_among_files() {
    let g = graph();
    // Tarjan's strongly connected components over the file graph, without
    // the edges already reported as layer exceptions.
    let nodes: Vec<&Vec<String>> = g.edges.keys().collect();
    let index_of: BTreeMap<&Vec<String>, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let adj: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            g.edges[*n]
                .keys()
                .filter(|t| !is_exception(&g.mods[*n], t))
                .filter_map(|t| index_of.get(t).copied())
                .collect()
        })
        .collect();
    struct T<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on: Vec<bool>,
        next: usize,
        sccs: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for k in 0..t.adj[v].len() {
            let w = t.adj[v][k];
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.sccs.push(comp);
            }
        }
    }
    let n = nodes.len();
    let mut t = T {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on: vec![false; n],
        next: 0,
        sccs: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    let cycles: Vec<String> = t
        .sccs
        .iter()
        .map(|c| {
            c.iter()
                .map(|&i| g.mods[nodes[i]].clone())
                .collect::<Vec<_>>()
                .join(" <-> ")
        })
        .collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_checker_sees_imports() {
    // A check that finds nothing proves nothing: these edges exist.
    let g = graph();
    let key = |s: &str| s.split("::").map(str::to_string).collect::<Vec<_>>();
    for (from, to) in [
        ("actors::bridge", "ofproto::view"),
        ("datapath::pmd::handle", "netdev::poll"),
        ("ofproto::trace", "ofproto::view"),
        ("netdev::tap", "netdev"),
    ] {
        assert!(
            g.edges[&key(from)].contains_key(&key(to)),
            "{from} -> {to} not seen: {:?}",
            g.edges[&key(from)].keys().collect::<Vec<_>>()
        );
    }
    let p = paths(
        &key("a::b"),
        false,
        "use super::{x, y::z}; use crate::c::d;",
    );
    assert!(
        p.contains(&key("a::y::z")) && p.contains(&key("c::d")),
        "{p:?}"
    );
    assert_eq!(strip("a // crate::x\n\"crate::y\" 'c'"), "a \n\"\"  ");
}
