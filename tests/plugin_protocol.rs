//! The plugin server at the protocol level, without Terraform: the provider binary started as
//! go-plugin starts it, driven over gRPC by our generated client. These are the attacks a local
//! user could try (plaintext, another certificate, no certificate) and the protocol rules the
//! server owns (one listener, diagnostics with paths, a failed destroy keeps its state, Shutdown).

mod support;

use gcpfed::plugin::proto::go_plugin as gp;
use gcpfed::plugin::proto::tfplugin6 as tf;
use serde_json::{json, Value as Json};
use support::plugin::{listening_sockets, plugin_command, ClientIdentity, Plugin};
use tf::provider_client::ProviderClient;

fn msgpack(value: &Json) -> tf::DynamicValue {
    tf::DynamicValue {
        msgpack: rmp_serde::to_vec_named(value).unwrap(),
        json: Vec::new(),
    }
}

/// An object with every attribute of `block` null and every nested block empty, with
/// `values` on top: what Terraform sends for a configuration that sets only `values`.
fn object(block: &tf::schema::Block, values: Json) -> Json {
    let mut object = serde_json::Map::new();
    for a in &block.attributes {
        object.insert(a.name.clone(), Json::Null);
    }
    for b in &block.block_types {
        object.insert(b.type_name.clone(), json!([]));
    }
    for (k, v) in values.as_object().unwrap() {
        object.insert(k.clone(), v.clone());
    }
    Json::Object(object)
}

async fn schema(
    client: &mut ProviderClient<tonic::transport::Channel>,
) -> tf::get_provider_schema::Response {
    client
        .get_provider_schema(tf::get_provider_schema::Request {})
        .await
        .expect("GetProviderSchema")
        .into_inner()
}

fn attribute_names(path: &Option<tf::AttributePath>) -> Vec<String> {
    use tf::attribute_path::step::Selector;
    path.iter()
        .flat_map(|p| &p.steps)
        .filter_map(|s| match &s.selector {
            Some(Selector::AttributeName(n)) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_only_listening_socket_is_the_one_in_the_handshake() {
    let plugin = Plugin::start();
    assert!(
        plugin.handshake.starts_with("1|6|tcp|127.0.0.1:"),
        "{}",
        plugin.handshake
    );
    assert!(plugin.handshake.ends_with(&{
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(&plugin.server_cert_der)
    }));
    // Terraform's connection works before the socket census, so every listener exists by then.
    let mut client = ProviderClient::new(plugin.connect().await);
    schema(&mut client).await;
    assert_eq!(
        listening_sockets(plugin.child.id()),
        vec![plugin.address.to_string()],
        "the provider must hold exactly one listening socket"
    );
}

#[tokio::test]
async fn plaintext_grpc_is_refused() {
    let plugin = Plugin::start();
    let result = match plugin.connect_plaintext().await {
        Ok(channel) => ProviderClient::new(channel)
            .get_metadata(tf::get_metadata::Request {})
            .await
            .map(|_| ())
            .map_err(|status| status.to_string()),
        Err(err) => Err(err),
    };
    assert!(result.is_err(), "a plaintext gRPC call must fail");
}

#[tokio::test]
async fn any_other_client_certificate_or_none_is_refused() {
    let plugin = Plugin::start();
    let stranger = ClientIdentity::generate();
    for identity in [Some(&stranger), None] {
        let result = match plugin.connect_as(identity).await {
            Ok(channel) => ProviderClient::new(channel)
                .get_metadata(tf::get_metadata::Request {})
                .await
                .map(|_| ())
                .map_err(|status| status.to_string()),
            Err(err) => Err(err),
        };
        assert!(
            result.is_err(),
            "a TLS client with {} must not get in",
            if identity.is_some() {
                "another certificate"
            } else {
                "no certificate"
            }
        );
    }
    // The server is still there for Terraform afterwards.
    let mut client = ProviderClient::new(plugin.connect().await);
    schema(&mut client).await;
}

#[tokio::test]
async fn without_terraforms_certificate_the_server_does_not_start() {
    let output = plugin_command(None).output().expect("run the provider");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no handshake line without mTLS");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PLUGIN_CLIENT_CERT"), "{stderr}");
}

#[tokio::test]
async fn metadata_schema_and_health_describe_every_type() {
    let plugin = Plugin::start();
    let channel = plugin.connect().await;
    let mut client = ProviderClient::new(channel.clone());
    let metadata = client
        .get_metadata(tf::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    let resources: Vec<String> = metadata
        .resources
        .into_iter()
        .map(|r| r.type_name)
        .collect();
    let data_sources: Vec<String> = metadata
        .data_sources
        .into_iter()
        .map(|d| d.type_name)
        .collect();
    assert!(
        resources.contains(&"gcpfed_role".to_string()),
        "{resources:?}"
    );
    assert!(
        data_sources.contains(&"gcpfed_credentials".to_string()),
        "{data_sources:?}"
    );
    assert!(metadata.server_capabilities.unwrap().plan_destroy);

    let schema = schema(&mut client).await;
    assert!(schema.diagnostics.is_empty(), "{:?}", schema.diagnostics);
    let role = &schema.resource_schemas["gcpfed_role"];
    let block = role.block.as_ref().unwrap();
    let name = block.attributes.iter().find(|a| a.name == "name").unwrap();
    assert!(name.required);
    assert_eq!(name.r#type, br#""string""#);
    let provider = schema.provider.unwrap().block.unwrap();
    let secret = provider
        .attributes
        .iter()
        .find(|a| a.name == "secret_key")
        .unwrap();
    assert!(secret.sensitive && secret.optional);

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn validation_errors_arrive_as_diagnostics_with_their_attribute_path() {
    let plugin = Plugin::start();
    let mut client = ProviderClient::new(plugin.connect().await);
    let provider_block = schema(&mut client).await.provider.unwrap().block.unwrap();
    let config = object(&provider_block, json!({ "max_retries": -1 }));
    let answer = client
        .validate_provider_config(tf::validate_provider_config::Request {
            config: Some(msgpack(&config)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.diagnostics.len(), 1, "{:?}", answer.diagnostics);
    let diagnostic = &answer.diagnostics[0];
    assert_eq!(diagnostic.severity, tf::diagnostic::Severity::Error as i32);
    assert_eq!(attribute_names(&diagnostic.attribute), vec!["max_retries"]);
    assert!(
        diagnostic.detail.contains("0 to 100"),
        "{}",
        diagnostic.detail
    );

    let answer = client
        .validate_resource_config(tf::validate_resource_config::Request {
            type_name: "gcpfed_nothing".into(),
            config: Some(msgpack(&json!({}))),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer.diagnostics[0].summary.contains("gcpfed_nothing"),
        "{:?}",
        answer.diagnostics
    );
}

#[tokio::test]
async fn a_failed_destroy_keeps_the_prior_state() {
    let plugin = Plugin::start();
    let mut client = ProviderClient::new(plugin.connect().await);
    let schema = schema(&mut client).await;
    // IAM at a port nobody listens on: every IAM call fails at once.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider_config = object(
        schema.provider.as_ref().unwrap().block.as_ref().unwrap(),
        json!({
            "region": "us-east-1",
            "access_key": "AKIDPROTOCOLTEST",
            "secret_key": "protocol-test-secret",
            "max_retries": 0,
            "endpoints": [{ "iam": format!("http://127.0.0.1:{closed_port}"), "sts": null }],
        }),
    );
    let configured = client
        .configure_provider(tf::configure_provider::Request {
            terraform_version: "1.15.5".into(),
            config: Some(msgpack(&provider_config)),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        configured.diagnostics.is_empty(),
        "{:?}",
        configured.diagnostics
    );

    let role_block = schema.resource_schemas["gcpfed_role"]
        .block
        .clone()
        .unwrap();
    let prior = msgpack(&object(
        &role_block,
        json!({
            "id": "gcpfed-protocol-test",
            "name": "gcpfed-protocol-test",
            "path": "/",
            "audience": "aud",
            "service_account_unique_ids": ["123456789012345678901"],
            "max_session_duration": 3600,
        }),
    ));
    let answer = client
        .apply_resource_change(tf::apply_resource_change::Request {
            type_name: "gcpfed_role".into(),
            prior_state: Some(prior.clone()),
            planned_state: Some(msgpack(&Json::Null)),
            config: Some(msgpack(&Json::Null)),
            planned_private: Vec::new(),
            provider_meta: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        answer
            .diagnostics
            .iter()
            .any(|d| d.severity == tf::diagnostic::Severity::Error as i32),
        "the destroy must fail: {:?}",
        answer.diagnostics
    );
    assert_eq!(
        answer.new_state,
        Some(prior),
        "a failed destroy returns the prior state, not null"
    );
    let text = format!("{:?}", answer.diagnostics);
    assert!(!text.contains("protocol-test-secret"), "{text}");
}

#[tokio::test]
async fn shutdown_ends_the_process() {
    let mut plugin = Plugin::start();
    let mut controller =
        gp::grpc_controller_client::GrpcControllerClient::new(plugin.connect().await);
    controller.shutdown(gp::Empty {}).await.expect("Shutdown");
    let status = plugin
        .wait_exit(10)
        .expect("the provider exits after Shutdown");
    assert!(status.success(), "{status:?}");
}
