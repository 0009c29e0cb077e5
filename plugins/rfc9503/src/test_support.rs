//! The shared fixture of `stamp_core::testing`.

pub(crate) use stamp_core::testing::{reply_meta, request_value, Fixture};
