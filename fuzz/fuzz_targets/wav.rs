//! WAV files as `duecall transcribe` and `--play` read them (any header,
//! any chunk sizes, G.711 or PCM or float): an error or audio, never a
//! panic and never an allocation a file's header merely claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    // The reader takes a path: one scratch file per fuzzing process.
    thread_local! {
        static PATH: std::path::PathBuf = std::env::temp_dir()
            .join(format!("duecall-fuzz-wav-{}.wav", std::process::id()));
    }
    PATH.with(|path| {
        let mut f = std::fs::File::create(path).expect("scratch file");
        f.write_all(data).expect("write scratch file");
        drop(f);
        if let Ok((pcm, rate)) = duecall::media::wav::read_mono_f32(path) {
            assert!(rate > 0);
            assert!(pcm.len() <= data.len());
        }
        let _ = duecall::media::wav::read_mono_8k(path);
    });
});
