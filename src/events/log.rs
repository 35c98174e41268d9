//! The bounded log behind `MOUNT/events`. Each event is kept as a fixed
//! record (24 bytes) plus its escaped detail in one shared buffer, and its
//! line `TIME EVENT TYPE INODE DETAIL` is rendered only when read: as text
//! of its own a line cost about 160 bytes, which is what a full log of the
//! default 10000 lines used to hold.

use super::{rfc3339, Event, Kind};
use crate::model::{Inode, NsType};
use std::collections::VecDeque;
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One kept event: when and what, how long its line is, and how long its
/// escaped detail is in `Log::details`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    at_ms: u64,
    inode: Inode,
    line_len: u32,
    detail_len: u16,
    kind: Kind,
    ns: NsType,
}

impl Entry {
    /// Its line, with its escaped `detail`, appended to `out`.
    fn render(&self, detail: impl Iterator<Item = u8>, out: &mut Vec<u8>) {
        let at = UNIX_EPOCH + Duration::from_millis(self.at_ms);
        let _ = write!(out, "{} {} {} {}", rfc3339(at), self.kind.name(), self.ns, self.inode);
        if self.detail_len > 0 {
            out.push(b' ');
            out.extend(detail);
        }
        out.push(b'\n');
    }
}

/// The kept events, oldest first. Byte offsets count every byte ever
/// logged, so they only grow.
pub struct Log {
    entries: VecDeque<Entry>,
    /// The escaped details of `entries`, in their order.
    details: VecDeque<u8>,
    /// Where the oldest kept line starts, and one past the last byte.
    first: u64,
    end: u64,
    max: usize,
}

impl Log {
    /// A log that keeps the last `max` events.
    pub fn new(max: usize) -> Log {
        Log { entries: VecDeque::new(), details: VecDeque::new(), first: 0, end: 0, max: max.max(1) }
    }

    /// Append an event at time `at`.
    pub fn push(&mut self, at: SystemTime, e: &Event) {
        let escaped = crate::render::escape(&e.detail);
        // Escaped text is ASCII: any cut is a whole character.
        let detail = &escaped.as_bytes()[..escaped.len().min(usize::from(u16::MAX))];
        let at_ms = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut entry = Entry {
            at_ms,
            inode: e.inode,
            line_len: 0,
            detail_len: detail.len() as u16,
            kind: e.kind,
            ns: e.ns,
        };
        let mut line = Vec::new();
        entry.render(detail.iter().copied(), &mut line);
        entry.line_len = line.len() as u32;
        if self.entries.is_empty() {
            self.first = self.end;
        }
        self.end += line.len() as u64;
        while self.entries.len() >= self.max {
            self.drop_oldest();
        }
        if self.entries.len() == self.entries.capacity() {
            // Grown in steps, never past `max`.
            let room = self.max - self.entries.len();
            self.entries.reserve_exact(self.entries.len().max(16).min(room));
        }
        self.entries.push_back(entry);
        self.details.extend(detail);
    }

    fn drop_oldest(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.details.drain(..usize::from(e.detail_len));
            self.first += u64::from(e.line_len);
        }
    }

    /// One past the last byte ever logged: the file's size.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Where the oldest kept line starts.
    pub fn first(&self) -> u64 {
        if self.entries.is_empty() {
            self.end
        } else {
            self.first
        }
    }

    /// Up to `size` bytes from `offset` (at least `first()`), of the lines
    /// `visible` lets through (for a non-root reader, offsets are those of
    /// the whole log, and hidden lines read as nothing).
    pub fn read(&self, offset: u64, size: usize, visible: &dyn Fn(Inode) -> bool) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut start, mut detail_at) = (self.first, 0usize);
        let mut line = Vec::new();
        for e in &self.entries {
            if out.len() >= size {
                break;
            }
            let (at, len) = (start, u64::from(e.line_len));
            start += len;
            let detail = self.details.range(detail_at..detail_at + usize::from(e.detail_len));
            detail_at += usize::from(e.detail_len);
            // Lines before the offset, and lines this reader may not see.
            if at + len <= offset || !visible(e.inode) {
                continue;
            }
            line.clear();
            e.render(detail.copied(), &mut line);
            let skip = offset.saturating_sub(at) as usize;
            out.extend_from_slice(&line[skip.min(line.len())..]);
        }
        out.truncate(size);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u64, detail: &str) -> Event {
        Event { kind: Kind::New, ns: NsType::Uts, inode: Inode(i), detail: detail.into() }
    }

    #[test]
    fn the_log_keeps_the_last_lines_and_offsets_only_grow() {
        let mut log = Log::new(3);
        for i in 0..5 {
            log.push(UNIX_EPOCH, &event(i, "x\ny"));
        }
        let line_len = "1970-01-01T00:00:00.000Z new uts 0 x\\012y\n".len() as u64;
        assert_eq!(log.end(), 5 * line_len);
        assert_eq!(log.first(), 2 * line_len);
        let all = |_| true;
        let text = String::from_utf8(log.read(log.first(), 1 << 20, &all)).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with("1970-01-01T00:00:00.000Z new uts 2 x\\012y\n"), "{text}");
        // Part of a line, then the rest.
        let head = log.read(log.first(), 10, &all);
        let rest = log.read(log.first() + 10, 1 << 20, &all);
        assert_eq!([head, rest].concat(), text.as_bytes());
        assert!(log.read(log.end(), 100, &all).is_empty());
        // A reader that may not see namespace 3.
        let hidden = String::from_utf8(log.read(log.first(), 1 << 20, &|i| i != Inode(3))).unwrap();
        assert_eq!(hidden.lines().count(), 2);
    }

    #[test]
    fn lines_read_back_as_they_were_logged_whatever_their_details() {
        // Against lines kept as text: details of every length (none, long,
        // bytes to escape), times, and a log that drops as it goes.
        let mut log = Log::new(7);
        let mut text: Vec<(u64, Inode, String)> = Vec::new();
        let mut end = 0;
        for i in 0..40u64 {
            let detail = match i % 4 {
                0 => String::new(),
                1 => format!("{i} sleep"),
                2 => format!("/run/netns/a b\tc{}", "x".repeat(i as usize * 7)),
                _ => "é\u{7}".to_owned(),
            };
            let at = UNIX_EPOCH + Duration::from_millis(1_795_843_965_123 + i * 1001);
            let e = Event { kind: Kind::Pinned, ns: NsType::Net, inode: Inode(4_026_531_840 + i), detail };
            log.push(at, &e);
            let d = crate::render::escape(&e.detail);
            let sep = if d.is_empty() { "" } else { " " };
            let line = format!("{} pinned net {}{sep}{d}\n", rfc3339(at), e.inode);
            text.push((end, e.inode, line.clone()));
            end += line.len() as u64;
        }
        assert_eq!(log.end(), end);
        let kept = &text[text.len() - 7..];
        assert_eq!(log.first(), kept[0].0);
        let whole: String = kept.iter().map(|l| l.2.as_str()).collect();
        for offset in (log.first()..=log.end()).step_by(13) {
            let got = log.read(offset, 1 << 20, &|_| true);
            assert_eq!(got, &whole.as_bytes()[(offset - log.first()) as usize..], "at {offset}");
        }
        let odd = |i: Inode| i.get() % 2 == 1;
        let seen: String = kept.iter().filter(|l| odd(l.1)).map(|l| l.2.as_str()).collect();
        assert_eq!(log.read(log.first(), 1 << 20, &odd), seen.as_bytes());
    }

    #[test]
    fn a_kept_event_is_small() {
        assert!(std::mem::size_of::<Entry>() <= 24, "{}", std::mem::size_of::<Entry>());
    }
}
