//! What tutti's fuzz targets share: the HTTP harness and its media plane.

pub mod http;
pub mod media;
