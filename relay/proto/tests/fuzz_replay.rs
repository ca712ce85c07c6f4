//! Replays the committed cargo-fuzz corpora (`fuzz/corpus/<target>/`) through the same entry
//! points the fuzz targets call, so every input the fuzzer kept is re-checked on stable Rust.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        // A fuzzer running on this corpus replaces inputs as it minimises them.
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        f(&data);
        n += 1;
    }
    assert!(n > 0, "corpus {target} is empty");
}

#[test]
fn stun_message_corpus_replays() {
    replay("stun_message", relay_proto::fuzzing::stun_message);
}

#[test]
fn channel_data_corpus_replays() {
    replay("channel_data", relay_proto::fuzzing::channel_data);
}

#[test]
fn stream_framer_corpus_replays() {
    replay("stream_framer", relay_proto::fuzzing::stream_framer);
}

#[test]
fn server_input_corpus_replays() {
    replay("server_input", relay_proto::fuzzing::server_input);
}

#[test]
fn turn_rest_username_corpus_replays() {
    replay("turn_rest_username", relay_proto::fuzzing::turn_rest_username);
}
