//! Owns the exchange's vocabulary: who asked for it ([`Caller`]) and how that caller spells each
//! input ([`Input`]). One error type serves the Terraform types and the command line; its
//! messages name the input through [`Caller::name`], so a `credential-process` user reads
//! `--metadata-host` and an HCL author reads `metadata_host`, and neither reads the other's.
//!
//! How to add a message: state the facts in words neither caller owns, and name every input
//! through `caller.name(Input::…)` (or `caller.setting(…)` for "this input had this value");
//! a new input gets a variant here with both spellings. Texts of leaf modules (the metadata
//! client) name no input at all: `ExchangeError::message` adds the fix in the caller's words.

/// Who runs the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The data source, the ephemeral resource or the provider's `assume_role_with_gcp_identity`.
    Terraform,
    /// `terraform-provider-gcpfed credential-process`.
    CommandLine,
}

/// An input of the exchange that a message may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    RoleArn,
    Audience,
    ServiceAccount,
    SessionName,
    DurationSeconds,
    Policy,
    PolicyArns,
    MetadataHost,
    WebIdentityToken,
    MaxRetries,
    ImpersonateServiceAccount,
    Delegates,
    IamCredentialsEndpoint,
    StsEndpoint,
}

impl Caller {
    /// How this caller writes `input`, environment fallback included where there is one.
    pub fn name(self, input: Input) -> &'static str {
        use Input::*;
        match self {
            Caller::Terraform => match input {
                RoleArn => "`role_arn`",
                Audience => "`audience`",
                ServiceAccount => "`service_account`",
                SessionName => "`session_name`",
                DurationSeconds => "`duration_seconds`",
                Policy => "`policy`",
                PolicyArns => "`policy_arns`",
                MetadataHost => "the provider's `metadata_host` (or GCE_METADATA_HOST)",
                WebIdentityToken => "`web_identity_token`",
                MaxRetries => "the provider's `max_retries`",
                ImpersonateServiceAccount => "`impersonate_service_account`",
                Delegates => "`delegates`",
                IamCredentialsEndpoint => {
                    "the provider's `iam_credentials_custom_endpoint` (or \
                     GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT)"
                }
                StsEndpoint => "the provider's `endpoints.sts` (or AWS_ENDPOINT_URL_STS)",
            },
            Caller::CommandLine => match input {
                RoleArn => "--role-arn",
                Audience => "--audience",
                ServiceAccount => "--service-account",
                SessionName => "--session-name",
                DurationSeconds => "--duration-seconds",
                Policy => "--policy",
                PolicyArns => "--policy-arn",
                MetadataHost => "--metadata-host (or GCE_METADATA_HOST)",
                WebIdentityToken => "--web-identity-token-file",
                MaxRetries => "--max-retries",
                ImpersonateServiceAccount => "--impersonate-service-account",
                Delegates => "--delegate",
                IamCredentialsEndpoint => {
                    "--iam-credentials-endpoint (or GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT)"
                }
                StsEndpoint => "--sts-endpoint (or AWS_ENDPOINT_URL_STS)",
            },
        }
    }

    /// "This input had this value", as the caller writes it: `duration_seconds = 7200` in HCL,
    /// `--duration-seconds 7200` on the command line. Meant for the exchange's own arguments
    /// (those whose [`Caller::name`] is the bare name, with no "the provider's" or fallback).
    pub fn setting(self, input: Input, value: &str) -> String {
        let name = self.name(input).trim_matches('`');
        match self {
            Caller::Terraform => format!("{name} = {value}"),
            Caller::CommandLine => format!("{name} {value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_speaks_its_own_language() {
        assert_eq!(
            Caller::CommandLine.name(Input::MetadataHost),
            "--metadata-host (or GCE_METADATA_HOST)"
        );
        assert_eq!(
            Caller::Terraform.name(Input::WebIdentityToken),
            "`web_identity_token`"
        );
        assert_eq!(Caller::CommandLine.name(Input::Delegates), "--delegate");
        assert_eq!(
            Caller::Terraform.setting(Input::DurationSeconds, "7200"),
            "duration_seconds = 7200"
        );
        assert_eq!(
            Caller::CommandLine.setting(Input::DurationSeconds, "7200"),
            "--duration-seconds 7200"
        );
    }
}
