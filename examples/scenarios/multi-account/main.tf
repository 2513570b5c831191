# One role per team in each of several AWS accounts, from one configuration: a gcpfed provider
# alias per account, and the gcp-runner-access module per account and team. Each team's Google
# Cloud runner gets one AWS config profile per account (credential_process, no AWS key).
#
# The provider of each account manages IAM there, with that account's administrator
# credentials (a profile per account here; SSO or assume_role_with_gcp_identity work too). On
# the local test bed every alias points at the same emulated account, which is why role names
# carry the account's name.

terraform {
  required_version = ">= 1.6"
  required_providers {
    gcpfed = {
      source = "gcpfed/gcpfed"
    }
  }
}

variable "account_profiles" {
  description = "AWS shared-config profile per account (development, staging, production) for the provider's own IAM calls; an account without one uses the standard AWS credential chain."
  type        = map(string)
  default     = {}
}

variable "region" {
  description = "AWS region of every account's provider, and of the runners' profiles."
  type        = string
  default     = "us-east-1"
}

variable "team_service_accounts" {
  description = "Numeric unique IDs of each team's Google service accounts (gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'). The defaults are the local test bed's accounts."
  type        = map(set(string))
  default = {
    team-a = ["104857600000000000001"]
    team-b = ["104857600000000000002"]
  }
}

variable "aws_endpoint" {
  description = "Custom IAM and STS endpoint of every account (an emulator such as the local test bed); null means AWS itself."
  type        = string
  default     = null
}

variable "metadata_host" {
  description = "host[:port] of the GCE metadata server; null means the provider's default (GCE_METADATA_HOST, then metadata.google.internal)."
  type        = string
  default     = null
}

locals {
  # What each team may do, in every account.
  teams = {
    team-a = {
      service_account_unique_ids = var.team_service_accounts["team-a"]
      managed_policy_arns        = ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
      inline_policies            = {}
    }
    team-b = {
      service_account_unique_ids = var.team_service_accounts["team-b"]
      managed_policy_arns        = []
      inline_policies = {
        read-team-b-parameters = jsonencode({
          Version = "2012-10-17"
          Statement = [{
            Effect   = "Allow"
            Action   = ["ssm:GetParameter", "ssm:GetParametersByPath"]
            Resource = "arn:aws:ssm:*:*:parameter/team-b/*"
          }]
        })
      }
    }
  }
}

provider "gcpfed" {
  alias         = "development"
  region        = var.region
  profile       = lookup(var.account_profiles, "development", null)
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

provider "gcpfed" {
  alias         = "staging"
  region        = var.region
  profile       = lookup(var.account_profiles, "staging", null)
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

provider "gcpfed" {
  alias         = "production"
  region        = var.region
  profile       = lookup(var.account_profiles, "production", null)
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

module "development" {
  source    = "../../modules/gcp-runner-access"
  for_each  = local.teams
  providers = { gcpfed = gcpfed.development }

  name                       = "gcp-${each.key}-development"
  audience                   = "sts.amazonaws.com/gcp-${each.key}-development"
  service_account_unique_ids = each.value.service_account_unique_ids
  managed_policy_arns        = each.value.managed_policy_arns
  inline_policies            = each.value.inline_policies
  max_session_duration       = 43200
  tags                       = { team = each.key, account = "development" }
  profile_name               = "${each.key}-development"
  profile_region             = var.region
}

module "staging" {
  source    = "../../modules/gcp-runner-access"
  for_each  = local.teams
  providers = { gcpfed = gcpfed.staging }

  name                       = "gcp-${each.key}-staging"
  audience                   = "sts.amazonaws.com/gcp-${each.key}-staging"
  service_account_unique_ids = each.value.service_account_unique_ids
  managed_policy_arns        = each.value.managed_policy_arns
  inline_policies            = each.value.inline_policies
  max_session_duration       = 7200
  tags                       = { team = each.key, account = "staging" }
  profile_name               = "${each.key}-staging"
  profile_region             = var.region
}

module "production" {
  source    = "../../modules/gcp-runner-access"
  for_each  = local.teams
  providers = { gcpfed = gcpfed.production }

  name                       = "gcp-${each.key}-production"
  audience                   = "sts.amazonaws.com/gcp-${each.key}-production"
  service_account_unique_ids = each.value.service_account_unique_ids
  managed_policy_arns        = each.value.managed_policy_arns
  inline_policies            = each.value.inline_policies
  max_session_duration       = 3600
  duration_seconds           = 900
  tags                       = { team = each.key, account = "production" }
  profile_name               = "${each.key}-production"
  profile_region             = var.region
}

output "role_arns" {
  description = "Role ARN per team and account."
  value = {
    for team in keys(local.teams) : team => {
      development = module.development[team].role_arn
      staging     = module.staging[team].role_arn
      production  = module.production[team].role_arn
    }
  }
}

output "aws_config" {
  description = "Per team: the ~/.aws/config text for its runner, one profile per account."
  value = {
    for team in keys(local.teams) : team => join("\n", [ # each profile ends with a newline: one blank line between
      module.development[team].aws_config_profile,
      module.staging[team].aws_config_profile,
      module.production[team].aws_config_profile,
    ])
  }
}
