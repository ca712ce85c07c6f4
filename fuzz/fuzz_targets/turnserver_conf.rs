#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| relay_config::fuzzing::turnserver_conf(data));
