//! Declaring schema attributes with every field set explicitly, as the CONVENTIONS ask:
//! tf-provider's defaults would make an attribute optional, computed and of type Any. One home for
//! the shape, shared by the Terraform types.

use tf_provider::schema::{Attribute, AttributeConstraint, AttributeType, Description};

/// A non-sensitive, non-deprecated attribute with a Markdown description.
pub fn attribute(
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    description: &str,
) -> Attribute {
    Attribute {
        attr_type,
        description: Description::markdown(description),
        constraint,
        sensitive: false,
        deprecated: false,
    }
}

/// The same attribute, hidden by the CLI in plans and outputs.
pub fn sensitive(attribute: Attribute) -> Attribute {
    Attribute {
        sensitive: true,
        ..attribute
    }
}
