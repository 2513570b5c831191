# Temporary AWS credentials for the CI runner's service account, exchanged each time Terraform
# opens the ephemeral resource (every plan and apply) and never written to the state or to plan
# files. Needs Terraform >= 1.10 (OpenTofu >= 1.11); older engines use the data source.
ephemeral "gcpfed_credentials" "ci" {
  role_arn = "arn:aws:iam::123456789012:role/gcp-ci-deployer" # gcpfed_role.ci.arn
  audience = "sts.amazonaws.com/gcp-ci-deployer"              # gcpfed_role.ci.audience
  # service_account  = "default"   # or an email attached to this VM / bound to this pod
  # duration_seconds = 3600
}

# A provider instance that works as the assumed role. Provider blocks accept ephemeral values;
# the same three configure the AWS provider (provider "aws" { access_key = …, secret_key = …,
# token = … }).
provider "gcpfed" {
  alias      = "ci"
  region     = "eu-west-1"
  access_key = ephemeral.gcpfed_credentials.ci.access_key_id
  secret_key = ephemeral.gcpfed_credentials.ci.secret_access_key
  token      = ephemeral.gcpfed_credentials.ci.session_token
}
