//! Builds a `serde_json::Value` from any serde deserializer while counting what it
//! materialises.
//!
//! The YAML parser's own budgets bound parser events and alias replays, but an alias of a big
//! anchored node is copied in full every time it is replayed, so a small card could still
//! expand into gigabytes. Counting nodes and bytes as the value is built stops that expansion
//! at a fixed size, whatever trick the input uses.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Most nodes (scalars, lists, mappings, after alias expansion) one card may produce.
pub(crate) const MAX_VALUE_NODES: usize = 200_000;
/// Most bytes of strings and keys (after alias expansion) one card may produce.
pub(crate) const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Deepest nesting of lists and mappings.
pub(crate) const MAX_DEPTH: usize = 64;

/// What is still allowed to be built.
pub(crate) struct Allowance {
    nodes: Cell<usize>,
    bytes: Cell<usize>,
}

impl Allowance {
    pub(crate) fn new() -> Self {
        Allowance {
            nodes: Cell::new(MAX_VALUE_NODES),
            bytes: Cell::new(MAX_VALUE_BYTES),
        }
    }

    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let nodes = self.nodes.get().checked_sub(1).ok_or_else(|| {
            E::custom(format_args!(
                "metadata is too large: more than {MAX_VALUE_NODES} values after expanding aliases"
            ))
        })?;
        let bytes = self.bytes.get().checked_sub(bytes).ok_or_else(|| {
            E::custom(format_args!(
                "metadata is too large: more than {MAX_VALUE_BYTES} bytes of text after expanding aliases"
            ))
        })?;
        self.nodes.set(nodes);
        self.bytes.set(bytes);
        Ok(())
    }
}

/// Deserializes one value (and everything below it) within an [`Allowance`].
#[derive(Clone, Copy)]
pub(crate) struct BoundedValue<'a> {
    pub(crate) allowance: &'a Allowance,
    pub(crate) depth: usize,
}

impl BoundedValue<'_> {
    fn child<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "metadata is nested too deeply (more than {MAX_DEPTH} levels)"
            )));
        }
        Ok(BoundedValue {
            allowance: self.allowance,
            depth: self.depth + 1,
        })
    }

    fn string<E: de::Error>(self, s: String) -> Result<Value, E> {
        self.allowance.charge(s.len())?;
        Ok(Value::String(s))
    }

    fn number<E: de::Error>(self, n: Number) -> Result<Value, E> {
        self.allowance.charge(0)?;
        Ok(Value::Number(n))
    }
}

impl<'de> DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.allowance.charge(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.number(Number::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.number(Number::from(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(small), _) => self.visit_i64(small),
            (_, Ok(small)) => self.visit_u64(small),
            // Too big for JSON integers: keep the magnitude, as JSON parsers do.
            _ => self.visit_f64(v as f64),
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        match u64::try_from(v) {
            Ok(small) => self.visit_u64(small),
            Err(_) => self.visit_f64(v as f64),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // Non-finite numbers arrive as strings (see the parser options); anything else that
        // JSON cannot hold becomes null.
        match Number::from_f64(v) {
            Some(n) => self.number(n),
            None => {
                self.allowance.charge(0)?;
                Ok(Value::Null)
            }
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.allowance.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.string(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        self.allowance.charge(v.len())?;
        Ok(Value::String(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.allowance.charge(0)?;
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.visit_none()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.allowance.charge(0)?;
        let child = self.child()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.allowance.charge(0)?;
        let child = self.child()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.allowance.charge(key.len())?;
            let value = map.next_value_seed(child)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}
