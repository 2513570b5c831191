//! The TLS front of the plugin server.
//!
//! Terraform and OpenTofu (go-plugin "automatic mTLS") hand the plugin a client
//! certificate in `PLUGIN_CLIENT_CERT` and connect with it over TLS. That certificate is
//! self-signed with the CA flag set, and rustls-webpki refuses every CA certificate used
//! as an end entity (`CaUsedAsEndEntity`), so tf-provider's own TLS set-up fails the
//! first handshake. Instead, tf-provider serves plain gRPC on a loopback port only this
//! process knows, and this module terminates TLS in front of it: it accepts exactly the
//! certificate Terraform gave us (pinned byte for byte, with real handshake-signature
//! checks), and prints the handshake line go-plugin expects on the real stdout.
//!
//! stdout is redirected into a pipe for the whole life of the process: tf-provider's own
//! handshake line is read from it (to learn the inner port) and anything printed later
//! goes to stderr, so nothing but our handshake line ever reaches Terraform's stdout.

use std::fs::File;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};

/// go-plugin's core protocol version, first field of the handshake line.
const CORE_PROTOCOL_VERSION: u32 = 1;
/// Terraform's plugin protocol version served by tf-provider.
const PLUGIN_PROTOCOL_VERSION: u32 = 6;

/// Runs `serve_inner` (which must print go-plugin's handshake line on stdout and serve
/// plain gRPC) behind a TLS listener that accepts only `client_cert_pem`.
pub async fn serve_behind_tls<F>(client_cert_pem: &str, serve_inner: F) -> Result<()>
where
    F: Future<Output = Result<()>> + Send + 'static,
{
    let client_cert = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
        .map_err(|err| anyhow!("PLUGIN_CLIENT_CERT is not a PEM certificate: {err}"))?;
    let (real_stdout, inner_stdout) = redirect_stdout()?;

    let mut inner = tokio::spawn(serve_inner);
    let inner_addr = tokio::task::spawn_blocking(move || read_inner_address(inner_stdout))
        .await
        .context("reading the inner server's handshake")??;
    nodelay_on_inner_listener(inner_addr);

    let (acceptor, server_cert_der) = tls_acceptor(client_cert)?;
    let listener = bind_in_plugin_range().await?;
    let outer_addr = listener.local_addr()?;
    announce(real_stdout, outer_addr, &server_cert_der)?;

    loop {
        tokio::select! {
            finished = &mut inner => {
                return finished.context("the provider server task failed")?;
            }
            accepted = listener.accept() => {
                let (stream, _) = accepted.context("accepting a Terraform connection")?;
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Err(err) = relay(acceptor, stream, inner_addr).await {
                        tracing::debug!("plugin connection closed: {err:#}");
                    }
                });
            }
        }
    }
}

/// Points fd 1 at a pipe; returns the original stdout and the pipe's read end.
fn redirect_stdout() -> Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: plain POSIX calls on descriptors this function owns; fd 1 is replaced
    // atomically by dup2 and the original is kept in `real`.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            bail!("pipe: {}", std::io::Error::last_os_error());
        }
        let real = libc::dup(1);
        if real < 0 || libc::dup2(fds[1], 1) < 0 {
            bail!("redirecting stdout: {}", std::io::Error::last_os_error());
        }
        libc::close(fds[1]);
        Ok((
            File::from(OwnedFd::from_raw_fd(real)),
            File::from(OwnedFd::from_raw_fd(fds[0])),
        ))
    }
}

/// Reads tf-provider's handshake line ("1|6|tcp|127.0.0.1:PORT|grpc|") and then keeps
/// forwarding whatever else reaches stdout to stderr, on a thread of its own.
fn read_inner_address(pipe: File) -> Result<SocketAddr> {
    let mut reader = BufReader::new(pipe);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .context("the inner server printed no handshake")?;
    let address = line
        .trim()
        .split('|')
        .nth(3)
        .ok_or_else(|| anyhow!("unexpected handshake line from the inner server: {line:?}"))?
        .parse()
        .context("the inner server's address")?;
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    Ok(address)
}

/// tf-provider's inner server accepts on a listener of its own, and its sockets would send
/// gRPC's small frames under Nagle's algorithm: every answer then waits for the relay's delayed
/// ACK, ~40 ms per round trip and per provider start (`make bench` saw it). Linux hands a
/// listener's TCP_NODELAY down to the sockets it accepts, so set it on that listener, found
/// among this process's descriptors by its address. Best effort: without /proc, nothing changes.
fn nodelay_on_inner_listener(inner: SocketAddr) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        if local_ipv4_address(fd) == Some(inner) {
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on a descriptor of this process that getsockname just
            // identified as the inner server's socket; the option value outlives the call.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    std::ptr::addr_of!(one).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

/// The local IPv4 address of `fd` when it is an IPv4 socket.
fn local_ipv4_address(fd: libc::c_int) -> Option<SocketAddr> {
    // SAFETY: getsockname writes at most `len` bytes into the zeroed storage it is given.
    let (storage, len) = unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(fd, std::ptr::addr_of_mut!(storage).cast(), &mut len) != 0 {
            return None;
        }
        (storage, len)
    };
    if libc::c_int::from(storage.ss_family) != libc::AF_INET
        || (len as usize) < std::mem::size_of::<libc::sockaddr_in>()
    {
        return None;
    }
    // SAFETY: the family is AF_INET and the kernel wrote a whole sockaddr_in.
    let v4 = unsafe { &*std::ptr::addr_of!(storage).cast::<libc::sockaddr_in>() };
    let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(v4.sin_port))))
}

fn tls_acceptor(
    client_cert: CertificateDer<'static>,
) -> Result<(tokio_rustls::TlsAcceptor, Vec<u8>)> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));

    let key = rcgen::KeyPair::generate().context("generating the server key")?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .context("server certificate parameters")?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::days(365);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params
        .self_signed(&key)
        .context("signing the server certificate")?;
    let cert_der = cert.der().to_vec();

    let verifier = Arc::new(PinnedClientCertificate {
        expected: client_cert,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .context("TLS server configuration")?;
    // gRPC runs over HTTP/2, and go's gRPC client insists on negotiating it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), cert_der))
}

/// Binds 127.0.0.1 within PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT when Terraform sets them.
async fn bind_in_plugin_range() -> Result<TcpListener> {
    let port_var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u16>().ok());
    match (port_var("PLUGIN_MIN_PORT"), port_var("PLUGIN_MAX_PORT")) {
        (Some(min), Some(max)) if min <= max => {
            for port in min..=max {
                if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                    return Ok(listener);
                }
            }
            bail!("no free port on 127.0.0.1 between {min} and {max}")
        }
        _ => Ok(TcpListener::bind(("127.0.0.1", 0)).await?),
    }
}

fn announce(mut stdout: File, address: SocketAddr, server_cert_der: &[u8]) -> Result<()> {
    let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(server_cert_der);
    writeln!(
        stdout,
        "{CORE_PROTOCOL_VERSION}|{PLUGIN_PROTOCOL_VERSION}|tcp|{address}|grpc|{cert}"
    )?;
    stdout.flush()?;
    // Keep the descriptor open: go-plugin treats a closed stdout as the plugin exiting.
    std::mem::forget(stdout);
    Ok(())
}

async fn relay(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    inner: SocketAddr,
) -> Result<()> {
    // gRPC sends many small frames: without TCP_NODELAY, Nagle's algorithm and the peer's
    // delayed ACK stall each round trip by ~40 ms (measured by `make bench`).
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let mut tls = acceptor.accept(stream).await.context("TLS handshake")?;
    let mut plain = TcpStream::connect(inner).await.context("inner server")?;
    plain.set_nodelay(true).context("TCP_NODELAY")?;
    tokio::io::copy_bidirectional(&mut tls, &mut plain).await?;
    Ok(())
}

/// Accepts exactly one client certificate: the one Terraform put in PLUGIN_CLIENT_CERT.
/// The handshake signature is still verified, so only the holder of its key gets in.
#[derive(Debug)]
struct PinnedClientCertificate {
    expected: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
