//! Owns the exchange's vocabulary: who asked for it ([`Caller`]) and how that caller spells each
//! input ([`Input`]). One error type serves the Terraform types and the command line; its
//! messages name the input through [`Caller::name`], so a `credential-process` user reads
//! `--metadata-host` and an HCL author reads `metadata_host`, and neither reads the other's.

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
            },
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
    }
}
