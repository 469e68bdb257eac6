//! The per-candidate timeline, from the audit log: every authenticated
//! delivery (accepted, duplicate, ignored, or refused for its content) and
//! every decision (transition, skip,
//! refusal, ATS attempt and result), with times, trace ids and chain links.
//! Rendered as JSON, CSV, or a printable HTML evidence page.

use super::chain;
use crate::store::{EventStore, StoreError, StoredDelivery};
use serde::Serialize;
use vbridge_core::record::RecordKind;

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub at: String,
    pub source: &'static str,
    pub kind: String,
    pub event_id: String,
    pub event_type: String,
    pub application_id: String,
    pub state_before: String,
    pub state_after: String,
    pub detail: String,
    pub trace_id: String,
    pub write_targets: String,
    pub attempt: String,
    pub record: String,
    pub chain_pos: String,
    pub hash: String,
    /// Who made a human move (review decision, override), and with what code.
    pub actor: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub candidate_id: String,
    pub application_id: Option<String>,
    pub current_state: String,
    pub chain: chain::Report,
    pub items: Vec<Item>,
}

/// Whether a delivery is the candidate's: its signature verified, or it was
/// taken into the candidate's own chain (accepted where the policy lets
/// unsigned deliveries in). A delivery refused unauthenticated only claims a
/// candidate: it stays in the `rejected` chain, listed by
/// `crate::audit::refused_deliveries`, never in the candidate's timeline.
pub fn authenticated(d: &StoredDelivery) -> bool {
    d.signature_valid || d.stream.as_deref().is_some_and(|s| s != chain::REJECTED_STREAM)
}

/// A candidate's timeline: its authenticated deliveries ([`authenticated`])
/// and the bridge's own decisions in its chains.
pub async fn build(store: &dyn EventStore, candidate: &str, application: Option<&str>) -> Result<Timeline, StoreError> {
    let mut deliveries = store.deliveries(Some(candidate), application).await?;
    deliveries.retain(authenticated);
    // The store leaves out the `rejected` and `access` chains for a candidate.
    let decisions = store.decisions(Some(candidate), application).await?;
    // Sealed fields (docs/privacy.md) are shown opened, or `erased`.
    let key = store.existing_field_key(candidate).await?;
    let mut items = Vec::with_capacity(deliveries.len() + decisions.len());
    for d in &deliveries {
        items.push(Item {
            at: d.received_at.clone(),
            source: "delivery",
            kind: d.processing_result.clone(),
            event_id: d.event_id.clone().unwrap_or_default(),
            event_type: d.event_type.clone().unwrap_or_default(),
            application_id: d.application_id.clone().unwrap_or_default(),
            state_before: String::new(),
            state_after: String::new(),
            detail: match (&d.reject_code, d.signature_valid) {
                (Some(code), _) => code.clone(),
                (None, true) => {
                    format!("signature valid; body sha256 {}", &d.body_sha256[..16.min(d.body_sha256.len())])
                }
                (None, false) => "unsigned".into(),
            },
            trace_id: d.trace_id.clone(),
            write_targets: String::new(),
            attempt: d.delivery_attempt.map(|a| a.to_string()).unwrap_or_default(),
            record: format!("delivery {}", d.seq),
            chain_pos: d.chain_pos.map(|p| p.to_string()).unwrap_or_default(),
            hash: d.hash.clone().unwrap_or_default(),
            actor: String::new(),
        });
    }
    let mut current_state = "unverified".to_owned();
    for d in &decisions {
        let r = &d.record;
        if matches!(
            RecordKind::of(&r.kind),
            Some(RecordKind::Applied | RecordKind::ReviewDecided | RecordKind::Override)
        ) {
            current_state = r.state_after.clone();
        }
        items.push(Item {
            at: r.recorded_at.clone(),
            source: "decision",
            kind: r.kind.clone(),
            event_id: r.event_id.clone(),
            event_type: r.event_type.clone(),
            application_id: r.application_id.clone(),
            state_before: r.state_before.clone(),
            state_after: r.state_after.clone(),
            detail: vbridge_core::seal::reveal(key.as_ref(), &r.candidate_id, &r.reason),
            trace_id: r.trace_id.clone(),
            write_targets: r.write_targets.clone(),
            attempt: if r.delivery_attempt > 0 { r.delivery_attempt.to_string() } else { String::new() },
            record: r.record_id.clone(),
            chain_pos: d.chain_pos.to_string(),
            hash: d.hash.clone(),
            actor: if r.override_actor.is_empty() {
                String::new()
            } else {
                format!("{} ({})", r.override_actor, r.override_reason_code)
            },
        });
    }
    items.sort_by(|a, b| a.at.cmp(&b.at));
    let streams: Vec<String> = deliveries
        .iter()
        .filter_map(|d| d.stream.clone())
        .chain(decisions.iter().map(|d| d.stream.clone()))
        .filter(|s| s != chain::REJECTED_STREAM)
        .collect();
    // Verify from the rows already loaded: this candidate's chains only.
    let checkpoints = store.checkpoints().await?;
    let heads = store.heads().await?;
    let chain =
        crate::store::verify_rows(deliveries, decisions, &checkpoints, &heads, Some(&streams), store.audit_keys());
    Ok(Timeline {
        candidate_id: candidate.to_owned(),
        application_id: application.map(str::to_owned),
        current_state,
        chain,
        items,
    })
}

const COLUMNS: &[&str] = &[
    "at",
    "source",
    "kind",
    "event_id",
    "event_type",
    "application_id",
    "state_before",
    "state_after",
    "detail",
    "trace_id",
    "write_targets",
    "attempt",
    "record",
    "chain_pos",
    "hash",
    "actor",
];

fn cells(i: &Item) -> [&str; 16] {
    [
        &i.at,
        i.source,
        &i.kind,
        &i.event_id,
        &i.event_type,
        &i.application_id,
        &i.state_before,
        &i.state_after,
        &i.detail,
        &i.trace_id,
        &i.write_targets,
        &i.attempt,
        &i.record,
        &i.chain_pos,
        &i.hash,
        &i.actor,
    ]
}

pub fn to_csv(t: &Timeline) -> String {
    fn field(s: &str) -> String {
        // A cell a spreadsheet would read as a formula is neutralised with a
        // leading quote (OWASP's CSV injection advice): ids and reasons come
        // from providers and ATSs, and an auditor opens the file in Excel.
        let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
    }
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for i in &t.items {
        out.push_str(&cells(i).iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

pub fn to_html(t: &Timeline) -> String {
    let verdict = match &t.chain.broken {
        None => format!(
            "verified: {} records in {} chain{}, every link intact",
            t.chain.records,
            t.chain.streams,
            if t.chain.streams == 1 { "" } else { "s" }
        ),
        Some(b) => format!("BROKEN at {} (stream {}, position {}): {}", b.record, b.stream, b.chain_pos, b.problem),
    };
    let ok = t.chain.broken.is_none();
    let mut rows = String::new();
    for i in &t.items {
        rows.push_str("<tr>");
        for c in cells(i).iter().take(12) {
            rows.push_str(&format!("<td>{}</td>", esc(c)));
        }
        rows.push_str(&format!("<td class=\"mono\">{}</td></tr>\n", esc(&i.hash[..12.min(i.hash.len())])));
    }
    let head: String = COLUMNS.iter().take(12).map(|c| format!("<th>{c}</th>")).collect::<String>() + "<th>hash</th>";
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Verification evidence: {cand}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #111; }}
h1 {{ font-size: 1.4em; margin-bottom: 0.2em; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }}
dt {{ font-weight: bold; }}
.ok {{ color: #0a6b2d; }} .bad {{ color: #b00020; font-weight: bold; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.8em; margin-top: 1em; }}
th, td {{ border: 1px solid #999; padding: 0.2em 0.4em; text-align: left; vertical-align: top; }}
th {{ background: #eee; }}
.mono {{ font-family: monospace; }}
@media print {{ body {{ margin: 0.5cm; }} tr {{ page-break-inside: avoid; }} }}
</style></head>
<body>
<h1>Verification evidence</h1>
<dl>
<dt>Candidate</dt><dd id="candidate">{cand}</dd>
<dt>Application</dt><dd id="application">{app}</dd>
<dt>Current state</dt><dd id="state">{state}</dd>
<dt>Chain verification</dt><dd id="chain" class="{cls}">{verdict}</dd>
<dt>Records</dt><dd>{n}</dd>
</dl>
<table id="timeline"><thead><tr>{head}</tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"#,
        cand = esc(&t.candidate_id),
        app = esc(t.application_id.as_deref().unwrap_or("all")),
        state = esc(&t.current_state),
        cls = if ok { "ok" } else { "bad" },
        verdict = esc(&verdict),
        n = t.items.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(hostile: &str) -> Timeline {
        let item = Item {
            at: "2026-12-03T10:00:00.000Z".into(),
            source: "delivery",
            kind: "accepted".into(),
            event_id: hostile.into(),
            event_type: "verification.started".into(),
            application_id: "app-1".into(),
            state_before: String::new(),
            state_after: String::new(),
            detail: "-2+3".into(),
            trace_id: "@SUM(A1)".into(),
            write_targets: "\tcmd".into(),
            attempt: "1".into(),
            record: "delivery seq 1".into(),
            chain_pos: "1".into(),
            hash: "ab".into(),
            actor: String::new(),
        };
        Timeline {
            candidate_id: "cand-1".into(),
            application_id: None,
            current_state: "pending".into(),
            chain: chain::Report::default(),
            items: vec![item],
        }
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_neutralised() {
        let csv = to_csv(&timeline("=HYPERLINK(\"http://evil\",\"x\")"));
        let row = csv.lines().nth(1).unwrap();
        assert!(row.contains("\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\""), "{row}");
        assert!(row.contains(",'-2+3,") && row.contains(",'@SUM(A1),") && row.contains(",'\tcmd,"), "{row}");
        assert!(row.starts_with("2026-12-03T10:00:00.000Z,delivery,"), "ordinary cells untouched: {row}");
    }

    #[test]
    fn the_html_page_escapes_everything_it_shows() {
        let html = to_html(&timeline("<script>alert('x')</script>\" onload=\"y"));
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot; onload=&quot;y"), "{html}");
    }
}
