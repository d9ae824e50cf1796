//! An accounts CSV as a lender uploads it: every row is either an account
//! or an error naming its line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = duecall::account::csv::load_accounts(data);
    for e in &report.errors {
        assert!(e.line >= 1);
    }
});
