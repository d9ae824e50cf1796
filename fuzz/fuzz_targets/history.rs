//! An attempt-history file (JSON lines): every line is a past attempt or an
//! error naming its line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = duecall::account::history::load_history(data, "US");
    for e in &report.errors {
        assert!(e.line >= 1);
    }
});
