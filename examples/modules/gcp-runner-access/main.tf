# gcp-runner-access: one IAM role that Google Cloud runners assume with their own identity, and
# the ~/.aws/config profile that gives the runner's AWS CLI, SDKs and providers its credentials
# through the gcpfed credential_process helper (no AWS key on the runner).
#
# The module has no provider block: the caller chooses the AWS account by passing a gcpfed
# provider (`providers = { gcpfed = gcpfed.production }`), so one module serves many accounts.
# From a Google Cloud runner, that provider is best fed from ephemeral credentials, so that no
# AWS key exists anywhere and none is stored:
#
#   ephemeral "gcpfed_credentials" "production" { role_arn = "…", audience = "…" }
#   provider "gcpfed" {
#     alias      = "production"
#     access_key = ephemeral.gcpfed_credentials.production.access_key_id
#     secret_key = ephemeral.gcpfed_credentials.production.secret_access_key
#     token      = ephemeral.gcpfed_credentials.production.session_token
#   }

terraform {
  required_version = ">= 1.6"
  required_providers {
    gcpfed = {
      source = "gcpfed/gcpfed"
    }
  }
}

resource "gcpfed_role" "this" {
  name                       = var.name
  path                       = var.path
  description                = var.description
  audience                   = var.audience
  service_account_unique_ids = var.service_account_unique_ids

  managed_policy_arns  = var.managed_policy_arns
  inline_policies      = var.inline_policies
  max_session_duration = var.max_session_duration
  permissions_boundary = var.permissions_boundary
  tags                 = var.tags
}

locals {
  profile_name = coalesce(var.profile_name, var.name)

  # credential_process splits its value on spaces; the inputs below are checked to hold none.
  credential_process = join(" ", compact([
    var.helper_path,
    "credential-process",
    "--role-arn", gcpfed_role.this.arn,
    "--audience", var.audience,
    var.service_account == "default" ? "" : "--service-account ${var.service_account}",
    var.duration_seconds == null ? "" : "--duration-seconds ${var.duration_seconds}",
  ]))

  # Ends with a newline, so that `terraform output -raw aws_config_profile >> ~/.aws/config`
  # leaves the next section on a line of its own (without it, `[profile next]` would land on
  # this profile's last line and the AWS CLI would refuse the whole file).
  aws_config_profile = "${join("\n", compact([
    "[profile ${local.profile_name}]",
    "credential_process = ${local.credential_process}",
    var.profile_region == null ? "" : "region = ${var.profile_region}",
  ]))}\n"
}
