#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| devp2p_fuzz::discv5_discovery(data));
