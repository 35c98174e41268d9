//! rtnetlink sockets: one request, every answer until DONE.

use super::*;

/// Send one request on a fresh NETLINK_ROUTE socket (of the calling
/// thread's network namespace) and hand each reply datagram to `more`
/// until it returns false (a dump's NLMSG_DONE). A silent kernel ends the
/// exchange after a second (SO_RCVTIMEO) rather than hanging the caller.
pub fn netlink_route_exchange(msg: &[u8], more: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
    let sock = netlink_route_socket()?;
    netlink_route_exchange_on(std::os::fd::AsFd::as_fd(&sock), msg, more)
}

/// A NETLINK_ROUTE socket of the calling thread's network namespace, for
/// several `netlink_route_exchange_on` in a row.
/// A silent kernel ends an exchange after a second (SO_RCVTIMEO) rather
/// than hanging the caller.
pub fn netlink_route_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked and owned.
    let sock = owned(unsafe {
        libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
    })?;
    let timeout = libc::timeval { tv_sec: 1, tv_usec: 0 };
    // SAFETY: timeout is a valid timeval of the size given.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    Ok(sock)
}

/// `netlink_route_exchange` on a socket the caller keeps (from
/// `netlink_route_socket`, which sets its receive timeout).
pub fn netlink_route_exchange_on(
    sock: BorrowedFd<'_>,
    msg: &[u8],
    mut more: impl FnMut(&[u8]) -> bool,
) -> io::Result<()> {
    // SAFETY: msg is a valid buffer of msg.len() bytes.
    let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    // A dump datagram is at most a page or two; 32 KiB is what iproute2 uses.
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: buf is writable for buf.len() bytes.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 || !more(&buf[..n as usize]) {
            return Ok(());
        }
    }
}
