//! Entry points shared by the cargo-fuzz target (`fuzz/fuzz_targets/turnserver_conf.rs`) and the
//! corpus replay test, so the committed corpus runs as an ordinary test on stable Rust.
//!
//! Must never panic, whatever the bytes. Touches no file: `cert`/`pkey` are not looked for.

use std::ffi::OsString;
use std::path::Path;

use crate::build::{Builder, Ctx};
use crate::conf_file;
use crate::effective::{Secrets, to_turnserver_conf};
use crate::load::{Outcome, run};

/// Reads `data` as a turnserver.conf, and each of its lines as a command-line argument; checks
/// that a configuration that loads prints back into the same configuration.
pub fn turnserver_conf(data: &[u8]) {
    let ctx = Ctx { cwd: "/nonexistent".into(), config_file: None, check_files: false };
    let built = build(data, ctx.clone());
    if built.errors.is_empty() {
        let printed = to_turnserver_conf(&built.config, Secrets::Shown);
        let again = build(printed.as_bytes(), ctx);
        assert!(again.errors.is_empty(), "the printed configuration does not read back: {:?}\n{printed}", again.errors);
        assert_eq!(again.config, built.config, "the printed configuration reads back differently:\n{printed}");
    }

    let mut args: Vec<OsString> = vec!["-n".into()];
    args.extend(String::from_utf8_lossy(data).lines().take(64).map(OsString::from));
    if let Ok(Outcome::Run(loaded)) = run(&args, Path::new("/nonexistent"), false) {
        let _ = to_turnserver_conf(&loaded.config, Secrets::Hidden);
    }
}

fn build(data: &[u8], ctx: Ctx) -> crate::build::Built {
    let lexed = conf_file::lex(data, Path::new("fuzz.conf"));
    let mut b = Builder::new(ctx);
    for e in lexed.entries {
        b.apply(e);
    }
    let mut built = b.finish();
    built.errors.extend(lexed.errors);
    built
}
