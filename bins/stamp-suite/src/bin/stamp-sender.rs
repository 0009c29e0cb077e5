//! `stamp-sender`: the Session-Sender.
fn main() -> std::process::ExitCode {
    stamp_suite::main_for(Some(stamp_config::Role::Sender))
}
