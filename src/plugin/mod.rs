//! Our tfplugin6 server: what Terraform and OpenTofu talk to when they start the provider.
//!
//! tf-provider stays the framework our Terraform types are written in (its typed `Provider`,
//! `Resource`, `DataSource` and `Function` traits); this module owns the wire: the protocol
//! (proto/tfplugin6.proto at 6.8, with ephemeral resources and functions), go-plugin's
//! handshake and services, and TLS with a client certificate pinned to the one Terraform gave
//! us, on a single listener. Module map:
//! - `proto`: generated gRPC code; `handshake`: the stdout line go-plugin reads;
//! - `logging`: the PLUGIN_LOG_FILE trace log;
//! - `tls`: certificates and the pinned verifier; `listener`: the one socket and its accept loop;
//! - `codec`: values to and from the types' serde states; `convert`: schemas and diagnostics;
//! - `handlers`: one adapter per kind of type; `registry`: what is served; `ephemeral`: the
//!   `EphemeralResource` trait; `server`: the tfplugin6 service; `go_plugin`: go-plugin's services.

mod codec;
mod convert;
pub mod ephemeral;
mod go_plugin;
mod handlers;
mod handshake;
mod listener;
mod logging;
pub mod proto;
pub mod registry;
mod server;
mod tls;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::watch;

pub use registry::Registry;

/// go-plugin's name for the health-checked service.
const HEALTH_SERVICE: &str = "plugin";
/// Largest message accepted from Terraform (Terraform's own client allows 64 MiB).
const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// After Shutdown, how long answers still in flight (Shutdown's own among them) may take.
/// go-plugin kills a plugin that has not exited 2 s after asking.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// What Terraform tells its plugin through the environment.
pub struct PluginEnvironment {
    /// PLUGIN_CLIENT_CERT: the PEM certificate Terraform will present.
    pub client_cert: Option<String>,
    /// PLUGIN_PROTOCOL_VERSIONS: the plugin protocol versions Terraform speaks.
    pub protocol_versions: Option<String>,
    /// PLUGIN_MIN_PORT / PLUGIN_MAX_PORT.
    pub port_range: (Option<u16>, Option<u16>),
    /// PLUGIN_LOG_FILE: where the provider's own trace log goes, if anywhere.
    pub log_file: Option<String>,
}

impl PluginEnvironment {
    pub fn from_process() -> Self {
        let port = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u16>().ok());
        PluginEnvironment {
            client_cert: std::env::var("PLUGIN_CLIENT_CERT")
                .ok()
                .filter(|v| !v.is_empty()),
            protocol_versions: std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok(),
            port_range: (port("PLUGIN_MIN_PORT"), port("PLUGIN_MAX_PORT")),
            log_file: std::env::var("PLUGIN_LOG_FILE").ok(),
        }
    }
}

/// Serves `registry` until Terraform asks the plugin to exit (go-plugin's Shutdown).
///
/// There is no plaintext mode: without Terraform's client certificate the server refuses to
/// start, since anyone on the machine could otherwise drive the provider and its credentials.
pub async fn serve(registry: Registry, env: PluginEnvironment) -> Result<()> {
    logging::init(env.log_file.as_deref())?;
    handshake::check_protocol_versions(env.protocol_versions.as_deref())?;
    let Some(pem) = env.client_cert else {
        bail!(
            "PLUGIN_CLIENT_CERT is not set: this provider only serves Terraform or OpenTofu over \
             mutual TLS, and they set it when they start a plugin. Run it through `terraform` or \
             `tofu`; run `terraform-provider-gcpfed --help` for its command-line mode."
        );
    };
    let (acceptor, server_cert) = tls::acceptor(tls::client_certificate(&pem)?)?;
    let listener = listener::bind_in_plugin_range(env.port_range.0, env.port_range.1).await?;
    let address = listener.local_addr().context("the listener's address")?;

    let (exit, exiting) = watch::channel(false);
    let (mut health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(HEALTH_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    let provider = proto::tfplugin6::provider_server::ProviderServer::new(
        server::ProviderService::new(registry),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(
            proto::go_plugin::grpc_controller_server::GrpcControllerServer::new(
                go_plugin::Controller { exit },
            ),
        )
        .add_service(proto::go_plugin::grpc_stdio_server::GrpcStdioServer::new(
            go_plugin::Stdio {
                exit: exiting.clone(),
            },
        ))
        .add_service(provider);
    let connections = listener::tls_connections(listener, acceptor);

    handshake::announce(address, &server_cert)?;
    let mut shutdown_signal = exiting.clone();
    let server = router.serve_with_incoming_shutdown(connections, async move {
        let _ = shutdown_signal.wait_for(|exit| *exit).await;
    });
    tokio::pin!(server);
    let mut exiting = exiting;
    tokio::select! {
        served = &mut server => served.context("the plugin server stopped"),
        _ = exiting.wait_for(|exit| *exit) => {
            // Let the answers in flight reach Terraform, but never wait past the grace.
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await;
            Ok(())
        }
    }
}
