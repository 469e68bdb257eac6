//! Temporal glue: connecting and registering search attributes here; the
//! worker ([`worker`]) and the signal-with-start the relay uses ([`forward`]).

pub mod broadcast;
pub mod erase;
pub mod forward;
pub mod human;
pub mod worker;

use std::time::Duration;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use vbridge_workflows::verification::SEARCH_ATTRIBUTES;

/// The kill switch's ATS banner as this process last read it (empty: gating
/// on). New runs start with it; the relay refreshes it every round
/// (`crate::controls::refresh_banner`).
pub type SharedBanner = std::sync::Arc<std::sync::RwLock<String>>;

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
    if envconfig_requested() {
        // Temporal's own client configuration (a `temporal.toml` profile and
        // the TEMPORAL_* variables): the way to Temporal Cloud with mTLS or
        // an API key, the same file the `temporal` CLI reads.
        let failed = |message: String| TemporalError::Connect { address: "(temporal.toml profile)".into(), message };
        let profile = temporalio_common::envconfig::load_client_config_profile(Default::default(), None)
            .map_err(|e| failed(e.to_string()))?;
        let profile_namespace = profile.namespace.clone().unwrap_or_else(|| namespace.to_owned());
        let conn_opts = ConnectionOptions::try_from(profile).map_err(|e| failed(e.to_string()))?;
        let target = conn_opts.target.to_string();
        let conn = Connection::connect(conn_opts)
            .await
            .map_err(|e| TemporalError::Connect { address: target.clone(), message: e.to_string() })?;
        tracing::info!(address = %target, namespace = %profile_namespace, "connected through Temporal's client configuration");
        return client_for(conn, profile_namespace, &target);
    }
    let url = address_url(address)?;
    let opts = ConnectionOptions::new(url)
        .identity(format!("vbridge@{}", std::process::id()))
        .connect_timeout(Duration::from_secs(5))
        .build();
    let conn = Connection::connect(opts)
        .await
        .map_err(|e| TemporalError::Connect { address: address.to_owned(), message: e.to_string() })?;
    client_for(conn, namespace.to_owned(), address)
}

/// The client on a connection, with the OpenTelemetry plugin when traces are
/// exported (the worker built on this client gets its interceptors too).
fn client_for(conn: Connection, namespace: String, address: &str) -> Result<Client, TemporalError> {
    let mut opts = ClientOptions::new(namespace);
    if crate::telemetry::tracing_enabled() {
        opts = opts.plugin(temporalio_sdk::opentelemetry::OpenTelemetryPlugin::builder().build());
    }
    Client::new(conn, opts.build())
        .map_err(|e| TemporalError::Connect { address: address.to_owned(), message: e.to_string() })
}

/// Whether Temporal's client configuration names the connection: a config
/// file or a profile is set (`TEMPORAL_CONFIG_FILE`, `TEMPORAL_PROFILE`).
pub fn envconfig_requested() -> bool {
    ["TEMPORAL_CONFIG_FILE", "TEMPORAL_PROFILE"].iter().any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The namespace Temporal's client configuration names, when it is used.
pub fn envconfig_namespace() -> Result<Option<String>, String> {
    if !envconfig_requested() {
        return Ok(None);
    }
    let profile = temporalio_common::envconfig::load_client_config_profile(Default::default(), None)
        .map_err(|e| format!("Temporal client configuration: {e}"))?;
    Ok(profile.namespace)
}

/// Register the bridge's search attributes (docs/contract.md §3) where missing.
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
