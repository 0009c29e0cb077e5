//! `stamp-example`: the stock stamp-suite command line with the example
//! plugin linked in. This is all a third party writes to ship a binary with
//! its own TLV.
use stamp_example_plugin as _;

fn main() -> std::process::ExitCode {
    stamp_suite::main_for(None)
}
