//! Just enough RFC 5322 / MIME to show a message the way a mail client
//! would: unfolded headers, RFC 2047 encoded words (what lettre writes for a
//! non-ASCII subject or name), the `text/plain` and `text/html` parts of a
//! multipart body, and the transfer encodings lettre picks (7bit, 8bit,
//! quoted-printable, base64). Anything it does not understand is shown as
//! it came rather than refused: the sink is for looking at mail, not judging it.

use base64::Engine;

/// What the mailbox keeps of a message's content.
pub struct Parsed {
    /// Unfolded, raw (still encoded) header lines, in order.
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: Option<String>,
}

/// Parse a whole message (DATA, dot-unstuffed).
pub fn parse(raw: &[u8]) -> Parsed {
    let (headers, body) = split_head(raw);
    let mut text = None;
    let mut html = None;
    walk(&headers, body, 0, &mut text, &mut html);
    // A single non-multipart HTML body is both what the reader sees and its HTML.
    let text = text.or_else(|| html.clone()).unwrap_or_default();
    Parsed { headers, text, html }
}

/// The first header named `name` (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Headers (unfolded) and the body after the first empty line.
fn split_head(raw: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        rest = next;
        if line.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            // Unfolding removes the line break only (RFC 5322 §2.2.3).
            if let Some((_, v)) = headers.last_mut() {
                v.push_str(&text);
            }
        } else if let Some((k, v)) = text.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim_start().to_owned()));
        }
    }
    for (_, v) in &mut headers {
        *v = v.trim_end().to_owned();
    }
    (headers, rest)
}

/// A `Content-Type`-style value: lowercased `type/subtype` and its parameters.
fn content_type(value: Option<&str>) -> (String, Vec<(String, String)>) {
    let Some(value) = value else { return ("text/plain".into(), vec![]) };
    let mut pieces = value.split(';');
    let kind = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = pieces
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
        .collect();
    (if kind.is_empty() { "text/plain".into() } else { kind }, params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Find the first text/plain and text/html parts, depth-first (nesting is
/// bounded: a hostile message cannot make it recurse without end).
fn walk(headers: &[(String, String)], body: &[u8], depth: u8, text: &mut Option<String>, html: &mut Option<String>) {
    let (kind, params) = content_type(header(headers, "content-type"));
    let attachment = header(headers, "content-disposition").is_some_and(|d| d.trim_start().starts_with("attachment"));
    if kind.starts_with("multipart/") {
        let Some(boundary) = param(&params, "boundary").filter(|_| depth < 8) else { return };
        for part in split_parts(body, boundary) {
            let (h, b) = split_head(part);
            walk(&h, b, depth + 1, text, html);
        }
        return;
    }
    if attachment || !(kind == "text/plain" || kind == "text/html") {
        return;
    }
    let slot = if kind == "text/html" { html } else { text };
    if slot.is_none() {
        let bytes = decode_transfer(header(headers, "content-transfer-encoding"), body);
        let s = to_text(param(&params, "charset"), &bytes);
        *slot = Some(s.replace("\r\n", "\n"));
    }
}

/// The parts of a multipart body between `--boundary` lines, up to `--boundary--`.
fn split_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut at = 0;
    while at < body.len() {
        let end = body[at..].iter().position(|&b| b == b'\n').map_or(body.len(), |i| at + i + 1);
        let line = String::from_utf8_lossy(&body[at..end]);
        let line = line.trim_end();
        if line == open || line == close {
            if let Some(s) = start {
                // The line break before a boundary belongs to the boundary.
                let mut e = at;
                if e > s && body[e - 1] == b'\n' {
                    e -= 1;
                }
                if e > s && body[e - 1] == b'\r' {
                    e -= 1;
                }
                parts.push(&body[s..e]);
            }
            if line == close {
                return parts;
            }
            start = Some(end);
        }
        at = end;
    }
    parts
}

/// Undo `Content-Transfer-Encoding` (7bit, 8bit and binary are as they came).
fn decode_transfer(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        Some("quoted-printable") => quoted_printable(body, false),
        Some("base64") => {
            let clean: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            base64_any(&clean).unwrap_or_else(|| body.to_vec())
        }
        _ => body.to_vec(),
    }
}

fn base64_any(s: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    STANDARD.decode(s).ok().or_else(|| STANDARD_NO_PAD.decode(s).ok())
}

/// Quoted-printable (RFC 2045 §6.7); `q_word` for RFC 2047's Q, where `_` is a space.
fn quoted_printable(s: &[u8], q_word: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'=' if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if s.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => match (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b'_' if q_word => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Bytes in `charset` as text: UTF-8 (and ASCII) and Latin-1 exactly, any
/// other charset as lossy UTF-8.
fn to_text(charset: Option<&str>, bytes: &[u8]) -> String {
    let cs = charset.unwrap_or("utf-8").split('*').next().unwrap_or("").to_ascii_lowercase();
    if matches!(cs.as_str(), "iso-8859-1" | "latin1" | "latin-1") {
        bytes.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Decode RFC 2047 encoded words (`=?charset?B|Q?text?=`) in a header
/// value; white space between two adjacent encoded words is dropped, as
/// the RFC says (lettre folds a long subject into several words).
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, used)) = rest.strip_prefix("=?").and_then(encoded_word) {
            if !last_was_word {
                out.push_str(&pending_space);
            }
            pending_space.clear();
            out.push_str(&decoded);
            rest = &rest[used + 2..];
            last_was_word = true;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        rest = &rest[c.len_utf8()..];
        if c == ' ' || c == '\t' {
            pending_space.push(c);
            continue;
        }
        out.push_str(&pending_space);
        pending_space.clear();
        out.push(c);
        last_was_word = false;
    }
    out.push_str(&pending_space);
    out
}

/// One encoded word after its `=?`: the text and how many bytes it used.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    // Q text may start with `=`, so the end is looked for after the second `?`.
    let (charset, rest) = s.split_once('?')?;
    let (enc, rest) = rest.split_once('?')?;
    let text = &rest[..rest.find("?=")?];
    if text.contains(' ') || charset.is_empty() {
        return None;
    }
    let end = charset.len() + enc.len() + 2 + text.len();
    let bytes = match enc {
        "B" | "b" => base64_any(text.as_bytes())?,
        "Q" | "q" => quoted_printable(text.as_bytes(), true),
        _ => return None,
    };
    Some((to_text(Some(charset), &bytes), end + 2))
}
