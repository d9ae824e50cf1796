//! Thread priority: the one place a thread's niceness is set (the media
//! clock's fallback, the recogniser threads, the Whisper pool, the test
//! suite's batch evaluations). Owns: that system call. Never: decides who
//! gets which priority.

/// Sets the calling thread's niceness to `nice` (Linux: niceness is per
/// thread, and a thread or process it starts inherits it); false when
/// refused (a lower niceness than the current one needs privilege) or on
/// other systems.
#[cfg(target_os = "linux")]
pub fn set_thread_nice(nice: i32) -> bool {
    // SAFETY: gettid and setpriority take and return plain integers.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice) == 0
    }
}

/// Sets the calling thread's niceness: never on other systems (false).
#[cfg(not(target_os = "linux"))]
pub fn set_thread_nice(_: i32) -> bool {
    false
}
