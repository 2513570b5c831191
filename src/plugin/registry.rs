//! What the plugin server serves: the provider and its Terraform types, each registered under
//! the full name users write (`gcpfed_role`, `trust_policy`).

use std::collections::BTreeMap;
use std::sync::Arc;

use tf_provider::{DataSource, Function, Provider, Resource};

use super::ephemeral::EphemeralResource;
use super::handlers::{
    DataSourceHandler, EphemeralHandler, FunctionHandler, ProviderHandler, ResourceHandler,
};

pub struct Registry {
    pub(super) provider: Arc<dyn ProviderHandler>,
    pub(super) resources: BTreeMap<String, Arc<dyn ResourceHandler>>,
    pub(super) data_sources: BTreeMap<String, Arc<dyn DataSourceHandler>>,
    pub(super) ephemeral_resources: BTreeMap<String, Arc<dyn EphemeralHandler>>,
    pub(super) functions: BTreeMap<String, Arc<dyn FunctionHandler>>,
}

impl Registry {
    pub fn new(provider: impl Provider) -> Self {
        Registry {
            provider: Arc::new(provider),
            resources: BTreeMap::new(),
            data_sources: BTreeMap::new(),
            ephemeral_resources: BTreeMap::new(),
            functions: BTreeMap::new(),
        }
    }

    pub fn resource(mut self, type_name: &str, resource: impl Resource + 'static) -> Self {
        self.resources
            .insert(type_name.to_string(), Arc::new(resource));
        self
    }

    pub fn data_source(mut self, type_name: &str, data_source: impl DataSource + 'static) -> Self {
        self.data_sources
            .insert(type_name.to_string(), Arc::new(data_source));
        self
    }

    pub fn ephemeral_resource(
        mut self,
        type_name: &str,
        resource: impl EphemeralResource + 'static,
    ) -> Self {
        self.ephemeral_resources
            .insert(type_name.to_string(), Arc::new(resource));
        self
    }

    /// `name` without the `provider::gcpfed::` prefix that Terraform adds.
    pub fn function(mut self, name: &str, function: impl Function + 'static) -> Self {
        self.functions.insert(name.to_string(), Arc::new(function));
        self
    }

    /// Every registered name, by kind: (resources, data sources, ephemeral resources, functions).
    pub fn names(&self) -> [Vec<&str>; 4] {
        fn keys<V>(map: &BTreeMap<String, V>) -> Vec<&str> {
            map.keys().map(String::as_str).collect()
        }
        [
            keys(&self.resources),
            keys(&self.data_sources),
            keys(&self.ephemeral_resources),
            keys(&self.functions),
        ]
    }
}
