//! Temporal glue: connecting and registering search attributes here; the
//! worker ([`worker`]) and the signal-with-start the relay uses ([`forward`]).

pub mod broadcast;
pub mod forward;
pub mod human;
pub mod worker;

use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use vbridge_workflows::workflow::SEARCH_ATTRIBUTES;

#[derive(Debug, thiserror::Error)]
pub enum TemporalError {
    #[error("bad Temporal address {0:?}")]
    Address(String),
    #[error("cannot reach Temporal at {address}: {message}")]
    Connect { address: String, message: String },
    #[error("Temporal call failed: {0}")]
    Call(String),
}

pub fn address_url(address: &str) -> Result<Url, TemporalError> {
    let with_scheme = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    Url::parse(&with_scheme).map_err(|_| TemporalError::Address(address.to_owned()))
}

pub async fn connect(address: &str, namespace: &str) -> Result<Client, TemporalError> {
    let url = address_url(address)?;
    let opts = ConnectionOptions::new(url)
        .identity(format!("vbridge@{}", std::process::id()))
        .connect_timeout(Duration::from_secs(5))
        .build();
    let conn = Connection::connect(opts)
        .await
        .map_err(|e| TemporalError::Connect { address: address.to_owned(), message: e.to_string() })?;
    Client::new(conn, ClientOptions::new(namespace.to_owned()).build())
        .map_err(|e| TemporalError::Connect { address: address.to_owned(), message: e.to_string() })
}

/// Register the bridge's search attributes (CONTRACT §3) where missing.
pub async fn register_search_attributes(client: &Client, namespace: &str) -> Result<(), TemporalError> {
    use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
    use temporalio_common::protos::temporal::api::operatorservice::v1::{
        AddSearchAttributesRequest, ListSearchAttributesRequest,
    };
    let mut ops = client.connection().operator_service();
    let existing = ops
        .list_search_attributes(temporalio_client::tonic::Request::new(ListSearchAttributesRequest {
            namespace: namespace.to_owned(),
        }))
        .await
        .map_err(|e| TemporalError::Call(e.to_string()))?
        .into_inner();
    let mut missing = std::collections::HashMap::new();
    for (name, kind) in SEARCH_ATTRIBUTES {
        if !existing.custom_attributes.contains_key(*name) {
            let t = match *kind {
                "Datetime" => IndexedValueType::Datetime,
                "Bool" => IndexedValueType::Bool,
                _ => IndexedValueType::Keyword,
            };
            missing.insert((*name).to_owned(), t as i32);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    ops.add_search_attributes(temporalio_client::tonic::Request::new(AddSearchAttributesRequest {
        search_attributes: missing,
        namespace: namespace.to_owned(),
    }))
    .await
    .map_err(|e| TemporalError::Call(e.to_string()))?;
    Ok(())
}
