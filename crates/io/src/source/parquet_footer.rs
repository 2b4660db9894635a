//! A check of a Parquet footer's schema before arrow-rs decodes it.
//!
//! arrow-rs 60 reserves room for as many children as a schema element
//! claims (`num_children`, up to 2^31) before it looks for them: a 100-byte
//! footer can ask for 16 GiB, and where the system refuses, Rust aborts the
//! process, which no `catch_unwind` contains (found by the `parquet` fuzz
//! target). This reads just the schema list of the footer's Thrift compact
//! encoding and checks that every claimed child exists.

/// Thrift compact types.
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

/// Nesting deeper than this is not a schema anyone writes.
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Fallible<T> = Result<T, String>;

impl Reader<'_> {
    fn byte(&mut self) -> Fallible<u8> {
        let b = *self.bytes.get(self.at).ok_or("the footer ends early")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Fallible<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint in the footer is too long".into())
    }

    fn zigzag(&mut self) -> Fallible<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn skip_bytes(&mut self, n: u64) -> Fallible<()> {
        let end = (self.at as u64).saturating_add(n);
        if end > self.bytes.len() as u64 {
            return Err("a field runs past the end of the footer".into());
        }
        self.at = end as usize;
        Ok(())
    }

    /// A list or set header: (element type, size), the size bounded by
    /// the bytes left.
    fn list_header(&mut self) -> Fallible<(u8, u64)> {
        let header = self.byte()?;
        let size = match header >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        let kind = header & 0x0f;
        let left = (self.bytes.len() - self.at) as u64;
        // Every element takes at least a byte (a boolean in a list too).
        if size > left {
            return Err(format!("a list claims {size} elements in {left} bytes"));
        }
        Ok((kind, size))
    }

    /// The next field of a struct: `None` at its end.
    fn field(&mut self, last: &mut i16) -> Fallible<Option<(i16, u8)>> {
        let header = self.byte()?;
        if header == 0 {
            return Ok(None);
        }
        let kind = header & 0x0f;
        let id = match header >> 4 {
            0 => i16::try_from(self.zigzag()?).map_err(|_| "a field id is out of range")?,
            delta => last.saturating_add(i16::from(delta)),
        };
        *last = id;
        Ok(Some((id, kind)))
    }

    fn skip(&mut self, kind: u8, depth: usize) -> Fallible<()> {
        if depth > MAX_DEPTH {
            return Err("the footer nests too deep".into());
        }
        match kind {
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.byte().map(|_| ()),
            I16 | I32 | I64 => self.varint().map(|_| ()),
            DOUBLE => self.skip_bytes(8),
            BINARY => {
                let n = self.varint()?;
                self.skip_bytes(n)
            }
            LIST | SET => {
                let (element, size) = self.list_header()?;
                if matches!(element, BOOL_TRUE | BOOL_FALSE) {
                    // In a list a boolean is a byte, not part of a header.
                    return self.skip_bytes(size);
                }
                (0..size).try_for_each(|_| self.skip(element, depth + 1))
            }
            MAP => {
                let size = self.varint()?;
                if size == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                if size > (self.bytes.len() - self.at) as u64 {
                    return Err(format!("a map claims {size} entries"));
                }
                (0..size).try_for_each(|_| {
                    self.skip(kinds >> 4, depth + 1)?;
                    self.skip(kinds & 0x0f, depth + 1)
                })
            }
            STRUCT => {
                let mut last = 0;
                while let Some((_, kind)) = self.field(&mut last)? {
                    self.skip(kind, depth + 1)?;
                }
                Ok(())
            }
            other => Err(format!("unknown Thrift type {other} in the footer")),
        }
    }

    /// A `SchemaElement`: its `num_children` (field 5), if set.
    fn schema_element(&mut self) -> Fallible<Option<i64>> {
        let mut last = 0;
        let mut children = None;
        while let Some((id, kind)) = self.field(&mut last)? {
            if id == 5 && kind == I32 {
                children = Some(self.zigzag()?);
            } else {
                self.skip(kind, 1)?;
            }
        }
        Ok(children)
    }
}

/// Checks the schema in `footer` (the Thrift `FileMetaData`, without the
/// length and magic): each element's children must be among the elements
/// that follow it.
pub(crate) fn check_schema(footer: &[u8]) -> Result<(), String> {
    let mut r = Reader {
        bytes: footer,
        at: 0,
    };
    let mut last = 0;
    while let Some((id, kind)) = r.field(&mut last)? {
        if id != 2 || kind != LIST {
            r.skip(kind, 0)?;
            continue;
        }
        let (element, size) = r.list_header()?;
        if element != STRUCT {
            return Err("the footer's schema is not a list of elements".into());
        }
        let mut children = Vec::with_capacity(size as usize);
        for _ in 0..size {
            children.push(r.schema_element()?);
        }
        return check_tree(&children);
    }
    Ok(())
}

/// No element claims more children than there are elements after it (a
/// bound on what arrow-rs reserves; the finer structure it checks itself).
fn check_tree(children: &[Option<i64>]) -> Result<(), String> {
    for (i, claimed) in children.iter().enumerate() {
        let n = claimed.unwrap_or(0);
        let remaining = (children.len() - i - 1) as i64;
        if n < 0 || n > remaining {
            return Err(format!(
                "schema element {i} claims {n} children, but {remaining} elements follow it"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compact-protocol `FileMetaData` with only its schema: elements
    /// given by their `num_children`.
    fn footer(children: &[Option<i32>]) -> Vec<u8> {
        let mut out = vec![0x29]; // field 2 (delta 2), list
        out.push(((children.len() as u8) << 4) | STRUCT);
        for c in children {
            out.push(0x48); // field 4 (delta 4), binary: the name
            out.extend([1, b'x']);
            if let Some(n) = c {
                out.push(0x15); // field 5 (delta 1), i32
                out.push(((n << 1) ^ (n >> 31)) as u8);
            }
            out.push(0); // end of the element
        }
        out.push(0); // end of FileMetaData
        out
    }

    #[test]
    fn a_schema_whose_children_exist_passes() {
        assert_eq!(
            check_schema(&footer(&[Some(2), None, Some(1), None])),
            Ok(())
        );
    }

    #[test]
    fn a_group_claiming_more_children_than_follow_is_refused() {
        let err = check_schema(&footer(&[Some(40), None])).unwrap_err();
        assert!(
            err.contains("schema element 0 claims 40 children, but 1 elements follow"),
            "{err}"
        );
    }

    #[test]
    fn a_list_of_booleans_is_skipped_a_byte_each_and_bounded_by_the_bytes_left() {
        // FileMetaData { 1: list<bool> of 2^31 - 1 } in four bytes: refused
        // at once, not skipped element by element (found by fuzzing).
        let mut f = vec![0x19, 0xF0 | BOOL_TRUE, 0xff, 0xff, 0xff, 0xff, 0x07, 0];
        let err = check_schema(&f).unwrap_err();
        assert!(err.contains("claims 2147483647 elements"), "{err}");
        f = vec![0x19, 0x20 | BOOL_TRUE, 1, 0, 0];
        assert_eq!(check_schema(&f), Ok(()));
    }

    #[test]
    fn a_list_claiming_more_elements_than_bytes_is_refused() {
        let mut f = footer(&[Some(1), None]);
        f[1] = 0xF0 | STRUCT;
        f.splice(2..2, [0xff, 0xff, 0xff, 0xff, 0x07]);
        let err = check_schema(&f).unwrap_err();
        assert!(err.contains("claims 2147483647 elements"), "{err}");
    }
}
