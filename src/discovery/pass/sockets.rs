//! The socket phase of a pass: the network namespace of every socket of
//! the processes read now (SIOCGSKNS through pidfd_getfd), once per socket.

use super::*;

impl<K: Kernel> Pass<'_, K> {
    /// SIOCGSKNS on every socket of the processes read now, once per socket
    /// inode; each answer is kept with its process for later passes. Bounded:
    /// pidfd_getfd waits while its process is inside an execve.
    pub(super) fn resolve_sockets(&mut self, sockets: Vec<SocketRef>, records: &mut HashMap<Pid, Record>) {
        // (stuck key, (process, its sockets as (fd, socket inode))).
        type Sockets = (Pid, Vec<(i32, u64)>);
        let mut per_process: Vec<(String, Sockets)> = Vec::new();
        for (pid, fd, sock) in sockets {
            match per_process.last_mut() {
                Some((_, (p, socks))) if *p == pid => socks.push((fd, sock)),
                _ => per_process.push((procfs::stuck_key(pid), (pid, vec![(fd, sock)]))),
            }
        }
        let kernel = self.kernel.clone();
        let found = bounded::map(
            "reading sockets",
            per_process,
            1,
            bounded::STALL,
            HashMap::<u64, Option<Inode>>::default,
            move |seen, (pid, socks)| {
                // Each socket inode once (a descriptor may be shared or dup'd).
                let mut unseen: Vec<(i32, u64)> = Vec::new();
                for &(fd, sock) in &socks {
                    if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(sock) {
                        e.insert(None);
                        unseen.push((fd, sock));
                    }
                }
                let answers = kernel.socket_netns(pid, &unseen);
                let mut opened: HashMap<i32, K::Ns> = HashMap::default();
                for ((fd, sock), got) in unseen.into_iter().zip(answers) {
                    if let Some((netns, inode)) = got {
                        seen.insert(sock, Some(inode));
                        opened.insert(fd, netns);
                    }
                }
                let netns_of = |sock: u64| seen.get(&sock).copied().flatten();
                let out: Vec<_> = socks
                    .into_iter()
                    .map(|(fd, sock)| (pid, fd, netns_of(sock), opened.remove(&fd)))
                    .collect();
                out
            },
        );
        for (pid, fd, netns, netns_fd) in found.into_iter().flatten().flatten() {
            let Some(inode) = netns else { continue };
            // Kept even if it was seen by a path already: that path may be
            // another process's descriptor, closed by the time it is opened.
            if let Some(f) = netns_fd {
                self.fds.entry(inode).or_insert(f);
            }
            self.note(NsType::Net, inode);
            self.holders.push((inode, Holder::Socket { pid, fd }));
            if let Some(rec) = records.get_mut(&pid) {
                rec.socket_netns.push((fd, inode));
            }
        }
    }
}
