//! Readiness: can this process do its job right now? Each part it runs is
//! probed for real: the store commits (an empty transaction through the
//! writer), Temporal answers (the namespace is described), and the relay's
//! lag (the age of the oldest accepted event not yet forwarded) is under its
//! threshold. Results are cached for a second, so a flood of probes costs
//! one probe a second.

use crate::store::EventStore;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use temporalio_client::Client;
use tokio::sync::{Mutex, watch};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const CACHE_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: &'static str,
    pub failing: Vec<&'static str>,
    /// What each probe found, for a person reading the answer.
    pub checks: std::collections::BTreeMap<&'static str, String>,
}

impl Report {
    pub fn ready(&self) -> bool {
        self.failing.is_empty()
    }
}

pub struct Readiness {
    pub store: Arc<dyn EventStore>,
    /// The Temporal client once connected, when this process runs the relay
    /// or the worker; `None` when it runs neither.
    pub temporal: Option<(watch::Receiver<Option<Client>>, String)>,
    /// The relay lag threshold, when this process runs the relay.
    pub relay_lag_limit: Option<Duration>,
    pub cache: Mutex<Option<(Instant, Report)>>,
}

impl Readiness {
    pub async fn report(&self) -> Report {
        let mut cache = self.cache.lock().await;
        if let Some((at, r)) = cache.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return r.clone();
        }
        let r = self.probe().await;
        *cache = Some((Instant::now(), r.clone()));
        r
    }

    async fn probe(&self) -> Report {
        let mut failing = vec![];
        let mut checks = std::collections::BTreeMap::new();
        let store = match tokio::time::timeout(PROBE_TIMEOUT, self.store.ping()).await {
            Ok(Ok(())) => Ok("commits".to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no commit within {} ms", PROBE_TIMEOUT.as_millis())),
        };
        note(&mut failing, &mut checks, "store", store);
        if let Some((client, namespace)) = &self.temporal {
            let client = client.borrow().clone();
            let temporal = match client {
                None => Err("not connected".to_owned()),
                Some(c) => match tokio::time::timeout(PROBE_TIMEOUT, describe(&c, namespace)).await {
                    Ok(Ok(())) => Ok(format!("namespace {namespace} answers")),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
                },
            };
            note(&mut failing, &mut checks, "temporal", temporal);
        }
        if let Some(limit) = self.relay_lag_limit {
            let lag = match tokio::time::timeout(PROBE_TIMEOUT, self.store.oldest_unforwarded()).await {
                Ok(Ok(None)) => Ok("nothing waiting".to_owned()),
                Ok(Ok(Some(received_at))) => {
                    let age = age_of(&received_at);
                    let text = format!("oldest unforwarded event is {} ms old", age.as_millis());
                    if age > limit { Err(format!("{text} (limit {} ms)", limit.as_millis())) } else { Ok(text) }
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the store did not answer".to_owned()),
            };
            note(&mut failing, &mut checks, "relay_lag", lag);
        }
        Report { status: if failing.is_empty() { "ready" } else { "not_ready" }, failing, checks }
    }
}

fn note(
    failing: &mut Vec<&'static str>,
    checks: &mut std::collections::BTreeMap<&'static str, String>,
    name: &'static str,
    r: Result<String, String>,
) {
    match r {
        Ok(s) => {
            checks.insert(name, s);
        }
        Err(e) => {
            failing.push(name);
            checks.insert(name, e);
        }
    }
}

async fn describe(client: &Client, namespace: &str) -> Result<(), String> {
    use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;
    let mut svc = client.connection().workflow_service();
    let req = DescribeNamespaceRequest { namespace: namespace.to_owned(), ..Default::default() };
    svc.describe_namespace(temporalio_client::tonic::Request::new(req))
        .await
        .map(|_| ())
        .map_err(|e| e.message().to_owned())
}

/// How old an RFC 3339 instant is now (zero when unreadable or ahead).
pub fn age_of(at: &str) -> Duration {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).to_std().unwrap_or_default())
        .unwrap_or_default()
}
