# A role is imported by its name (its ARN works too). Its trust policy must be of the shape
# gcpfed_role renders; any other role is refused with what differs.
terraform import gcpfed_role.ci gcp-ci-deployer
