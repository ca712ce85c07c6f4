#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_proto::fuzzing::turn_rest_username(data));
