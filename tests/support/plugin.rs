//! Starts the provider binary the way Terraform and OpenTofu do (go-plugin's environment, an
//! automatic-mTLS client certificate that is a self-signed CA certificate, as go-plugin makes
//! it) and connects to it over gRPC, with or without that certificate. Used by the protocol
//! tests, which speak to the server without Terraform.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Channel, Endpoint, Uri};
use wait_timeout::ChildExt;

/// go-plugin's magic cookie for Terraform plugins (its value is public and fixed).
const MAGIC_COOKIE: (&str, &str) = (
    "TF_PLUGIN_MAGIC_COOKIE",
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
);

/// A client identity shaped like go-plugin's: self-signed, with the CA flag set (go-plugin uses
/// ECDSA P-521, which rcgen does not generate; the key type does not matter to the pinning).
pub struct ClientIdentity {
    pub cert_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl ClientIdentity {
    pub fn generate() -> ClientIdentity {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "HashiCorp");
        let cert = params.self_signed(&key).unwrap();
        ClientIdentity {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }
}

/// The provider process and what its handshake line said.
pub struct Plugin {
    pub child: Child,
    pub handshake: String,
    pub address: SocketAddr,
    pub server_cert_der: Vec<u8>,
    pub client: ClientIdentity,
}

impl Plugin {
    /// Starts the provider with go-plugin's environment and reads its handshake line.
    pub fn start() -> Plugin {
        let client = ClientIdentity::generate();
        let mut child = plugin_command(Some(&client.cert_pem))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("read the handshake line");
        let handshake = line.trim_end().to_string();
        let fields: Vec<&str> = handshake.split('|').collect();
        assert_eq!(fields.len(), 6, "handshake line {handshake:?}");
        let address = fields[3].parse().expect("handshake address");
        let server_cert_der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(fields[5])
            .expect("handshake certificate");
        Plugin {
            child,
            handshake,
            address,
            server_cert_der,
            client,
        }
    }

    /// A gRPC channel over TLS that presents `identity` (None: no client certificate) and
    /// accepts only the server certificate of the handshake.
    pub async fn connect_as(&self, identity: Option<&ClientIdentity>) -> Result<Channel, String> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let builder = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer(self.server_cert_der.clone())));
        let mut config = match identity {
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(id.cert_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
                )
                .map_err(|e| e.to_string())?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let address = self.address;
        let connect = tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(address).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), tcp)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
            }
        });
        Endpoint::from_static("http://localhost")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector(connect)
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// A channel with Terraform's own client certificate.
    pub async fn connect(&self) -> Channel {
        self.connect_as(Some(&self.client))
            .await
            .expect("connect with Terraform's certificate")
    }

    /// A plaintext (h2c) gRPC channel to the same address, as a local attacker would try.
    pub async fn connect_plaintext(&self) -> Result<Channel, String> {
        Endpoint::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(|e| format!("{e:?}"))
    }

    /// Waits up to `seconds` for the process to exit; its exit status, or None if it runs on.
    pub fn wait_exit(&mut self, seconds: u64) -> Option<std::process::ExitStatus> {
        self.child
            .wait_timeout(Duration::from_secs(seconds))
            .expect("wait for the provider")
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provider binary with go-plugin's environment (and nothing of the host's AWS or TF
/// settings); `client_cert_pem` is PLUGIN_CLIENT_CERT.
pub fn plugin_command(client_cert_pem: Option<&str>) -> Command {
    let mut command = Command::new(super::tf::provider_binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(MAGIC_COOKIE.0, MAGIC_COOKIE.1)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(pem) = client_cert_pem {
        command.env("PLUGIN_CLIENT_CERT", pem);
    }
    command
}

/// Accepts exactly one server certificate (the handshake's), checking handshake signatures.
#[derive(Debug)]
struct PinnedServer(Vec<u8>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the handshake's certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The TCP sockets in LISTEN state that process `pid` holds, as "ip:port" strings, read from
/// /proc (the process's socket inodes matched against /proc/net/tcp and tcp6).
pub fn listening_sockets(pid: u32) -> Vec<String> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the provider's descriptors")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect();
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // cols: sl local_address rem_address st ... inode (index 9); st 0A is LISTEN.
            if cols.len() > 9 && cols[3] == "0A" && inodes.iter().any(|i| i == cols[9]) {
                listening.push(decode_proc_address(cols[1]));
            }
        }
    }
    listening
}

/// "0100007F:2711" (little-endian IPv4 hex, port hex) to "127.0.0.1:10001"; IPv6 stays hex.
fn decode_proc_address(field: &str) -> String {
    let (ip, port) = field.split_once(':').unwrap();
    let port = u16::from_str_radix(port, 16).unwrap();
    if ip.len() == 8 {
        let n = u32::from_str_radix(ip, 16).unwrap();
        let b = n.to_le_bytes();
        format!("{}.{}.{}.{}:{port}", b[0], b[1], b[2], b[3])
    } else {
        format!("[{ip}]:{port}")
    }
}
