# One runner, many teams: the CI runner's own service account (ci-runner) holds no AWS access of
# its own. For each team it impersonates that team's service account through the IAM Credentials
# API (generateIdToken), and each team's AWS role trusts only its own account's unique ID. The
# runner's own token is refused by every team role; a team's token is refused by the others.
#
# On the Google side (once per team, by whoever owns the team's account):
#
#   gcloud services enable iamcredentials.googleapis.com --project RUNNER_PROJECT
#   gcloud iam service-accounts add-iam-policy-binding team-a@PROJECT.iam.gserviceaccount.com \
#     --member serviceAccount:ci-runner@PROJECT.iam.gserviceaccount.com \
#     --role roles/iam.serviceAccountTokenCreator
#
# The runner's VM (or node pool) needs the cloud-platform access scope for its access token.
# Ephemeral resources need Terraform >= 1.10 (OpenTofu >= 1.11); older engines can use the
# data source of the same name with the same two arguments.

terraform {
  required_version = ">= 1.10"
  required_providers {
    gcpfed = {
      source = "gcpfed/gcpfed"
    }
  }
}

variable "region" {
  description = "AWS region for IAM and STS calls."
  type        = string
  default     = "us-east-1"
}

variable "aws_endpoint" {
  description = "Custom IAM and STS endpoint (an emulator such as the local test bed); null means AWS itself."
  type        = string
  default     = null
}

variable "metadata_host" {
  description = "host[:port] of the GCE metadata server; null means GCE_METADATA_HOST, then metadata.google.internal."
  type        = string
  default     = null
}

variable "iam_credentials_endpoint" {
  description = "Base URL of the IAM Credentials API; null means GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT, then https://iamcredentials.googleapis.com/v1/."
  type        = string
  default     = null
}

variable "teams" {
  description = "Each team's service account (email and numeric unique ID). The defaults are the local test bed's team accounts."
  type = map(object({
    email     = string
    unique_id = string
  }))
  default = {
    team-a = { email = "team-a@gcpfed-test.iam.gserviceaccount.com", unique_id = "104857600000000000011" }
    team-b = { email = "team-b@gcpfed-test.iam.gserviceaccount.com", unique_id = "104857600000000000012" }
  }
}

# Creating the team roles needs AWS credentials that may manage IAM (the standard chain).
provider "gcpfed" {
  region                          = var.region
  metadata_host                   = var.metadata_host
  iam_credentials_custom_endpoint = var.iam_credentials_endpoint

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

# One role per team, each trusting only its team's account.
resource "gcpfed_role" "team" {
  for_each = var.teams

  name                       = "gcpfed-${each.key}"
  audience                   = "sts.amazonaws.com/gcpfed-${each.key}"
  service_account_unique_ids = [each.value.unique_id]
}

# The runner (service_account = "default") impersonates team-a; the credentials are team-a's
# session of team-a's role. Delegates, when the runner may only reach team-a through another
# account, go in order: the runner can impersonate the first, each the next, the last team-a.
ephemeral "gcpfed_credentials" "team_a" {
  role_arn                    = gcpfed_role.team["team-a"].arn
  audience                    = gcpfed_role.team["team-a"].audience
  impersonate_service_account = var.teams["team-a"].email
  # delegates                 = ["ci-hop@PROJECT.iam.gserviceaccount.com"]
}

# Team a's provider: everything it manages is done as team-a's session.
provider "gcpfed" {
  alias      = "team_a"
  region     = var.region
  access_key = ephemeral.gcpfed_credentials.team_a.access_key_id
  secret_key = ephemeral.gcpfed_credentials.team_a.secret_access_key
  token      = ephemeral.gcpfed_credentials.team_a.session_token

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

# An example of what team a manages with its own session.
resource "gcpfed_role" "team_a_app" {
  provider                   = gcpfed.team_a
  name                       = "gcpfed-team-a-app"
  audience                   = "sts.amazonaws.com/gcpfed-team-a-app"
  service_account_unique_ids = [var.teams["team-a"].unique_id]
}

output "team_role_arns" {
  description = "Each team's role, for its credential_process profile (--impersonate-service-account)."
  value       = { for name, role in gcpfed_role.team : name => role.arn }
}
