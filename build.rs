//! Generates the gRPC code of our plugin server from proto/ (Terraform's tfplugin6 and the
//! go-plugin services). Clients are generated too: the protocol tests drive the server with them.
//! Also embeds the commit the binary is built from (`--version`), so a release binary says
//! exactly which source it came from.

use std::path::Path;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(
            &["proto/tfplugin6.proto", "proto/go_plugin.proto"],
            &["proto"],
        )?;
    println!("cargo:rustc-env=GCPFED_COMMIT={}", commit());
    Ok(())
}

/// The commit: `GCPFED_COMMIT` when set (a build from a source archive, which has no .git),
/// else `git rev-parse HEAD`, else "unknown". Re-run only when HEAD moves, not on every edit.
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=GCPFED_COMMIT");
    if let Ok(commit) = std::env::var("GCPFED_COMMIT") {
        if !commit.trim().is_empty() {
            return commit.trim().to_string();
        }
    }
    for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(watched).exists() {
            println!("cargo:rerun-if-changed={watched}");
        }
    }
    Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|hash| hash.trim().to_string())
        .filter(|hash| !hash.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}
