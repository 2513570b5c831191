//! Running the exchange for a `gcpfed_credentials` configuration: the configuration becomes an
//! [`ExchangeRequest`], the result becomes the type's attributes, and an error becomes a
//! diagnostic (with the attribute at fault when there is one). The data source's read and the
//! ephemeral resource's open both end here.

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::{check, impersonation, CredentialsState};
use crate::clients::metadata::{self, MetadataClient};
use crate::clients::SharedClients;
use crate::diag;
use crate::exchange::{self, ExchangeParams, ExchangeRequest, Exchanger, TokenSource};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::validate::{DEFAULT_SERVICE_ACCOUNT, SESSION_DURATION_DEFAULT as DEFAULT_DURATION};

fn value_of(v: &Value<String>) -> Option<&str> {
    match v {
        Value::Value(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Exchanges once and returns the configuration with every result filled in; `None` (with
/// error diagnostics) when the configuration is invalid or the exchange fails.
pub async fn open(
    shared: &SharedClients,
    diags: &mut Diagnostics,
    config: CredentialsState,
) -> Option<CredentialsState> {
    // Terraform validates first, but a value unknown at validate time is known now.
    diag::report(diags, check(&config))?;
    let clients = shared.get(diags)?;
    let backoff = RetryPolicy::new(clients.max_retries);

    let (Some(role_arn), Some(audience)) = (value_of(&config.role_arn), value_of(&config.audience))
    else {
        diags.root_error(
            "Missing role_arn or audience",
            "role_arn and audience must be known to exchange the token for credentials.",
        );
        return None;
    };
    let service_account = value_of(&config.service_account)
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
        .to_owned();
    let (impersonate_service_account, delegates) =
        impersonation::resolve(&config.impersonate_service_account, &config.delegates);
    let params = ExchangeParams {
        role_arn: role_arn.to_owned(),
        audience: audience.to_owned(),
        service_account: service_account.clone(),
        session_name: value_of(&config.session_name).map(str::to_owned),
        duration_seconds: match config.duration_seconds {
            Value::Value(d) => Some(d as i32),
            _ => Some(DEFAULT_DURATION as i32),
        },
        policy: value_of(&config.policy).map(str::to_owned),
        policy_arns: match &config.policy_arns {
            Value::Value(set) => set
                .iter()
                .filter_map(|v| value_of(v).map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
        impersonate_service_account,
        delegates,
    };
    let token = match &config.web_identity_token {
        Value::Value(t) => TokenSource::Given(Secret::new(t.clone())),
        _ => {
            let metadata = match MetadataClient::new(
                &clients.metadata_host,
                metadata::DEFAULT_TIMEOUT,
                backoff,
            ) {
                Ok(c) => c,
                Err(e) => {
                    diags.root_error(
                        "Invalid metadata host",
                        format!(
                            "{e}. Set the provider's metadata_host (or GCE_METADATA_HOST) to \
                                 host[:port]."
                        ),
                    );
                    return None;
                }
            };
            match TokenSource::google(
                metadata,
                &clients.iam_credentials_endpoint,
                backoff,
                &params,
            ) {
                Ok(source) => source,
                Err(e) => {
                    diags.root_error(e.summary(), e.to_string());
                    return None;
                }
            }
        }
    };
    let request = ExchangeRequest { params, token };
    let sts = exchange::unsigned_sts_client(
        Some(&clients.sdk_config),
        &clients.region,
        clients.sts_endpoint.as_deref(),
    );
    let exchanger = Exchanger::new(sts, Some(clients.iam.clone()), backoff);
    let creds = match exchanger.exchange(request).await {
        Ok(c) => c,
        Err(e) => {
            let detail = e.to_string();
            match e.attribute() {
                Some(a) => diags.error(e.summary(), detail, AttributePath::new(a)),
                None => diags.root_error(e.summary(), detail),
            }
            return None;
        }
    };

    let mut state = config;
    state.service_account = Value::Value(service_account);
    state.session_name = Value::Value(creds.session_name.clone());
    if !state.duration_seconds.is_value() {
        state.duration_seconds = Value::Value(DEFAULT_DURATION);
    }
    state.credential_process_json = Value::Value(creds.credential_process_json().into_inner());
    state.access_key_id = Value::Value(creds.access_key_id);
    state.secret_access_key = Value::Value(creds.secret_access_key.into_inner());
    state.session_token = Value::Value(creds.session_token.into_inner());
    state.expiration = Value::Value(creds.expiration);
    state.assumed_role_arn = Value::Value(creds.assumed_role_arn);
    state.assumed_role_id = Value::Value(creds.assumed_role_id);
    state.subject = creds.subject.map_or(Value::Null, Value::Value);
    state.email = creds.email.map_or(Value::Null, Value::Value);
    Some(state)
}
