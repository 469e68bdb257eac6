//! Ashby: the bridge's fields are the application's custom fields, set in
//! one RPC call.
//!
//! Sources (read 2026-11, developers.ashbyhq.com): `customField.setValues`
//! (`POST https://api.ashbyhq.com/customField.setValues`, several fields of
//! one object at once, recommended over concurrent `setValue` calls; needs
//! the `candidatesWrite` permission; body `objectType`, `objectId`,
//! `values: [{fieldId, fieldValue}]`), `application.info` (`applicationId`;
//! the answer's `results.customFields` carry `id` and `value`),
//! `customField.list` and `apiKey.info` (for `vbridge ats check`), the
//! authentication guide (HTTP Basic, the API key as user name, empty
//! password) and "Responses & Errors": every answer is JSON with `success`;
//! a request Ashby refuses may come back as HTTP 200 with `success: false`
//! and `errors`. 401 (no or a bad key) and 403 (a missing permission) are
//! permanent: retrying cannot grant a permission.

use super::limit::Limiter;
use super::{Call, Checked, Connector, Outcome, classify, paced_send, text_of, unanswered};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

pub const DEFAULT_API_URL: &str = "https://api.ashbyhq.com";
/// The pace until Ashby's headers (if any) say otherwise, per second.
pub const INITIAL_LIMIT: u32 = 10;

pub struct Ashby {
    pub client: reqwest::Client,
    pub api_url: String,
    pub api_key: String,
    pub limiter: Limiter,
}

/// The `customField.setValues` body: every field of one write in one call;
/// an empty value clears the field (null).
pub fn set_values_body(application_id: &str, fields: &BTreeMap<String, String>) -> Value {
    let values: Vec<Value> = fields
        .iter()
        .map(|(k, v)| json!({"fieldId": k, "fieldValue": if v.is_empty() { Value::Null } else { json!(v) }}))
        .collect();
    json!({"objectType": "Application", "objectId": application_id, "values": values})
}

/// Ashby's own refusal inside a 2xx answer.
fn refusal(body: &Value) -> Option<String> {
    (body.get("success") != Some(&Value::Bool(true))).then(|| {
        let errors = body.get("errors").or_else(|| body.get("errorInfo")).cloned().unwrap_or(Value::Null);
        format!("success: false, errors: {errors}")
    })
}

impl Ashby {
    async fn call(&self, method: &str, body: &Value, timeout: Duration) -> Result<reqwest::Response, Outcome> {
        let url = format!("{}/{method}", self.api_url.trim_end_matches('/'));
        let req = self.client.post(url).basic_auth(&self.api_key, Some("")).json(body);
        paced_send(&self.limiter, req, timeout).await
    }

    /// A read-only call's `results`, or why not.
    async fn results(&self, method: &str, body: &Value) -> Result<Value, String> {
        let resp = self.call(method, body, Duration::from_secs(30)).await.map_err(|o| format!("{o:?}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| format!("{method}: HTTP {status}: {e}"))?;
        if !status.is_success() {
            return Err(format!("{method}: HTTP {status}: {body}"));
        }
        if let Some(why) = refusal(&body) {
            return Err(format!("{method}: {why}"));
        }
        Ok(body.get("results").cloned().unwrap_or(Value::Null))
    }
}

#[async_trait::async_trait]
impl Connector for Ashby {
    fn kind(&self) -> &'static str {
        "ashby"
    }

    async fn write(&self, call: Call<'_>) -> Outcome {
        let body = set_values_body(&call.req.application_id, &call.req.fields);
        let resp = match self.call("customField.setValues", &body, call.timeout).await {
            Ok(r) => r,
            Err(o) => return o,
        };
        if !resp.status().is_success() {
            return classify(resp).await;
        }
        let status = resp.status().as_u16();
        match resp.json::<Value>().await {
            Ok(answer) => match refusal(&answer) {
                None => Outcome::Written { status },
                Some(why) => Outcome::Refused { status, body: why.chars().take(200).collect() },
            },
            Err(e) => unanswered(e),
        }
    }

    async fn read(&self, application_id: &str, _check_id: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        match self.results("application.info", &json!({"applicationId": application_id})).await {
            Ok(app) => Ok(Some(
                app.get("customFields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| Some((f.get("id")?.as_str()?.to_owned(), text_of(f.get("value")?))))
                    .collect(),
            )),
            Err(e) if e.contains("not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn check(&self, keys: &[String]) -> Result<Checked, String> {
        let key = self.results("apiKey.info", &json!({})).await?;
        let fields = self.results("customField.list", &json!({})).await?;
        let known: BTreeSet<&str> = fields
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f.get("objectType").and_then(Value::as_str) == Some("Application"))
            .filter_map(|f| f.get("id")?.as_str())
            .collect();
        let title = key.get("title").and_then(Value::as_str).unwrap_or("(untitled)");
        Ok(Checked {
            credentials: format!("API key \"{title}\" accepted, application custom fields listed"),
            missing: keys.iter().filter(|k| !known.contains(k.as_str())).cloned().collect(),
            note: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_sets_every_field_and_a_2xx_can_still_refuse() {
        let fields: BTreeMap<String, String> =
            [("f-1".to_owned(), "verified".to_owned()), ("f-2".to_owned(), String::new())].into();
        assert_eq!(
            set_values_body("app-9", &fields),
            json!({"objectType": "Application", "objectId": "app-9", "values": [
                {"fieldId": "f-1", "fieldValue": "verified"}, {"fieldId": "f-2", "fieldValue": null}]})
        );
        assert_eq!(refusal(&json!({"success": true, "results": {}})), None);
        assert!(refusal(&json!({"success": false, "errors": ["invalid_field"]})).unwrap().contains("invalid_field"));
    }
}
