//! The sans-I/O core: no sockets, no Python types. Every driver and the load harness build on it.
pub mod codec_json;
pub mod codec_proto;
pub mod envelope;
pub mod fanout;
pub mod id_map;
pub(crate) mod json_escape;
mod json_scan;
mod json_to_proto;
pub mod key_filter;
mod proto_value;
pub mod request_fields;
pub mod tcp;
pub mod wheel;
pub mod ws;
