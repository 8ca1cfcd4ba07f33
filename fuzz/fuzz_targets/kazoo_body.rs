//! Any request body (and a few header and path choices) to the Kazoo face's routes, through the
//! real router, store and validation: 2xx or 4xx in the face's shape, never a 5xx or a panic.
//! See `tutti_fuzz::http` for the input layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tutti_fuzz::http::{run, Face};

fuzz_target!(|data: &[u8]| run(Face::Kazoo, data));
