//! Generates the gRPC code of our plugin server from proto/ (Terraform's tfplugin6 and the
//! go-plugin services). Clients are generated too: the protocol tests drive the server with them.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_protos(
            &["proto/tfplugin6.proto", "proto/go_plugin.proto"],
            &["proto"],
        )?;
    Ok(())
}
