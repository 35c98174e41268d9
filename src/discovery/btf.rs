//! Just enough of the kernel's BTF (`/sys/kernel/btf/vmlinux`) to build
//! the task-table program: where a field sits in a kernel struct, and
//! the id of a kernel function. Pure parsing, tested on literal bytes;
//! malformed input is an error, never a panic.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum BtfError {
    #[error("not BTF (bad magic or header)")]
    NotBtf,
    #[error("BTF truncated at byte {0}")]
    Truncated(usize),
    #[error("unknown BTF type kind {0}")]
    UnknownKind(u32),
}

pub type Result<T> = std::result::Result<T, BtfError>;

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// A parsed BTF blob: where each type's record starts (type id N is
/// `starts[N - 1]`; id 0 is void).
pub struct Btf<'a> {
    data: &'a [u8],
    strings: &'a [u8],
    starts: Vec<u32>,
    /// The first struct or function of each name, by (kind, name): built
    /// once, where a lookup would walk some 150 000 types.
    named: std::collections::HashMap<(u32, &'a [u8]), u32>,
}

/// One type record's fixed part.
struct Type {
    kind: u32,
    name: u32,
    vlen: usize,
    kind_flag: bool,
    /// `size` or `type`, by kind.
    size_or_type: u32,
    /// Where its trailing data (members, ...) starts.
    rest: usize,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32> {
    let b = data.get(at..at + 4).ok_or(BtfError::Truncated(at))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl<'a> Btf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Btf<'a>> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(BtfError::NotBtf);
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
        let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off).ok_or(BtfError::NotBtf)?;
            let end = start.checked_add(len).ok_or(BtfError::NotBtf)?;
            data.get(start..end).map(|_| (start, end)).ok_or(BtfError::Truncated(end))
        };
        let (types_start, types_end) = section(type_off, type_len)?;
        let (str_start, str_end) = section(str_off, str_len)?;
        let mut btf =
            Btf { data, strings: &data[str_start..str_end], starts: Vec::new(), named: Default::default() };
        let mut at = types_start;
        while at < types_end {
            btf.starts.push(u32::try_from(at).map_err(|_| BtfError::NotBtf)?);
            let t = btf.type_at(at)?;
            if t.kind == KIND_STRUCT || t.kind == KIND_FUNC {
                let id = btf.starts.len() as u32;
                btf.named.entry((t.kind, btf.name(t.name))).or_insert(id);
            }
            at = t.rest + Self::trailing(&t)?;
        }
        if at != types_end {
            return Err(BtfError::Truncated(types_end));
        }
        Ok(btf)
    }

    fn type_at(&self, at: usize) -> Result<Type> {
        let info = u32_at(self.data, at + 4)?;
        Ok(Type {
            kind: (info >> 24) & 0x1f,
            name: u32_at(self.data, at)?,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type: u32_at(self.data, at + 8)?,
            rest: at + 12,
        })
    }

    /// How many bytes follow a type's fixed part.
    fn trailing(t: &Type) -> Result<usize> {
        Ok(match t.kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
            KIND_ARRAY => 12,
            KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * t.vlen,
            KIND_ENUM | KIND_FUNC_PROTO => 8 * t.vlen,
            2 | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC | 16
            | KIND_TYPE_TAG => 0,
            k => return Err(BtfError::UnknownKind(k)),
        })
    }

    fn name(&self, off: u32) -> &'a [u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    fn by_id(&self, id: u32) -> Option<Type> {
        let at = *self.starts.get((id as usize).checked_sub(1)?)?;
        self.type_at(at as usize).ok()
    }

    /// The id of the first type of `kind` (a struct or a function) named
    /// `name`.
    fn find(&self, kind: u32, name: &str) -> Option<u32> {
        self.named.get(&(kind, name.as_bytes())).copied()
    }

    /// The BTF id of kernel function `name`.
    pub fn func(&self, name: &str) -> Option<u32> {
        self.find(KIND_FUNC, name)
    }

    /// The byte offset of `path` (a field, then fields of the struct it
    /// is, ...) inside struct `name`; None if any step is missing or is
    /// a bit field.
    pub fn offset_of(&self, name: &str, path: &[&str]) -> Option<u32> {
        let mut ty = self.by_id(self.find(KIND_STRUCT, name)?)?;
        let mut total = 0u32;
        for (i, field) in path.iter().enumerate() {
            let (member_type, bits) = self.member(&ty, field)?;
            if bits % 8 != 0 {
                return None;
            }
            total = total.checked_add(bits / 8)?;
            if i + 1 < path.len() {
                ty = self.resolve(member_type)?;
            }
        }
        Some(total)
    }

    /// The size in bytes of struct `name`.
    pub fn size_of(&self, name: &str) -> Option<u32> {
        Some(self.by_id(self.find(KIND_STRUCT, name)?)?.size_or_type)
    }

    /// A struct's or union's member `field`: (its type id, bit offset),
    /// looking inside its anonymous structs and unions too (as C does).
    fn member(&self, ty: &Type, field: &str) -> Option<(u32, u32)> {
        self.member_within(ty, field, 8)
    }

    fn member_within(&self, ty: &Type, field: &str, depth: u32) -> Option<(u32, u32)> {
        if (ty.kind != KIND_STRUCT && ty.kind != KIND_UNION) || depth == 0 {
            return None;
        }
        (0..ty.vlen).find_map(|m| {
            let at = ty.rest + 12 * m;
            let name = self.name(u32_at(self.data, at).ok()?);
            let member_type = u32_at(self.data, at + 4).ok()?;
            let offset = u32_at(self.data, at + 8).ok()?;
            let bits = if ty.kind_flag { offset & 0x00ff_ffff } else { offset };
            if name == field.as_bytes() {
                return Some((member_type, bits));
            }
            if !name.is_empty() {
                return None;
            }
            let (inner_type, inner_bits) =
                self.member_within(&self.resolve(member_type)?, field, depth - 1)?;
            Some((inner_type, bits.checked_add(inner_bits)?))
        })
    }

    /// Type `id` with typedefs and qualifiers taken off.
    fn resolve(&self, mut id: u32) -> Option<Type> {
        for _ in 0..32 {
            let t = self.by_id(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Some(t),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob from type records (without their ids) and a string table.
    fn blob(types: &[Vec<u32>], strings: &[u8]) -> Vec<u8> {
        let type_bytes: Vec<u8> = types.iter().flatten().flat_map(|w| w.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend(MAGIC.to_le_bytes());
        out.extend([1u8, 0]);
        for w in [24u32, 0, type_bytes.len() as u32, type_bytes.len() as u32, strings.len() as u32] {
            out.extend(w.to_le_bytes());
        }
        out.extend(type_bytes);
        out.extend(strings);
        out
    }

    fn info(kind: u32, vlen: u32, kind_flag: bool) -> u32 {
        (kind << 24) | vlen | if kind_flag { 1 << 31 } else { 0 }
    }

    // Strings: 0 "", 1 "u64", 5 "inner", 11 "sum", 15 "outer", 21 "pid",
    // 25 "in", 28 "bpf_iter_task", 42 "inner_t", 50 "bits".
    const STRINGS: &[u8] = b"\0u64\0inner\0sum\0outer\0pid\0in\0bpf_iter_task\0inner_t\0bits\0";

    fn sample() -> Vec<u8> {
        blob(
            &[
                // 1: int u64
                vec![1, info(KIND_INT, 0, false), 8, 64],
                // 2: struct inner { u64 pad@0; u64 sum@64 bits }
                vec![5, info(KIND_STRUCT, 2, false), 16, 1, 1, 0, 11, 1, 64],
                // 3: typedef inner_t -> 2
                vec![42, info(KIND_TYPEDEF, 0, false), 2],
                // 4: const -> 3
                vec![0, info(KIND_CONST, 0, false), 3],
                // 5: struct outer (kind_flag) { u64 pid@32; inner in@128; bits:3@320 }
                vec![15, info(KIND_STRUCT, 3, true), 48, 21, 1, 32, 25, 4, 128, 50, 1, (3 << 24) | 320],
                // 6: func_proto (no params), 7: func bpf_iter_task
                vec![0, info(KIND_FUNC_PROTO, 0, false), 0],
                vec![28, info(KIND_FUNC, 0, false), 6],
            ],
            STRINGS,
        )
    }

    #[test]
    fn offsets_follow_nested_structs_through_typedefs_and_qualifiers() {
        let data = sample();
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.offset_of("outer", &["pid"]), Some(4));
        assert_eq!(btf.offset_of("outer", &["in"]), Some(16));
        assert_eq!(btf.offset_of("outer", &["in", "sum"]), Some(16 + 8));
        assert_eq!(btf.func("bpf_iter_task"), Some(7));
    }

    #[test]
    fn members_of_anonymous_structs_and_unions_are_found_as_c_finds_them() {
        // Strings: 0 "", 1 "u32", 5 "ns", 8 "inum", 13 "other".
        let data = blob(
            &[
                // 1: int u32
                vec![1, info(KIND_INT, 0, false), 4, 32],
                // 2: union (anonymous) { u32 inum@0; u32 other@0 }
                vec![0, info(KIND_UNION, 2, false), 4, 8, 1, 0, 13, 1, 0],
                // 3: struct ns { u32 other@0; <anonymous union>@96 }
                vec![5, info(KIND_STRUCT, 2, false), 16, 13, 1, 0, 0, 2, 96],
            ],
            b"\0u32\0ns\0inum\0other\0",
        );
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.offset_of("ns", &["inum"]), Some(12));
        assert_eq!(btf.offset_of("ns", &["other"]), Some(0), "the named member first");
        assert_eq!(btf.size_of("ns"), Some(16));
        assert_eq!(btf.size_of("u32"), None, "not a struct");
    }

    #[test]
    fn missing_names_and_bit_fields_are_none() {
        let data = sample();
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.offset_of("outer", &["nope"]), None);
        assert_eq!(btf.offset_of("nope", &["pid"]), None);
        assert_eq!(btf.offset_of("outer", &["pid", "sum"]), None, "pid is no struct");
        assert_eq!(btf.offset_of("outer", &["bits"]), Some(40), "a whole-byte bit field offset");
        assert_eq!(btf.func("outer"), None);
    }

    #[test]
    fn malformed_blobs_are_errors() {
        let data = sample();
        assert_eq!(Btf::parse(&data[..10]).err(), Some(BtfError::NotBtf));
        let mut bad = data.clone();
        bad[0] = 0;
        assert_eq!(Btf::parse(&bad).err(), Some(BtfError::NotBtf));
        // Cut inside the type section (header still claims it all).
        for cut in [30, 60, 100] {
            assert!(Btf::parse(&data[..cut]).is_err(), "cut at {cut}");
        }
        let mut unknown = data.clone();
        unknown[24 + 7] = 31; // kind 31 in the first type's info
        assert_eq!(Btf::parse(&unknown).err(), Some(BtfError::UnknownKind(31)));
    }

    #[test]
    fn the_running_kernels_btf_has_the_task_fields() {
        let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else { return };
        let btf = Btf::parse(&data).unwrap();
        assert!(btf.func("bpf_iter_task").is_some());
        let pid = btf.offset_of("task_struct", &["pid"]).unwrap();
        let tgid = btf.offset_of("task_struct", &["tgid"]).unwrap();
        assert_eq!(tgid, pid + 4, "pid_t pid; pid_t tgid; side by side");
        assert!(btf.offset_of("task_struct", &["se", "sum_exec_runtime"]).is_some());
        assert!(btf.offset_of("net", &["ns", "inum"]).is_some());
        assert!(btf.size_of("upid").is_some_and(|s| s >= 12));
    }
}
