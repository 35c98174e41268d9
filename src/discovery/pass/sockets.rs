//! The socket phase of a pass: the network namespace of every socket of
//! the processes read now (SIOCGSKNS through pidfd_getfd), once per socket.

use super::*;

impl Pass<'_> {
    /// SIOCGSKNS on every socket of the processes read now, once per socket
    /// inode; each answer is kept with its process for later passes. Bounded:
    /// pidfd_getfd waits while its process is inside an execve.
    pub(super) fn resolve_sockets(&mut self) {
        // (stuck key, (process, its sockets as (fd, socket inode))).
        type Sockets = (Pid, Vec<(i32, u64)>);
        let mut per_process: Vec<(String, Sockets)> = Vec::new();
        for (pid, fd, sock) in std::mem::take(&mut self.sockets) {
            match per_process.last_mut() {
                Some((_, (p, socks))) if *p == pid => socks.push((fd, sock)),
                _ => per_process.push((procfs::stuck_key(pid), (pid, vec![(fd, sock)]))),
            }
        }
        let found = bounded::map(
            "reading sockets",
            per_process,
            1,
            bounded::STALL,
            HashMap::<u64, Option<Inode>>::default,
            |seen, (pid, socks)| {
                let pidfd = sys::pidfd_open(pid).ok();
                let mut out = Vec::with_capacity(socks.len());
                for (fd, sock) in socks {
                    if let Some(&known) = seen.get(&sock) {
                        out.push((pid, fd, known, None));
                        continue;
                    }
                    let got = pidfd.as_ref().and_then(|p| socket_netns(p.as_fd(), fd, sock));
                    seen.insert(sock, got.as_ref().map(|g| g.1));
                    match got {
                        Some((netns, inode)) => out.push((pid, fd, Some(inode), Some(netns))),
                        None => out.push((pid, fd, None, None)),
                    }
                }
                out
            },
        );
        for (pid, fd, netns, netns_fd) in found.into_iter().flatten().flatten() {
            let Some(inode) = netns else { continue };
            if let (false, Some(f)) = (self.nss.contains_key(&inode), netns_fd) {
                self.fds.entry(inode).or_insert(f);
            }
            self.note(NsType::Net, inode);
            self.holders.push((inode, Holder::Socket { pid, fd }));
            if let Some(rec) = self.next.procs.get_mut(&pid) {
                rec.socket_netns.push((fd, inode));
            }
        }
    }
}

/// The network namespace of socket `fd` of the process behind `pidfd`,
/// opened, with its inode; checked to be the socket the walk listed (the
/// number may have been closed and reused since).
fn socket_netns(pidfd: BorrowedFd<'_>, fd: i32, sock_inode: u64) -> Option<(OwnedFd, Inode)> {
    let sock = sys::pidfd_getfd(pidfd, fd).ok()?;
    if sys::fstat(sock.as_fd()).ok()?.st_ino != sock_inode {
        return None;
    }
    let netns = sys::socket_netns(sock.as_fd()).ok()?;
    let inode = sys::fstat(netns.as_fd()).ok()?.st_ino;
    Some((netns, inode))
}
