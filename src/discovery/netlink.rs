//! The one netlink query nsfuse needs: RTM_GETNSID, the id under which our
//! own network namespace knows another one (`ip netns list-id`). Message
//! encoding and decoding are pure functions; the socket is in `sys`.

use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NETNSA_NSID: u16 = 1;
const NETNSA_FD: u16 = 3;

/// The RTM_GETNSID request for the namespace behind descriptor `fd`.
pub fn encode_getnsid(fd: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(28);
    m.extend_from_slice(&28u32.to_ne_bytes()); // nlmsg_len
    m.extend_from_slice(&RTM_GETNSID.to_ne_bytes());
    m.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    m.extend_from_slice(&[0, 0, 0, 0]); // rtgenmsg: AF_UNSPEC + padding
    m.extend_from_slice(&8u16.to_ne_bytes()); // nla_len
    m.extend_from_slice(&NETNSA_FD.to_ne_bytes());
    m.extend_from_slice(&fd.to_ne_bytes());
    m
}

/// The nsid in an RTM_NEWNSID reply (`None` = not assigned), or the error.
pub fn decode_nsid(reply: &[u8]) -> io::Result<Option<u32>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "short netlink reply");
    let u16_at = |o: usize| reply.get(o..o + 2).map(|b| u16::from_ne_bytes([b[0], b[1]])).ok_or_else(bad);
    let i32_at =
        |o: usize| reply.get(o..o + 4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(bad);
    let len = (i32_at(0)? as usize).min(reply.len());
    match u16_at(4)? {
        NLMSG_ERROR => Err(io::Error::from_raw_os_error(-i32_at(16)?)),
        RTM_NEWNSID => {
            let mut off = 20; // nlmsghdr + rtgenmsg
            while off + 4 <= len {
                let nla_len = u16_at(off)? as usize;
                if nla_len < 4 {
                    break;
                }
                if u16_at(off + 2)? == NETNSA_NSID {
                    let v = i32_at(off + 4)?;
                    return Ok(u32::try_from(v).ok());
                }
                off += (nla_len + 3) & !3;
            }
            Ok(None)
        }
        t => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected netlink message type {t}"))),
    }
}

/// The nsid our network namespace has for the namespace behind `fd`.
pub fn netnsid(fd: BorrowedFd<'_>) -> io::Result<Option<u32>> {
    let raw = u32::try_from(fd.as_raw_fd()).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    decode_nsid(&sys::netlink_route_request(&encode_getnsid(raw))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn encodes_request() {
        let m = encode_getnsid(7);
        assert_eq!(m.len(), 28);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_GETNSID);
        assert_eq!(u32::from_ne_bytes([m[24], m[25], m[26], m[27]]), 7);
    }

    #[test]
    fn decodes_replies() {
        let mut p = vec![0, 0, 0, 0];
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&NETNSA_NSID.to_ne_bytes());
        p.extend_from_slice(&3i32.to_ne_bytes());
        assert_eq!(decode_nsid(&reply(RTM_NEWNSID, &p)).unwrap(), Some(3));
        let mut q = p.clone();
        q[8..12].copy_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(decode_nsid(&reply(RTM_NEWNSID, &q)).unwrap(), None);
        let err = reply(NLMSG_ERROR, &(-libc::EINVAL).to_ne_bytes());
        assert_eq!(decode_nsid(&err).unwrap_err().raw_os_error(), Some(libc::EINVAL));
        assert!(decode_nsid(&[1, 2]).is_err());
    }
}
