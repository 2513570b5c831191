//! Repeated keys in JSON objects. serde_json, like most parsers, keeps the last value of a key
//! that occurs twice in one object, while another reader (IAM's, a reviewer's eye) may take the
//! first: `{"Effect":"Deny","Effect":"Allow"}` reads as Deny to a human and Allow to us. Such a
//! document is refused wherever we take one, and is never "equivalent" to anything when IAM holds
//! it. (terraform-provider-aws refuses them too, since its PR #33570.)

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// A key that occurs more than once in one JSON object, and where that object is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedKey {
    /// The key, unescaped.
    pub key: String,
    /// The object holding it, like `Statement[0].Condition`; empty for the top level.
    pub path: String,
}

impl fmt::Display for RepeatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(
                f,
                "the key {:?} occurs more than once at the top level",
                self.key
            )
        } else {
            write!(
                f,
                "the key {:?} occurs more than once in {}",
                self.key, self.path
            )
        }
    }
}

/// The first repeated key of `text`, at any depth; `None` when there is none or when `text` is
/// not JSON (the caller's parser reports that).
pub fn repeated_key(text: &str) -> Option<RepeatedKey> {
    let walk = Walk {
        path: RefCell::new(Vec::new()),
        found: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let _ = Node(&walk).deserialize(&mut de);
    walk.found.into_inner()
}

/// What one walk shares between its nodes: the path to the current value and the finding.
struct Walk {
    path: RefCell<Vec<String>>,
    found: RefCell<Option<RepeatedKey>>,
}

impl Walk {
    fn path_text(&self) -> String {
        let mut out = String::new();
        for seg in self.path.borrow().iter() {
            if !seg.starts_with('[') && !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
        out
    }

    /// Visits one value with `seg` pushed onto the path.
    fn child<T>(&self, seg: String, visit: impl FnOnce(Node<'_>) -> T) -> T {
        self.path.borrow_mut().push(seg);
        let out = visit(Node(self));
        self.path.borrow_mut().pop();
        out
    }
}

/// One JSON value of the walk; it keeps nothing, it only looks at object keys.
#[derive(Clone, Copy)]
struct Node<'w>(&'w Walk);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let more = self
                .0
                .child(format!("[{i}]"), |node| seq.next_element_seed(node))?;
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                *self.0.found.borrow_mut() = Some(RepeatedKey {
                    key,
                    path: self.0.path_text(),
                });
                // Stop the walk: the first finding is the one reported.
                return Err(A::Error::custom("repeated key"));
            }
            self.0.child(key, |node| map.next_value_seed(node))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Option<(String, String)> {
        repeated_key(text).map(|r| (r.key, r.path))
    }

    #[test]
    fn finds_repeated_keys_at_any_depth() {
        assert_eq!(found(r#"{"a":1,"a":2}"#), Some(("a".into(), "".into())));
        assert_eq!(
            found(r#"{"Statement":[{"Effect":"Allow"},{"Effect":"Deny","Effect":"Allow"}]}"#),
            Some(("Effect".into(), "Statement[1]".into()))
        );
        assert_eq!(
            found(r#"{"S":{"Condition":{"StringEquals":{"k":"a","k":"b"}}}}"#),
            Some(("k".into(), "S.Condition.StringEquals".into()))
        );
        assert_eq!(
            found(r#"[[{"x":{},"x":[]}]]"#),
            Some(("x".into(), "[0][0]".into()))
        );
        // Escapes are undone before comparing: both spell "Effect".
        assert_eq!(
            found(r#"{"Effect":"Allow","\u0045ffect":"Deny"}"#).map(|f| f.0),
            Some("Effect".into())
        );
    }

    #[test]
    fn accepts_documents_without_repeats_and_leaves_non_json_to_the_parser() {
        for ok in [
            r#"{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}"#,
            r#"{"A":1,"a":2}"#,
            "[]",
            "1",
            "\"a\"",
            "{nope",
            "",
        ] {
            assert_eq!(found(ok), None, "{ok}");
        }
    }

    #[test]
    fn says_where_the_key_is() {
        let r = repeated_key(r#"{"Statement":[{"Action":"a","Action":"b"}]}"#).unwrap();
        assert_eq!(
            r.to_string(),
            "the key \"Action\" occurs more than once in Statement[0]"
        );
    }
}
