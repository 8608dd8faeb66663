//! Thin PyO3 bindings: one call per socket read, one per fan-out frame, one per wheel tick.

mod conn;
mod convert;
mod driver;
mod envelope;
mod key_filter;
mod loadgen;
mod outgoing;
mod wheel;

use pyo3::prelude::*;

use crate::core::fanout::Wire;

pub(crate) fn wire_id(wire: Wire) -> u8 {
    match wire {
        Wire::WsJson => 0,
        Wire::WsProto => 1,
        Wire::TcpJson => 2,
        Wire::TcpProto => 3,
    }
}

pub(crate) fn wire_from_id(id: u8) -> PyResult<Wire> {
    Ok(match id {
        0 => Wire::WsJson,
        1 => Wire::WsProto,
        2 => Wire::TcpJson,
        3 => Wire::TcpProto,
        _ => return Err(pyo3::exceptions::PyValueError::new_err(format!("unknown wire {id}"))),
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("WS_JSON", wire_id(Wire::WsJson))?;
    m.add("WS_PROTO", wire_id(Wire::WsProto))?;
    m.add("TCP_JSON", wire_id(Wire::TcpJson))?;
    m.add("TCP_PROTO", wire_id(Wire::TcpProto))?;
    m.add_class::<envelope::PyEnvelope>()?;
    m.add_class::<envelope::BadMessage>()?;
    m.add_class::<conn::Feed>()?;
    m.add_class::<conn::Connection>()?;
    m.add_class::<outgoing::Outgoing>()?;
    m.add_class::<outgoing::OutgoingShape>()?;
    m.add_class::<wheel::PyTimingWheel>()?;
    m.add_class::<key_filter::PyKeyFilter>()?;
    m.add_class::<loadgen::LoadGen>()?;
    driver::register(m)?;
    m.add_function(wrap_pyfunction!(envelope::decode_json, m)?)?;
    m.add_function(wrap_pyfunction!(envelope::decode_proto, m)?)?;
    Ok(())
}
