//! go-plugin's handshake: the one line a plugin prints on stdout to tell Terraform where and
//! how to connect. Its fields: go-plugin's core protocol version, the application protocol
//! version (Terraform's plugin protocol), network, address, protocol ("grpc"), and the
//! server's certificate (base64 DER, no padding) that Terraform then pins.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use base64::Engine;

/// go-plugin's core protocol version.
const CORE_PROTOCOL_VERSION: u32 = 1;
/// Terraform's plugin protocol major version that this server speaks.
pub const PLUGIN_PROTOCOL_VERSION: u32 = 6;

/// The handshake line, without its newline.
pub fn line(address: SocketAddr, server_cert_der: &[u8]) -> String {
    let cert = base64::engine::general_purpose::STANDARD_NO_PAD.encode(server_cert_der);
    format!("{CORE_PROTOCOL_VERSION}|{PLUGIN_PROTOCOL_VERSION}|tcp|{address}|grpc|{cert}")
}

/// Refuses to start when the client lists the protocol versions it speaks
/// (`PLUGIN_PROTOCOL_VERSIONS`, e.g. "5,6") and ours is not among them.
pub fn check_protocol_versions(offered: Option<&str>) -> Result<()> {
    let Some(offered) = offered.filter(|v| !v.trim().is_empty()) else {
        return Ok(());
    };
    let ours = PLUGIN_PROTOCOL_VERSION.to_string();
    if offered.split(',').any(|v| v.trim() == ours) {
        return Ok(());
    }
    bail!(
        "this provider speaks plugin protocol {ours}, and the client offers only {offered:?}: \
         use Terraform >= 1.0 or OpenTofu >= 1.6"
    )
}

/// Prints the handshake line on the process's stdout (go-plugin reads nothing else there).
pub fn announce(address: SocketAddr, server_cert_der: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", line(address, server_cert_der))
        .and_then(|()| stdout.flush())
        .context("writing the plugin handshake to stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_has_go_plugins_six_fields() {
        let address: SocketAddr = "127.0.0.1:10001".parse().unwrap();
        // 0xfb 0xff encodes to "+/8" with padding "=": standard alphabet, padding removed.
        assert_eq!(
            line(address, &[0xfb, 0xff]),
            "1|6|tcp|127.0.0.1:10001|grpc|+/8"
        );
    }

    #[test]
    fn protocol_version_six_must_be_offered_when_a_list_is_given() {
        assert!(check_protocol_versions(None).is_ok());
        assert!(check_protocol_versions(Some("")).is_ok());
        assert!(check_protocol_versions(Some("5,6")).is_ok());
        assert!(check_protocol_versions(Some("6")).is_ok());
        let err = check_protocol_versions(Some("4,5"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("protocol 6") && err.contains("4,5"), "{err}");
    }
}
