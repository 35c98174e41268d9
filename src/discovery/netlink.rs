//! The netlink queries nsfuse makes: RTM_GETNSID, the id under which our
//! own network namespace knows another one (`ip netns list-id`), and the
//! link and address dumps behind a network namespace's interfaces (`ip -j
//! addr`). Message encoding and decoding are pure functions tested on
//! literal bytes; the socket is in `sys`.

use crate::sys;
use serde::Serialize;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

const RTM_NEWNSID: u16 = 88;
const RTM_GETNSID: u16 = 90;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_OPERSTATE: u16 = 16;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// Size of `struct ifinfomsg` and `struct ifaddrmsg`.
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const NLMSG_HDRLEN: usize = 16;
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
    netnsid_on(sys::netlink_route_socket()?.as_fd(), fd)
}

/// `netnsid` through a socket the caller keeps (for many namespaces).
pub fn netnsid_on(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<Option<u32>> {
    let raw = u32::try_from(fd.as_raw_fd()).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let mut reply = Vec::new();
    sys::netlink_route_exchange_on(sock, &encode_getnsid(raw), |d| {
        reply = d.to_vec();
        false
    })?;
    decode_nsid(&reply)
}

/// One network interface as `ip -j addr` shows it, reduced to what a
/// person looks for: name, state, MAC, addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    pub index: u32,
    pub name: String,
    /// RFC 2863 operational state, as ip prints it: `UP`, `DOWN`, `UNKNOWN`...
    pub state: &'static str,
    /// IFF_UP: administratively up.
    pub up: bool,
    pub mtu: Option<u32>,
    /// Link-layer address, `aa:bb:cc:dd:ee:ff`; None where the link has none.
    pub mac: Option<String>,
    pub addresses: Vec<Address>,
}

/// One address of an interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Address {
    /// `inet` or `inet6`, as ip names them.
    pub family: &'static str,
    /// The local address (IFA_LOCAL, else IFA_ADDRESS), as ip's `local`.
    pub address: String,
    pub prefixlen: u8,
    /// `global`, `link`, `host`, `site`, `nowhere` or the number.
    pub scope: String,
}

/// A dump request: RTM_GETLINK or RTM_GETADDR with an all-zero header.
pub fn encode_dump(msg_type: u16) -> Vec<u8> {
    let body = if msg_type == RTM_GETLINK { IFINFOMSG_LEN } else { IFADDRMSG_LEN };
    let len = NLMSG_HDRLEN + body;
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&msg_type.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid
    m.resize(len, 0);
    m
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

/// The messages of one datagram: `(type, payload)`; a short or malformed
/// message ends the list.
pub fn messages(datagram: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = 0;
    while let (Some(len), Some(ty)) = (u32_at(datagram, off), u16_at(datagram, off + 4)) {
        let len = len as usize;
        if len < NLMSG_HDRLEN || off + len > datagram.len() {
            break;
        }
        out.push((ty, &datagram[off + NLMSG_HDRLEN..off + len]));
        off += (len + 3) & !3;
    }
    out
}

/// The attributes `(type, data)` of a message body after its `skip`-byte header.
pub fn attributes(body: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut off = skip;
    while let (Some(len), Some(ty)) = (u16_at(body, off), u16_at(body, off + 2)) {
        let len = len as usize;
        if len < 4 || off + len > body.len() {
            break;
        }
        // The top bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER.
        out.push((ty & 0x3fff, &body[off + 4..off + len]));
        off += (len + 3) & !3;
    }
    out
}

fn c_string(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

const OPER_STATES: [&str; 7] =
    ["UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP"];

/// An interface from an RTM_NEWLINK body (addresses empty).
pub fn decode_link(body: &[u8]) -> Option<Interface> {
    let index = u32_at(body, 4)?;
    let flags = u32_at(body, 8)?;
    let mut link = Interface {
        index,
        name: String::new(),
        state: OPER_STATES[0],
        up: flags & libc::IFF_UP as u32 != 0,
        mtu: None,
        mac: None,
        addresses: Vec::new(),
    };
    for (ty, data) in attributes(body, IFINFOMSG_LEN) {
        match ty {
            IFLA_IFNAME => link.name = c_string(data),
            IFLA_MTU => link.mtu = u32_at(data, 0),
            IFLA_OPERSTATE => {
                link.state = data.first().and_then(|&s| OPER_STATES.get(s as usize)).unwrap_or(&"UNKNOWN")
            }
            IFLA_ADDRESS if !data.is_empty() => {
                link.mac = Some(data.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
            }
            _ => {}
        }
    }
    Some(link)
}

fn scope_name(scope: u8) -> String {
    match scope {
        0 => "global".into(),
        200 => "site".into(),
        253 => "link".into(),
        254 => "host".into(),
        255 => "nowhere".into(),
        n => n.to_string(),
    }
}

/// `(ifindex, address)` from an RTM_NEWADDR body; None for families other
/// than IPv4 and IPv6.
pub fn decode_addr(body: &[u8]) -> Option<(u32, Address)> {
    let (family, prefixlen, scope) = (*body.first()?, *body.get(1)?, *body.get(3)?);
    let index = u32_at(body, 4)?;
    let (mut local, mut address) = (None, None);
    for (ty, data) in attributes(body, IFADDRMSG_LEN) {
        match ty {
            IFA_LOCAL => local = Some(data),
            IFA_ADDRESS => address = Some(data),
            _ => {}
        }
    }
    let raw = local.or(address)?;
    let (family, text) = match family as i32 {
        libc::AF_INET => ("inet", std::net::Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?).to_string()),
        libc::AF_INET6 => ("inet6", std::net::Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?).to_string()),
        _ => return None,
    };
    Some((index, Address { family, address: text, prefixlen, scope: scope_name(scope) }))
}

/// Run one dump: every message body of type `want`, until NLMSG_DONE.
fn dump(request: u16, want: u16) -> io::Result<Vec<Vec<u8>>> {
    let mut bodies = Vec::new();
    let mut failed = None;
    sys::netlink_route_exchange(&encode_dump(request), |datagram| {
        for (ty, body) in messages(datagram) {
            match ty {
                NLMSG_DONE => return false,
                NLMSG_ERROR => {
                    let errno = u32_at(body, 0).map_or(libc::EIO, |e| -(e as i32));
                    if errno != 0 {
                        failed = Some(io::Error::from_raw_os_error(errno));
                    }
                    return false;
                }
                t if t == want => bodies.push(body.to_vec()),
                _ => {}
            }
        }
        true
    })?;
    failed.map_or(Ok(bodies), Err)
}

/// Every interface of the calling thread's network namespace with its
/// addresses, in ifindex order (what `ip -j addr` lists).
pub fn interfaces() -> io::Result<Vec<Interface>> {
    let mut links: Vec<Interface> =
        dump(RTM_GETLINK, RTM_NEWLINK)?.iter().filter_map(|b| decode_link(b)).collect();
    links.sort_by_key(|l| l.index);
    for (index, addr) in dump(RTM_GETADDR, RTM_NEWADDR)?.iter().filter_map(|b| decode_addr(b)) {
        if let Some(l) = links.iter_mut().find(|l| l.index == index) {
            l.addresses.push(addr);
        }
    }
    Ok(links)
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

    fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&ty.to_ne_bytes());
        a.extend_from_slice(data);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    #[test]
    fn encodes_dumps() {
        let m = encode_dump(RTM_GETLINK);
        assert_eq!(m.len(), 32);
        assert_eq!(u16_at(&m, 6), Some(NLM_F_REQUEST | NLM_F_DUMP));
        assert_eq!(encode_dump(RTM_GETADDR).len(), 24);
    }

    #[test]
    fn decodes_a_link() {
        let mut body = vec![0u8; IFINFOMSG_LEN];
        body[4..8].copy_from_slice(&7u32.to_ne_bytes());
        body[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        body.extend(attr(IFLA_IFNAME, b"veth0\0"));
        body.extend(attr(IFLA_MTU, &1500u32.to_ne_bytes()));
        body.extend(attr(IFLA_OPERSTATE, &[2]));
        body.extend(attr(IFLA_ADDRESS, &[0x02, 0, 0xab, 0, 0, 0x0f]));
        let l = decode_link(&body).unwrap();
        assert_eq!((l.index, l.name.as_str(), l.state, l.up, l.mtu), (7, "veth0", "DOWN", true, Some(1500)));
        assert_eq!(l.mac.as_deref(), Some("02:00:ab:00:00:0f"));
        // A truncated attribute ends the list instead of reading past it.
        let mut cut = body.clone();
        cut.truncate(IFINFOMSG_LEN + 6);
        assert_eq!(decode_link(&cut).unwrap().name, "");
        assert_eq!(decode_link(&[0; 4]), None);
    }

    #[test]
    fn decodes_addresses() {
        let mut v4 = vec![libc::AF_INET as u8, 8, 0, 254, 1, 0, 0, 0];
        v4.extend(attr(IFA_ADDRESS, &[127, 0, 0, 1]));
        v4.extend(attr(IFA_LOCAL, &[127, 0, 0, 1]));
        let (i, a) = decode_addr(&v4).unwrap();
        assert_eq!(
            (i, a.family, a.address.as_str(), a.prefixlen, a.scope.as_str()),
            (1, "inet", "127.0.0.1", 8, "host")
        );
        let mut v6 = vec![libc::AF_INET6 as u8, 64, 0, 253, 2, 0, 0, 0];
        let mut ip = [0u8; 16];
        ip[0] = 0xfe;
        ip[1] = 0x80;
        ip[15] = 1;
        v6.extend(attr(IFA_ADDRESS, &ip));
        let (i, a) = decode_addr(&v6).unwrap();
        assert_eq!((i, a.family, a.address.as_str(), a.scope.as_str()), (2, "inet6", "fe80::1", "link"));
        let mut bad = vec![libc::AF_INET as u8, 8, 0, 0, 1, 0, 0, 0];
        bad.extend(attr(IFA_ADDRESS, &[1, 2, 3]));
        assert_eq!(decode_addr(&bad), None);
    }

    #[test]
    fn splits_datagrams() {
        let mut d = reply(RTM_NEWLINK, &[1, 2, 3, 4]);
        d.extend(reply(NLMSG_DONE, &[0, 0, 0, 0]));
        let m = messages(&d);
        assert_eq!(m, vec![(RTM_NEWLINK, &[1u8, 2, 3, 4][..]), (NLMSG_DONE, &[0u8; 4][..])]);
        // A length past the end stops the walk.
        let mut bad = reply(RTM_NEWLINK, &[]);
        bad[0] = 200;
        assert!(messages(&bad).is_empty());
    }
}
