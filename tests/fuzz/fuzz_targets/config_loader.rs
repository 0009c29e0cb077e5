#![no_main]
//! stamp_config::load with a TOML config file taken from the input: any
//! content gives settings or a one-line error, never a panic.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use stamp_config::{load, Cli, Role};

fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stamp-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("stamp.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, toml)) = data.split_first() else {
        return;
    };
    let p = path();
    {
        let mut f = std::fs::File::create(p).unwrap();
        f.write_all(toml).unwrap();
    }
    let mut args = vec![
        "stamp-suite".to_string(),
        "--config".into(),
        p.display().to_string(),
    ];
    if sel & 1 != 0 {
        args.push("-i".into());
    }
    let Ok(cli) = Cli::try_parse_from(&args) else {
        return;
    };
    let hint = if sel & 1 != 0 {
        Some(Role::Reflector)
    } else {
        None
    };
    match load(&cli, hint) {
        Ok(s) => {
            let _ = format!("{s:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
