//! The sandbox's mail sink (like MailHog): a small SMTP server that accepts
//! every message, so the hiring loop's invitations can be sent for real in
//! dev and in tests, and a mailbox to read them: `/_sandbox/mailbox` in a
//! browser (a newcomer sees the invite arrive), `/_sandbox/mailbox/messages`
//! as JSON for tests.
//!
//! The SMTP side speaks just enough of RFC 5321 for lettre's plaintext
//! transport (`builder_dangerous`): no TLS, no AUTH. Every resource is
//! bounded, since it listens on a port anyone on the machine can reach:
//! lines (1000 bytes), messages (1 MiB), recipients (100), idle time (30 s
//! a read), connections (64 at once) and kept messages (1000, the oldest
//! dropped).

mod mime;
#[cfg(test)]
mod tests;

use super::Sandbox;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest line, CRLF included (RFC 5321 §4.5.3.1.6's text line).
pub const MAX_LINE: usize = 1000;
/// The largest message (DATA after dot-unstuffing); advertised as `SIZE`.
pub const MAX_MESSAGE: usize = 1 << 20;
pub const MAX_RECIPIENTS: usize = 100;
pub const MAX_CONNECTIONS: usize = 64;
/// How many messages the mailbox keeps by default.
pub const KEEP: usize = 1000;
const IDLE: Duration = Duration::from_secs(30);
const DOMAIN: &str = "sandbox.vbridge.invalid";

/// A received message, as the mailbox shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailMessage {
    pub id: u64,
    pub received_at: String,
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// `From`, `To` and `Subject` with RFC 2047 encoded words decoded.
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    /// The `text/plain` part (line breaks as `\n`); a single-part HTML
    /// message's HTML.
    pub text: String,
    pub html: Option<String>,
    /// Every header, unfolded but not decoded, in order.
    pub headers: Vec<(String, String)>,
}

/// The mailbox, in the sandbox's state.
pub struct MailState {
    messages: VecDeque<MailMessage>,
    next_id: u64,
    keep: usize,
}

impl Default for MailState {
    fn default() -> MailState {
        MailState { messages: VecDeque::new(), next_id: 1, keep: KEEP }
    }
}

impl Sandbox {
    /// A sandbox whose mailbox keeps at most `keep` messages (tests of the bound).
    pub fn with_mail_capacity(keep: usize) -> Sandbox {
        let s = Sandbox::default();
        s.inner.lock().unwrap().mail.keep = keep.max(1);
        s
    }

    /// Keep a message that came in over SMTP, dropping the oldest past the bound.
    fn deliver(&self, from: String, to: Vec<String>, raw: &[u8]) -> u64 {
        let parsed = mime::parse(raw);
        let h = |n: &str| mime::header(&parsed.headers, n).unwrap_or("").to_owned();
        let mut g = self.inner.lock().unwrap();
        let mail = &mut g.mail;
        let id = mail.next_id;
        mail.next_id += 1;
        mail.messages.push_back(MailMessage {
            id,
            received_at: crate::now_rfc3339(),
            envelope_from: from,
            envelope_to: to,
            from: mime::decode_words(&h("from")),
            to: mime::decode_words(&h("to")),
            subject: mime::decode_words(&h("subject")),
            message_id: h("message-id"),
            text: parsed.text,
            html: parsed.html,
            headers: parsed.headers,
        });
        while mail.messages.len() > mail.keep {
            mail.messages.pop_front();
        }
        id
    }

    /// The messages kept, oldest first.
    pub fn mail(&self) -> Vec<MailMessage> {
        self.inner.lock().unwrap().mail.messages.iter().cloned().collect()
    }
}

pub fn routes() -> Router<Sandbox> {
    Router::new().route("/_sandbox/mailbox", get(page)).route("/_sandbox/mailbox/messages", get(list).delete(clear))
}

#[derive(Deserialize)]
struct ToFilter {
    to: Option<String>,
}

/// Oldest first; `?to=` keeps the messages delivered to that address (an
/// envelope recipient, as the mail server saw it, so Bcc counts too).
async fn list(State(s): State<Sandbox>, Query(q): Query<ToFilter>) -> Response {
    let mut all = s.mail();
    if let Some(to) = q.to {
        all.retain(|m| m.envelope_to.iter().any(|r| r.eq_ignore_ascii_case(to.trim())));
    }
    axum::Json(all).into_response()
}

async fn clear(State(s): State<Sandbox>) -> Response {
    s.inner.lock().unwrap().mail.messages.clear();
    StatusCode::NO_CONTENT.into_response()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Newest first, each message's text part in a `<pre>`; everything escaped
/// (the mail is whatever anyone sent).
async fn page(State(s): State<Sandbox>) -> Response {
    let mail = s.mail();
    let mut rows = String::new();
    for m in mail.iter().rev() {
        rows.push_str(&format!(
            "<article><p><time>{}</time> to <b>{}</b> from {}</p><h2>{}</h2><pre>{}</pre></article>\n",
            escape(&m.received_at),
            escape(&m.envelope_to.join(", ")),
            escape(&m.from),
            escape(&m.subject),
            escape(&m.text),
        ));
    }
    if mail.is_empty() {
        rows.push_str("<p>No mail yet.</p>");
    }
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sandbox mailbox</title>\
         <style>body{{font-family:sans-serif;max-width:60em;margin:auto}}article{{border-bottom:1px solid #ccc}}\
         pre{{white-space:pre-wrap}}</style></head><body><h1>Sandbox mailbox ({} messages)</h1>\n{rows}</body></html>",
        mail.len()
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// Accept SMTP connections on `listener` until `shutdown` resolves, each in
/// its own task (ended with the server); past [`MAX_CONNECTIONS`] a client
/// is told 421 and closed rather than left waiting.
pub async fn serve_smtp(
    listener: TcpListener,
    sandbox: Sandbox,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut sessions = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while sessions.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let mut stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, a reset before accept: wait, go on.
                tracing::warn!(error = %e, "sandbox smtp: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let bye = format!("421 {DOMAIN} Too many connections, try again later\r\n");
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(bye.as_bytes())).await;
            continue;
        };
        let s = sandbox.clone();
        sessions.spawn(async move {
            if let Err(e) = session(stream, s).await {
                tracing::debug!(error = %e, "sandbox smtp: session ended");
            }
            drop(permit);
        });
    }
    sessions.abort_all();
    Ok(())
}

/// A line read with the length bound.
enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

/// Read one line (through `\n`), keeping at most [`MAX_LINE`] bytes: a
/// longer one is read to its end and dropped.
async fn read_line(r: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(Line::Eof);
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long && line.len() + n > MAX_LINE {
            too_long = true;
            line = Vec::new();
        }
        if !too_long {
            line.extend_from_slice(&buf[..n]);
        }
        r.consume(n);
        if done {
            return Ok(if too_long { Line::TooLong } else { Line::Text(line) });
        }
    }
}

/// One transaction's envelope.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

/// The address inside `<...>` after `FROM:`/`TO:` and the parameters after it.
fn path_of(arg: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let head = arg.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = arg[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (addr, params) = rest.split_once('>')?;
    Some((addr.to_owned(), params.split_whitespace().map(str::to_owned).collect()))
}

/// The reply to a MAIL FROM's parameters, if one refuses it.
fn refuse_mail_params(params: &[String]) -> Option<&'static str> {
    for p in params {
        let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
        match k.to_ascii_uppercase().as_str() {
            "SIZE" => match v.parse::<usize>() {
                Ok(n) if n > MAX_MESSAGE => return Some("552 Message size exceeds fixed maximum message size"),
                Ok(_) => {}
                Err(_) => return Some("501 Syntax error in SIZE parameter"),
            },
            "BODY" if v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME") => {}
            "SMTPUTF8" if v.is_empty() => {}
            _ => return Some("555 MAIL FROM parameters not recognized or not implemented"),
        }
    }
    None
}

/// Write one reply (its lines joined by CRLF), bounded like a read.
async fn reply(w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    let line = format!("{text}\r\n");
    match tokio::time::timeout(IDLE, w.write_all(line.as_bytes())).await {
        Ok(res) => res,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn session(stream: TcpStream, sandbox: Sandbox) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    reply(&mut w, &format!("220 {DOMAIN} ESMTP vbridge sandbox")).await?;
    let mut greeted = false;
    let mut env = Envelope::default();
    loop {
        let line = match tokio::time::timeout(IDLE, read_line(&mut r)).await {
            Err(_) => {
                let _ = reply(&mut w, "421 Idle timeout, closing connection").await;
                return Ok(());
            }
            Ok(line) => line?,
        };
        let line = match line {
            Line::Eof => return Ok(()),
            Line::TooLong => {
                reply(&mut w, "500 Line too long").await?;
                continue;
            }
            Line::Text(l) => l,
        };
        let Ok(text) = std::str::from_utf8(&line) else {
            reply(&mut w, "500 Syntax error, command unrecognized").await?;
            continue;
        };
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        let arg = arg.trim();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => reply(&mut w, "501 Syntax: EHLO hostname").await?,
            "EHLO" => {
                greeted = true;
                env = Envelope::default();
                let ext = format!("250-{DOMAIN} Hello {arg}\r\n250-SIZE {MAX_MESSAGE}\r\n250-8BITMIME\r\n250 SMTPUTF8");
                reply(&mut w, &ext).await?;
            }
            "HELO" => {
                greeted = true;
                env = Envelope::default();
                reply(&mut w, &format!("250 {DOMAIN}")).await?;
            }
            "MAIL" if !greeted => reply(&mut w, "503 Bad sequence of commands: send EHLO first").await?,
            "MAIL" if env.from.is_some() => reply(&mut w, "503 Bad sequence of commands: nested MAIL").await?,
            "MAIL" => match path_of(arg, "FROM:") {
                None => reply(&mut w, "501 Syntax: MAIL FROM:<address>").await?,
                Some((addr, params)) => match refuse_mail_params(&params) {
                    Some(no) => reply(&mut w, no).await?,
                    None => {
                        env.from = Some(addr);
                        reply(&mut w, "250 Ok").await?;
                    }
                },
            },
            "RCPT" if env.from.is_none() => reply(&mut w, "503 Bad sequence of commands: need MAIL").await?,
            "RCPT" => match path_of(arg, "TO:") {
                Some((addr, params)) if !addr.is_empty() && params.is_empty() => {
                    if env.to.len() >= MAX_RECIPIENTS {
                        reply(&mut w, "452 Too many recipients").await?;
                    } else {
                        env.to.push(addr);
                        reply(&mut w, "250 Ok").await?;
                    }
                }
                Some((addr, _)) if !addr.is_empty() => {
                    reply(&mut w, "555 RCPT TO parameters not recognized or not implemented").await?
                }
                _ => reply(&mut w, "501 Syntax: RCPT TO:<address>").await?,
            },
            "DATA" if !arg.is_empty() => reply(&mut w, "501 Syntax: DATA").await?,
            "DATA" if env.to.is_empty() => reply(&mut w, "503 Bad sequence of commands: need RCPT").await?,
            "DATA" => {
                reply(&mut w, "354 End data with <CR><LF>.<CR><LF>").await?;
                let Some(outcome) = read_data(&mut r).await? else {
                    let _ = reply(&mut w, "421 Idle timeout, closing connection").await;
                    return Ok(());
                };
                let done = std::mem::take(&mut env);
                match outcome {
                    Data::Message(raw) => {
                        let id = sandbox.deliver(done.from.unwrap_or_default(), done.to, &raw);
                        reply(&mut w, &format!("250 Ok: queued as {id}")).await?;
                    }
                    Data::LineTooLong => reply(&mut w, "500 Line too long").await?,
                    Data::TooBig => reply(&mut w, "552 Message size exceeds fixed maximum message size").await?,
                    Data::Eof => return Ok(()),
                }
            }
            "RSET" => {
                env = Envelope::default();
                reply(&mut w, "250 Ok").await?;
            }
            "NOOP" => reply(&mut w, "250 Ok").await?,
            "QUIT" => {
                reply(&mut w, &format!("221 {DOMAIN} Bye")).await?;
                return Ok(());
            }
            "VRFY" | "EXPN" | "HELP" | "STARTTLS" | "AUTH" | "TURN" | "ETRN" | "BDAT" => {
                reply(&mut w, "502 Command not implemented").await?
            }
            _ => reply(&mut w, "500 Syntax error, command unrecognized").await?,
        }
    }
}

enum Data {
    Message(Vec<u8>),
    LineTooLong,
    TooBig,
    Eof,
}

/// Read DATA to its `.` line, dot-unstuffed; a message that breaks a bound
/// is still read to its end (so the session stays in step) but not kept.
/// None: the client went idle.
async fn read_data(r: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<Data>> {
    let mut raw = Vec::new();
    let (mut too_long, mut too_big) = (false, false);
    loop {
        let Ok(line) = tokio::time::timeout(IDLE, read_line(r)).await else { return Ok(None) };
        let line = match line? {
            Line::Eof => return Ok(Some(Data::Eof)),
            Line::TooLong => {
                too_long = true;
                continue;
            }
            Line::Text(l) => l,
        };
        if line == b".\r\n" || line == b".\n" {
            break;
        }
        let body = line.strip_prefix(b".").unwrap_or(&line);
        if raw.len() + body.len() > MAX_MESSAGE {
            too_big = true;
            raw = Vec::new();
        }
        if !too_big && !too_long {
            raw.extend_from_slice(body);
        }
    }
    Ok(Some(if too_long {
        Data::LineTooLong
    } else if too_big {
        Data::TooBig
    } else {
        Data::Message(raw)
    }))
}
