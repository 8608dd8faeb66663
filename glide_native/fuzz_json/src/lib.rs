//! The envelope codecs of `glide_native::core`, compiled from the same files, for fuzzing.
//!
//! The modules refer to each other as `super::…`, which resolves the same here (crate root) as in
//! `glide_native` (`core`).

#[path = "../../src/core/codec_json.rs"]
pub mod codec_json;
#[path = "../../src/core/codec_proto.rs"]
pub mod codec_proto;
#[path = "../../src/core/envelope.rs"]
pub mod envelope;
#[path = "../../src/core/fanout.rs"]
pub mod fanout;
#[path = "../../src/core/json_escape.rs"]
pub mod json_escape;
#[path = "../../src/core/json_scan.rs"]
pub mod json_scan;
#[path = "../../src/core/json_to_proto.rs"]
pub mod json_to_proto;
#[path = "../../src/core/proto_value.rs"]
pub mod proto_value;
