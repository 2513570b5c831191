//! IAM done out of band, as an operator or another tool would: creating a role with a given
//! trust policy, and deleting one with everything that blocks `DeleteRole`. The one home of
//! these for every test binary (the bed's moto directly, or the sandbox account).

use aws_sdk_iam::Client;
use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::bed::block_on;

/// A JSON document as IAM returns it (URL-encoded), parsed.
pub fn document(doc: &str) -> Value {
    let text = percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("IAM document is not JSON ({e}): {text}"))
}

/// Creates role `name` with `trust_policy` (and `max_session` seconds of MaxSessionDuration
/// when given) through `iam`; returns its ARN. Panics, naming the role, when IAM refuses.
pub fn create_role(
    iam: &Client,
    name: &str,
    trust_policy: &str,
    max_session: Option<i32>,
) -> String {
    let mut request = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust_policy);
    if let Some(max) = max_session {
        request = request.max_session_duration(max);
    }
    let output = block_on(request.send()).unwrap_or_else(|e| panic!("CreateRole {name}: {e:?}"));
    output
        .role()
        .expect("CreateRole answers with the role")
        .arn()
        .to_owned()
}

/// Creates role `name` that the Google service accounts `ids` may assume for `audience`, its
/// trust policy written out by hand ([`super::trust_policy_by_hand`]), with a one-hour maximum
/// session; returns its ARN.
pub fn create_trusted_role(iam: &Client, name: &str, audience: &str, ids: &[&str]) -> String {
    create_role(
        iam,
        name,
        &super::trust_policy_by_hand(audience, ids),
        Some(3600),
    )
}

/// Deletes a role the way `gcpfed_role` does (policies, instance profiles, then the role);
/// `Ok(false)` when it does not exist.
pub fn delete_role_fully(iam: &Client, name: &str) -> Result<bool, String> {
    block_on(delete_role_fully_async(iam, name))
}

async fn delete_role_fully_async(iam: &Client, name: &str) -> Result<bool, String> {
    let gone = |e: &dyn std::fmt::Display| e.to_string().contains("NoSuchEntity");
    let text =
        |e: &dyn std::error::Error| format!("{}", aws_sdk_iam::error::DisplayErrorContext(e));
    let attached = match iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
    {
        Ok(out) => out.attached_policies.unwrap_or_default(),
        Err(e) => {
            let t = text(&e);
            return if gone(&t) { Ok(false) } else { Err(t) };
        }
    };
    for p in attached {
        if let Some(arn) = p.policy_arn {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(|e| text(&e))?;
        }
    }
    let inline = iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| text(&e))?;
    for p in inline.policy_names {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(p)
            .send()
            .await
            .map_err(|e| text(&e))?;
    }
    let profiles = iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| text(&e))?;
    for p in profiles.instance_profiles {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(p.instance_profile_name)
            .role_name(name)
            .send()
            .await
            .map_err(|e| text(&e))?;
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) => {
            let t = text(&e);
            if gone(&t) {
                Ok(false)
            } else {
                Err(t)
            }
        }
    }
}
