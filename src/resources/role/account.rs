//! Import by ARN names an account as well as a role; IAM's GetRole only takes the name and
//! answers for the caller's own account. Without this check, importing
//! `arn:aws:iam::<another account>:role/ci` would silently adopt the caller's own role `ci`,
//! and every later plan would manage a role the user never meant.

use crate::clients::Clients;
use crate::validate::Invalid;

/// The account the provider's own credentials belong to (STS GetCallerIdentity, through the
/// configured credentials, region and STS endpoint).
pub(super) async fn caller_account(clients: &Clients) -> Result<String, String> {
    let mut config = aws_sdk_sts::config::Builder::from(&clients.sdk_config);
    if let Some(url) = &clients.sts_endpoint {
        config = config.endpoint_url(url);
    }
    let sts = aws_sdk_sts::Client::from_conf(config.build());
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| crate::clients::aws::describe_sdk_error(&e))?;
    out.account()
        .map(str::to_owned)
        .ok_or_else(|| "STS GetCallerIdentity returned no account".to_owned())
}

/// Refuses an import ARN of another account than the caller's, naming both.
pub(super) fn same_account(arn: &str, arn_account: &str, caller: &str) -> Result<(), Invalid> {
    if arn_account == caller {
        return Ok(());
    }
    Err(Invalid {
        summary: "Role ARN of another account",
        detail: format!(
            "The import ID {arn:?} names a role in account {arn_account}, but the provider's \
             credentials belong to account {caller}, and IAM would read the role of that name \
             in account {caller} instead. Configure the provider with credentials of account \
             {arn_account} (for example an aliased provider block and `provider =` on the \
             resource), or import by role name to take the role of account {caller}."
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_accounts_arn_is_refused_naming_both() {
        let arn = "arn:aws:iam::999999999999:role/ci";
        assert!(same_account(arn, "123456789012", "123456789012").is_ok());
        let e = same_account(arn, "999999999999", "123456789012").unwrap_err();
        assert!(e.detail.contains("account 999999999999"), "{}", e.detail);
        assert!(e.detail.contains("account 123456789012"), "{}", e.detail);
    }
}
