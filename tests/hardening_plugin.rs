//! Issue 12, "Robustness of the plugin server": the provider binary started as go-plugin starts
//! it (support::plugin), attacked at the socket level by a local process, then asked to serve a
//! proper client holding Terraform's certificate.
//!
//! - an accept error (EMFILE: the descriptor table is full) does not stop the server;
//! - TLS handshakes time out: peers that connect and send nothing are disconnected, and do not
//!   keep Terraform out meanwhile;
//! - a server that cannot start (no free port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT) exits with a
//!   message instead of hanging before its handshake line.
//!
//! `GCPFED_PROVIDER_BINARY` points these tests at another build (e.g. the main from before the
//! plugin layer was rewritten). The proper client speaks tfplugin6 through this crate's public
//! generated client, `gcpfed::plugin::proto::tfplugin6::provider_client::ProviderClient` (as
//! tests/plugin_protocol.rs does); the wire protocol is Terraform's, so any build can be tested.

mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gcpfed::plugin::proto::tfplugin6 as tf;
use support::hardening_io::{open_descriptors, start_plugin_with};
use support::plugin::{plugin_command, ClientIdentity, Plugin};
use tf::provider_client::ProviderClient;
use wait_timeout::ChildExt;

/// How long a proper client may take to connect and get the schema (generous: a debug build on
/// a loaded 2-core machine).
const SERVE_BOUND: Duration = Duration::from_secs(30);

/// Drains the provider's stderr into a string shared with the test (so that a chatty server
/// never blocks on a full pipe, and a failure can show what it said).
fn drain_stderr(plugin: &mut Plugin) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    if let Some(mut stderr) = plugin.child.stderr.take() {
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    text
}

/// Connects with Terraform's certificate and asks for the provider schema; the error says what
/// failed.
async fn serve_terraform(plugin: &Plugin) -> Result<usize, String> {
    let attempt = async {
        let channel = plugin.connect_as(Some(&plugin.client)).await?;
        let schema = ProviderClient::new(channel)
            .get_provider_schema(tf::get_provider_schema::Request {})
            .await
            .map_err(|e| format!("GetProviderSchema: {e}"))?
            .into_inner();
        Ok::<usize, String>(schema.resource_schemas.len())
    };
    match tokio::time::timeout(SERVE_BOUND, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no schema within {SERVE_BOUND:?}")),
    }
}

fn alive(plugin: &mut Plugin) -> Result<(), String> {
    match plugin.child.try_wait().expect("try_wait") {
        None => Ok(()),
        Some(status) => Err(format!("the provider exited ({status})")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_error_from_a_full_descriptor_table_does_not_stop_the_provider() {
    const LIMIT: u64 = 64;
    let mut plugin = start_plugin_with(|command| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let stderr = drain_stderr(&mut plugin);
    let pid = plugin.child.id();
    let baseline = open_descriptors(pid);
    assert!(
        (baseline as u64) + 8 < LIMIT,
        "the provider starts with {baseline} descriptors open, too close to the limit of {LIMIT}"
    );

    // Connections the kernel completes into the backlog: the provider accepts until its table
    // is full, then every accept fails with EMFILE. (A refused connect means the listener is
    // gone: the provider stopped.)
    let mut most = baseline;
    let mut flood: Vec<TcpStream> = Vec::new();
    for _ in 0..2 * LIMIT {
        match TcpStream::connect(plugin.address) {
            Ok(stream) => flood.push(stream),
            Err(_) => break,
        }
        most = most.max(open_descriptors(pid));
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10)
        && (most as u64) < LIMIT
        && alive(&mut plugin).is_ok()
    {
        most = most.max(open_descriptors(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Accepts keep failing for a while.
    std::thread::sleep(Duration::from_secs(1));
    let died_during_flood = alive(&mut plugin);
    if died_during_flood.is_ok() {
        // (`>=`: a descriptor inherited above the limit counts too.)
        assert!(
            most as u64 >= LIMIT,
            "the provider's descriptor table never filled (at most {most} of {LIMIT} open): the attack did not happen"
        );
    }
    let opened = flood.len();
    drop(flood);

    let served = match died_during_flood {
        Ok(()) => serve_terraform(&plugin).await,
        Err(e) => Err(e),
    };
    if let Err(reason) = served {
        // Give a dying server a moment to finish its message.
        std::thread::sleep(Duration::from_millis(300));
        panic!(
            "after {opened} connections filled the provider's descriptor table ({most} of {LIMIT} descriptors seen open), Terraform could no longer use it: {reason}; {}\n--- provider stderr ---\n{}",
            alive(&mut plugin).err().unwrap_or_else(|| "the process is still running".into()),
            stderr.lock().unwrap()
        );
    }
    alive(&mut plugin).expect("the provider is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_time_out_in_the_tls_handshake_and_do_not_keep_terraform_out() {
    const SILENT: usize = 20;
    /// Far above any sensible handshake timeout; only bounds the wait.
    const CLOSE_BOUND: Duration = Duration::from_secs(120);
    let mut plugin = Plugin::start();
    let stderr = drain_stderr(&mut plugin);
    let silent: Vec<TcpStream> = (0..SILENT)
        .map(|i| {
            TcpStream::connect(plugin.address)
                .unwrap_or_else(|e| panic!("silent connection {i}: {e}"))
        })
        .collect();

    // Meanwhile, Terraform connects and is served.
    if let Err(reason) = serve_terraform(&plugin).await {
        panic!(
            "with {SILENT} silent peers connected, Terraform could not use the provider: {reason}\n--- provider stderr ---\n{}",
            stderr.lock().unwrap()
        );
    }

    // Every silent peer is disconnected by the server (EOF or reset), without sending a byte.
    let results = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + CLOSE_BOUND;
        silent
            .into_iter()
            .enumerate()
            .map(|(i, mut stream)| {
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10));
                stream.set_read_timeout(Some(left)).unwrap();
                let mut buf = [0u8; 64];
                match stream.read(&mut buf) {
                    Ok(0) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
                    Ok(n) => Err(format!("silent peer {i}: the server sent {n} bytes")),
                    Err(e) => Err(format!(
                        "silent peer {i}: still connected after {CLOSE_BOUND:?} ({e})"
                    )),
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("reader task");
    let open: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        open.is_empty(),
        "TLS handshakes have no timeout: {} of {SILENT} silent peers were never disconnected:\n{}",
        open.len(),
        open.join("\n")
    );
    alive(&mut plugin).expect("the provider is still running");
}

#[test]
fn a_provider_that_cannot_bind_its_port_range_exits_with_a_message() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port to take");
    let port = taken.local_addr().unwrap().port().to_string();
    let client = ClientIdentity::generate();
    let mut child = plugin_command(Some(&client.cert_pem))
        .env("PLUGIN_MIN_PORT", &port)
        .env("PLUGIN_MAX_PORT", &port)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the provider");
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .expect("wait for the provider");
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut stdout);
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    drop(taken);
    let status = status.unwrap_or_else(|| {
        panic!(
            "the provider hangs when 127.0.0.1:{port}, its only allowed port, is taken\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        )
    });
    assert!(
        !status.success(),
        "exited 0 without a port\n--- stderr ---\n{stderr}"
    );
    assert!(
        !stdout.contains("|tcp|"),
        "a handshake line without a server: {stdout:?}"
    );
    assert!(
        stderr.contains("PLUGIN_MIN_PORT") && stderr.contains(&port),
        "the message does not name the port range (PLUGIN_MIN_PORT..PLUGIN_MAX_PORT = {port}):\n{stderr}"
    );
}
