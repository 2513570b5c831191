terraform {
  required_providers {
    gcpfed = {
      source = "gcpfed/gcpfed"
    }
  }
}

# On a Google Cloud CI runner: the region, and nothing else. The provider's own IAM calls use
# the standard AWS credential chain (environment, shared files, web identity, container).
provider "gcpfed" {
  region = "eu-west-1"
}

# Against emulators or private endpoints.
provider "gcpfed" {
  alias         = "local"
  region        = "us-east-1"
  metadata_host = "127.0.0.1:8080"
  max_retries   = 3

  endpoints {
    iam = "http://127.0.0.1:5000"
    sts = "http://127.0.0.1:5000"
  }
}
