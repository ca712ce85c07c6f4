//! Replays the committed cargo-fuzz corpora of the sidecar's parsers (`fuzz/corpus/sidecar_*`)
//! through the entry points the fuzz targets call, on stable Rust.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use tern_sidecar::fuzzing;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n >= 5, "corpus {target} has only {n} inputs");
}

#[test]
fn json_message_corpus_replays() {
    replay("sidecar_json", fuzzing::json_message);
}

#[test]
fn sio_packet_corpus_replays() {
    replay("sidecar_sio", fuzzing::sio_packet);
}

#[test]
fn http_head_corpus_replays() {
    replay("sidecar_http", fuzzing::http_head);
}
