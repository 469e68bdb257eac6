//! The connector's shapes against Harvest v3's OpenAPI document (and v1's
//! reference for the legacy path). Each v3 test fails on what the connector
//! sent or read before it followed the document.

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// An entry of `PATCH /v3/applications/{id}`'s `custom_fields`, checked as
/// the document's schema does: exactly one of `name_key` (a string) and
/// `custom_field_id` (an integer), no other property but `value`.
fn schema_error(entry: &Value) -> Option<String> {
    let obj = entry.as_object()?;
    if let Some(k) = obj.keys().find(|k| !["name_key", "custom_field_id", "value"].contains(&k.as_str())) {
        return Some(format!("additional property {k}"));
    }
    match (obj.get("name_key").map(Value::is_string), obj.get("custom_field_id").map(Value::is_u64)) {
        (Some(true), None) | (None, Some(true)) => None,
        _ => Some("exactly one of name_key (string) or custom_field_id (integer)".into()),
    }
}

#[test]
fn the_v3_body_follows_the_schema_names_ids_as_custom_field_id_and_clears_with_null() {
    let body =
        custom_fields_body(&map(&[("verification_state", "verified"), ("12345", "x"), ("verification_banner", "")]));
    assert_eq!(
        body,
        json!({"custom_fields": [
            {"custom_field_id": 12345, "value": "x"},
            {"name_key": "verification_banner", "value": null},
            {"name_key": "verification_state", "value": "verified"},
        ]})
    );
    for e in body["custom_fields"].as_array().unwrap() {
        assert_eq!(schema_error(e), None, "{e}");
    }
    // What the connector sent before: refused by the schema.
    assert!(schema_error(&json!({"id": 12345, "value": "x"})).is_some());
    assert!(schema_error(&json!({"name_key": "b", "delete_value": "true"})).is_some());
}

#[test]
fn the_v1_body_keeps_the_legacy_shape() {
    let fields = map(&[("verification_state", "verified"), ("12345", "x"), ("verification_banner", "")]);
    assert_eq!(
        v1_custom_fields_body(&fields),
        json!({"custom_fields": [
            {"id": 12345, "value": "x"},
            {"name_key": "verification_banner", "delete_value": "true"},
            {"name_key": "verification_state", "value": "verified"},
        ]})
    );
}

#[test]
fn v3_reads_take_each_fields_value() {
    // The document's example answer of GET /v3/applications, with a cleared
    // and a non-text field.
    let app = json!({"id": 1, "custom_fields": {
        "custom_field_1": {"name": "Custom Field 1", "type": "short_text", "value": "some value"},
        "cleared": {"name": "Cleared", "type": "short_text", "value": null},
        "n": {"name": "N", "type": "number", "value": 3},
    }});
    let fields = custom_fields_of(&app);
    assert_eq!(fields.get("custom_field_1").map(String::as_str), Some("some value"), "not the whole entry");
    assert_eq!(fields.get("cleared").map(String::as_str), Some(""));
    assert_eq!(fields.get("n").map(String::as_str), Some("3"));
    assert_eq!(custom_fields_of(&json!({"id": 1, "custom_fields": null})), BTreeMap::new());
}

#[test]
fn v1_reads_keep_either_legacy_shape() {
    let obj = json!({"custom_fields": {"verification_state": "verified", "n": 3, "none": null}});
    let arr =
        json!({"custom_fields": [{"name_key": "verification_state", "value": "verified"}, {"id": 7, "value": "x"}]});
    assert_eq!(v1_custom_fields_of(&obj).get("n").map(String::as_str), Some("3"));
    assert_eq!(v1_custom_fields_of(&obj).get("none").map(String::as_str), Some(""));
    assert_eq!(v1_custom_fields_of(&arr).get("7").map(String::as_str), Some("x"));
    assert_eq!(v1_custom_fields_of(&arr).get("verification_state").map(String::as_str), Some("verified"));
}

#[test]
fn the_next_page_comes_from_the_link_header() {
    let next = "https://harvest.greenhouse.io/v3/custom_fields?cursor=abc%3D";
    assert_eq!(next_link(&format!("<{next}>; rel=\"next\"")).as_deref(), Some(next));
    assert_eq!(next_link(&format!("<https://x/prev>; rel=\"prev\", <{next}>; rel=next")).as_deref(), Some(next));
    assert_eq!(next_link("<https://x/last>; rel=\"last\""), None);
    assert_eq!(next_link(""), None);
}

#[test]
fn archived_fields_are_not_counted() {
    let list = vec![
        json!({"id": 1, "name_key": "live", "active": true}),
        json!({"id": 2, "name_key": "archived", "active": false}),
        json!({"id": 3, "name_key": "unsaid", "active": null}),
    ];
    let keys: BTreeSet<String> = active_keys(&list).collect();
    assert_eq!(keys, ["1", "3", "live", "unsaid"].into_iter().map(String::from).collect());
}

#[test]
fn v3_paths_follow_the_document() {
    assert_eq!(FIELDS_PATH[1].1, "/v3/custom_fields?field_type=application&per_page=500");
    assert_eq!(RATE_WINDOW, Duration::from_secs(30));
    assert_eq!(V1_RATE_WINDOW, Duration::from_secs(10));
}
