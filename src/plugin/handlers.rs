//! Object-safe handlers, one per kind of Terraform type, that the server dispatches to. Each is
//! implemented once, generically, for every type written against the typed traits
//! (tf-provider's `Provider`, `Resource`, `DataSource`, `Function`, and our
//! `EphemeralResource`): decode the request's values into the type's `State`, call the trait,
//! encode the answer. The protocol's rules about which call means what (a null prior state is a
//! create, a null planned state a destroy) live here, in one place.

use std::time::SystemTime;

use async_trait::async_trait;
use tf_provider::schema::{FunctionSchema, Schema};
use tf_provider::{AttributePath, DataSource, Diagnostics, Function, Provider, Resource};

use super::codec::{self, decode, decode_private, encode, encode_bytes, is_null};
use super::ephemeral::EphemeralResource;
use super::proto::tfplugin6::DynamicValue;

type Dv<'a> = Option<&'a DynamicValue>;

#[async_trait]
pub trait ProviderHandler: Send + Sync {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema>;
    fn meta_schema(&self, diags: &mut Diagnostics) -> Option<Schema>;
    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>);
    async fn configure(&self, diags: &mut Diagnostics, terraform_version: String, config: Dv<'_>);
}

#[async_trait]
impl<T: Provider> ProviderHandler for T {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        Provider::schema(self, diags)
    }
    fn meta_schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        Provider::meta_schema(self, diags)
    }
    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>) {
        if let Some(config) = decode(diags, config, "provider configuration") {
            Provider::validate(self, diags, config).await;
        }
    }
    async fn configure(&self, diags: &mut Diagnostics, terraform_version: String, config: Dv<'_>) {
        if let Some(config) = decode(diags, config, "provider configuration") {
            Provider::configure(self, diags, terraform_version, config).await;
        }
    }
}

/// The answer to PlanResourceChange.
#[derive(Default)]
pub struct Planned {
    pub state: Option<DynamicValue>,
    pub private: Vec<u8>,
    pub requires_replace: Vec<AttributePath>,
}

/// The answer to ReadResource and ApplyResourceChange: the new state (`None`: gone) and
/// private state.
pub type NewState = (Option<DynamicValue>, Vec<u8>);

#[async_trait]
pub trait ResourceHandler: Send + Sync {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema>;
    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>);
    async fn read(
        &self,
        diags: &mut Diagnostics,
        state: Dv<'_>,
        private: &[u8],
        meta: Dv<'_>,
    ) -> NewState;
    async fn plan(
        &self,
        diags: &mut Diagnostics,
        prior: Dv<'_>,
        proposed: Dv<'_>,
        config: Dv<'_>,
        private: &[u8],
        meta: Dv<'_>,
    ) -> Planned;
    async fn apply(
        &self,
        diags: &mut Diagnostics,
        prior: Dv<'_>,
        planned: Dv<'_>,
        config: Dv<'_>,
        private: &[u8],
        meta: Dv<'_>,
    ) -> NewState;
    async fn import(&self, diags: &mut Diagnostics, id: String) -> Option<(DynamicValue, Vec<u8>)>;
}

/// What to answer when an operation on an existing object failed: that object, unchanged.
/// Terraform reads a null answer as "the object is gone" and would drop it from state.
fn unchanged(prior: Dv<'_>, private: &[u8]) -> NewState {
    (prior.cloned(), private.to_vec())
}

#[async_trait]
impl<T: Resource> ResourceHandler for T {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        Resource::schema(self, diags)
    }

    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>) {
        if let Some(config) = decode(diags, config, "resource configuration") {
            Resource::validate(self, diags, config).await;
        }
    }

    async fn read(
        &self,
        diags: &mut Diagnostics,
        state: Dv<'_>,
        private: &[u8],
        meta: Dv<'_>,
    ) -> NewState {
        let decoded = (
            decode(diags, state, "resource state"),
            decode_private(diags, private),
            decode(diags, meta, "provider_meta"),
        );
        let (Some(s), Some(p), Some(m)) = decoded else {
            return unchanged(state, private);
        };
        match Resource::read(self, diags, s, p, m).await {
            Some((s, p)) => (
                encode(diags, &s),
                encode_bytes(diags, &p).unwrap_or_default(),
            ),
            // Without an error, `None` means the object no longer exists.
            None if diags.errors.is_empty() => (None, Vec::new()),
            None => unchanged(state, private),
        }
    }

    async fn plan(
        &self,
        diags: &mut Diagnostics,
        prior: Dv<'_>,
        proposed: Dv<'_>,
        config: Dv<'_>,
        private: &[u8],
        meta: Dv<'_>,
    ) -> Planned {
        let Some(m) = decode(diags, meta, "provider_meta") else {
            return Planned::default();
        };
        match (is_null(prior), is_null(proposed)) {
            (true, false) => {
                let (Some(p), Some(c)) = (
                    decode(diags, proposed, "proposed state"),
                    decode(diags, config, "resource configuration"),
                ) else {
                    return Planned::default();
                };
                let Some((s, pv)) = Resource::plan_create(self, diags, p, c, m).await else {
                    return Planned::default();
                };
                Planned {
                    state: encode(diags, &s),
                    private: encode_bytes(diags, &pv).unwrap_or_default(),
                    requires_replace: Vec::new(),
                }
            }
            (false, true) => {
                let (Some(s), Some(pv)) = (
                    decode(diags, prior, "prior state"),
                    decode_private(diags, private),
                ) else {
                    return Planned::default();
                };
                let private = match Resource::plan_destroy(self, diags, s, pv, m).await {
                    Some(pv) => encode_bytes(diags, &pv).unwrap_or_default(),
                    None => Vec::new(),
                };
                Planned {
                    state: None,
                    private,
                    requires_replace: Vec::new(),
                }
            }
            (false, false) => {
                let (Some(s), Some(p), Some(c), Some(pv)) = (
                    decode(diags, prior, "prior state"),
                    decode(diags, proposed, "proposed state"),
                    decode(diags, config, "resource configuration"),
                    decode_private(diags, private),
                ) else {
                    return Planned::default();
                };
                let Some((s, pv, replace)) =
                    Resource::plan_update(self, diags, s, p, c, pv, m).await
                else {
                    return Planned::default();
                };
                Planned {
                    state: encode(diags, &s),
                    private: encode_bytes(diags, &pv).unwrap_or_default(),
                    requires_replace: replace,
                }
            }
            (true, true) => {
                diags.root_error_short(
                    "Terraform asked to plan a resource with neither a prior nor a proposed state",
                );
                Planned::default()
            }
        }
    }

    async fn apply(
        &self,
        diags: &mut Diagnostics,
        prior: Dv<'_>,
        planned: Dv<'_>,
        config: Dv<'_>,
        private: &[u8],
        meta: Dv<'_>,
    ) -> NewState {
        let (Some(m), Some(pv)) = (
            decode(diags, meta, "provider_meta"),
            decode_private(diags, private),
        ) else {
            return unchanged(prior, private);
        };
        match (is_null(prior), is_null(planned)) {
            (true, false) => {
                let (Some(p), Some(c)) = (
                    decode(diags, planned, "planned state"),
                    decode(diags, config, "resource configuration"),
                ) else {
                    return (None, Vec::new());
                };
                // A create that fails part-way still returns what it made, so it stays in state.
                match Resource::create(self, diags, p, c, pv, m).await {
                    Some((s, pv)) => (
                        encode(diags, &s),
                        encode_bytes(diags, &pv).unwrap_or_default(),
                    ),
                    None => (None, Vec::new()),
                }
            }
            (false, true) => {
                let Some(s) = decode(diags, prior, "prior state") else {
                    return unchanged(prior, private);
                };
                match Resource::destroy(self, diags, s, pv, m).await {
                    Some(()) if diags.errors.is_empty() => (None, Vec::new()),
                    // A failed destroy keeps the object in state, to be destroyed again.
                    _ => unchanged(prior, private),
                }
            }
            (false, false) => {
                let (Some(s), Some(p), Some(c)) = (
                    decode(diags, prior, "prior state"),
                    decode(diags, planned, "planned state"),
                    decode(diags, config, "resource configuration"),
                ) else {
                    return unchanged(prior, private);
                };
                match Resource::update(self, diags, s, p, c, pv, m).await {
                    Some((s, pv)) => (
                        encode(diags, &s),
                        encode_bytes(diags, &pv).unwrap_or_default(),
                    ),
                    None => unchanged(prior, private),
                }
            }
            (true, true) => {
                diags.root_error_short(
                    "Terraform asked to apply a resource with neither a prior nor a planned state",
                );
                (None, Vec::new())
            }
        }
    }

    async fn import(&self, diags: &mut Diagnostics, id: String) -> Option<(DynamicValue, Vec<u8>)> {
        let (s, pv) = Resource::import(self, diags, id).await?;
        Some((encode(diags, &s)?, encode_bytes(diags, &pv)?))
    }
}

#[async_trait]
pub trait DataSourceHandler: Send + Sync {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema>;
    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>);
    async fn read(
        &self,
        diags: &mut Diagnostics,
        config: Dv<'_>,
        meta: Dv<'_>,
    ) -> Option<DynamicValue>;
}

#[async_trait]
impl<T: DataSource> DataSourceHandler for T {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        DataSource::schema(self, diags)
    }
    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>) {
        if let Some(config) = decode(diags, config, "data source configuration") {
            DataSource::validate(self, diags, config).await;
        }
    }
    async fn read(
        &self,
        diags: &mut Diagnostics,
        config: Dv<'_>,
        meta: Dv<'_>,
    ) -> Option<DynamicValue> {
        let c = decode(diags, config, "data source configuration")?;
        let m = decode(diags, meta, "provider_meta")?;
        let state = DataSource::read(self, diags, c, m).await?;
        encode(diags, &state)
    }
}

/// The answer to OpenEphemeralResource.
pub struct OpenedValue {
    pub result: DynamicValue,
    pub renew_at: Option<SystemTime>,
    pub private: Vec<u8>,
}

#[async_trait]
pub trait EphemeralHandler: Send + Sync {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema>;
    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>);
    async fn open(&self, diags: &mut Diagnostics, config: Dv<'_>) -> Option<OpenedValue>;
    async fn renew(
        &self,
        diags: &mut Diagnostics,
        private: &[u8],
    ) -> Option<(Option<SystemTime>, Vec<u8>)>;
    async fn close(&self, diags: &mut Diagnostics, private: &[u8]);
}

#[async_trait]
impl<T: EphemeralResource> EphemeralHandler for T {
    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema> {
        EphemeralResource::schema(self, diags)
    }
    async fn validate(&self, diags: &mut Diagnostics, config: Dv<'_>) {
        if let Some(config) = decode(diags, config, "ephemeral resource configuration") {
            EphemeralResource::validate(self, diags, config).await;
        }
    }
    async fn open(&self, diags: &mut Diagnostics, config: Dv<'_>) -> Option<OpenedValue> {
        let c = decode(diags, config, "ephemeral resource configuration")?;
        let opened = EphemeralResource::open(self, diags, c).await?;
        Some(OpenedValue {
            result: encode(diags, &opened.result)?,
            renew_at: opened.renew_at,
            private: encode_bytes(diags, &opened.private)?,
        })
    }
    async fn renew(
        &self,
        diags: &mut Diagnostics,
        private: &[u8],
    ) -> Option<(Option<SystemTime>, Vec<u8>)> {
        let p = decode_private(diags, private)?;
        let (renew_at, p) = EphemeralResource::renew(self, diags, p).await?;
        Some((renew_at, encode_bytes(diags, &p)?))
    }
    async fn close(&self, diags: &mut Diagnostics, private: &[u8]) {
        if let Some(p) = decode_private(diags, private) {
            EphemeralResource::close(self, diags, p).await;
        }
    }
}

#[async_trait]
pub trait FunctionHandler: Send + Sync {
    fn schema(&self, diags: &mut Diagnostics) -> Option<FunctionSchema>;
    async fn call(
        &self,
        diags: &mut Diagnostics,
        arguments: &[DynamicValue],
    ) -> Option<DynamicValue>;
}

#[async_trait]
impl<T: Function> FunctionHandler for T {
    fn schema(&self, diags: &mut Diagnostics) -> Option<FunctionSchema> {
        Function::schema(self, diags)
    }
    async fn call(
        &self,
        diags: &mut Diagnostics,
        arguments: &[DynamicValue],
    ) -> Option<DynamicValue> {
        let array = codec::arguments_array(diags, arguments)?;
        let Ok(input) = rmp_serde::from_slice(&array) else {
            diags.root_error_short("The arguments do not match the function's parameters");
            return None;
        };
        let output = Function::call(self, diags, input).await?;
        encode(diags, &output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use tf_provider::value::{Value, ValueEmpty};

    /// A resource that records its calls, keeps a counter in private state, and fails to
    /// destroy or read objects named "stuck".
    #[derive(Default)]
    struct Fake {
        calls: std::sync::Mutex<Vec<&'static str>>,
    }

    #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
    struct State {
        name: Value<String>,
        id: Value<String>,
    }

    fn stuck(s: &State) -> bool {
        s.name.as_ref_option().map(String::as_str) == Some("stuck")
    }

    #[async_trait]
    impl Resource for Fake {
        type State<'a> = State;
        type PrivateState<'a> = Value<i64>;
        type ProviderMetaState<'a> = ValueEmpty;
        fn schema(&self, _: &mut Diagnostics) -> Option<Schema> {
            None
        }
        async fn read<'a>(
            &self,
            d: &mut Diagnostics,
            s: State,
            p: Value<i64>,
            _: ValueEmpty,
        ) -> Option<(State, Value<i64>)> {
            self.calls.lock().unwrap().push("read");
            if stuck(&s) {
                d.root_error_short("IAM unreachable");
                return None;
            }
            (s.name.as_ref_option().map(String::as_str) != Some("gone")).then_some((s, p))
        }
        async fn plan_create<'a>(
            &self,
            _: &mut Diagnostics,
            p: State,
            _: State,
            _: ValueEmpty,
        ) -> Option<(State, Value<i64>)> {
            self.calls.lock().unwrap().push("plan_create");
            Some((
                State {
                    id: Value::Unknown,
                    ..p
                },
                Value::Value(1),
            ))
        }
        async fn plan_update<'a>(
            &self,
            _: &mut Diagnostics,
            _: State,
            p: State,
            _: State,
            pv: Value<i64>,
            _: ValueEmpty,
        ) -> Option<(State, Value<i64>, Vec<AttributePath>)> {
            self.calls.lock().unwrap().push("plan_update");
            Some((p, pv.map(|n| n + 1), vec![AttributePath::new("name")]))
        }
        async fn plan_destroy<'a>(
            &self,
            _: &mut Diagnostics,
            _: State,
            pv: Value<i64>,
            _: ValueEmpty,
        ) -> Option<Value<i64>> {
            self.calls.lock().unwrap().push("plan_destroy");
            Some(pv)
        }
        async fn create<'a>(
            &self,
            _: &mut Diagnostics,
            p: State,
            _: State,
            pv: Value<i64>,
            _: ValueEmpty,
        ) -> Option<(State, Value<i64>)> {
            self.calls.lock().unwrap().push("create");
            Some((
                State {
                    id: Value::Value("id-1".into()),
                    ..p
                },
                pv,
            ))
        }
        async fn update<'a>(
            &self,
            d: &mut Diagnostics,
            _: State,
            p: State,
            _: State,
            _: Value<i64>,
            _: ValueEmpty,
        ) -> Option<(State, Value<i64>)> {
            self.calls.lock().unwrap().push("update");
            d.root_error_short("update failed");
            drop(p);
            None
        }
        async fn destroy<'a>(
            &self,
            d: &mut Diagnostics,
            s: State,
            _: Value<i64>,
            _: ValueEmpty,
        ) -> Option<()> {
            self.calls.lock().unwrap().push("destroy");
            if stuck(&s) {
                d.root_error_short("DeleteConflict");
                return None;
            }
            Some(())
        }
    }

    fn dv(s: &State) -> DynamicValue {
        encode(&mut Diagnostics::default(), s).unwrap()
    }

    fn state(name: &str, id: Value<String>) -> State {
        State {
            name: Value::Value(name.into()),
            id,
        }
    }

    fn null() -> DynamicValue {
        DynamicValue {
            msgpack: vec![0xc0],
            json: vec![],
        }
    }

    fn decoded(value: &DynamicValue) -> State {
        decode(&mut Diagnostics::default(), Some(value), "state").unwrap()
    }

    #[tokio::test]
    async fn plan_dispatches_on_null_prior_and_proposed_states() {
        let concrete = Fake::default();
        let fake: &dyn ResourceHandler = &concrete;
        let mut diags = Diagnostics::default();
        let config = dv(&state("a", Value::Null));
        let created = fake
            .plan(
                &mut diags,
                Some(&null()),
                Some(&config),
                Some(&config),
                &[],
                None,
            )
            .await;
        assert_eq!(
            decoded(&created.state.unwrap()).id,
            Value::Unknown,
            "unknown survives the trip"
        );
        let private: Value<i64> = decode_private(&mut diags, &created.private).unwrap();
        assert_eq!(private, Value::Value(1));

        let prior = dv(&state("a", Value::Value("id-1".into())));
        let updated = fake
            .plan(
                &mut diags,
                Some(&prior),
                Some(&prior),
                Some(&config),
                &created.private,
                None,
            )
            .await;
        assert_eq!(updated.requires_replace, vec![AttributePath::new("name")]);
        let private: Value<i64> = decode_private(&mut diags, &updated.private).unwrap();
        assert_eq!(
            private,
            Value::Value(2),
            "private state reaches plan_update and comes back"
        );

        let destroyed = fake
            .plan(&mut diags, Some(&prior), None, None, &updated.private, None)
            .await;
        assert!(destroyed.state.is_none());
        assert!(diags.errors.is_empty(), "{:?}", diags.errors);
        assert_eq!(
            *concrete.calls.lock().unwrap(),
            vec!["plan_create", "plan_update", "plan_destroy"]
        );
    }

    #[tokio::test]
    async fn apply_keeps_the_prior_state_when_a_destroy_or_update_fails() {
        let fake: &dyn ResourceHandler = &Fake::default();
        let prior = dv(&state("stuck", Value::Value("id-1".into())));
        let mut diags = Diagnostics::default();
        let (new_state, private) = fake
            .apply(&mut diags, Some(&prior), Some(&null()), None, &[7], None)
            .await;
        assert_eq!(new_state.as_ref(), Some(&prior));
        assert_eq!(private, vec![7]);
        assert_eq!(diags.errors.len(), 1);

        let mut diags = Diagnostics::default();
        let (new_state, _) = fake
            .apply(
                &mut diags,
                Some(&prior),
                Some(&prior),
                Some(&prior),
                &[],
                None,
            )
            .await;
        assert_eq!(
            new_state.as_ref(),
            Some(&prior),
            "a failed update keeps the object"
        );

        let fine = dv(&state("fine", Value::Value("id-2".into())));
        let mut diags = Diagnostics::default();
        let (new_state, _) = fake
            .apply(&mut diags, Some(&fine), None, None, &[], None)
            .await;
        assert!(new_state.is_none(), "a successful destroy answers null");
        assert!(diags.errors.is_empty());

        let mut diags = Diagnostics::default();
        let planned = dv(&state("new", Value::Unknown));
        let (new_state, _) = fake
            .apply(&mut diags, None, Some(&planned), Some(&planned), &[], None)
            .await;
        assert_eq!(decoded(&new_state.unwrap()).id, Value::Value("id-1".into()));
    }

    #[tokio::test]
    async fn read_answers_null_only_for_an_object_that_is_gone() {
        let fake: &dyn ResourceHandler = &Fake::default();
        let mut diags = Diagnostics::default();
        let gone = dv(&state("gone", Value::Value("x".into())));
        assert!(fake
            .read(&mut diags, Some(&gone), &[], None)
            .await
            .0
            .is_none());
        let stuck = dv(&state("stuck", Value::Value("x".into())));
        let (kept, _) = fake.read(&mut diags, Some(&stuck), &[], None).await;
        assert_eq!(
            kept.as_ref(),
            Some(&stuck),
            "a failed read must not look like a deletion"
        );
    }
}
