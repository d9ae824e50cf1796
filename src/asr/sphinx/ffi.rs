//! The C functions of Debian's libpocketsphinx 5prealpha and sphinxbase we
//! call, declared by hand (the `pocketsphinx` crate binds the old
//! signatures), and the process-wide logging switch.
//!
//! Owns: the declarations and [`init_logging_once`]. Must never be called
//! with a decoder shared between threads at once (the callers own that).

use std::ffi::CString;
use std::os::raw::{c_char, c_double, c_int, c_long, c_void};
use std::sync::OnceLock;

/// An opaque PocketSphinx / sphinxbase object.
pub(super) type Ptr = *mut c_void;

extern "C" {
    pub(super) fn ps_args() -> *const c_void;
    pub(super) fn cmd_ln_parse_r(
        inout: Ptr,
        defn: *const c_void,
        argc: i32,
        argv: *const *const c_char,
        strict: i32,
    ) -> Ptr;
    pub(super) fn cmd_ln_free_r(cmdln: Ptr) -> c_int;
    pub(super) fn cmd_ln_float_r(cmdln: Ptr, name: *const c_char) -> c_double;
    pub(super) fn cmd_ln_set_float_r(cmdln: Ptr, name: *const c_char, val: c_double);
    pub(super) fn cmd_ln_int_r(cmdln: Ptr, name: *const c_char) -> c_long;
    pub(super) fn cmd_ln_set_int_r(cmdln: Ptr, name: *const c_char, val: c_long);
    pub(super) fn ps_init(config: Ptr) -> Ptr;
    pub(super) fn ps_free(ps: Ptr) -> c_int;
    pub(super) fn ps_add_word(
        ps: Ptr,
        word: *const c_char,
        phones: *const c_char,
        update: c_int,
    ) -> c_int;
    pub(super) fn ps_set_jsgf_string(ps: Ptr, name: *const c_char, jsgf: *const c_char) -> c_int;
    pub(super) fn ps_set_search(ps: Ptr, name: *const c_char) -> c_int;
    pub(super) fn ps_set_lm_file(ps: Ptr, name: *const c_char, path: *const c_char) -> c_int;
    pub(super) fn ps_set_lm(ps: Ptr, name: *const c_char, lm: Ptr) -> c_int;
    pub(super) fn ngram_model_read(
        config: Ptr,
        file_name: *const c_char,
        file_type: c_int,
        lmath: Ptr,
    ) -> Ptr;
    pub(super) fn ngram_model_free(model: Ptr) -> c_int;
    pub(super) fn ngram_model_set_init(
        config: Ptr,
        models: *mut Ptr,
        names: *mut *mut c_char,
        weights: *const f32,
        n_models: i32,
    ) -> Ptr;
    pub(super) fn ngram_model_get_counts(model: Ptr) -> *const u32;
    pub(super) fn ngram_word(model: Ptr, wid: i32) -> *const c_char;
    /// Variadic: the history words, then a NULL.
    pub(super) fn ngram_score(model: Ptr, word: *const c_char, ...) -> i32;
    pub(super) fn ps_start_utt(ps: Ptr) -> c_int;
    pub(super) fn ps_process_raw(
        ps: Ptr,
        data: *const i16,
        n: usize,
        no_search: c_int,
        full_utt: c_int,
    ) -> c_int;
    pub(super) fn ps_end_utt(ps: Ptr) -> c_int;
    pub(super) fn ps_get_hyp(ps: Ptr, score: *mut i32) -> *const c_char;
    pub(super) fn ps_get_logmath(ps: Ptr) -> Ptr;
    pub(super) fn ps_seg_iter(ps: Ptr) -> Ptr;
    pub(super) fn ps_seg_next(seg: Ptr) -> Ptr;
    pub(super) fn ps_seg_word(seg: Ptr) -> *const c_char;
    pub(super) fn ps_seg_frames(seg: Ptr, sf: *mut c_int, ef: *mut c_int);
    pub(super) fn ps_seg_prob(seg: Ptr, ascr: *mut i32, lscr: *mut i32, lback: *mut i32) -> i32;
    pub(super) fn logmath_exp(lmath: Ptr, logb_p: c_int) -> c_double;
    pub(super) fn logmath_retain(lmath: Ptr) -> Ptr;
    pub(super) fn err_set_logfp(stream: Ptr);
    pub(super) fn err_set_logfile(path: *const c_char) -> c_int;
}

/// sphinxbase logs through one process-wide FILE*. Passing `-logfn` to every
/// `ps_init` makes each new decoder fclose that FILE* while decoders on other
/// threads may be writing to it: heap corruption under concurrency (seen as
/// `tcache_thread_shutdown(): unaligned tcache chunk` with 16 test threads).
/// So logging is set once per process, before the first decoder, and never
/// through `-logfn`.
pub(super) fn init_logging_once() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| match std::env::var("DUECALL_SPHINX_LOG") {
        Ok(path) if !path.is_empty() => {
            let c = CString::new(path).unwrap_or_default();
            // SAFETY: c is a valid C string; sphinxbase copies what it needs.
            unsafe { err_set_logfile(c.as_ptr()) };
        }
        // SAFETY: NULL disables logging (sphinxbase err.h).
        _ => unsafe { err_set_logfp(std::ptr::null_mut()) },
    });
}
