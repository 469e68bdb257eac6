//! The rooms import one way. A room is a top-level module of this crate
//! (`lib.rs`); this test reads every file of `src/`, collects the rooms each
//! room names through `crate::` (paths and `use crate::{a, b::c}` groups;
//! comments and string literals do not count), and fails naming the cycle
//! when two rooms reach each other. The layering it protects is the one
//! `lib.rs` describes: edges → features → temporal → store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// This file's own module, which is not a room.
const SELF_MODULE: &str = "rooms_test";

/// The code of a Rust source with comments removed and string and character
/// literals emptied, so that only real paths remain.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == b'r' && (next == Some(b'"') || next == Some(b'#')) && !ident_before(b, i) {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
            out.push_str("\"\"");
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // A character literal ('x', '\n', '"'), or a lifetime ('a), kept.
            let end = if next == Some(b'\\') {
                b[i + 2..].iter().position(|&x| x == b'\'').map(|p| i + 2 + p)
            } else {
                // One (possibly multi-byte) character, then the closing quote.
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
            };
            match end {
                Some(e) => {
                    out.push_str("' '");
                    i = e + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The first segment of every path after `crate::`, groups included.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate") {
        let before = &rest[..at];
        let after = rest[at + "crate".len()..].trim_start();
        rest = &rest[at + "crate".len()..];
        if before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `vbridge_crate`, `$crate`
        }
        let Some(after) = after.strip_prefix("::") else { continue };
        let after = after.trim_start();
        if let Some(group) = after.strip_prefix('{') {
            // Items at depth 1 of the group: `{a, b::c, d::{e, f}}`.
            let mut depth = 1;
            let mut item_start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if depth == 1 && item_start && !c.is_whitespace() => {
                        refs.insert(ident_at(&group[k..]).to_owned());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            refs.insert(ident_at(after).to_owned());
        }
    }
    refs
}

/// The rooms: the modules `lib.rs` declares.
fn rooms(src: &Path) -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    code_only(&lib)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ").and_then(|m| m.strip_suffix(';')).map(str::to_owned)
        })
        .filter(|m| m != SELF_MODULE)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// room → the other rooms it names.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let rooms = rooms(src);
    let mut graph: BTreeMap<String, BTreeSet<String>> = rooms.iter().map(|r| (r.clone(), BTreeSet::new())).collect();
    let mut files = vec![];
    rust_files(src, &mut files);
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a component").as_os_str().to_string_lossy();
        let room = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        if !rooms.contains(&room) {
            continue; // lib.rs, main.rs and the binary's own modules, this test
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        for r in crate_refs(&code_only(&text)) {
            if r != room && rooms.contains(&r) {
                graph.get_mut(&room).expect("a room").insert(r);
            }
        }
    }
    graph
}

/// A path of imports from `from` to `to`, if there is one.
fn path(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_owned()]];
    while let Some(p) = stack.pop() {
        let last = p.last().expect("non-empty").clone();
        for next in &graph[&last] {
            if next == to {
                return Some([p.clone(), vec![next.clone()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push([p.clone(), vec![next.clone()]].concat());
            }
        }
    }
    None
}

/// Every cycle between two rooms, as `a -> … -> b -> … -> a`.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = vec![];
    for (a, out) in graph {
        for b in out {
            if let Some(back) = path(graph, b, a) {
                found.push(format!("{a} -> {}", back.join(" -> ")));
            }
        }
    }
    found
}

#[test]
fn rooms_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    assert!(graph.len() > 5, "the rooms were found: {graph:?}");
    let cycles = cycles(&graph);
    let edges: Vec<String> = graph
        .iter()
        .map(|(r, out)| format!("  {r} -> {}", out.iter().cloned().collect::<Vec<_>>().join(" ")))
        .collect();
    assert!(
        cycles.is_empty(),
        "rooms that reach each other:\n  {}\nimports:\n{}",
        cycles.join("\n  "),
        edges.join("\n")
    );
    // The bottom of the layering: the store, then the utilities.
    for (room, may) in [("store", &UTILITIES[..]), ("metrics", &[][..]), ("telemetry", &[][..])] {
        let above: Vec<&String> = graph[room].iter().filter(|r| !may.contains(&r.as_str())).collect();
        assert!(above.is_empty(), "{room} imports rooms above it: {above:?}");
    }
}

/// Rooms anyone may import, which import no room.
const UTILITIES: [&str; 2] = ["metrics", "telemetry"];

#[test]
fn paths_are_read_from_code_only() {
    let src = r##"
        use crate::{store::{self, EventStore}, audit};
        // use crate::http;
        /* crate::console */ let s = "crate::review"; let r = r#"crate::relay"#;
        let c = '"'; fn f<'a>(x: &'a str) {} let p = crate :: controls::Control;
        $crate::metrics; vbridge_crate::temporal;
    "##;
    let refs = crate_refs(&code_only(src));
    assert_eq!(refs, ["audit", "controls", "store"].into_iter().map(str::to_owned).collect());
}
