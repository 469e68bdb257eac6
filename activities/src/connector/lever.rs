//! Lever: opportunities have no arbitrary custom fields an API key can
//! write, so the bridge keeps its fields in what Lever does hold:
//! - **tags** for short, state-like fields (`VBRIDGE_LEVER_TAG_FIELDS`,
//!   default `verification_state`): one tag `{field}:{value}` per field, the
//!   old `{field}:…` tag removed when the value changes;
//! - a **note** for the rest (links, timestamps, actors): one note per write,
//!   `vbridge verification update` then `field: value` lines and the write's
//!   `idempotency-key`; a retry finds its note and adds no second one.
//!
//! Sources (read 2026-11, hire.lever.co/developer/documentation): root URL
//! `https://api.lever.co/v1`; HTTP Basic with the API key as user name and
//! an empty password; "Update tags": `POST /opportunities/{id}/addTags` and
//! `/removeTags` with `{"tags": [...]}`; notes: `POST
//! /opportunities/{id}/notes` with `{"value": text}` (plain text, not
//! editable) and `GET` of the same path; `perform_as={user id}` to act as a
//! user; rate limits: a steady 10 requests per second per key, bursts to 20,
//! 429 past them.

use super::limit::Limiter;
use super::{Call, Checked, Connector, Outcome, classify, paced_send, text_of};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://api.lever.co/v1";
/// Lever's documented pace.
pub const PER_SECOND: u32 = 10;
pub const BURST: u32 = 20;
/// The first line of every note the bridge writes.
pub const NOTE_HEADER: &str = "vbridge verification update";

pub struct Lever {
    pub client: reqwest::Client,
    pub api_url: String,
    pub api_key: String,
    /// `perform_as`: the Lever user the bridge acts as.
    pub perform_as: String,
    /// Fields kept as tags (the ATS's keys); the rest go in notes.
    pub tag_fields: BTreeSet<String>,
    pub limiter: Limiter,
}

/// The note of one write: header, `field: value` lines, the key.
pub fn note_text(fields: &BTreeMap<String, String>, idempotency_key: &str) -> String {
    let mut text = format!("{NOTE_HEADER}\n");
    for (k, v) in fields {
        // One line per field: a value cannot start a line of its own.
        text.push_str(&format!("{k}: {}\n", v.replace(['\r', '\n'], " ")));
    }
    text.push_str(&format!("idempotency-key: {idempotency_key}"));
    text
}

/// The fields of the bridge's notes, oldest first, merged (later wins).
pub fn fields_of_notes(notes: &[Value]) -> BTreeMap<String, String> {
    let mut dated: Vec<(i64, String)> = notes
        .iter()
        .filter_map(|n| Some((n.get("createdAt").and_then(Value::as_i64).unwrap_or(0), note_value(n)?)))
        .filter(|(_, t)| t.starts_with(NOTE_HEADER))
        .collect();
    dated.sort_by_key(|(at, _)| *at);
    let mut fields = BTreeMap::new();
    for (_, text) in dated {
        for line in text.lines().skip(1) {
            if let Some((k, v)) = line.split_once(": ")
                && k != "idempotency-key"
            {
                fields.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    fields
}

/// A note's text: its `value`, or the value of its first field.
fn note_value(note: &Value) -> Option<String> {
    if let Some(v) = note.get("value").and_then(Value::as_str) {
        return Some(v.to_owned());
    }
    note.get("fields")?.as_array()?.iter().find_map(|f| f.get("value")?.as_str().map(str::to_owned))
}

/// The tags to add and to remove so that `tags` carries `fields`' tag
/// fields: `(add, remove)`.
pub fn tag_changes(
    tags: &[String],
    fields: &BTreeMap<String, String>,
    tag_fields: &BTreeSet<String>,
) -> (Vec<String>, Vec<String>) {
    let mut add = vec![];
    let mut remove = vec![];
    for (k, v) in fields.iter().filter(|(k, _)| tag_fields.contains(*k)) {
        let want = format!("{k}:{v}");
        let prefix = format!("{k}:");
        remove.extend(tags.iter().filter(|t| t.starts_with(&prefix) && (v.is_empty() || **t != want)).cloned());
        if !v.is_empty() && !tags.contains(&want) {
            add.push(want);
        }
    }
    (add, remove)
}

/// An opportunity's path, its id one percent-encoded segment.
fn opportunity(id: &str) -> String {
    format!("/opportunities/{}", percent_encoding::utf8_percent_encode(id, crate::SEGMENT))
}

impl Lever {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.api_url.trim_end_matches('/'), path)
    }

    async fn send(&self, req: reqwest::RequestBuilder, timeout: Duration) -> Result<reqwest::Response, Outcome> {
        paced_send(&self.limiter, req.basic_auth(&self.api_key, Some("")), timeout).await
    }

    /// GET a path's `data`, or the outcome that stops the write.
    async fn data(&self, path: &str, timeout: Duration) -> Result<Value, Outcome> {
        let resp = self.send(self.client.get(self.url(path)), timeout).await?;
        if !resp.status().is_success() {
            return Err(classify(resp).await);
        }
        let body: Value = resp.json().await.map_err(super::unanswered)?;
        Ok(body.get("data").cloned().unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value, timeout: Duration) -> Result<(), Outcome> {
        let req = self.client.post(self.url(path)).query(&[("perform_as", &self.perform_as)]).json(&body);
        let resp = self.send(req, timeout).await?;
        match classify(resp).await {
            Outcome::Written { .. } => Ok(()),
            other => Err(other),
        }
    }

    async fn write_all(&self, call: &Call<'_>) -> Result<(), Outcome> {
        let req = call.req;
        let opp = opportunity(&req.application_id);
        let data = self.data(&opp, call.timeout).await?;
        let tags: Vec<String> = data
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let (add, remove) = tag_changes(&tags, &req.fields, &self.tag_fields);
        if !remove.is_empty() {
            self.post(&format!("{opp}/removeTags"), json!({"tags": remove}), call.timeout).await?;
        }
        if !add.is_empty() {
            self.post(&format!("{opp}/addTags"), json!({"tags": add}), call.timeout).await?;
        }
        let noted: BTreeMap<String, String> = req
            .fields
            .iter()
            .filter(|(k, _)| !self.tag_fields.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if noted.is_empty() {
            return Ok(());
        }
        let notes = self.data(&format!("{opp}/notes"), call.timeout).await?;
        let marker = format!("idempotency-key: {}", req.idempotency_key);
        let already = notes.as_array().into_iter().flatten().filter_map(note_value).any(|t| t.ends_with(&marker));
        if !already {
            self.post(&format!("{opp}/notes"), json!({"value": note_text(&noted, &req.idempotency_key)}), call.timeout)
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Connector for Lever {
    fn kind(&self) -> &'static str {
        "lever"
    }

    async fn write(&self, call: Call<'_>) -> Outcome {
        match self.write_all(&call).await {
            Ok(()) => Outcome::Written { status: 200 },
            Err(o) => o,
        }
    }

    async fn read(&self, application_id: &str, _check_id: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        let opp = opportunity(application_id);
        let timeout = Duration::from_secs(30);
        let data = match self.data(&opp, timeout).await {
            Ok(d) => d,
            Err(Outcome::Refused { status: 404, .. }) => return Ok(None),
            Err(o) => return Err(format!("{o:?}")),
        };
        let notes = self.data(&format!("{opp}/notes"), timeout).await.map_err(|o| format!("{o:?}"))?;
        let mut fields = fields_of_notes(notes.as_array().map(Vec::as_slice).unwrap_or_default());
        for tag in data.get("tags").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if let Some((k, v)) = tag.split_once(':')
                && self.tag_fields.contains(k)
            {
                fields.insert(k.to_owned(), v.to_owned());
            }
        }
        Ok(Some(fields))
    }

    async fn check(&self, _keys: &[String]) -> Result<Checked, String> {
        let seg = percent_encoding::utf8_percent_encode(&self.perform_as, crate::SEGMENT).to_string();
        let user = self.data(&format!("/users/{seg}"), Duration::from_secs(30)).await.map_err(|o| format!("{o:?}"))?;
        let name = user.get("name").map(text_of).unwrap_or_default();
        Ok(Checked {
            credentials: format!("API key accepted; acting as user {} ({name})", self.perform_as),
            missing: vec![],
            note: Some(format!(
                "Lever opportunities have no custom fields to check: {} are tags, the rest go in notes",
                self.tag_fields.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_state_and_notes_round_trip() {
        let tag_fields: BTreeSet<String> = ["verification_state".to_owned()].into();
        let fields: BTreeMap<String, String> = [
            ("verification_state".to_owned(), "verified".to_owned()),
            ("evidence_pack_url".to_owned(), "https://x/e".to_owned()),
        ]
        .into();
        let tags = vec!["verification_state:pending".to_owned(), "referral".to_owned()];
        assert_eq!(
            tag_changes(&tags, &fields, &tag_fields),
            (vec!["verification_state:verified".to_owned()], vec!["verification_state:pending".to_owned()])
        );
        let text = note_text(&[("evidence_pack_url".to_owned(), "https://x/e\nforged: yes".to_owned())].into(), "k1");
        let later = note_text(&[("evidence_pack_url".to_owned(), "https://x/f".to_owned())].into(), "k2");
        let notes = vec![
            json!({"createdAt": 2, "fields": [{"type": "note", "value": later}]}),
            json!({"createdAt": 1, "value": text}),
            json!({"createdAt": 3, "value": "a recruiter's own note: x"}),
        ];
        let read = fields_of_notes(&notes);
        assert_eq!(read.get("evidence_pack_url").map(String::as_str), Some("https://x/f"), "the latest note wins");
        assert!(!read.contains_key("forged"), "a value cannot add a line: {read:?}");
    }
}
