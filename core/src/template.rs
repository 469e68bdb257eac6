//! `${variable}` templates of the policy's `atsUpdate.fields`.

use vbridge_proto::EventSignal;

/// Variables a template may name; each is a field of a committed event.
pub const VARIABLES: &[&str] = &[
    "event_id",
    "event_type",
    "occurred_at",
    "received_at",
    "candidate_id",
    "application_id",
    "verification_check_id",
    "decision_state",
    "evidence_pack_url",
    "idempotency_key",
    "trace_id",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| TemplateError(format!("unclosed \"${{\" in \"{s}\"")))?;
            let name = &after[..end];
            let var = VARIABLES.iter().find(|v| **v == name).ok_or_else(|| {
                TemplateError(format!("unknown variable \"${{{name}}}\" (known: {})", VARIABLES.join(", ")))
            })?;
            parts.push(Part::Var(var));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The template's text when it has no variables.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            [] => Some(""),
            _ => None,
        }
    }

    /// Fill the template from an event. A template that is a single variable
    /// whose value is absent renders as `None`: the field is left out of the
    /// write rather than blanked in the ATS.
    pub fn render(&self, ev: &EventSignal) -> Option<String> {
        if let [Part::Var(v)] = self.parts.as_slice() {
            let value = lookup(ev, v);
            return (!value.is_empty()).then(|| value.to_owned());
        }
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => out.push_str(lookup(ev, v)),
            }
        }
        Some(out)
    }
}

fn lookup<'a>(ev: &'a EventSignal, var: &str) -> &'a str {
    match var {
        "event_id" => &ev.event_id,
        "event_type" => &ev.event_type,
        "occurred_at" => &ev.occurred_at,
        "received_at" => &ev.received_at,
        "candidate_id" => &ev.candidate_id,
        "application_id" => &ev.application_id,
        "verification_check_id" => &ev.verification_check_id,
        "decision_state" => &ev.decision_state,
        "evidence_pack_url" => &ev.evidence_pack_url,
        "idempotency_key" => &ev.idempotency_key,
        "trace_id" => &ev.trace_id,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_variables_and_literals() {
        let ev = EventSignal { event_id: "e1".into(), decision_state: "verified".into(), ..Default::default() };
        assert_eq!(Template::parse("${decision_state}").unwrap().render(&ev).as_deref(), Some("verified"));
        assert_eq!(Template::parse("id=${event_id}!").unwrap().render(&ev).as_deref(), Some("id=e1!"));
        assert_eq!(Template::parse("pending").unwrap().literal(), Some("pending"));
        assert_eq!(Template::parse("${evidence_pack_url}").unwrap().render(&ev), None);
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        assert!(Template::parse("${nope}").unwrap_err().0.contains("unknown variable"));
        assert!(Template::parse("${event_id").unwrap_err().0.contains("unclosed"));
    }
}
