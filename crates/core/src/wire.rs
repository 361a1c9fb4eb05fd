//! Enums whose wire name is spelled once.
//!
//! `wire_enum!` declares a fieldless enum together with the one table of
//! its wire names. `as_str`, `parse`, `Display`, `ALL` and the serde impls
//! all read that table: JSON carries the name, compact formats (postcard)
//! the variant's index, exactly as serde's derive would write them, so data
//! stored by earlier builds reads the same.

use std::fmt;
use std::marker::PhantomData;

/// What `wire_enum!` generates for each enum, for generic code.
pub trait WireEnum: Copy + 'static {
    const NAME: &'static str;
    const ALL: &'static [Self];
    const NAMES: &'static [&'static str];
    fn index(self) -> usize;
}

/// The number of identifiers given (for `wire_enum!`'s `ALL` array).
#[macro_export]
macro_rules! wire_count {
    () => { 0usize };
    ($head:ident $($rest:ident)*) => { 1usize + $crate::wire_count!($($rest)*) };
}

/// A wire enum's schema: its names (feature `openapi`).
#[cfg(feature = "openapi")]
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_schema {
    ($name:ident) => {
        impl $crate::schema::utoipa::PartialSchema for $name {
            fn schema() -> $crate::schema::utoipa::openapi::RefOr<
                $crate::schema::utoipa::openapi::schema::Schema,
            > {
                $crate::schema::names(<$name as $crate::wire::WireEnum>::NAMES)
            }
        }

        impl $crate::schema::utoipa::ToSchema for $name {}
    };
}

/// Without the feature `openapi`, nothing.
#[cfg(not(feature = "openapi"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __wire_schema {
    ($name:ident) => {};
}

/// Declares a wire enum: `wire_enum! { pub enum E { A = "a", B = "b" } }`.
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::wire::WireEnum for $name {
            const NAME: &'static str = stringify!($name);
            const ALL: &'static [$name] = &$name::ALL;
            const NAMES: &'static [&'static str] = &[$($wire),+];
            fn index(self) -> usize {
                self as usize
            }
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; $crate::wire_count!($($variant)+)] = [$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                <$name as $crate::wire::WireEnum>::NAMES[self as usize]
            }

            /// The variant of a wire name.
            pub fn parse(s: &str) -> Option<$name> {
                $crate::wire::parse::<$name>(s)
            }
        }

        $crate::__wire_schema!($name);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_unit_variant(stringify!($name), *self as u32, self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                $crate::wire::deserialize::<$name, D>(d)
            }
        }
    };
}

/// The variant named `s`.
pub fn parse<E: WireEnum>(s: &str) -> Option<E> {
    E::NAMES.iter().position(|n| *n == s).map(|i| E::ALL[i])
}

/// Deserializes a wire enum from its name (JSON) or index (postcard).
pub fn deserialize<'de, E: WireEnum, D: serde::Deserializer<'de>>(d: D) -> Result<E, D::Error> {
    d.deserialize_enum(E::NAME, E::NAMES, EnumVisitor::<E>(PhantomData))
}

struct EnumVisitor<E>(PhantomData<E>);

impl<'de, E: WireEnum> serde::de::Visitor<'de> for EnumVisitor<E> {
    type Value = E;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "one of {}", E::NAMES.join(", "))
    }

    // serde_json hands a plain string to `deserialize_enum` as a unit
    // variant through `visit_enum`; map keys come as strings.
    fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<E, Er> {
        parse::<E>(v).ok_or_else(|| Er::unknown_variant(v, E::NAMES))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<E, A::Error> {
        use serde::de::VariantAccess;
        let (variant, access) = data.variant_seed(VariantSeed::<E>(PhantomData))?;
        access.unit_variant()?;
        Ok(variant)
    }
}

struct VariantSeed<E>(PhantomData<E>);

impl<'de, E: WireEnum> serde::de::DeserializeSeed<'de> for VariantSeed<E> {
    type Value = E;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<E, D::Error> {
        d.deserialize_identifier(IdentVisitor::<E>(PhantomData))
    }
}

struct IdentVisitor<E>(PhantomData<E>);

impl<'de, E: WireEnum> serde::de::Visitor<'de> for IdentVisitor<E> {
    type Value = E;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a variant of {}", E::NAME)
    }

    fn visit_str<Er: serde::de::Error>(self, v: &str) -> Result<E, Er> {
        parse::<E>(v).ok_or_else(|| Er::unknown_variant(v, E::NAMES))
    }

    fn visit_u64<Er: serde::de::Error>(self, v: u64) -> Result<E, Er> {
        usize::try_from(v)
            .ok()
            .and_then(|i| E::ALL.get(i).copied())
            .ok_or_else(|| Er::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }
}

#[cfg(test)]
mod tests {
    crate::wire_enum! {
        /// A test enum.
        pub enum Fruit {
            Apple = "apple",
            BloodOrange = "blood_orange",
        }
    }

    #[test]
    fn names_round_trip_in_json_and_indexes_in_postcard_style_formats() {
        assert_eq!(Fruit::BloodOrange.as_str(), "blood_orange");
        assert_eq!(Fruit::parse("apple"), Some(Fruit::Apple));
        assert_eq!(Fruit::parse("pear"), None);
        assert_eq!(
            serde_json::to_string(&Fruit::BloodOrange).unwrap(),
            "\"blood_orange\""
        );
        let back: Fruit = serde_json::from_str("\"blood_orange\"").unwrap();
        assert_eq!(back, Fruit::BloodOrange);
        assert!(serde_json::from_str::<Fruit>("\"pear\"").is_err());
        let map: std::collections::BTreeMap<Fruit, u32> =
            serde_json::from_str(r#"{"apple":1,"blood_orange":2}"#).unwrap();
        assert_eq!(map[&Fruit::BloodOrange], 2);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"apple":1,"blood_orange":2}"#
        );
        assert_eq!(format!("{:<7}|", Fruit::Apple), "apple  |");
    }
}
