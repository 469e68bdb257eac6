//! `vbridge serve`: the receiver, the relay and the Temporal worker in one
//! process (or any subset of them).

use crate::config::Config;
use crate::health::Readiness;
use crate::http::auth::Auth;
use crate::http::{self, HttpState, Limits};
use crate::intake::Intake;
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::temporal::{self, forward::Forwarder};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    Receiver,
    Relay,
    Worker,
}

pub fn all_roles() -> BTreeSet<Role> {
    [Role::Receiver, Role::Relay, Role::Worker].into_iter().collect()
}

fn spawn_http(
    tasks: &mut tokio::task::JoinSet<anyhow::Result<()>>,
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: watch::Receiver<bool>,
) {
    let mut rx = shutdown;
    tasks.spawn(async move {
        // The peer address reaches the handlers (the console's login throttle).
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await
            .map_err(anyhow::Error::from)
    });
}

/// Runs until `shutdown` turns true. `on_listen` hears the bound address.
pub async fn serve(
    cfg: Config,
    roles: BTreeSet<Role>,
    shutdown: watch::Receiver<bool>,
    on_listen: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let policy = Arc::new(cfg.policy.clone());
    let metrics = Arc::new(Metrics::default());
    let banner: crate::temporal::SharedBanner = Default::default();
    let mut tasks = tokio::task::JoinSet::new();

    // Every role uses the store: the worker appends decisions to the audit log.
    let store = if !roles.is_empty() {
        if let Some(path) = cfg.database_url.strip_prefix("sqlite://")
            && let Some(dir) = std::path::Path::new(path).parent()
        {
            std::fs::create_dir_all(dir)?;
        }
        Some(crate::store::open(&cfg.database_url, cfg.audit_keys.clone()).await?)
    } else {
        None
    };

    // The Temporal client, once connected, for readiness.
    let (client_tx, client_rx) = watch::channel(None);
    let runs_temporal = roles.contains(&Role::Relay) || roles.contains(&Role::Worker);
    if roles.contains(&Role::Receiver) {
        let store = store.clone().expect("store is open for the receiver");
        let revocations = crate::store::sessions::open_revocations(&cfg.database_url).await?;
        let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
        let addr = listener.local_addr()?;
        // Refused requests, aggregated: one append a window, never one per request.
        let refusals = Arc::new(crate::audit::refusals::Refusals::default());
        {
            let (refusals, store, rx, window) = (refusals.clone(), store.clone(), shutdown.clone(), cfg.refusal_window);
            let metrics = metrics.clone();
            tasks.spawn(async move {
                refusals.run(store.as_ref(), window, rx, &metrics.api_denials_unlogged).await;
                Ok(())
            });
        }
        let auth = Auth {
            grants: Arc::new(cfg.grants.clone()),
            open: cfg.dev,
            metrics: metrics.clone(),
            refusals: refusals.clone(),
            trace_header: policy.trace_header().to_owned(),
            oidc: cfg.oidc.clone().map(|c| Arc::new(crate::http::oidc::Oidc::new(c))),
        };
        let state = HttpState {
            intake: Arc::new(new_intake(
                &cfg,
                &policy,
                store.clone(),
                &metrics,
                refusals,
                crate::store::outreach::open_outreach(&cfg.database_url).await?,
                Some((client_rx.clone(), cfg.temporal_namespace.clone())),
            )),
            store: store.clone(),
            metrics: metrics.clone(),
            policy: policy.clone(),
            readiness: Arc::new(Readiness {
                store,
                temporal: runs_temporal.then(|| (client_rx.clone(), cfg.temporal_namespace.clone())),
                relay_lag_limit: roles.contains(&Role::Relay).then_some(cfg.ready_max_relay_lag),
                cache: Default::default(),
            }),
            max_body_bytes: cfg.max_body_bytes,
            temporal: Arc::new(crate::temporal::human::TemporalLink {
                client: client_rx.clone(),
                task_queue: cfg.task_queue.clone(),
                policy: policy.clone(),
                tuning: cfg.tuning,
                public_url: cfg.public_url.clone(),
                banner: banner.clone(),
                namespace: cfg.temporal_namespace.clone(),
            }),
            console: Arc::new(crate::http::console::Console {
                auth: auth.clone(),
                key: cfg.session_key.clone(),
                secure: cfg.secure_cookies,
                revocations,
                throttle: Default::default(),
                sso: cfg
                    .oidc
                    .as_ref()
                    .and_then(|o| o.client.clone().map(|c| crate::http::console::sso::Sso::new(o.issuer.clone(), c))),
            }),
            evidence_key: cfg.evidence_key.clone(),
        };
        if !cfg.dev && cfg.grants.is_empty() {
            tracing::warn!("no operator API credentials configured (VBRIDGE_API_TOKENS): /v1 answers 401 to everyone");
        }
        let limits = Limits {
            max_in_flight: cfg.max_in_flight,
            request_timeout: cfg.request_timeout,
            api_timeout: cfg.api_request_timeout,
        };
        if let Some(metrics_addr) = &cfg.metrics_listen {
            let listener = tokio::net::TcpListener::bind(metrics_addr).await?;
            tracing::info!(address = %listener.local_addr()?, "metrics listening");
            spawn_http(&mut tasks, listener, http::metrics_router(state.clone()), shutdown.clone());
        }
        let app = http::router(state, auth, limits, cfg.metrics_listen.is_none());
        on_listen(addr);
        spawn_http(&mut tasks, listener, app, shutdown.clone());
    }

    // The Temporal worker's future is not Send, so it runs here rather than
    // in a spawned task.
    let temporal_shutdown = shutdown.clone();
    let mut main_shutdown = shutdown.clone();
    let temporal_roles = async {
        if (roles.contains(&Role::Relay) || roles.contains(&Role::Worker))
            && let Err(e) = run_temporal_roles(
                cfg.clone(),
                roles.clone(),
                store,
                metrics.clone(),
                banner.clone(),
                client_tx,
                temporal_shutdown,
            )
            .await
        {
            tracing::error!(error = %e, "Temporal roles ended with an error");
        }
    };
    let wait = async {
        let _ = main_shutdown.wait_for(|v| *v).await;
    };
    tokio::join!(temporal_roles, wait);
    let deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = tasks.join_next() => match next {
                None => break,
                Some(Ok(Err(e))) => tracing::error!(error = %e, "task ended with an error"),
                Some(Err(e)) => tracing::error!(error = %e, "task panicked"),
                Some(Ok(Ok(()))) => {}
            },
            _ = &mut deadline => {
                tracing::warn!("shutdown took over 20 s; stopping the rest");
                tasks.abort_all();
                break;
            }
        }
    }
    Ok(())
}

async fn run_temporal_roles(
    cfg: Config,
    roles: BTreeSet<Role>,
    store: Option<Arc<dyn crate::store::EventStore>>,
    metrics: Arc<Metrics>,
    banner: crate::temporal::SharedBanner,
    connected: watch::Sender<Option<temporalio_client::Client>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // Temporal may be down: keep trying; the receiver acks meanwhile.
    let client = loop {
        match temporal::connect(&cfg.temporal_address, &cfg.temporal_namespace).await {
            Ok(c) => break c,
            Err(e) => {
                tracing::warn!(error = %e, "Temporal unreachable; retrying in 1 s (webhooks are still acknowledged)");
                let mut rx = shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = rx.wait_for(|v| *v) => return Ok(()),
                }
            }
        }
    };
    tracing::info!(address = %cfg.temporal_address, namespace = %cfg.temporal_namespace, "connected to Temporal");
    let _ = connected.send(Some(client.clone()));
    let mut tasks: tokio::task::JoinSet<anyhow::Result<()>> = tokio::task::JoinSet::new();
    let mut worker_loop = None;
    if roles.contains(&Role::Worker) {
        if let Err(e) = temporal::register_search_attributes(&client, &cfg.temporal_namespace).await {
            tracing::warn!(error = %e, "could not register search attributes (they may exist already)");
        }
        let client = client.clone();
        let sdk_meter = match temporal::worker::start_sdk_metrics(cfg.temporal_metrics_listen) {
            Ok((addr, meter)) => {
                tracing::info!(%addr, "Temporal SDK worker metrics exported");
                let _ = metrics.sdk_exporter.set(addr);
                Some(meter)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the Temporal SDK's metrics exporter did not start; worker metrics are not exported");
                None
            }
        };
        // One pool of the hiring rows for the worker: its mail and start
        // activities, the poll's intake and the poll's cursor.
        let outreach = crate::store::outreach::open_outreach(&cfg.database_url).await?;
        let deps = temporal::worker::ActivityDeps {
            sdk_meter,
            ats: cfg.ats_config(),
            ats_metrics: metrics.ats.clone(),
            audit: store.clone().expect("store is open for the worker"),
            escalation: vbridge_activities::EscalationConfig {
                url: cfg.escalation_url.clone(),
                secret: cfg.escalation_secret.clone(),
            },
            escalations: metrics.review.clone(),
            reconcile: Arc::new(crate::controls::reconcile::StoreSource(
                store.clone().expect("store is open for the worker"),
            )),
            retention: Arc::new(crate::audit::retention::StoreRetention {
                store: store.clone().expect("store is open for the worker"),
                policy: cfg.policy.clone(),
            }),
            hiring: cfg.hiring_activities(outreach.clone())?,
            // Polled bookings take the intake's way in; a worker-only
            // process has an intake of its own for them.
            interviews: Arc::new(crate::intake::polled::PolledInterviews {
                intake: Arc::new(new_intake(
                    &cfg,
                    &Arc::new(cfg.policy.clone()),
                    store.clone().expect("store is open for the worker"),
                    &metrics,
                    Default::default(),
                    outreach.clone(),
                    None,
                )),
                cursors: outreach,
            }),
        };
        let greenhouse = matches!(cfg.ats_kind, vbridge_activities::AtsKind::Greenhouse(_));
        if let (true, Some(_), Some(every)) = (greenhouse, cfg.policy.hiring(), cfg.hiring.interview_poll)
            && let Err(e) = crate::intake::polled::ensure_schedule(&client, &cfg.task_queue, every).await
        {
            tracing::warn!(error = %e, "could not create the interview poll schedule; Greenhouse interviews are not read");
        }
        if let Err(e) = crate::controls::reconcile::ensure_schedule(&client, &cfg.task_queue, &cfg.policy).await {
            tracing::warn!(error = %e, "could not create the reconciliation schedule; `vbridge reconcile run` still works");
        }
        if let Err(e) = crate::audit::retention::ensure_schedule(&client, &cfg.task_queue).await {
            tracing::warn!(error = %e, "could not create the audit retention schedule; `vbridge audit retention` still works");
        }
        let task_queue = cfg.task_queue.clone();
        let cached_workflows = cfg.worker_cached_workflows;
        let shutdown = shutdown.clone();
        worker_loop = Some(async move {
            // A worker that stops on a Temporal outage is started again.
            loop {
                let mut rx = shutdown.clone();
                let stop = async move {
                    let _ = rx.wait_for(|v| *v).await;
                };
                match temporal::worker::run_worker(client.clone(), &task_queue, deps.clone(), cached_workflows, stop)
                    .await
                {
                    Ok(()) if *shutdown.borrow() => return,
                    Ok(()) => tracing::warn!("Temporal worker stopped; restarting"),
                    Err(e) => {
                        tracing::warn!(error = %e, "Temporal worker failed; restarting in 1 s")
                    }
                }
                if *shutdown.borrow() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    if roles.contains(&Role::Relay) {
        let relay = Relay {
            store: store.expect("store is open for the relay"),
            forwarder: Forwarder {
                client: client.clone(),
                task_queue: cfg.task_queue.clone(),
                policy: Arc::new(cfg.policy.clone()),
                tuning: cfg.tuning,
                public_url: cfg.public_url.clone(),
                banner,
            },
            metrics,
            crash_after_forward: std::env::var("VBRIDGE_FAULT").as_deref() == Ok("crash-after-forward"),
            batch_max: cfg.relay_batch_max,
            backlog_after: cfg.relay_backlog_after,
        };
        let rx = shutdown.clone();
        tasks.spawn(async move {
            relay.run(rx).await;
            Ok(())
        });
    }
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Err(e)) => tracing::error!(error = %e, "Temporal role ended with an error"),
                Err(e) => tracing::error!(error = %e, "Temporal role panicked"),
                Ok(Ok(())) => {}
            }
        }
    };
    let worker = async {
        if let Some(w) = worker_loop {
            w.await;
        }
    };
    tokio::join!(drain, worker);
    Ok(())
}

/// The intake: a delivery's way in (the receiver's routes; the worker's
/// polled interviews), keeping addresses in `outreach`'s hiring rows.
fn new_intake(
    cfg: &Config,
    policy: &Arc<vbridge_core::Policy>,
    store: Arc<dyn crate::store::EventStore>,
    metrics: &Arc<crate::metrics::Metrics>,
    refusals: Arc<crate::audit::refusals::Refusals>,
    outreach: Arc<crate::store::outreach::OutreachStore>,
    temporal: Option<(tokio::sync::watch::Receiver<Option<temporalio_client::Client>>, String)>,
) -> Intake {
    Intake {
        policy: policy.clone(),
        secrets: Arc::new(cfg.secrets.clone()),
        store,
        metrics: metrics.clone(),
        recent: Default::default(),
        commit_timeout: cfg.commit_timeout,
        refusals,
        claim_readers: tokio::sync::Semaphore::new(crate::intake::CLAIM_READERS),
        providers: cfg.providers.clone(),
        ats: cfg.ats_hooks.clone(),
        outreach: Some(outreach),
        temporal,
    }
}
