//! The TOML configuration loader on arbitrary text: parse, locate keys, validate, render errors.
//! `load_str` must return Ok or a `LoadError`, never panic, and its error text must render.
//!
//! Every environment variable reads as "secret", except names starting with `WHSEC`, which read
//! as a valid Standard Webhooks secret so that such routes get past the secret check too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let env = |var: &str| Some(if var.starts_with("WHSEC") { "whsec_c2VjcmV0".to_string() } else { "secret".to_string() });
    match strangler::config::load_str(&src, "fuzz.toml", &env) {
        Ok(validated) => drop(format!("{validated:?}")),
        Err(error) => {
            assert!(!error.errors.is_empty(), "a LoadError without errors");
            drop(error.to_string());
        }
    }
});
