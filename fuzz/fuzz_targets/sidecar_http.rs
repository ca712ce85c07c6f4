#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tern_sidecar::fuzzing::http_head(data));
