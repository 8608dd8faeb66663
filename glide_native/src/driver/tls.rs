//! TLS between a socket and its framing (wss, and TLS over the TCP transport): rustls' sans-I/O server
//! connection, fed with what the I/O thread reads and drained into what it writes, so TLS connections keep
//! the driver's one-thread readiness model (no extra task, no stream wrapper).

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};
use tokio::net::TcpStream;

/// The server's TLS settings from a PEM certificate chain and its PEM private key.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if certs.is_empty() {
        return Err("certificate: no PEM certificate found".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key: {e}"))?;
    // ring rather than rustls' default aws-lc-rs: it builds with a plain C compiler (also through zig for the
    // manylinux2014 wheels), at the price of no post-quantum key exchange, for which rustls deprecates it.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    Ok(Arc::new(config))
}

/// The socket as rustls' output: what the kernel takes now, `WouldBlock` otherwise.
struct Socket<'a>(&'a TcpStream);

impl Write for Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One connection's TLS session.
pub struct Tls {
    session: ServerConnection,
}

impl Tls {
    pub fn new(config: &Arc<ServerConfig>) -> io::Result<Tls> {
        let session = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        Ok(Tls { session })
    }

    /// Take `data` read from the socket, appending what it decrypts to `plain`. `Ok(false)` once the peer
    /// has ended the session (close_notify). An error is a TLS failure: an alert is queued for [`Self::send`].
    pub fn receive(&mut self, mut data: &[u8], plain: &mut Vec<u8>) -> io::Result<bool> {
        let mut open = true;
        while !data.is_empty() {
            self.session.read_tls(&mut data)?;
            let state = self
                .session
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let ready = state.plaintext_bytes_to_read();
            if ready > 0 {
                let start = plain.len();
                plain.resize(start + ready, 0);
                self.session.reader().read_exact(&mut plain[start..])?;
            }
            open &= !state.peer_has_closed();
        }
        Ok(open)
    }

    /// Whether encrypted bytes (handshake, records, alerts) wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// Encrypt as much of `plain` as the session buffers; the bytes taken.
    pub fn encrypt(&mut self, plain: &[u8]) -> io::Result<usize> {
        self.session.writer().write(plain)
    }

    /// Write encrypted bytes to the socket. `Ok(true)` when none are left, `Ok(false)` when it would block.
    pub fn send(&mut self, stream: &TcpStream) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut Socket(stream)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
