//! TCP transport framing: every message is a 4-byte big-endian length, then that many bytes (one envelope).
//!
//! Sans-I/O: the driver feeds whatever a socket read returned and gets every complete frame back. Frames
//! wholly inside a chunk are copied once, straight into their output `Vec`; only a frame cut by the chunk's
//! end is buffered, and no byte is examined twice.

use std::fmt;

/// Bytes of the length prefix.
const HEADER_LEN: usize = 4;

/// Why a TCP stream was rejected. The framer stays failed afterwards: the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpFrameError {
    /// A length prefix of zero: no envelope is empty, so the peer is broken or not speaking this protocol.
    EmptyFrame,
    /// A length prefix above the configured maximum message size.
    TooLarge {
        /// The length the prefix announced.
        len: u32,
        /// The configured maximum message size.
        max: usize,
    },
}

impl fmt::Display for TcpFrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyFrame => f.write_str("empty frame: length prefix is 0"),
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "frame of {len} bytes exceeds the maximum message size of {max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for TcpFrameError {}

/// Incremental decoder of length-prefixed frames, fed from arbitrary chunk boundaries.
#[derive(Debug)]
pub struct TcpFramer {
    max_message_size: usize,
    /// Bytes of a length prefix cut by the end of the previous chunk.
    header: [u8; HEADER_LEN],
    header_len: usize,
    /// Body of a frame whose prefix has been read and validated, and its announced length.
    body: Vec<u8>,
    body_len: usize,
    in_body: bool,
    failed: Option<TcpFrameError>,
}

impl TcpFramer {
    /// Creates a framer that rejects frames longer than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            max_message_size,
            header: [0; HEADER_LEN],
            header_len: 0,
            body: Vec::new(),
            body_len: 0,
            in_body: false,
            failed: None,
        }
    }

    /// Consumes `data` and appends the payload of every frame it completes to `out`, in stream order.
    ///
    /// A zero or oversized length prefix is an error as soon as its 4 bytes are in, before any of the body is
    /// buffered. Frames completed before the bad prefix are still appended to `out`. Once an error has been
    /// returned, every later call returns it again and consumes nothing.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), TcpFrameError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.feed_inner(data, out);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
            // Nothing more will be decoded: give the partial frame's memory back now.
            self.body = Vec::new();
        }
        result
    }

    fn feed_inner(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), TcpFrameError> {
        // Finish a frame cut by the previous chunk's end.
        if self.header_len > 0 {
            let take = (HEADER_LEN - self.header_len).min(data.len());
            let (head, rest) = data.split_at(take);
            self.header[self.header_len..self.header_len + take].copy_from_slice(head);
            self.header_len += take;
            data = rest;
            if self.header_len < HEADER_LEN {
                return Ok(());
            }
            self.header_len = 0;
            self.body_len = self.check_len(self.header)?;
            self.in_body = true;
        }
        if self.in_body {
            let take = (self.body_len - self.body.len()).min(data.len());
            let (part, rest) = data.split_at(take);
            self.append_body(part);
            data = rest;
            if self.body.len() < self.body_len {
                return Ok(());
            }
            self.in_body = false;
            out.push(std::mem::take(&mut self.body));
        }
        // Whole frames straight from the chunk.
        while let Some((header, rest)) = data.split_first_chunk::<HEADER_LEN>() {
            let len = self.check_len(*header)?;
            if let Some((payload, after)) = rest.split_at_checked(len) {
                out.push(payload.to_vec());
                data = after;
            } else {
                self.body_len = len;
                self.in_body = true;
                self.append_body(rest);
                return Ok(());
            }
        }
        self.header[..data.len()].copy_from_slice(data);
        self.header_len = data.len();
        Ok(())
    }

    /// Validates a length prefix.
    fn check_len(&self, header: [u8; HEADER_LEN]) -> Result<usize, TcpFrameError> {
        let len = u32::from_be_bytes(header);
        match usize::try_from(len) {
            Ok(0) => Err(TcpFrameError::EmptyFrame),
            Ok(n) if n <= self.max_message_size => Ok(n),
            _ => Err(TcpFrameError::TooLarge {
                len,
                max: self.max_message_size,
            }),
        }
    }

    /// Buffers body bytes. Capacity grows with the bytes actually received (doubling, capped at the announced
    /// length), so a peer announcing a large frame and trickling it cannot make us reserve the whole length.
    fn append_body(&mut self, part: &[u8]) {
        let needed = self.body.len() + part.len();
        if needed > self.body.capacity() {
            let target = needed.max((self.body.capacity() * 2).min(self.body_len));
            self.body.reserve_exact(target - self.body.len());
        }
        self.body.extend_from_slice(part);
    }
}

/// Appends `payload` to `out` as one frame: its length as 4 big-endian bytes, then the bytes.
///
/// # Panics
///
/// If `payload` is longer than `u32::MAX` bytes, which the length prefix cannot express.
pub fn write_frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("TCP frame payload longer than u32::MAX bytes");
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(payload, &mut out);
        out
    }

    fn stream(payloads: &[&[u8]]) -> Vec<u8> {
        payloads.iter().flat_map(|p| frame(p)).collect()
    }

    fn feed_all(framer: &mut TcpFramer, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, TcpFrameError> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn write_frame_layout() {
        assert_eq!(frame(b"abc"), [0, 0, 0, 3, b'a', b'b', b'c']);
        let mut out = vec![9];
        write_frame(&[7; 300], &mut out);
        assert_eq!(&out[..5], [9, 0, 0, 1, 44]);
        assert_eq!(out.len(), 1 + 4 + 300);
    }

    #[test]
    fn many_frames_in_one_chunk() {
        let payloads: Vec<Vec<u8>> = (1..=50u8).map(|n| vec![n; usize::from(n)]).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let mut framer = TcpFramer::new(1024);
        assert_eq!(feed_all(&mut framer, &[&stream(&refs)]), Ok(payloads));
    }

    #[test]
    fn byte_by_byte() {
        let wire = stream(&[b"hello", b"x", &[0xAB; 1000], b"{\"action\":\"heartbeat\"}"]);
        let mut framer = TcpFramer::new(4096);
        let mut out = Vec::new();
        for (i, byte) in wire.iter().enumerate() {
            framer.feed(std::slice::from_ref(byte), &mut out).unwrap();
            // A frame completes exactly on its last byte, never later.
            let expected = [9, 14, 1018, wire.len()].iter().filter(|&&end| end <= i + 1).count();
            assert_eq!(out.len(), expected, "after byte {i}");
        }
        assert_eq!(out, [&b"hello"[..], b"x", &[0xAB; 1000], b"{\"action\":\"heartbeat\"}"]);
        assert_eq!(out[2].capacity(), 1000, "growth is capped at the announced length");
    }

    #[test]
    fn every_split_point() {
        let wire = stream(&[b"first", b"2", b"third frame"]);
        for a in 0..=wire.len() {
            for b in a..=wire.len() {
                let mut framer = TcpFramer::new(64);
                let out = feed_all(&mut framer, &[&wire[..a], &wire[a..b], &wire[b..]]).unwrap();
                assert_eq!(out, [&b"first"[..], b"2", b"third frame"], "split at {a}/{b}");
            }
        }
    }

    #[test]
    fn partial_header_at_end_is_kept() {
        let mut framer = TcpFramer::new(64);
        let mut wire = frame(b"one");
        wire.extend_from_slice(&[0, 0]);
        let mut out = Vec::new();
        framer.feed(&wire, &mut out).unwrap();
        assert_eq!(out, [b"one"]);
        framer.feed(&[0], &mut out).unwrap();
        framer.feed(&[2, b'o'], &mut out).unwrap();
        assert_eq!(out.len(), 1);
        framer.feed(b"k", &mut out).unwrap();
        assert_eq!(out, [&b"one"[..], b"ok"]);
        framer.feed(&[], &mut out).unwrap();
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn exactly_max_size_is_accepted() {
        let mut framer = TcpFramer::new(8);
        assert_eq!(feed_all(&mut framer, &[&frame(&[1; 8])]), Ok(vec![vec![1; 8]]));
    }

    #[test]
    fn oversize_fails_on_header_before_buffering() {
        let mut framer = TcpFramer::new(8);
        let mut out = Vec::new();
        assert_eq!(framer.feed(&[0, 0, 0], &mut out), Ok(()));
        let err = framer.feed(&[9], &mut out).unwrap_err();
        assert_eq!(err, TcpFrameError::TooLarge { len: 9, max: 8 });
        assert_eq!(
            err.to_string(),
            "frame of 9 bytes exceeds the maximum message size of 8 bytes"
        );
        assert_eq!(framer.body.capacity(), 0);
        let huge = [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];
        let mut fresh = TcpFramer::new(1 << 20);
        assert_eq!(
            fresh.feed(&huge, &mut out),
            Err(TcpFrameError::TooLarge {
                len: u32::MAX,
                max: 1 << 20
            })
        );
        assert!(out.is_empty());
    }

    #[test]
    fn zero_length_is_an_error() {
        let mut framer = TcpFramer::new(8);
        let mut out = Vec::new();
        let mut wire = frame(b"ok");
        wire.extend_from_slice(&[0, 0, 0, 0]);
        wire.extend_from_slice(&frame(b"never"));
        let err = framer.feed(&wire, &mut out).unwrap_err();
        assert_eq!(err, TcpFrameError::EmptyFrame);
        assert_eq!(err.to_string(), "empty frame: length prefix is 0");
        assert_eq!(out, [b"ok"], "frames before the bad prefix are delivered");
    }

    #[test]
    fn failed_framer_stays_failed() {
        let mut framer = TcpFramer::new(4);
        let mut out = Vec::new();
        framer.feed(&[0, 0, 0, 3, b'a'], &mut out).unwrap();
        assert_eq!(
            framer.feed(&[b'b', b'c', 0, 0, 1, 0], &mut out),
            Err(TcpFrameError::TooLarge { len: 256, max: 4 })
        );
        assert_eq!(out, [b"abc"]);
        assert_eq!(
            framer.feed(&frame(b"ok"), &mut out),
            Err(TcpFrameError::TooLarge { len: 256, max: 4 })
        );
        assert_eq!(
            framer.feed(&[], &mut out),
            Err(TcpFrameError::TooLarge { len: 256, max: 4 })
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn zero_max_rejects_everything() {
        let mut framer = TcpFramer::new(0);
        assert_eq!(
            feed_all(&mut framer, &[&frame(b"a")]),
            Err(TcpFrameError::TooLarge { len: 1, max: 0 })
        );
    }

    #[test]
    fn trickled_large_frame_grows_with_received_bytes() {
        let mut framer = TcpFramer::new(1 << 24);
        let mut out = Vec::new();
        framer.feed(&[0, 0xFF, 0xFF, 0xFF, 1, 2, 3], &mut out).unwrap();
        assert!(
            framer.body.capacity() < 64,
            "a 16 MiB announcement alone must not reserve 16 MiB"
        );
        assert!(out.is_empty());
    }
}
