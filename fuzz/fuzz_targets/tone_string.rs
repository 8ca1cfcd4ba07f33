//! Any tone string: a program or an error naming the item, never a panic. A program that
//! parses is played for a few frames (bounded work however long it lasts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_mix::{AudioSource, Frame, SourceState, ToneGenerator, ToneProgram};

/// Frames rendered of each program that parses (0.2 s).
const FRAMES: usize = 10;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ToneProgram::parse(text) {
        Ok(program) => {
            let _ = program.duration();
            let mut generator = ToneGenerator::new(program);
            let mut frame = Frame::default();
            for _ in 0..FRAMES {
                let state = generator.render(&mut frame);
                assert!(frame.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
                if state == SourceState::Finished {
                    break;
                }
            }
        }
        Err(error) => {
            // Every refusal renders a message naming what is wrong.
            assert!(!error.to_string().is_empty());
        }
    }
});
