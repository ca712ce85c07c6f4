#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_proto::fuzzing::stream_framer(data));
