# Temporary AWS credentials for the CI runner's service account, exchanged on every plan and
# apply. The role trusts the runner's service account (numeric unique ID) and the audience.
resource "gcpfed_role" "ci" {
  name                       = "gcp-ci-deployer"
  audience                   = "sts.amazonaws.com/gcp-ci"
  service_account_unique_ids = ["104857600000000000001"]
  managed_policy_arns        = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
}

data "gcpfed_credentials" "ci" {
  role_arn = gcpfed_role.ci.arn
  audience = gcpfed_role.ci.audience
  # service_account  = "default"   # or an email attached to this VM / bound to this pod
  # duration_seconds = 3600
}

# A second provider instance that works as the assumed role. The same three values configure
# the AWS provider (provider "aws" { access_key = …, secret_key = …, token = … }).
provider "gcpfed" {
  alias      = "deployer"
  region     = "eu-west-1"
  access_key = data.gcpfed_credentials.ci.access_key_id
  secret_key = data.gcpfed_credentials.ci.secret_access_key
  token      = data.gcpfed_credentials.ci.session_token
}
