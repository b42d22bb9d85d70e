#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| devp2p_fuzz::nat(data));
