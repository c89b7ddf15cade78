//! What a key accepts, read from the type that deserialises it: the range of
//! an integer, the names of an enum, and so on, for error messages that say
//! what is allowed without a hand-kept list.
//!
//! The type is walked with a stand-in deserializer that follows the key's
//! path and stops at the first request the key's own type makes of it.

use serde::de::{
    self, DeserializeOwned, Deserializer, IntoDeserializer, Visitor,
    value::{MapDeserializer, SeqDeserializer},
};
use serde_path_to_error::{Path, Segment};
use std::fmt;

/// What the type at a key accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expected {
    /// An integer in `min..=max`.
    Integer {
        /// Smallest allowed.
        min: i128,
        /// Largest allowed.
        max: i128,
    },
    /// A number.
    Number,
    /// `true` or `false`.
    Bool,
    /// One of these names.
    OneOf(&'static [&'static str]),
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The bounds of 64-bit types say nothing a reader needs.
            Self::Integer { min: 0, max } if *max > i128::from(u32::MAX) => {
                f.write_str("a whole number (0 or more)")
            }
            Self::Integer { max, .. } if *max > i128::from(u32::MAX) => f.write_str("an integer"),
            Self::Integer { min, max } => write!(f, "an integer in {min}..={max}"),
            Self::Number => f.write_str("a number"),
            Self::Bool => f.write_str("true or false"),
            Self::OneOf(names) => {
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                write!(f, "one of {}", names.join(", "))
            }
        }
    }
}

/// What `T` accepts at `path`; `None` where the walk cannot tell (a key
/// `T` does not have, a type that takes anything).
pub(crate) fn expected<T: DeserializeOwned>(path: &Path) -> Option<Expected> {
    let segments: Vec<&Segment> = path.iter().collect();
    match T::deserialize(Probe { rest: &segments }) {
        Err(Found(found)) => found,
        Ok(_) => None,
    }
}

/// The walk's only way out: what was found at the end of the path, if anything.
#[derive(Debug)]
struct Found(Option<Expected>);

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::error::Error for Found {}

impl de::Error for Found {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Self(None)
    }
}

/// Deserializes nothing: follows `rest`, then reports what was asked for.
struct Probe<'a> {
    rest: &'a [&'a Segment],
}

impl Probe<'_> {
    fn found<T>(&self, expected: Expected) -> Result<T, Found> {
        Err(Found(self.rest.is_empty().then_some(expected)))
    }

    fn integer<T>(&self, min: impl Into<i128>, max: impl Into<i128>) -> Result<T, Found> {
        self.found(Expected::Integer {
            min: min.into(),
            max: max.into(),
        })
    }
}

macro_rules! integers {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            self.integer(<$ty>::MIN, <$ty>::MAX)
        }
    )*};
}

macro_rules! unknown {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
            Err(Found(None))
        }
    )*};
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Found;

    integers!(
        deserialize_i8: i8, deserialize_i16: i16, deserialize_i32: i32, deserialize_i64: i64,
        deserialize_u8: u8, deserialize_u16: u16, deserialize_u32: u32, deserialize_u64: u64,
    );
    unknown!(
        deserialize_any,
        deserialize_i128,
        deserialize_u128,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_bool<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        self.found(Expected::Bool)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        self.found(Expected::Number)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Found> {
        self.found(Expected::Number)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Found> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Found> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Found> {
        match self.rest.split_first() {
            // A list of the one item on the path.
            Some((Segment::Seq { .. }, rest)) => {
                visitor.visit_seq(SeqDeserializer::new(std::iter::once(Probe { rest })))
            }
            _ => Err(Found(None)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        _: V,
    ) -> Result<V::Value, Found> {
        Err(Found(None))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Found> {
        match self.rest.split_first() {
            // A mapping of the one key on the path.
            Some((Segment::Map { key }, rest)) => visitor.visit_map(MapDeserializer::new(
                std::iter::once((key.as_str(), Probe { rest })),
            )),
            _ => Err(Found(None)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Found> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Found> {
        self.found(Expected::OneOf(variants))
    }
}

/// The probe is its own deserializer, so serde's `MapDeserializer` and
/// `SeqDeserializer` can hand it out as the one value on the path.
impl<'de> IntoDeserializer<'de, Found> for Probe<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    #[serde(rename_all = "lowercase")]
    #[allow(dead_code)]
    enum Mode {
        On,
        Off,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        port: u16,
        mode: Option<Mode>,
        ratio: f32,
        name: String,
        list: Vec<i8>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
        many: BTreeMap<String, Inner>,
        flag: bool,
    }

    /// What `Outer` accepts at `path`, found as an error there would report it.
    fn at(path: &str) -> Option<Expected> {
        // A real path, from a deserialisation that fails at it.
        let mut value = serde_json::json!({
            "inner": {"port": 1, "mode": "on", "ratio": 1.0, "name": "n", "list": [1]},
            "many": {"x": {"port": 1, "mode": "on", "ratio": 1.0, "name": "n", "list": [1]}},
            "flag": true,
        });
        let pointer = format!("/{}", path.replace(['.', '['], "/").replace(']', ""));
        *value.pointer_mut(&pointer).unwrap() = serde_json::json!({"bad": []});
        let error = serde_path_to_error::deserialize::<_, Outer>(value)
            .err()
            .unwrap();
        assert_eq!(error.path().to_string(), path);
        expected::<Outer>(error.path())
    }

    #[test]
    fn leaves_say_what_they_accept() {
        assert_eq!(
            at("inner.port"),
            Some(Expected::Integer { min: 0, max: 65535 })
        );
        assert_eq!(at("inner.mode"), Some(Expected::OneOf(&["on", "off"])));
        assert_eq!(at("inner.ratio"), Some(Expected::Number));
        assert_eq!(at("flag"), Some(Expected::Bool));
        assert_eq!(
            at("many.x.port"),
            Some(Expected::Integer { min: 0, max: 65535 })
        );
        assert_eq!(
            at("inner.list[0]"),
            Some(Expected::Integer {
                min: -128,
                max: 127
            })
        );
        assert_eq!(at("inner.name"), None);
        let integer = |min, max| Expected::Integer { min, max }.to_string();
        assert_eq!(integer(0, 65535), "an integer in 0..=65535");
        assert_eq!(integer(0, u64::MAX.into()), "a whole number (0 or more)");
        assert_eq!(integer(i64::MIN.into(), i64::MAX.into()), "an integer");
        assert_eq!(
            Expected::OneOf(&["required", "disabled"]).to_string(),
            "one of `required`, `disabled`"
        );
    }
}
