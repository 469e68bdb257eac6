//! One harness for every integration test: a real Temporal dev server on free
//! ports, the sandbox ATS over real HTTP, and the real `vbridge` binary with
//! its own SQLite store. Tests wait on conditions, never on fixed sleeps.

use anyhow::Result;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use temporalio_client::{Client, WorkflowQueryOptions};
use vbridge::devtools::client::{Reply, WebhookClient};
use vbridge::devtools::devserver::{DevServer, DevServerOptions};
use vbridge::devtools::sandbox::{AppliedWrite, FaultRequest, RequestLog};
use vbridge::store::StoredDelivery;
use vbridge_core::domain::workflow_id;
use vbridge_proto::{StateView, TimelineEntry};
use vbridge_workflows::CandidateVerification;

pub const SECRET: &str = "it-secret-1";
/// Operator API tokens the harness configures (docs/contract.md §5), by role.
pub const OPS_TOKEN: &str = "it-ops-token";
pub const AUDITOR_TOKEN: &str = "it-auditor-token";
pub const REVIEWER_TOKEN: &str = "it-reviewer-token";
pub const ADMIN_TOKEN: &str = "it-admin-token";

fn sha256_hex(s: &str) -> String {
    vbridge::intake::sha256_hex(s.as_bytes())
}

/// `VBRIDGE_API_TOKENS` for the tokens above: only their hashes.
pub fn api_tokens() -> String {
    format!(
        "ops:it-ops:{},auditor:it-auditor:{},reviewer:it-reviewer:{},admin:it-admin:{}",
        sha256_hex(OPS_TOKEN),
        sha256_hex(AUDITOR_TOKEN),
        sha256_hex(REVIEWER_TOKEN),
        sha256_hex(ADMIN_TOKEN)
    )
}

#[derive(Default)]
pub struct Options {
    pub roles: Option<&'static str>,
    pub extra_env: Vec<(String, String)>,
    pub persist_temporal: bool,
    /// Use this store instead of a SQLite file in the test directory.
    pub database_url: Option<String>,
    /// Start the dev server with its web UI (`temporal.ui_url`).
    pub temporal_ui: bool,
}

/// libfaketime, which `scripts/setup.sh` installs (Debian's `faketime`).
pub fn libfaketime() -> &'static str {
    const PATHS: [&str; 2] =
        ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"];
    PATHS.into_iter().find(|p| std::path::Path::new(p).exists()).expect("libfaketime is missing: run scripts/setup.sh")
}

/// Environment that runs a process `offset` in the past or future
/// (libfaketime syntax: `-3d`, `+2h`): its wall clock only, its monotonic
/// clock left alone so timeouts behave.
pub fn faketime_env(offset: &str) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), libfaketime().into()),
        ("FAKETIME".into(), offset.into()),
        ("DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

pub struct TestApp {
    pub dir: PathBuf,
    pub temporal: DevServer,
    pub temporal_client: Client,
    pub sandbox_url: String,
    pub bridge: Option<Child>,
    pub bridge_url: String,
    pub client: WebhookClient,
    pub http: reqwest::Client,
    env: Vec<(String, String)>,
    bridge_runs: usize,
    sandbox_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn test_dir(name: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = base.join(format!("{name}-{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis()));
    std::fs::create_dir_all(&dir).expect("creating the test directory");
    dir
}

impl TestApp {
    pub async fn spawn(name: &str) -> TestApp {
        Self::spawn_with(name, Options::default()).await
    }

    pub async fn spawn_with(name: &str, opts: Options) -> TestApp {
        let dir = test_dir(name);
        let temporal = DevServer::start(DevServerOptions {
            port: 0,
            ui_port: opts.temporal_ui.then(vbridge::devtools::devserver::free_port),
            db_file: opts.persist_temporal.then(|| dir.join("temporal.db")),
            log_file: dir.join("temporal.log"),
        })
        .await
        .unwrap_or_else(|e| panic!("cannot start the real Temporal dev server: {e}"));
        let temporal_client =
            vbridge::temporal::connect(&temporal.address, "default").await.expect("connecting to Temporal");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox_url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The sandbox's SMTP sink is the bridge's mail server in every test.
        let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let smtp_url = format!("smtp://{}", smtp.local_addr().unwrap());
        tokio::spawn(vbridge::devtools::sandbox::serve_with_mail(listener, Some(smtp), None, async move {
            let _ = rx.await;
        }));

        let task_queue = format!("it-{name}-{}", std::process::id());
        let mut env: Vec<(String, String)> = vec![
            ("VBRIDGE_LISTEN".into(), "127.0.0.1:0".into()),
            ("VBRIDGE_WEBHOOK_SECRETS".into(), format!("old-retired-secret,{SECRET}")),
            (
                "VBRIDGE_DATABASE_URL".into(),
                opts.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", dir.join("vbridge.db").display())),
            ),
            ("VBRIDGE_DATA_DIR".into(), dir.display().to_string()),
            ("VBRIDGE_TEMPORAL_ADDRESS".into(), temporal.address.clone()),
            ("VBRIDGE_TASK_QUEUE".into(), task_queue),
            ("VBRIDGE_ATS_URL".into(), sandbox_url.clone()),
            ("VBRIDGE_ATS_RETRY_INITIAL_MS".into(), "100".into()),
            ("VBRIDGE_ATS_RETRY_MAX_MS".into(), "400".into()),
            ("VBRIDGE_ATS_DEFERRAL_MS".into(), "1000".into()),
            ("VBRIDGE_API_TOKENS".into(), api_tokens()),
            // The tests speak plain http to 127.0.0.1: console cookies
            // without `Secure` (a test that checks the default turns it off).
            ("VBRIDGE_CONSOLE_INSECURE_COOKIES".into(), "true".into()),
            // Refusals are aggregated per window (a minute in production):
            // short here, so that tests see their records soon.
            ("VBRIDGE_REFUSAL_WINDOW_MS".into(), "500".into()),
            ("VBRIDGE_LOG".into(), "info,temporalio_sdk_core=warn,temporalio_sdk=warn,sqlx=warn".into()),
            ("VBRIDGE_SMTP_URL".into(), smtp_url),
            ("VBRIDGE_MAIL_FROM".into(), "Hiring Team <hiring@vbridge.test>".into()),
        ];
        if let Some(r) = opts.roles {
            env.push(("VBRIDGE_ROLES".into(), r.into()));
        }
        // `{sandbox}` in a value is the sandbox ATS's URL (connectors that
        // impersonate an ATS API point at it).
        env.extend(opts.extra_env.into_iter().map(|(k, v)| (k, v.replace("{sandbox}", &sandbox_url))));
        let http = reqwest::Client::new();
        let mut app = TestApp {
            dir,
            temporal,
            temporal_client,
            sandbox_url,
            bridge: None,
            bridge_url: String::new(),
            client: WebhookClient::new("http://127.0.0.1:1", SECRET),
            http,
            env,
            bridge_runs: 0,
            sandbox_stop: Some(tx),
        };
        app.start_bridge(&[]).await;
        app
    }

    /// Start the `vbridge serve` process; `overrides` replace env entries for this run.
    pub async fn start_bridge(&mut self, overrides: &[(&str, &str)]) {
        assert!(self.bridge.is_none(), "bridge already running");
        self.bridge_runs += 1;
        let log = self.dir.join(format!("bridge-{}.log", self.bridge_runs));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vbridge"));
        cmd.arg("serve");
        let mut env = self.env.clone();
        for (k, v) in overrides {
            env.retain(|(ek, _)| ek != k);
            env.push(((*k).into(), (*v).into()));
        }
        if let Some((_, roles)) = env.iter().find(|(k, _)| k == "VBRIDGE_ROLES") {
            cmd.args(["--roles", roles]);
        }
        for (k, v) in &env {
            if k != "VBRIDGE_ROLES" {
                cmd.env(k, v);
            }
        }
        cmd.env_remove("VBRIDGE_CONFIG");
        cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap()).stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawning the vbridge binary");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("vbridge: listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!("vbridge did not start; its log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
            }
        };
        self.bridge_url = url.clone();
        self.client = WebhookClient::new(&url, SECRET);
        self.bridge = Some(child);
    }

    /// SIGKILL the bridge: no shutdown code runs.
    pub fn kill_bridge(&mut self) {
        if let Some(mut c) = self.bridge.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait for a bridge that is expected to die by itself (fault injection).
    pub async fn wait_bridge_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(c) = self.bridge.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.bridge = None;
                return status;
            }
            assert!(start.elapsed() < limit, "the bridge did not exit within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn bridge_log(&self) -> String {
        (1..=self.bridge_runs)
            .map(|i| std::fs::read_to_string(self.dir.join(format!("bridge-{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn send(&self, body: &Value) -> Reply {
        self.client.send(body).await.expect("sending a webhook")
    }

    /// `GET` a bridge path with a bearer token (or none).
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.bridge_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("a request to the bridge")
    }

    /// Send a webhook signed as its provider would `days` ago (for a bridge
    /// whose clock runs that far back, [`faketime_env`]).
    pub async fn send_days_ago(&self, body: &Value, days: i64) -> Reply {
        let secret = vbridge::intake::signature::Secret::parse(SECRET, 1).unwrap();
        let ts = (chrono::Utc::now() - chrono::Duration::days(days)).timestamp();
        self.client.send_il(&secret, ts, serde_json::to_vec(body).unwrap()).await.expect("a webhook request")
    }

    /// `POST` JSON to a bridge path with a bearer token (or none) and an
    /// `Idempotency-Key` (or none).
    pub async fn post_as(&self, path: &str, token: Option<&str>, key: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.bridge_url)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.expect("a request to the bridge")
    }

    /// The `vbridge` binary run as an operator would, with the bridge's
    /// configuration (store, Temporal, task queue, policy).
    pub async fn vbridge_cli(&self, args: &[&str]) -> std::process::Output {
        self.vbridge_cli_with(args, &[]).await
    }

    /// The CLI with the bridge's environment, `overrides` replacing entries.
    pub async fn vbridge_cli_with(&self, args: &[&str], overrides: &[(&str, &str)]) -> std::process::Output {
        // Async: the sandbox ATS runs on this test's runtime and must keep
        // answering while the command runs.
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_vbridge"));
        cmd.args(args).env_remove("VBRIDGE_CONFIG").env("VBRIDGE_LOG", "warn");
        for (k, v) in &self.env {
            if k != "VBRIDGE_ROLES" {
                cmd.env(k, v);
            }
        }
        for (k, v) in overrides {
            cmd.env(k, v);
        }
        cmd.output().await.expect("running vbridge")
    }

    /// The Temporal CLI (the one the dev server runs from) against this
    /// test's server, as an engineer would use it; its stdout.
    pub fn temporal_cli(&self, args: &[&str]) -> String {
        let cli = vbridge::devtools::devserver::find_cli().expect("the Temporal CLI");
        let out = Command::new(cli)
            .args(args)
            .args(["--address", &self.temporal.address, "--namespace", "default"])
            .output()
            .expect("running the Temporal CLI");
        assert!(out.status.success(), "temporal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The Prometheus text, read with the ops token.
    pub async fn metrics(&self) -> String {
        self.get_as("/metrics", Some(OPS_TOKEN)).await.text().await.unwrap()
    }

    pub async fn writes(&self) -> Vec<AppliedWrite> {
        self.http.get(format!("{}/_sandbox/writes", self.sandbox_url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn ats_requests(&self) -> Vec<RequestLog> {
        self.http.get(format!("{}/_sandbox/requests", self.sandbox_url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn ats_fault(&self, fault: Value) {
        let _: FaultRequest = serde_json::from_value(fault.clone()).expect("a valid fault request");
        let r = self.http.post(format!("{}/_sandbox/faults", self.sandbox_url)).json(&fault).send().await.unwrap();
        assert!(r.status().is_success());
    }

    /// Start a reconciliation over the API (`dry_run`: report only) and wait
    /// for its finished report.
    pub async fn reconcile(&self, dry_run: bool) -> Value {
        let r = self.post_as("/v1/reconcile", Some(OPS_TOKEN), None, &serde_json::json!({"dry_run": dry_run})).await;
        assert_eq!(r.status(), 202);
        let run_id = r.json::<Value>().await.unwrap()["run_id"].as_str().unwrap().to_owned();
        self.wait_for("the reconciliation's report", Duration::from_secs(60), || async {
            let r: Value = self.get_as(&format!("/v1/reconcile/{run_id}"), Some(OPS_TOKEN)).await.json().await.ok()?;
            (r["done"] == true).then_some(r)
        })
        .await
    }

    /// GET the sandbox's own API (`/_sandbox/...`) as JSON.
    pub async fn sandbox_get(&self, path: &str) -> Value {
        let r = self.http.get(format!("{}{path}", self.sandbox_url)).send().await.unwrap();
        assert!(r.status().is_success(), "sandbox {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// The messages the sandbox's SMTP sink received, oldest first.
    pub async fn mailbox(&self) -> Vec<Value> {
        self.sandbox_get("/_sandbox/mailbox/messages").await.as_array().cloned().unwrap_or_default()
    }

    /// The sessions and inquiries created at the sandbox's providers.
    pub async fn provider_sessions(&self) -> Vec<Value> {
        self.sandbox_get("/_sandbox/providers/sessions").await.as_array().cloned().unwrap_or_default()
    }

    /// POST to the sandbox's own API (`/_sandbox/...`).
    pub async fn sandbox_post(&self, path: &str, body: &Value) {
        let r = self.http.post(format!("{}{path}", self.sandbox_url)).json(body).send().await.unwrap();
        assert!(r.status().is_success(), "sandbox {path}: {}", r.status());
    }

    /// What an impersonated ATS holds for a record: `{fields, tags, notes}`.
    pub async fn ats_record(&self, kind: &str, id: &str) -> Value {
        let url = format!("{}/_sandbox/ats/{kind}/{id}", self.sandbox_url);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    pub async fn ats_clear_fault(&self) {
        self.http.delete(format!("{}/_sandbox/faults", self.sandbox_url)).send().await.unwrap();
    }

    pub async fn ats_check(&self, application: &str, check: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}/applications/{application}/verification-checks/{check}", self.sandbox_url))
            .send()
            .await
            .unwrap();
        if r.status().is_success() { Some(r.json().await.unwrap()) } else { None }
    }

    /// The URL of the store the bridge uses.
    pub fn database_url(&self) -> String {
        self.env.iter().find(|(k, _)| k == "VBRIDGE_DATABASE_URL").map(|(_, v)| v.clone()).unwrap()
    }

    /// Rows of the real event store, read through the store's own API.
    /// A stored field of `candidate` as the bridge shows it: opened with the
    /// candidate's key (docs/privacy.md), `erased` without it.
    pub async fn opened(&self, candidate: &str, text: &str) -> String {
        let store = vbridge::config::open_store(&self.database_url()).await.expect("the store");
        let key = store.existing_field_key(candidate).await.expect("the candidate's key is read");
        vbridge_core::seal::reveal(key.as_ref(), candidate, text)
    }

    pub async fn deliveries(&self, candidate: Option<&str>) -> Vec<StoredDelivery> {
        let store = vbridge::config::open_store(&self.database_url()).await.unwrap();
        store.deliveries(candidate, None).await.unwrap()
    }

    pub async fn state(&self, candidate: &str, application: &str) -> Result<StateView> {
        let h = self.temporal_client.get_workflow_handle::<CandidateVerification>(workflow_id(candidate, application));
        Ok(h.query(CandidateVerification::state, (), WorkflowQueryOptions::default()).await?)
    }

    pub async fn timeline(&self, candidate: &str, application: &str) -> Result<Vec<TimelineEntry>> {
        let h = self.temporal_client.get_workflow_handle::<CandidateVerification>(workflow_id(candidate, application));
        Ok(h.query(CandidateVerification::timeline, (), WorkflowQueryOptions::default()).await?)
    }

    pub async fn workflow_exists(&self, candidate: &str, application: &str) -> bool {
        let h = self.temporal_client.get_workflow_handle::<CandidateVerification>(workflow_id(candidate, application));
        h.describe(Default::default()).await.is_ok()
    }

    /// Poll `check` until it yields `Some`, or fail with `what` and the logs.
    pub async fn wait_for<T, F, Fut>(&self, what: &str, limit: Duration, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let start = Instant::now();
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if start.elapsed() > limit {
                panic!(
                    "timed out after {limit:?} waiting for: {what}\n--- bridge log (tail) ---\n{}",
                    tail(&self.bridge_log(), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the workflow's state query says `state` with the ATS synced.
    pub async fn wait_synced(&self, candidate: &str, application: &str, state: &str) -> StateView {
        self.wait_for(
            &format!("{candidate}/{application} to be {state} and synced"),
            Duration::from_secs(60),
            || async {
                match self.state(candidate, application).await {
                    Ok(v) if v.state == state && v.ats_sync == "synced" => Some(v),
                    _ => None,
                }
            },
        )
        .await
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.kill_bridge();
        if let Some(tx) = self.sandbox_stop.take() {
            let _ = tx.send(());
        }
    }
}

/// An RFC 3339 time `minutes` from now (negative: in the past).
pub fn at(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

/// An RFC 3339 time `days` and `minutes` ago.
pub fn days_and_minutes_ago(days: i64, minutes: i64) -> String {
    at(-(days * 24 * 60 + minutes))
}

/// A fresh, empty Postgres database for one test, on the server CI provides
/// (127.0.0.1:5432, trust auth, database `test`), or `VBRIDGE_TEST_POSTGRES_URL`.
/// Databases left by test processes that are gone are dropped first.
pub async fn postgres_url() -> String {
    use sqlx::Connection;
    let admin =
        std::env::var("VBRIDGE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "the Postgres tests need a real Postgres at {admin} ({e}). CI and dev machines run one at \
             127.0.0.1:5432 with trust auth and a database `test`; start it (Debian: pg_ctlcluster 15 main start) \
             or point VBRIDGE_TEST_POSTGRES_URL at another"
        )
    });
    let stale: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'vbridge_t_%'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for db in stale {
        let pid = db.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut conn).await;
        }
    }
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!("vbridge_t_{}_{}", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (base, _) = admin.rsplit_once('/').expect("a database URL ends in /NAME");
    format!("{base}/{name}")
}

/// A SQLite write lock held by another connection: no commit can happen
/// until it is released (a real cause of a store that cannot commit).
pub struct WriteLock(sqlx::SqliteConnection);

impl WriteLock {
    pub async fn take(url: &str) -> WriteLock {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("a second connection to the store");
        sqlx::query("BEGIN IMMEDIATE").execute(&mut c).await.expect("the write lock");
        WriteLock(c)
    }

    pub async fn release(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.0).await.expect("releasing the write lock");
    }
}

/// Run one SQL statement on the store behind the bridge's back (tests that
/// play a rogue DBA). Returns the database's error text on failure.
pub async fn raw_sql(url: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ()).map_err(|e| e.to_string())
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.map_err(|e| e.to_string())?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Another `vbridge serve` process on the same store, Temporal and ATS.
pub struct SecondBridge {
    child: Child,
    pub client: WebhookClient,
}

impl Drop for SecondBridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TestApp {
    pub async fn spawn_second_bridge(&mut self) -> SecondBridge {
        self.spawn_second_bridge_with(&[]).await
    }

    /// Another `vbridge serve`, `overrides` replacing entries of this one's
    /// environment (its own store and task queue: another deployment).
    pub async fn spawn_second_bridge_with(&mut self, overrides: &[(&str, &str)]) -> SecondBridge {
        let first = self.bridge.take();
        let first_url = self.bridge_url.clone();
        self.start_bridge(overrides).await;
        let child = self.bridge.take().expect("second bridge");
        let client = self.client.clone();
        self.bridge = first;
        self.bridge_url = first_url.clone();
        self.client = WebhookClient::new(&first_url, SECRET);
        SecondBridge { child, client }
    }
}
