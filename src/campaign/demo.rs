//! `duecall demo` (written last; see run_demo).
