//! Waking Python's event loop from the I/O thread without the GIL: a non-blocking pipe whose read end
//! the loop watches (`loop.add_reader`). A byte is written only when the event queue turns non-empty; a
//! full pipe already means "wake up", so a failed write is fine.

use std::io;

pub struct Waker {
    read: i32,
    write: i32,
}

impl Waker {
    pub fn new() -> io::Result<Waker> {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let waker = Waker {
            read: fds[0],
            write: fds[1],
        };
        for fd in fds {
            // SAFETY: plain fcntl calls on descriptors this struct owns.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(waker)
    }

    /// The descriptor that becomes readable on [`wake`](Self::wake).
    pub fn fd(&self) -> i32 {
        self.read
    }

    pub fn wake(&self) {
        let byte = 1u8;
        // SAFETY: writes one byte from a valid buffer; EAGAIN (pipe full) needs no handling.
        unsafe {
            libc::write(self.write, std::ptr::addr_of!(byte).cast(), 1);
        }
    }

    /// Empty the pipe (the loop then sleeps until the next wake). One read does it: a byte is written only
    /// when the event queue turns non-empty, so the pipe holds a byte or two, and a byte written after the
    /// read wakes the loop again, as it should (no second read just to see EAGAIN).
    pub fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a valid buffer of the given length.
            let n = unsafe { libc::read(self.read, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 || n.unsigned_abs() < buf.len() {
                break;
            }
        }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        // SAFETY: the descriptors are owned by this struct and closed exactly once.
        unsafe {
            libc::close(self.read);
            libc::close(self.write);
        }
    }
}
