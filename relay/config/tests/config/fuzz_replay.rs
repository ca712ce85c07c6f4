//! Replays the committed cargo-fuzz corpus (`fuzz/corpus/turnserver_conf/`) through the entry
//! point the fuzz target calls, so every input the fuzzer kept is re-checked on stable Rust.

use std::path::PathBuf;

#[test]
fn turnserver_conf_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/turnserver_conf");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        relay_config::fuzzing::turnserver_conf(&data);
        n += 1;
    }
    assert!(n >= 5, "corpus turnserver_conf has only {n} inputs");
}
