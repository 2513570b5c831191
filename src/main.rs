//! Entry point: serve the plugin when Terraform or OpenTofu starts us, otherwise
//! act as a command-line tool (so running the binary by hand never hangs).

use std::process::ExitCode;

/// Terraform sets this variable (to a fixed value) for every plugin it starts.
const PLUGIN_MAGIC_COOKIE: &str = "TF_PLUGIN_MAGIC_COOKIE";

fn main() -> ExitCode {
    if std::env::var_os(PLUGIN_MAGIC_COOKIE).is_some() {
        serve_plugin()
    } else {
        gcpfed::cli::run(std::env::args_os())
    }
}

fn serve_plugin() -> ExitCode {
    // tf-provider would set up TLS itself from this certificate, which fails (see
    // plugin_tls); take it before any thread starts and terminate TLS ourselves.
    let client_cert = std::env::var("PLUGIN_CLIENT_CERT")
        .ok()
        .filter(|pem| !pem.is_empty());
    std::env::remove_var("PLUGIN_CLIENT_CERT");
    // tf-provider appends a captured backtrace to every diagnostic when backtraces are
    // enabled (RUST_BACKTRACE=1 is common on CI machines): hundreds of lines under each
    // error message. RUST_LIB_BACKTRACE=0 turns off that capture and keeps panic backtraces.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // Both rustls back ends (aws-lc via the AWS SDK, ring via reqwest) are linked in;
    // without an explicit default, tonic's automatic mTLS with Terraform fails at start-up.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("terraform-provider-gcpfed: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        match client_cert {
            Some(pem) => {
                gcpfed::plugin_tls::serve_behind_tls(&pem, gcpfed::provider::serve()).await
            }
            None => gcpfed::provider::serve().await,
        }
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // stderr only: stdout belongs to the plugin handshake.
            eprintln!("terraform-provider-gcpfed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
