//! OpenAPI schemas of the values that serialise as text of their own
//! (amounts, times, log positions, wire names), for the service's
//! document (feature `openapi`); every other view derives its schema.

pub use utoipa;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// A string, described, optionally with a pattern it always matches.
pub fn text(description: &str, pattern: Option<&str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .into()
}

/// A string that is one of `names`.
pub fn names(names: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.iter().copied()))
        .into()
}

/// Implements `ToSchema` for a type that serialises as a string.
macro_rules! text_schema {
    ($ty:ty, $description:literal, $pattern:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                text($description, $pattern)
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}

text_schema!(
    crate::money::Fen,
    "an amount in yuan with two decimals (fen exact)",
    Some(r"^-?[0-9]+\.[0-9]{2}$")
);
text_schema!(
    crate::time::Timestamp,
    "an RFC 3339 time with its offset",
    None
);
text_schema!(
    crate::position::Position,
    "a log position, PARTITION:OFFSET",
    Some(r"^[0-9]+:[0-9]+$")
);
text_schema!(
    crate::position::Positions,
    "log positions, PARTITION:OFFSET,… (empty: none)",
    Some(r"^([0-9]+:[0-9]+(,[0-9]+:[0-9]+)*)?$")
);
