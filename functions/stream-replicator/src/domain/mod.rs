//! The data every stage shares: items and their attribute values ([`item`]), the key schema
//! and canonical item keys ([`key`]), and DynamoDB numbers compared by value ([`number`]).

pub(crate) mod item;
pub(crate) mod key;
pub(crate) mod number;
