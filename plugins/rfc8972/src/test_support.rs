//! The shared fixture of `stamp_core::testing`, receiving TOS 0xBA (DSCP 46,
//! ECN 2) on interface 0, as these tests expect.

pub(crate) use stamp_core::testing::{reply_meta, request_value};

pub(crate) struct Fixture;

impl Fixture {
    pub fn v4() -> stamp_core::testing::Fixture {
        let mut f = stamp_core::testing::Fixture::v4();
        f.meta.tos = Some(0xBA);
        f.meta.ifindex = 0;
        f
    }
}
