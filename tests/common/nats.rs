//! A real NATS cluster with JetStream on loopback, for the tests of a
//! network of nodes: `nats-server` processes started from config files in
//! a temporary directory, routed to each other, and waited on until
//! JetStream answers.
//!
//! The binary is `ROOKERY_NATS_SERVER` or `nats-server` on `PATH` (Debian
//! bookworm's package, 2.9.10, is enough).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// How long a start or restart may take before the test fails: elections
/// on a loaded two-core machine take a few seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The pause between two looks at a condition being waited for.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The cluster's name in every server's `cluster` block.
const CLUSTER_NAME: &str = "rookery-test";

/// How many times a cluster is started afresh when a reserved cluster
/// port was taken by another process before the server bound it.
const START_ATTEMPTS: usize = 3;

/// How much of a server's log a failure message shows.
const LOG_TAIL_BYTES: usize = 4000;

/// Several `nats-server` processes with JetStream, routed as one cluster
/// (a lone server has no cluster block). Dropping it kills them all and
/// removes their files.
pub struct NatsCluster {
    binary: PathBuf,
    servers: Vec<NatsServer>,
    /// Declared last: removed after the processes are killed.
    dir: TempDir,
}

/// One server: its files, the ports it listens on and its process while
/// it runs.
struct NatsServer {
    /// Unique per server, as JetStream clustering requires.
    name: String,
    /// Holds its config, log, ports file and JetStream store.
    dir: PathBuf,
    client_port: u16,
    /// The monitoring port, for `/healthz`.
    http_port: u16,
    process: Option<Child>,
}

/// What a server reports in its ports file: the URLs it listens on.
#[derive(serde::Deserialize)]
struct PortsFile {
    nats: Vec<String>,
    monitoring: Vec<String>,
}

/// Why one attempt at starting the cluster failed.
enum StartFailure {
    /// Another process bound a reserved cluster port first: try again.
    PortTaken,
    /// Anything else: the message says which server and why.
    Fatal(String),
}

impl NatsCluster {
    /// Starts `servers` servers and returns once every one is healthy and
    /// a key-value bucket with `min(3, servers)` replicas can be created.
    /// Panics with the servers' logs when that does not happen in time.
    pub fn start(servers: usize) -> NatsCluster {
        assert!(servers > 0, "a NATS cluster needs at least one server");
        let binary = nats_server_binary();
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut cluster = NatsCluster {
                binary: binary.clone(),
                servers: Vec::new(),
                dir: TempDir::new("nats"),
            };
            match cluster.try_start(servers) {
                Ok(()) => return cluster,
                Err(StartFailure::PortTaken) => {
                    last = "a reserved cluster port was taken".to_owned();
                    continue;
                }
                Err(StartFailure::Fatal(message)) => panic!("{message}"),
            }
        }
        panic!("NATS cluster did not start in {START_ATTEMPTS} attempts: {last}");
    }

    /// The client URL of every server, `nats://127.0.0.1:PORT`, in order.
    pub fn urls(&self) -> Vec<String> {
        (0..self.servers.len()).map(|i| self.url(i)).collect()
    }

    /// The client URL of server `i`; it stays the same across restarts.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.servers[i].client_port)
    }

    /// The `server_name` of server `i` (`n0`, `n1`, …), as JetStream
    /// names a stream's leader and replicas.
    pub fn server_name(&self, i: usize) -> &str {
        &self.servers[i].name
    }

    /// Kills server `i` with SIGKILL and waits for it to exit; its store
    /// stays for [`NatsCluster::restart`].
    pub fn stop(&mut self, i: usize) {
        if let Some(mut process) = self.servers[i].process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts server `i` again with the same ports and store, and returns
    /// once it is healthy (JetStream current with the meta leader).
    pub fn restart(&mut self, i: usize) {
        self.stop(i);
        let deadline = Instant::now() + READY_TIMEOUT;
        let server = &mut self.servers[i];
        match spawn(&self.binary, server) {
            Ok(child) => server.process = Some(child),
            Err(message) => panic!("{message}"),
        }
        if let Err(message) = wait_healthy(server, deadline) {
            panic!("{message}");
        }
    }

    /// One attempt: configs with reserved cluster ports, the processes,
    /// their reported ports, health, then a JetStream probe.
    fn try_start(&mut self, count: usize) -> Result<(), StartFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let cluster_ports = if count > 1 {
            reserve_ports(count).map_err(StartFailure::Fatal)?
        } else {
            Vec::new()
        };
        for i in 0..count {
            let name = format!("n{i}");
            let dir = self.dir.join(&name);
            std::fs::create_dir_all(dir.join("store"))
                .map_err(|error| StartFailure::Fatal(format!("create {dir:?}: {error}")))?;
            self.servers.push(NatsServer {
                name,
                dir,
                client_port: 0,
                http_port: 0,
                process: None,
            });
        }
        // Client and monitoring ports are picked by each server (-1) and
        // read back, so only the cluster ports, which every config must
        // name, are reserved ahead.
        for i in 0..count {
            let server = &mut self.servers[i];
            let config = server_config(server, None, &cluster_ports, cluster_ports.get(i));
            write_config(server, &config).map_err(StartFailure::Fatal)?;
            let child = spawn(&self.binary, server).map_err(StartFailure::Fatal)?;
            server.process = Some(child);
        }
        for i in 0..count {
            self.read_ports(i, deadline)?;
            // A restart must come back on the same ports.
            let server = &self.servers[i];
            let ports = (server.client_port, server.http_port);
            let config = server_config(server, Some(ports), &cluster_ports, cluster_ports.get(i));
            write_config(server, &config).map_err(StartFailure::Fatal)?;
        }
        for server in &mut self.servers {
            wait_healthy(server, deadline).map_err(StartFailure::Fatal)?;
        }
        let replicas = count.min(3);
        probe_jetstream(self.url(0), replicas, deadline)
            .map_err(|error| StartFailure::Fatal(self.report(&error)))
    }

    /// Waits for server `i`'s ports file and records its client and
    /// monitoring ports.
    fn read_ports(&mut self, i: usize, deadline: Instant) -> Result<(), StartFailure> {
        let server = &mut self.servers[i];
        loop {
            if let Some(status) = server.exited() {
                let log = log_tail(&server.dir);
                if log.contains("address already in use") {
                    return Err(StartFailure::PortTaken);
                }
                return Err(StartFailure::Fatal(format!(
                    "nats-server {} exited ({status}) before listening; log:\n{log}",
                    server.name
                )));
            }
            if let Some(ports) = server.ports_file() {
                let client = ports.nats.first().and_then(|url| url_port(url));
                let http = ports.monitoring.first().and_then(|url| url_port(url));
                if let (Some(client), Some(http)) = (client, http) {
                    server.client_port = client;
                    server.http_port = http;
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(StartFailure::Fatal(format!(
                    "nats-server {} wrote no ports file in time; log:\n{}",
                    server.name,
                    log_tail(&server.dir)
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// `error` followed by the tail of every server's log.
    fn report(&self, error: &str) -> String {
        let mut text = format!("NATS cluster not ready: {error}\n");
        for server in &self.servers {
            text.push_str(&format!(
                "--- {} log:\n{}\n",
                server.name,
                log_tail(&server.dir)
            ));
        }
        text
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.stop(i);
        }
    }
}

impl NatsServer {
    fn config_path(&self) -> PathBuf {
        self.dir.join("nats.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("nats.log")
    }

    /// The exit status if the process has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.as_mut()?.try_wait().ok().flatten()
    }

    /// The ports file the running process wrote (`<binary>_<pid>.ports`),
    /// once it is complete.
    fn ports_file(&self) -> Option<PortsFile> {
        let pid = self.process.as_ref()?.id();
        let suffix = format!("_{pid}.ports");
        let entries = std::fs::read_dir(&self.dir).ok()?;
        let path = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.ends_with(&suffix))
            })?;
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// `ROOKERY_NATS_SERVER`, else `nats-server` on `PATH` or in `/usr/sbin`;
/// panics saying how to install it.
fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ROOKERY_NATS_SERVER") {
        return PathBuf::from(path);
    }
    // Debian's package puts it in /usr/sbin, off a plain user's PATH.
    let debian = PathBuf::from("/usr/sbin/nats-server");
    match find_on_path("nats-server").or_else(|| debian.is_file().then_some(debian)) {
        Some(path) => path,
        None => panic!(
            "nats-server not found: install it (apt-get install nats-server) \
             or set ROOKERY_NATS_SERVER"
        ),
    }
}

/// The first executable file called `name` in a `PATH` directory.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}

/// `count` distinct free loopback ports: all bound at once, then
/// released for the servers to take (the one race left, retried by
/// [`NatsCluster::start`]).
fn reserve_ports(count: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("reserve a loopback port: {error}"))?;
    listeners
        .iter()
        .map(|listener| listener.local_addr().map(|addr| addr.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("read a reserved port: {error}"))
}

/// The server's config in nats-server 2.9 syntax. `ports` are its client
/// and monitoring ports once known (-1, the server's pick, before);
/// `cluster_port` is absent for a lone server.
fn server_config(
    server: &NatsServer,
    ports: Option<(u16, u16)>,
    cluster_ports: &[u16],
    cluster_port: Option<&u16>,
) -> String {
    let (client, http) = match ports {
        Some((client, http)) => (client.to_string(), http.to_string()),
        None => ("-1".to_owned(), "-1".to_owned()),
    };
    let mut config = format!(
        "server_name: \"{name}\"\n\
         listen: \"127.0.0.1:{client}\"\n\
         http: \"127.0.0.1:{http}\"\n\
         ports_file_dir: {dir:?}\n\
         jetstream {{\n  store_dir: {store:?}\n  max_memory_store: 64MB\n  max_file_store: 256MB\n}}\n",
        name = server.name,
        dir = server.dir.display().to_string(),
        store = server.dir.join("store").display().to_string(),
    );
    if let Some(port) = cluster_port {
        // Every server lists every route, itself included (the server
        // skips it): JetStream sizes its meta group from the routes.
        let routes: Vec<String> = cluster_ports
            .iter()
            .map(|port| format!("    \"nats-route://127.0.0.1:{port}\""))
            .collect();
        config.push_str(&format!(
            "cluster {{\n  name: \"{CLUSTER_NAME}\"\n  listen: \"127.0.0.1:{port}\"\n  routes: [\n{}\n  ]\n}}\n",
            routes.join("\n")
        ));
    }
    config
}

fn write_config(server: &NatsServer, config: &str) -> Result<(), String> {
    let path = server.config_path();
    std::fs::write(&path, config).map_err(|error| format!("write {path:?}: {error}"))
}

/// Starts the server from its config, its output appended to its log.
fn spawn(binary: &Path, server: &NatsServer) -> Result<Child, String> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(server.log_path())
        .map_err(|error| format!("open the log of {}: {error}", server.name))?;
    let stderr = log
        .try_clone()
        .map_err(|error| format!("clone the log of {}: {error}", server.name))?;
    Command::new(binary)
        .arg("-c")
        .arg(server.config_path())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .spawn()
        .map_err(|error| {
            format!(
                "start {}: {error} (install nats-server or set ROOKERY_NATS_SERVER)",
                binary.display()
            )
        })
}

/// Polls the server's `/healthz` until it answers 200: it accepts
/// clients and, in a cluster, JetStream is current with an elected meta
/// leader.
fn wait_healthy(server: &mut NatsServer, deadline: Instant) -> Result<(), String> {
    loop {
        if let Some(status) = server.exited() {
            return Err(format!(
                "nats-server {} exited ({status}); log:\n{}",
                server.name,
                log_tail(&server.dir)
            ));
        }
        let answer = http_get(server.http_port, "/healthz");
        if answer.as_deref().is_ok_and(is_ok_status) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "nats-server {} not healthy in {READY_TIMEOUT:?}; last answer {answer:?}; log:\n{}",
                server.name,
                log_tail(&server.dir)
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The whole response to an HTTP/1.0 GET of `path` on a loopback port.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let timeout = Duration::from_secs(2);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    Ok(response)
}

/// True when an HTTP response's status line says 200.
fn is_ok_status(response: &str) -> bool {
    response.split_whitespace().nth(1) == Some("200")
}

/// The port at the end of a URL such as `nats://127.0.0.1:4222`.
fn url_port(url: &str) -> Option<u16> {
    url.rsplit_once(':')?.1.trim_end_matches('/').parse().ok()
}

/// The last [`LOG_TAIL_BYTES`] of the server's log in `dir`.
fn log_tail(dir: &Path) -> String {
    let mut text = Vec::new();
    if let Ok(mut file) = File::open(dir.join("nats.log")) {
        let _ = file.read_to_end(&mut text);
    }
    let start = text.len().saturating_sub(LOG_TAIL_BYTES);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Creates and deletes a key-value bucket with `replicas` replicas
/// through `url` until that works or `deadline` passes: the proof that
/// JetStream is usable, not only elected. Runs on its own thread and
/// runtime, so it may be called from inside a test's runtime.
fn probe_jetstream(url: String, replicas: usize, deadline: Instant) -> Result<(), String> {
    let probe = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("a runtime for the probe: {error}"))?;
        runtime.block_on(probe_until(url, replicas, deadline))
    });
    probe
        .join()
        .unwrap_or_else(|_| Err("the JetStream probe panicked".to_owned()))
}

/// The retry loop of [`probe_jetstream`].
async fn probe_until(url: String, replicas: usize, deadline: Instant) -> Result<(), String> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let last = match probe_once(&url, replicas, attempt).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        if Instant::now() > deadline {
            return Err(format!(
                "no key-value bucket with {replicas} replicas through {url} in \
                 {READY_TIMEOUT:?} ({attempt} attempts); last error: {last}"
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// One create and delete of a probe bucket with `replicas` replicas.
async fn probe_once(url: &str, replicas: usize, attempt: u32) -> Result<(), String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .map_err(|error| format!("connect: {error}"))?;
    let mut jetstream = async_nats::jetstream::new(client);
    jetstream.set_timeout(Duration::from_secs(2));
    let bucket = format!("harness_probe_{attempt}");
    let created = create_kv_bucket(&jetstream, &bucket, replicas).await;
    // Deleted even after a failed create, which may leave a stream behind.
    let deleted = jetstream.delete_key_value(&bucket).await;
    created.map_err(|error| format!("create bucket: {error}"))?;
    deleted.map_err(|error| format!("delete bucket: {error}"))?;
    Ok(())
}

/// Creates the key-value bucket `bucket` with `replicas` replicas, the
/// way the server makes its own (`rookery::network::claims::bucket_stream`):
/// async-nats's `create_key_value` fails on nats-server 2.9.
pub async fn create_kv_bucket(
    jetstream: &async_nats::jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<async_nats::jetstream::kv::Store, async_nats::Error> {
    jetstream
        .create_stream(rookery::network::claims::bucket_stream(bucket, replicas))
        .await?;
    Ok(jetstream.get_key_value(bucket).await?)
}
