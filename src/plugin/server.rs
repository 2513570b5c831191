//! The tfplugin6 `Provider` service: each RPC looks up the type it names in the registry and
//! hands the request to that type's handler ([`super::handlers`]). Errors reach Terraform as
//! diagnostics, never as gRPC failures, so that Terraform shows them with their attribute paths.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tf_provider::Diagnostics;
use tonic::{Request, Response, Status};

use super::convert;
use super::proto::tfplugin6 as tf;
use super::registry::Registry;

pub struct ProviderService {
    registry: Arc<Registry>,
}

impl ProviderService {
    pub fn new(registry: Registry) -> Self {
        ProviderService {
            registry: Arc::new(registry),
        }
    }
}

type Answer<T> = Result<Response<T>, Status>;

/// The handler registered under `name`, or an error diagnostic saying none is.
fn lookup<'r, H: ?Sized>(
    diags: &mut Diagnostics,
    map: &'r std::collections::BTreeMap<String, Arc<H>>,
    kind: &str,
    name: &str,
) -> Option<&'r Arc<H>> {
    let found = map.get(name);
    if found.is_none() {
        diags.root_error(
            format!("Unknown {kind} {name:?}"),
            format!(
                "This version of the gcpfed provider has no {kind} named {name:?}. Check the \
                 name, and the provider version in required_providers."
            ),
        );
    }
    found
}

fn timestamp(at: Option<SystemTime>) -> Option<prost_types::Timestamp> {
    at.map(prost_types::Timestamp::from)
}

/// The capabilities this server announces: it wants PlanResourceChange for destroys (the
/// Resource trait's plan_destroy), and Terraform must ask for its schema.
fn capabilities() -> tf::ServerCapabilities {
    tf::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: false,
        move_resource_state: false,
    }
}

#[tonic::async_trait]
impl tf::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        _: Request<tf::get_metadata::Request>,
    ) -> Answer<tf::get_metadata::Response> {
        use tf::get_metadata as m;
        let [resources, data_sources, ephemeral, functions] = self.registry.names();
        Ok(Response::new(m::Response {
            server_capabilities: Some(capabilities()),
            diagnostics: Vec::new(),
            resources: resources
                .into_iter()
                .map(|n| m::ResourceMetadata {
                    type_name: n.into(),
                })
                .collect(),
            data_sources: data_sources
                .into_iter()
                .map(|n| m::DataSourceMetadata {
                    type_name: n.into(),
                })
                .collect(),
            ephemeral_resources: ephemeral
                .into_iter()
                .map(|n| m::EphemeralMetadata {
                    type_name: n.into(),
                })
                .collect(),
            functions: functions
                .into_iter()
                .map(|n| m::FunctionMetadata { name: n.into() })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<tf::get_provider_schema::Request>,
    ) -> Answer<tf::get_provider_schema::Response> {
        let mut diags = Diagnostics::default();
        let r = &self.registry;
        let provider = r.provider.schema(&mut diags).map(|s| convert::schema(&s));
        let provider_meta = r
            .provider
            .meta_schema(&mut diags)
            .map(|s| convert::schema(&s));
        let schemas = |handlers: Vec<(&String, Option<tf_provider::schema::Schema>)>| {
            handlers
                .into_iter()
                .filter_map(|(name, schema)| Some((name.clone(), convert::schema(&schema?))))
                .collect::<HashMap<_, _>>()
        };
        let resource_schemas = schemas(
            r.resources
                .iter()
                .map(|(n, h)| (n, h.schema(&mut diags)))
                .collect(),
        );
        let data_source_schemas = schemas(
            r.data_sources
                .iter()
                .map(|(n, h)| (n, h.schema(&mut diags)))
                .collect(),
        );
        let ephemeral_resource_schemas = schemas(
            r.ephemeral_resources
                .iter()
                .map(|(n, h)| (n, h.schema(&mut diags)))
                .collect(),
        );
        let functions = self.function_schemas(&mut diags);
        Ok(Response::new(tf::get_provider_schema::Response {
            provider,
            resource_schemas,
            data_source_schemas,
            diagnostics: convert::diagnostics(&diags),
            provider_meta,
            server_capabilities: Some(capabilities()),
            functions,
            ephemeral_resource_schemas,
        }))
    }

    async fn validate_provider_config(
        &self,
        request: Request<tf::validate_provider_config::Request>,
    ) -> Answer<tf::validate_provider_config::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        self.registry
            .provider
            .validate(&mut diags, request.config.as_ref())
            .await;
        Ok(Response::new(tf::validate_provider_config::Response {
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn validate_resource_config(
        &self,
        request: Request<tf::validate_resource_config::Request>,
    ) -> Answer<tf::validate_resource_config::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.resources,
            "resource type",
            &request.type_name,
        ) {
            h.validate(&mut diags, request.config.as_ref()).await;
        }
        Ok(Response::new(tf::validate_resource_config::Response {
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<tf::validate_data_resource_config::Request>,
    ) -> Answer<tf::validate_data_resource_config::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.data_sources,
            "data source",
            &request.type_name,
        ) {
            h.validate(&mut diags, request.config.as_ref()).await;
        }
        Ok(Response::new(tf::validate_data_resource_config::Response {
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<tf::upgrade_resource_state::Request>,
    ) -> Answer<tf::upgrade_resource_state::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut upgraded_state = None;
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.resources,
            "resource type",
            &request.type_name,
        ) {
            let version = h.schema(&mut diags).map(|s| s.version);
            let json = request.raw_state.map(|raw| raw.json).unwrap_or_default();
            if json.is_empty() {
                diags.root_error_short(
                    "This provider cannot read a state in the legacy flatmap format",
                );
            } else if version == Some(request.version) {
                // The stored JSON already has the current schema's shape: hand it back as is.
                upgraded_state = Some(tf::DynamicValue {
                    msgpack: Vec::new(),
                    json,
                });
            } else {
                diags.root_error(
                    "Unsupported state version",
                    format!(
                        "The state of this {} was written with schema version {}, which this \
                         provider version cannot read (it writes version {}). Use the provider \
                         version that wrote it.",
                        request.type_name,
                        request.version,
                        version.unwrap_or_default()
                    ),
                );
            }
        }
        Ok(Response::new(tf::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<tf::configure_provider::Request>,
    ) -> Answer<tf::configure_provider::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        self.registry
            .provider
            .configure(
                &mut diags,
                request.terraform_version,
                request.config.as_ref(),
            )
            .await;
        Ok(Response::new(tf::configure_provider::Response {
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn read_resource(
        &self,
        request: Request<tf::read_resource::Request>,
    ) -> Answer<tf::read_resource::Response> {
        let request = request.into_inner();
        let mut diags = Diagnostics::default();
        let (new_state, private) = match lookup(
            &mut diags,
            &self.registry.resources,
            "resource type",
            &request.type_name,
        ) {
            Some(h) => {
                h.read(
                    &mut diags,
                    request.current_state.as_ref(),
                    &request.private,
                    request.provider_meta.as_ref(),
                )
                .await
            }
            None => (request.current_state.clone(), request.private.clone()),
        };
        Ok(Response::new(tf::read_resource::Response {
            new_state,
            diagnostics: convert::diagnostics(&diags),
            private,
        }))
    }

    async fn plan_resource_change(
        &self,
        request: Request<tf::plan_resource_change::Request>,
    ) -> Answer<tf::plan_resource_change::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        let planned = match lookup(
            &mut diags,
            &self.registry.resources,
            "resource type",
            &r.type_name,
        ) {
            Some(h) => {
                h.plan(
                    &mut diags,
                    r.prior_state.as_ref(),
                    r.proposed_new_state.as_ref(),
                    r.config.as_ref(),
                    &r.prior_private,
                    r.provider_meta.as_ref(),
                )
                .await
            }
            None => Default::default(),
        };
        Ok(Response::new(tf::plan_resource_change::Response {
            planned_state: planned.state,
            requires_replace: planned
                .requires_replace
                .iter()
                .filter_map(convert::attribute_path)
                .collect(),
            planned_private: planned.private,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn apply_resource_change(
        &self,
        request: Request<tf::apply_resource_change::Request>,
    ) -> Answer<tf::apply_resource_change::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        let (new_state, private) = match lookup(
            &mut diags,
            &self.registry.resources,
            "resource type",
            &r.type_name,
        ) {
            Some(h) => {
                h.apply(
                    &mut diags,
                    r.prior_state.as_ref(),
                    r.planned_state.as_ref(),
                    r.config.as_ref(),
                    &r.planned_private,
                    r.provider_meta.as_ref(),
                )
                .await
            }
            None => (r.prior_state.clone(), r.planned_private.clone()),
        };
        Ok(Response::new(tf::apply_resource_change::Response {
            new_state,
            private,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn import_resource_state(
        &self,
        request: Request<tf::import_resource_state::Request>,
    ) -> Answer<tf::import_resource_state::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut imported_resources = Vec::new();
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.resources,
            "resource type",
            &r.type_name,
        ) {
            if let Some((state, private)) = h.import(&mut diags, r.id).await {
                imported_resources.push(tf::import_resource_state::ImportedResource {
                    type_name: r.type_name.clone(),
                    state: Some(state),
                    private,
                });
            }
        }
        Ok(Response::new(tf::import_resource_state::Response {
            imported_resources,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<tf::read_data_source::Request>,
    ) -> Answer<tf::read_data_source::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut state = None;
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.data_sources,
            "data source",
            &r.type_name,
        ) {
            state = h
                .read(&mut diags, r.config.as_ref(), r.provider_meta.as_ref())
                .await;
        }
        Ok(Response::new(tf::read_data_source::Response {
            state,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<tf::validate_ephemeral_resource_config::Request>,
    ) -> Answer<tf::validate_ephemeral_resource_config::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.ephemeral_resources,
            "ephemeral resource",
            &r.type_name,
        ) {
            h.validate(&mut diags, r.config.as_ref()).await;
        }
        Ok(Response::new(
            tf::validate_ephemeral_resource_config::Response {
                diagnostics: convert::diagnostics(&diags),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<tf::open_ephemeral_resource::Request>,
    ) -> Answer<tf::open_ephemeral_resource::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut response = tf::open_ephemeral_resource::Response::default();
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.ephemeral_resources,
            "ephemeral resource",
            &r.type_name,
        ) {
            if let Some(opened) = h.open(&mut diags, r.config.as_ref()).await {
                response.result = Some(opened.result);
                response.renew_at = timestamp(opened.renew_at);
                response.private = Some(opened.private);
            }
        }
        response.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(response))
    }

    async fn renew_ephemeral_resource(
        &self,
        request: Request<tf::renew_ephemeral_resource::Request>,
    ) -> Answer<tf::renew_ephemeral_resource::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut response = tf::renew_ephemeral_resource::Response::default();
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.ephemeral_resources,
            "ephemeral resource",
            &r.type_name,
        ) {
            if let Some((renew_at, private)) = h
                .renew(&mut diags, r.private.as_deref().unwrap_or_default())
                .await
            {
                response.renew_at = timestamp(renew_at);
                response.private = Some(private);
            }
        }
        response.diagnostics = convert::diagnostics(&diags);
        Ok(Response::new(response))
    }

    async fn close_ephemeral_resource(
        &self,
        request: Request<tf::close_ephemeral_resource::Request>,
    ) -> Answer<tf::close_ephemeral_resource::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        if let Some(h) = lookup(
            &mut diags,
            &self.registry.ephemeral_resources,
            "ephemeral resource",
            &r.type_name,
        ) {
            h.close(&mut diags, r.private.as_deref().unwrap_or_default())
                .await;
        }
        Ok(Response::new(tf::close_ephemeral_resource::Response {
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn get_functions(
        &self,
        _: Request<tf::get_functions::Request>,
    ) -> Answer<tf::get_functions::Response> {
        let mut diags = Diagnostics::default();
        let functions = self.function_schemas(&mut diags);
        Ok(Response::new(tf::get_functions::Response {
            functions,
            diagnostics: convert::diagnostics(&diags),
        }))
    }

    async fn call_function(
        &self,
        request: Request<tf::call_function::Request>,
    ) -> Answer<tf::call_function::Response> {
        let r = request.into_inner();
        let mut diags = Diagnostics::default();
        let mut result = None;
        if let Some(h) = lookup(&mut diags, &self.registry.functions, "function", &r.name) {
            result = h.call(&mut diags, &r.arguments).await;
        }
        let error = convert::function_error(&diags);
        Ok(Response::new(tf::call_function::Response {
            result: if error.is_some() { None } else { result },
            error,
        }))
    }

    /// Terraform asks providers to stop in-flight work on Ctrl-C. Every call this provider
    /// makes is bounded by its own timeouts and retry budget, so there is nothing to cancel.
    async fn stop_provider(
        &self,
        _: Request<tf::stop_provider::Request>,
    ) -> Answer<tf::stop_provider::Response> {
        Ok(Response::new(tf::stop_provider::Response::default()))
    }
}

impl ProviderService {
    fn function_schemas(&self, diags: &mut Diagnostics) -> HashMap<String, tf::Function> {
        self.registry
            .functions
            .iter()
            .filter_map(|(name, h)| Some((name.clone(), convert::function(&h.schema(diags)?))))
            .collect()
    }
}
