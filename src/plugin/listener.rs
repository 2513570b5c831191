//! The plugin's one listening socket: bound on 127.0.0.1 in Terraform's port range, every
//! connection TLS-terminated (see [`super::tls`]) before gRPC sees a byte. There is no
//! plaintext listener anywhere in the process.

use std::io;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

/// A TLS handshake that has not finished by then is dropped: a silent peer must not hold a
/// task and a descriptor for ever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error such as EMFILE, so that a full descriptor table does not spin
/// the loop; the listener stays open and accepting resumes.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Binds 127.0.0.1 within PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT when Terraform sets them, as
/// go-plugin servers do; any free port otherwise.
pub async fn bind_in_plugin_range(min: Option<u16>, max: Option<u16>) -> Result<TcpListener> {
    match (min, max) {
        (Some(min), Some(max)) if min <= max => {
            for port in min..=max {
                if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                    return Ok(listener);
                }
            }
            bail!(
                "no free port on 127.0.0.1 between PLUGIN_MIN_PORT {min} and PLUGIN_MAX_PORT {max}"
            )
        }
        _ => Ok(TcpListener::bind(("127.0.0.1", 0)).await?),
    }
}

/// The stream of TLS connections that tonic serves. Each accepted socket gets TCP_NODELAY
/// (gRPC sends small frames, and Nagle's algorithm with the peer's delayed ACK would stall
/// each round trip by ~40 ms) and its handshake runs in a task of its own, so one slow peer
/// never delays another.
pub fn tls_connections(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> ReceiverStream<io::Result<TlsStream<TcpStream>>> {
    let (sender, receiver) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!("accepting a plugin connection failed: {err}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let handshaken = sender.clone();
            tokio::spawn(async move {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!("TCP_NODELAY: {err}");
                }
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = handshaken.send(Ok(tls)).await;
                    }
                    Ok(Err(err)) => tracing::debug!("plugin TLS handshake refused: {err}"),
                    Err(_) => tracing::debug!("plugin TLS handshake timed out"),
                }
            });
            if sender.is_closed() {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}
