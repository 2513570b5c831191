//! tf-provider's typed schema, diagnostics and attribute paths, turned into tfplugin6 messages.
//! Pure functions: no I/O, unit-tested below.

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, FunctionSchema, NestedBlock,
    Parameter, Schema, StringKind,
};
use tf_provider::{AttributePath, AttributePathStep, Diagnostic, Diagnostics};

use super::proto::tfplugin6 as tf;

pub fn diagnostics(diags: &Diagnostics) -> Vec<tf::Diagnostic> {
    let one = |severity: tf::diagnostic::Severity, d: &Diagnostic| tf::Diagnostic {
        severity: severity as i32,
        summary: d.summary.to_string(),
        detail: d.detail.to_string(),
        attribute: attribute_path(&d.attribute),
    };
    diags
        .errors
        .iter()
        .map(|d| one(tf::diagnostic::Severity::Error, d))
        .chain(
            diags
                .warnings
                .iter()
                .map(|d| one(tf::diagnostic::Severity::Warning, d)),
        )
        .collect()
}

/// `None` for the root path: a diagnostic about the whole block carries no attribute.
pub fn attribute_path(path: &AttributePath) -> Option<tf::AttributePath> {
    use tf::attribute_path::step::Selector;
    if path.steps.is_empty() {
        return None;
    }
    let steps = path
        .steps
        .iter()
        .map(|step| tf::attribute_path::Step {
            selector: Some(match step {
                AttributePathStep::Attribute(name) => Selector::AttributeName(name.to_string()),
                AttributePathStep::Key(key) => Selector::ElementKeyString(key.to_string()),
                AttributePathStep::Index(index) => Selector::ElementKeyInt(*index),
            }),
        })
        .collect();
    Some(tf::AttributePath { steps })
}

/// The protocol has one error per function call: every error is joined into it, and the
/// argument index is the first one a diagnostic names (`Diagnostics::function_error`).
pub fn function_error(diags: &Diagnostics) -> Option<tf::FunctionError> {
    if diags.errors.is_empty() {
        return None;
    }
    let text = diags
        .errors
        .iter()
        .map(|d| {
            if d.detail.is_empty() {
                d.summary.to_string()
            } else {
                format!("{}: {}", d.summary, d.detail)
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let function_argument = diags
        .errors
        .iter()
        .find_map(|d| match d.attribute.steps[..] {
            [AttributePathStep::Index(index)] => Some(index),
            _ => None,
        });
    Some(tf::FunctionError {
        text,
        function_argument,
    })
}

pub fn schema(schema: &Schema) -> tf::Schema {
    tf::Schema {
        version: schema.version,
        block: Some(block(&schema.block)),
    }
}

fn description_kind(description: &Description) -> i32 {
    match description.kind {
        StringKind::Plain => tf::StringKind::Plain as i32,
        StringKind::Markdown => tf::StringKind::Markdown as i32,
    }
}

fn block(block: &Block) -> tf::schema::Block {
    use tf::schema::nested_block::NestingMode;
    let mut attributes: Vec<tf::schema::Attribute> = block
        .attributes
        .iter()
        .map(|(name, a)| attribute(name, a))
        .collect();
    attributes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut block_types: Vec<tf::schema::NestedBlock> = block
        .blocks
        .iter()
        .map(|(name, nested)| {
            // (nesting, min_items, max_items); 0 means "no limit" in the protocol.
            let (nesting, min, max, inner) = match nested {
                NestedBlock::Single(b) => (NestingMode::Single, 1, 1, b),
                NestedBlock::List(b) => (NestingMode::List, 0, 0, b),
                NestedBlock::Set(b) => (NestingMode::Set, 0, 0, b),
                NestedBlock::Map(b) => (NestingMode::Map, 0, 0, b),
                NestedBlock::Group(b) => (NestingMode::Group, 0, 0, b),
                // tf-provider's optional block is a list of at most one (its serde_as_vec).
                NestedBlock::Optional(b) => (NestingMode::List, 0, 1, b),
            };
            tf::schema::NestedBlock {
                type_name: name.clone(),
                block: Some(self::block(inner)),
                nesting: nesting as i32,
                min_items: min,
                max_items: max,
            }
        })
        .collect();
    block_types.sort_by(|a, b| a.type_name.cmp(&b.type_name));
    tf::schema::Block {
        version: block.version,
        attributes,
        block_types,
        description: block.description.content.clone(),
        description_kind: description_kind(&block.description),
        deprecated: block.deprecated,
    }
}

fn attribute(name: &str, a: &Attribute) -> tf::schema::Attribute {
    use tf::schema::object::NestingMode;
    let nested = match &a.attr_type {
        AttributeType::AttributeSingle(inner) => Some((NestingMode::Single, inner)),
        AttributeType::AttributeList(inner) => Some((NestingMode::List, inner)),
        AttributeType::AttributeSet(inner) => Some((NestingMode::Set, inner)),
        AttributeType::AttributeMap(inner) => Some((NestingMode::Map, inner)),
        _ => None,
    };
    let (r#type, nested_type) = match nested {
        Some((nesting, inner)) => {
            let mut attributes: Vec<_> = inner.iter().map(|(n, a)| attribute(n, a)).collect();
            attributes.sort_by(|a, b| a.name.cmp(&b.name));
            let object = tf::schema::Object {
                attributes,
                nesting: nesting as i32,
            };
            (Vec::new(), Some(object))
        }
        None => (type_json(&a.attr_type), None),
    };
    let (required, optional, computed) = match a.constraint {
        AttributeConstraint::Required => (true, false, false),
        AttributeConstraint::Optional => (false, true, false),
        AttributeConstraint::Computed => (false, false, true),
        AttributeConstraint::OptionalComputed => (false, true, true),
    };
    tf::schema::Attribute {
        name: name.to_string(),
        r#type,
        nested_type,
        description: a.description.content.clone(),
        required,
        optional,
        computed,
        sensitive: a.sensitive,
        description_kind: description_kind(&a.description),
        deprecated: a.deprecated,
        write_only: false,
    }
}

/// cty's JSON type encoding; tf-provider's types serialise to it.
fn type_json<T: serde::Serialize>(t: &T) -> Vec<u8> {
    serde_json::to_vec(t).expect("a type constraint always serialises")
}

pub fn function(f: &FunctionSchema) -> tf::Function {
    let parameter = |p: &Parameter| tf::function::Parameter {
        name: p.name.clone(),
        r#type: type_json(&p.param_type),
        allow_null_value: p.allow_null,
        allow_unknown_values: p.allow_unknown,
        description: p.description.content.clone(),
        description_kind: description_kind(&p.description),
    };
    tf::Function {
        parameters: f.parameters.iter().map(parameter).collect(),
        variadic_parameter: f.variadic.as_ref().map(parameter),
        r#return: Some(tf::function::Return {
            r#type: type_json(&f.return_type),
        }),
        summary: f.summary.clone(),
        description: f.description.content.clone(),
        description_kind: description_kind(&f.description),
        deprecation_message: match &f.deprecated {
            Some(message) if message.is_empty() => "deprecated".to_string(),
            Some(message) => message.clone(),
            None => String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tf_provider::schema::Type;

    fn attr(attr_type: AttributeType, constraint: AttributeConstraint) -> Attribute {
        Attribute {
            attr_type,
            description: Description::markdown("d"),
            constraint,
            sensitive: false,
            deprecated: false,
        }
    }

    #[test]
    fn attributes_carry_cty_types_and_constraint_flags_sorted_by_name() {
        let block = Block {
            version: 3,
            attributes: HashMap::from([
                (
                    "z".to_string(),
                    attr(AttributeType::String, AttributeConstraint::Required),
                ),
                (
                    "a".to_string(),
                    attr(
                        AttributeType::Set(Box::new(AttributeType::String)),
                        AttributeConstraint::OptionalComputed,
                    ),
                ),
                (
                    "m".to_string(),
                    attr(
                        AttributeType::Map(Box::new(AttributeType::Number)),
                        AttributeConstraint::Computed,
                    ),
                ),
            ]),
            ..Default::default()
        };
        let out = schema(&Schema { version: 2, block });
        assert_eq!(out.version, 2);
        let b = out.block.unwrap();
        assert_eq!(b.version, 3);
        let got: Vec<(String, String, bool, bool, bool)> = b
            .attributes
            .iter()
            .map(|a| {
                let t = String::from_utf8(a.r#type.clone()).unwrap();
                (a.name.clone(), t, a.required, a.optional, a.computed)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), r#"["set","string"]"#.into(), false, true, true),
                ("m".into(), r#"["map","number"]"#.into(), false, false, true),
                ("z".into(), r#""string""#.into(), true, false, false),
            ]
        );
        assert_eq!(
            b.attributes[0].description_kind,
            tf::StringKind::Markdown as i32
        );
    }

    #[test]
    fn an_optional_block_is_a_list_of_at_most_one() {
        let block = Block {
            blocks: HashMap::from([(
                "endpoints".to_string(),
                NestedBlock::Optional(Block::default()),
            )]),
            ..Default::default()
        };
        let b = schema(&Schema { version: 1, block }).block.unwrap();
        let nested = &b.block_types[0];
        assert_eq!(nested.type_name, "endpoints");
        assert_eq!(
            nested.nesting,
            tf::schema::nested_block::NestingMode::List as i32
        );
        assert_eq!((nested.min_items, nested.max_items), (0, 1));
    }

    #[test]
    fn diagnostics_keep_severity_and_paths_and_root_has_none() {
        let mut diags = Diagnostics::default();
        // Struct literals: tf-provider's constructors append a backtrace under RUST_BACKTRACE.
        diags.add_error(Diagnostic {
            summary: "bad".into(),
            detail: "fix it".into(),
            attribute: AttributePath::new("tags").key("env").index(2),
        });
        diags.add_warning(Diagnostic {
            summary: "careful".into(),
            detail: "maybe".into(),
            attribute: AttributePath::root(),
        });
        let out = diagnostics(&diags);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].severity, tf::diagnostic::Severity::Error as i32);
        assert_eq!(
            (out[0].summary.as_str(), out[0].detail.as_str()),
            ("bad", "fix it")
        );
        use tf::attribute_path::step::Selector;
        let steps: Vec<_> = out[0]
            .attribute
            .as_ref()
            .unwrap()
            .steps
            .iter()
            .map(|s| s.selector.clone().unwrap())
            .collect();
        assert_eq!(
            steps,
            vec![
                Selector::AttributeName("tags".into()),
                Selector::ElementKeyString("env".into()),
                Selector::ElementKeyInt(2),
            ]
        );
        assert_eq!(out[1].severity, tf::diagnostic::Severity::Warning as i32);
        assert!(out[1].attribute.is_none());
    }

    #[test]
    fn function_errors_name_the_argument() {
        assert!(function_error(&Diagnostics::default()).is_none());
        let mut diags = Diagnostics::default();
        diags.function_error(1, "unique_ids[0] is not numeric");
        let err = function_error(&diags).unwrap();
        assert_eq!(err.function_argument, Some(1));
        assert!(
            err.text.contains("unique_ids[0] is not numeric"),
            "{}",
            err.text
        );
    }

    #[test]
    fn function_schemas_carry_parameter_types() {
        let f = FunctionSchema {
            parameters: vec![Parameter {
                name: "unique_ids".into(),
                param_type: Type::List(Box::new(Type::String)),
                allow_null: false,
                allow_unknown: false,
                description: Description::plain("ids"),
            }],
            variadic: None,
            return_type: Type::String,
            summary: "s".into(),
            description: Description::markdown("d"),
            deprecated: None,
        };
        let out = function(&f);
        assert_eq!(out.parameters[0].r#type, br#"["list","string"]"#);
        assert_eq!(out.r#return.unwrap().r#type, br#""string""#);
        assert_eq!(out.deprecation_message, "");
    }
}
